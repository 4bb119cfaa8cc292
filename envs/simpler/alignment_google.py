"""Alignment of the Google-robot (RT-1) scenes with SimplerEnv's real images: measures and figures.

In visual matching the real overlay replaces every pixel but the robot, the task objects and, in
the drawer scenes, the cabinet (rendered from SimplerEnv's ``mk_station_recolor.urdf``; the drawer
overlays show the empty floor where the real cabinet was inpainted away). So the table and the room
are the real image's, and what can be misaligned is where our camera puts our geometry. Measured at
the calibrated 640 x 512 (the 320 x 256 images resized, as the env does):

* table edges (coke can, move near): the four edges of our table top (SimplerEnv's table height,
  the extent of ``google_scene.TABLE_XY``) projected through our camera, against the strongest
  intensity step within ``alignment_detect.EDGE_WINDOW_PX`` of each in the overlay. ``TABLE_XY`` was fitted to
  the coke-can overlay, so there this checks that fit (and that the camera's perspective is
  consistent with a flat top at 0.87 m); the move-near overlay has another base pose and was not
  used for the fit, so there it tests the camera and base pose;
* objects: our objects' pixels against the same objects in a real first frame (what differs from the
  overlay in colour or brightness, not in shade alone, near our object): coke can against
  ``rt1_real_standing_coke_can_1_cleanup.png`` in the nearest of SimplerEnv's 25 can positions (the
  real can was not placed at one, so the offset is at least the layout's gap to it; nearest by the
  real patch's centroid, which the can's reflection pulls down a little); move near against ``move_near_real_1_1.png``, which shows the
  objects of our episode 0 (triplet 0 at xy config 0; matched by its content);
* drawers: the wall-floor line of each of the nine overlays, back-projected onto the floor (z = 0)
  through our camera at that overlay's base pose, gives a wall position per overlay. One wall seen
  from nine calibrated poses must come out the same: the spread, and the rows of the common wall
  reprojected, test the nine base poses and the camera relative to each other (not a shift common
  to all, nor the cabinet's own pose, which no real image shows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from envs.simpler.alignment_detect import (
    compare_objects,
    edge_offsets,
    object_mask,
    on_plane,
    pose_matrix,
    project,
    smoothed_gray,
    step_line,
)

WALL_ROWS = (0.3, 0.9)  # the wall-floor line is looked for in this band of the image height

COKE_REAL = "debug/rt1_real_standing_coke_can_1_cleanup.png"
MOVE_NEAR_REAL = "real_inpainting/move_near_real_obj_variants/move_near_real_1_1.png"
SCENE_TASKS = {
    "google_coke_can": "pick_can_standing",
    "google_move_near": "move_near",
    "google_drawer": "open_drawer_top",
}


# --- the scenes -----------------------------------------------------------------------------------
def render(task: str, episode: int) -> dict[str, Any]:
    """Our first frame of ``episode`` at 640 x 512 with the camera matrices and the masks of its parts."""
    import torch

    from envs.simpler.google_scene import CAMERA
    from envs.simpler.real_env import SimplerRealEnv

    env = SimplerRealEnv(task, image_size=(640, 512))
    try:
        obs, _ = env.reset(seed=0, options={"episode": episode})
        scene = env.scene
        seg = scene.get_obs()["sensor_data"][CAMERA]["segmentation"][0, ..., 0]
        params = scene.scene.sensors[CAMERA].get_params()

        def mask(ids: list) -> np.ndarray:
            return torch.isin(seg, torch.cat(ids)).numpy() if ids else np.zeros(seg.shape, bool)

        out = {
            "rgb": obs["rgb_static"],
            "k": params["intrinsic_cv"][0].numpy().astype(np.float64),
            "e": params["extrinsic_cv"][0].numpy().astype(np.float64),
            "objects": {n: mask([a.per_scene_id]) for n, a in scene.objs.items()},
            "object_z": {n: float(a.pose.p[0, 2]) for n, a in scene.objs.items()},
            "robot": mask([link.per_scene_id for link in scene.agent.robot.get_links()]),
            "layout": scene.layout,
        }
        if scene.cabinet is not None:
            out["cabinet"] = mask([link.per_scene_id for link in scene.cabinet.get_links()])
            mesh = scene.cabinet.get_first_collision_mesh(to_world_frame=True)
            out["cabinet_x_range"] = (float(mesh.bounds[0][0]), float(mesh.bounds[1][0]))
        return out
    finally:
        env.close()


def table_edges() -> dict[str, np.ndarray]:
    """The four edges of our table top (world, 2 x 3 each), named by their side in SimplerEnv's world."""
    from envs.simpler.google_agent import family
    from envs.simpler.google_scene import TABLE_XY

    (x0, x1), (y0, y1) = TABLE_XY
    z = family()["table_height"]
    c = {
        "far": (x0, y0, x0, y1),
        "near": (x1, y0, x1, y1),
        "y_min": (x0, y0, x1, y0),
        "y_max": (x0, y1, x1, y1),
    }
    return {name: np.array([[a, b, z], [cc, d, z]]) for name, (a, b, cc, d) in c.items()}


