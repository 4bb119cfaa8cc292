"""How well our first frame lines up with SimplerEnv's real camera: a figure and numbers per scene.

For each scene of SimplerEnv's own embodiments, our first frame (visual matching, 640 x 480) is
shown next to SimplerEnv's overlay image (the empty real scene) and a real first frame with the
robot at its start pose. The alignment number compares the robot: the real robot's pixels are
those dark in the real frame but not in the empty scene (the robot is black), ours come from the
segmentation; the figure prints their intersection over union and the offset of their centroids.
Part of the offset is SimplerEnv's own: its real frames were not taken with exactly the overlay's
camera pose (the table edges of the two differ by a few pixels) nor the start joints of its config.
The Google-robot scenes (``google_coke_can``, ``google_move_near``, ``google_drawer``) are measured
on the table edges, the objects and the wall-floor line instead (:mod:`envs.simpler.alignment_google`).

    python -m envs.simpler.alignment --out results/figures
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np

from envs.simpler.alignment_detect import near_region
from envs.simpler.alignment_google import FIGURES as GOOGLE_FIGURES
from envs.simpler.assets import SimplerAssetsMissing

#: Per scene: the task whose first frame is shown and SimplerEnv's real first frame of that scene.
REAL_FRAMES = {
    "bridge_flat_table": ("stack_green_on_yellow", "real_inpainting/bridge/stack_cube_1st_frame.png"),
    "bridge_sink": ("put_eggplant_in_basket", "real_inpainting/bridge/bridge_sink_calibrate.png"),
}
DARK = 60  # grey level under which a pixel counts as the black robot


NEAR_PX = 60  # the real robot is looked for within this many pixels of our robot's bounding box


def robot_mask_in_real(
    real: np.ndarray, empty: np.ndarray, near: np.ndarray, margin: int = NEAR_PX
) -> np.ndarray:
    """Pixels dark in the real frame with the robot, not dark in the empty scene, near our robot.

    ``near`` is our robot's mask: dark spots far from it (shadows under the table) are not the robot.
    """
    region = near_region(near, margin)
    return (real.max(axis=-1) < DARK) & (empty.max(axis=-1) >= DARK) & region


def compare_masks(ours: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Intersection over union and centroid offset (pixels) of two boolean masks."""
    union = np.logical_or(ours, real).sum()
    iou = float(np.logical_and(ours, real).sum() / union) if union else 0.0

    def centroid(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()]) if len(xs) else np.array([np.nan, np.nan])

    dx, dy = centroid(ours) - centroid(real)
    return {"robot_iou": iou, "centroid_dx_px": float(dx), "centroid_dy_px": float(dy)}


def first_frame(task: str) -> tuple[np.ndarray, np.ndarray]:
    """Our first frame of episode 0 at SimplerEnv's resolution and the mask of our robot in it."""
    import torch

    from envs.simpler.bridge_scene import CAMERA
    from envs.simpler.real_env import SimplerRealEnv

    env = SimplerRealEnv(task, image_size=(640, 480))
    try:
        obs, _ = env.reset(seed=0, options={"episode": 0})
        scene = env.scene
        seg = scene.get_obs()["sensor_data"][CAMERA]["segmentation"][0, ..., 0]
        robot_ids = torch.cat([link.per_scene_id for link in scene.agent.robot.get_links()])
        return obs["rgb_static"], torch.isin(seg, robot_ids).numpy()
    finally:
        env.close()


def outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def figure(scene: str, out_dir: Path) -> dict[str, float]:
    from PIL import Image

    from envs.simpler.assets import require_simpler_files
    from envs.simpler.reference import scene_reference

    task, real_rel = REAL_FRAMES[scene]
    overlay_rel = scene_reference(scene)["overlay"]
    root = require_simpler_files([real_rel, overlay_rel])
    real = np.asarray(Image.open(root / real_rel).convert("RGB"))
    empty = np.asarray(Image.open(root / overlay_rel).convert("RGB"))
    ours, our_robot = first_frame(task)
    real_robot = robot_mask_in_real(real, empty, our_robot)
    numbers = compare_masks(our_robot, real_robot)
    blend = (0.5 * ours + 0.5 * real).astype(np.uint8)
    blend[outline(our_robot)] = (255, 40, 40)
    blend[outline(real_robot)] = (40, 255, 40)
    panels = [ours, empty, real, blend]
    titles = [
        f"ours: {task}, episode 0",
        f"SimplerEnv overlay {Path(overlay_rel).name}",
        f"SimplerEnv real frame {Path(real_rel).name}",
        f"robot: ours red, real green; IoU {numbers['robot_iou']:.2f},\n"
        f"offset ({numbers['centroid_dx_px']:+.0f}, {numbers['centroid_dy_px']:+.0f}) px",
    ]
    path = save_panels(panels, titles, out_dir / f"simpler_alignment_{scene}.png")
    return {**numbers, "figure": str(path)}


def save_panels(panels: list[np.ndarray], titles: list[str], path: Path) -> Path:
    """Four images in a 2 x 2 grid at 3/4 of the first one's size (numbers are computed at full
    size), each under its title (up to two lines)."""
    from PIL import Image, ImageDraw

    h, w = (round(0.75 * n) for n in panels[0].shape[:2])
    bar = 30
    canvas = Image.new("RGB", (2 * w, 2 * (h + bar)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        x, y = (i % 2) * w, (i // 2) * (h + bar)
        draw.multiline_text((x + 6, y + 3), title, fill="black", spacing=2)
        canvas.paste(Image.fromarray(panel).resize((w, h), Image.BILINEAR), (x, y + bar))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


#: Scene name -> the function that draws its figure into a folder and returns its numbers.
FIGURES = {**{scene: functools.partial(figure, scene) for scene in REAL_FRAMES}, **GOOGLE_FIGURES}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(prog="python -m envs.simpler.alignment", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    parser.add_argument("--scenes", nargs="+", default=list(FIGURES), choices=list(FIGURES))
    args = parser.parse_args(argv)
    results = {}
    for scene in args.scenes:
        try:
            numbers = FIGURES[scene](out_dir=args.out)
        except SimplerAssetsMissing as exc:
            parser.exit(1, f"{scene}: {exc}\n")
        shown = "  ".join(f"{k} {v:+.3g}" for k, v in numbers.items() if k != "figure")
        print(f"{scene:18s} {shown}  -> {numbers['figure']}")
        results[scene] = numbers
    return results


if __name__ == "__main__":
    main()