def measure_table(overlay: np.ndarray, k: np.ndarray, e: np.ndarray) -> tuple[dict[str, float], list]:
    """Signed median offset per table edge (px) and the median and largest |offset| over all."""
    gray = smoothed_gray(overlay)
    numbers, drawn, every = {}, [], []
    for name, ends in table_edges().items():
        p0, p1 = project(k, e, ends)
        offsets, found = edge_offsets(gray, p0, p1)
        ok = ~np.isnan(offsets)
        drawn.append((p0, p1, found[ok]))
        every.append(offsets[ok])
        numbers[f"table_{name}_edge_px"] = float(np.median(offsets[ok])) if ok.any() else float("nan")
    every_abs = np.abs(np.concatenate(every))
    numbers["table_edge_median_abs_px"] = float(np.median(every_abs))
    numbers["table_edge_max_abs_px"] = float(every_abs.max())
    return numbers, drawn


def nearest_can_episode(task: str, k: np.ndarray, e: np.ndarray, can_z: float, real_can: np.ndarray) -> int:
    """The episode whose can position, projected at our settled can height, is nearest the real can."""
    from envs.simpler.google_layout import episode_layout
    from envs.simpler.tasks import TASKS

    ys, xs = np.nonzero(real_can)
    target = np.array([xs.mean(), ys.mean()])
    episodes = range(TASKS[task].episodes)
    xy = np.array([episode_layout(task, i).xys[0] for i in episodes])
    uv = project(k, e, np.column_stack([xy, np.full(len(xy), can_z)]))
    return int(np.argmin(np.linalg.norm(uv - target, axis=1)))


def wall_estimates(k: np.ndarray, e0: np.ndarray, task: str, overlays: list[np.ndarray]) -> dict[str, Any]:
    """The wall-floor line of each drawer overlay, on the floor, through our camera at its base pose."""
    from envs.simpler.google_agent import family
    from envs.simpler.google_layout import episode_layout

    def base(i: int) -> np.ndarray:
        layout = episode_layout(task, i)
        return pose_matrix([*layout.robot_xy, family()["base_height"]], layout.robot_q)

    world_cam0 = np.linalg.inv(np.vstack([e0, [0, 0, 0, 1]]))
    base_cam = np.linalg.inv(base(0)) @ world_cam0
    h = overlays[0].shape[0]
    rows = (int(WALL_ROWS[0] * h), int(WALL_ROWS[1] * h))
    walls, extrinsics, lines = [], [], []
    for i, overlay in enumerate(overlays):
        e = np.linalg.inv(base(i) @ base_cam)[:3]
        cols, found, keep = step_line(smoothed_gray(overlay, 3.0), rows)
        floor = on_plane(k, e, np.column_stack([cols[keep], found[keep]]), 0.0)
        slope = np.polyfit(floor[:, 1], floor[:, 0], 1)[0]  # x change per y: 0 for a wall across x
        walls.append((float(np.median(floor[:, 0])), float(np.degrees(np.arctan(slope)))))
        extrinsics.append(e)
        lines.append((cols[keep], found[keep]))
    x_wall = float(np.mean([w[0] for w in walls]))
    resid = []
    for e, (cols, found) in zip(extrinsics, lines, strict=True):
        ys = np.linspace(-1.5, 1.5, 301)
        uv = project(k, e, np.column_stack([np.full_like(ys, x_wall), ys, np.zeros_like(ys)]))
        order = np.argsort(uv[:, 0])
        resid.append(found - np.interp(cols, uv[order, 0], uv[order, 1]))
    return {"walls": walls, "x_wall": x_wall, "extrinsics": extrinsics, "lines": lines, "residuals": resid}


# --- figures --------------------------------------------------------------------------------------
SIZE = (640, 512)  # the calibrated image size: every number is in pixels of it
RED, GREEN = (255, 40, 40), (40, 255, 40)


def load(rel: str) -> np.ndarray:
    from envs.simpler.assets import require_simpler_files
    from envs.simpler.overlay import load_overlay

    return load_overlay(require_simpler_files([rel]) / rel, SIZE)


def annotate(
    base: np.ndarray, ours: dict[str, np.ndarray], real: dict[str, np.ndarray], edges: list
) -> np.ndarray:
    """``base`` with our masks outlined red, the real ones green, our table edges as red lines and
    the steps found near them as green dots."""
    from PIL import Image, ImageDraw

    from envs.simpler.alignment import outline

    out = base.copy()
    for masks, colour in ((ours, RED), (real, GREEN)):
        for mask in masks.values():
            out[outline(mask)] = colour
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    for p0, p1, found in edges:
        draw.line([tuple(p0), tuple(p1)], fill=RED, width=1)
        for u, v in found:
            draw.ellipse([u - 2, v - 2, u + 2, v + 2], outline=GREEN)
    return np.asarray(image)


def real_frame_figure(
    scene: str,
    ours_title: str,
    images: tuple[dict[str, Any], np.ndarray, np.ndarray, str],
    outlines: tuple[dict[str, np.ndarray], dict[str, np.ndarray], list],
    summary: str,
    numbers: dict[str, Any],
    out_dir: Path,
) -> dict[str, Any]:
    """The figure of a scene with a real first frame: ours, the overlay, the real frame (``images``:
    our render, the overlay, the real frame and its path) and their blend with the object outlines
    and table edges (``outlines``); returns ``numbers`` with the figure's path."""
    from envs.simpler.alignment import save_panels
    from envs.simpler.reference import scene_reference

    ours, empty, real, real_rel = images
    blend = annotate((0.5 * ours["rgb"] + 0.5 * real).astype(np.uint8), *outlines)
    titles = [
        ours_title,
        f"SimplerEnv overlay {Path(scene_reference(scene)['overlay']).name}",
        f"SimplerEnv real frame {Path(real_rel).name}",
        f"{summary}; table edges: median {numbers['table_edge_median_abs_px']:.0f} px",
    ]
    path = save_panels([ours["rgb"], empty, real, blend], titles, out_dir / f"simpler_alignment_{scene}.png")
    return {**numbers, "figure": str(path)}


def coke_can(out_dir: Path) -> dict[str, Any]:
    from envs.simpler.reference import scene_reference

    task = SCENE_TASKS["google_coke_can"]
    overlay_rel = scene_reference("google_coke_can")["overlay"]
    empty, real = load(overlay_rel), load(COKE_REAL)
    real_can = object_mask(real, empty, np.ones(real.shape[:2], bool))
    first = render(task, 0)
    can = first["layout"].models[0]
    episode = nearest_can_episode(task, first["k"], first["e"], first["object_z"][can], real_can)
    ours = first if episode == 0 else render(task, episode)
    numbers, edges = measure_table(empty, ours["k"], ours["e"])
    numbers = {"episode": episode, **compare_objects(ours["objects"][can], real_can, "can"), **numbers}
    summary = (
        f"can ours red, real green: top offset ({numbers['can_top_dx_px']:+.0f}, "
        f"{numbers['can_top_dy_px']:+.0f}) px, width x{numbers['can_width_ratio']:.2f}"
    )
    return real_frame_figure(
        "google_coke_can",
        f"ours: {task}, episode {episode} (nearest can position)",
        (ours, empty, real, COKE_REAL),
        ({can: ours["objects"][can]}, {can: real_can}, edges),
        summary,
        numbers,
        out_dir,
    )


def move_near(out_dir: Path) -> dict[str, Any]:
    from envs.simpler.reference import scene_reference

    task = SCENE_TASKS["google_move_near"]
    overlay_rel = scene_reference("google_move_near")["overlay"]
    empty, real = load(overlay_rel), load(MOVE_NEAR_REAL)
    ours = render(task, 0)
    numbers, edges = measure_table(empty, ours["k"], ours["e"])
    real_masks = {name: object_mask(real, empty, mask) for name, mask in ours["objects"].items()}
    for name, mask in ours["objects"].items():
        numbers.update(compare_objects(mask, real_masks[name], name))
    tops = np.array([[numbers[f"{n}_top_dx_px"], numbers[f"{n}_top_dy_px"]] for n in ours["objects"]])
    numbers["objects_top_offset_mean_px"] = float(np.linalg.norm(tops, axis=1).mean())
    summary = (
        f"objects ours red, real green: tops {numbers['objects_top_offset_mean_px']:.0f} px apart on average"
    )
    return real_frame_figure(
        "google_move_near",
        f"ours: {task}, episode 0",
        (ours, empty, real, MOVE_NEAR_REAL),
        (ours["objects"], real_masks, edges),
        summary,
        numbers,
        out_dir,
    )


def drawer(out_dir: Path) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    from envs.simpler.alignment import outline, save_panels
    from envs.simpler.reference import scene_reference

    task = SCENE_TASKS["google_drawer"]
    rels = scene_reference("google_drawer")["overlays"]
    overlays = [load(rel) for rel in rels]
    ours = render(task, 0)
    w = wall_estimates(ours["k"], ours["e"], task, overlays)
    walls = np.array(w["walls"])
    resid = np.abs(np.concatenate(w["residuals"]))
    x0, x1 = ours["cabinet_x_range"]
    numbers = {
        "wall_x_mean_m": w["x_wall"],
        "wall_x_spread_m": float(np.ptp(walls[:, 0])),
        "wall_angle_spread_deg": float(np.ptp(walls[:, 1])),
        "wall_row_median_abs_px": float(np.median(resid)),
        "wall_row_max_abs_px": float(resid.max()),
        "cabinet_back_to_wall_m": float(min(x0, x1) - w["x_wall"]),
    }
    for rel, x in zip(rels, walls[:, 0], strict=True):
        numbers[f"wall_x_{Path(rel).stem[-2:]}_m"] = float(x)

    def with_lines(i: int) -> np.ndarray:
        image = Image.fromarray(overlays[i].copy())
        draw = ImageDraw.Draw(image)
        cols, rows = w["lines"][i]
        draw.point(list(zip(cols.tolist(), rows.tolist(), strict=True)), fill=GREEN)
        draw.point(list(zip(cols.tolist(), (rows - w["residuals"][i]).tolist(), strict=True)), fill=RED)
        return np.array(image)

    tiles = [
        np.asarray(Image.fromarray(with_lines(i)).resize((SIZE[0] // 3, SIZE[1] // 3))) for i in range(9)
    ]
    grid = np.zeros((3 * tiles[0].shape[0], 3 * tiles[0].shape[1], 3), np.uint8)
    th, tw = tiles[0].shape[:2]
    for i, tile in enumerate(tiles):
        grid[(i // 3) * th : (i // 3 + 1) * th, (i % 3) * tw : (i % 3 + 1) * tw] = tile
    blend = with_lines(0).copy()
    blend[outline(ours["cabinet"])] = RED
    titles = [
        f"ours: {task}, episode 0 ({Path(rels[0]).name})",
        f"SimplerEnv overlay {Path(rels[0]).name} (the cabinet is rendered, not in the image)",
        f"wall-floor line in a0..c2: found green, common wall red ({numbers['wall_row_median_abs_px']:.0f} px median)",
        f"our cabinet red; wall x {numbers['wall_x_mean_m']:+.2f} m, spread {numbers['wall_x_spread_m']:.2f} m "
        f"over the nine poses",
    ]
    path = save_panels(
        [ours["rgb"], overlays[0], grid, blend], titles, out_dir / "simpler_alignment_google_drawer.png"
    )
    return {**numbers, "figure": str(path)}


FIGURES = {"google_coke_can": coke_can, "google_move_near": move_near, "google_drawer": drawer}
