"""The equivalent stages of SimplerEnv's variant aggregation on the Google-robot scenes (boxes, lights,
distractors, cabinets); the variants themselves are in :mod:`envs.simpler.real_variants`.

The room: a floor whose top is at SimplerEnv's ground height (0.017 m, where the robot base and the
cabinet stand) and three walls around the workspace; the robot faces -x, so the back wall is at
:data:`BACK_WALL_X`. The floor and walls are visual only (SimplerEnv's drawer stage has no collision;
on the tabletop stages nothing reaches them). The tabletop scenes' table box keeps its collision.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import sapien

from envs.simpler.real_variants import RGB, Lighting, Stage

GROUND_Z = 0.017  # SimplerEnv's ground height in its stages (base_env.py: robot height = 0.06205 + 0.017)
BACK_WALL_X = -1.3
SIDE_WALL_Y = 2.0  # the side walls stand at y = +-2 m
WALL_HEIGHT = 3.0
WALL_THICKNESS = 0.05
FLOOR_HALF = 4.0
#: stand-in colour of mk_station3's stone table top (its mesh models/stone_tabletop.glb is not shipped)
STONE_TOP_RGBA = (0.55, 0.55, 0.53, 1.0)


def _material(rgb: RGB) -> sapien.render.RenderMaterial:
    return sapien.render.RenderMaterial(base_color=[*rgb, 1.0], roughness=0.8, metallic=0.0, specular=0.2)


def _box(scene: Any, name: str, half: list[float], p: list[float], rgb: RGB, collision: bool = False) -> Any:
    builder = scene.create_actor_builder()
    if collision:
        builder.add_box_collision(half_size=half)
    builder.add_box_visual(half_size=half, material=_material(rgb))
    builder.initial_pose = sapien.Pose(p=p)
    return builder.build_static(name=name)


def build_table(scene: Any, xy: tuple, top_z: float, thickness: float, rgb: RGB) -> Any:
    """The table box: x and y ranges ``xy``, its top at ``top_z``."""
    (x0, x1), (y0, y1) = xy
    half = [(x1 - x0) / 2, (y1 - y0) / 2, thickness / 2]
    return _box(scene, "table", half, [(x0 + x1) / 2, (y0 + y1) / 2, top_z - half[2]], rgb, collision=True)


def build_room(scene: Any, st: Stage) -> list[Any]:
    """The floor and the three walls of ``st``."""
    t, h = WALL_THICKNESS / 2, WALL_HEIGHT / 2
    floor = _box(scene, "floor", [FLOOR_HALF, FLOOR_HALF, 0.01], [0.0, 0.0, GROUND_Z - 0.01], st.floor_rgb)
    back = _box(scene, "wall_back", [t, SIDE_WALL_Y, h], [BACK_WALL_X - t, 0.0, h], st.wall_rgb)
    front = FLOOR_HALF / 2  # the side walls run from the back wall to behind the robot
    half_x, cx = (front - BACK_WALL_X) / 2, (front + BACK_WALL_X) / 2
    sides = [
        _box(scene, f"wall_{side}", [half_x, t, h], [cx, sign * (SIDE_WALL_Y + t), h], st.wall_rgb)
        for side, sign in (("left", 1.0), ("right", -1.0))
    ]
    return [floor, back, *sides]


def add_lighting(scene: Any, lighting: Lighting) -> None:
    scene.set_ambient_light(list(lighting.ambient))
    for direction, colour in lighting.directional:
        scene.add_directional_light(list(direction), list(colour), shadow=False)


def station_urdf(custom_dir: Path, station: str) -> Path:
    """``custom/<station>.urdf``, or, when a visual mesh it names is missing, a copy (in the temp folder)
    whose visual takes the box of the collision named ``<visual>_collision`` of the same link."""
    path = custom_dir / f"{station}.urdf"
    tree = ET.parse(path)
    root = tree.getroot()
    patched = False
    for link in root.iter("link"):
        boxes = {c.get("name"): c.find("geometry") for c in link.findall("collision")}
        for visual in link.findall("visual"):
            mesh = visual.find("geometry/mesh")
            if mesh is None or (custom_dir / mesh.get("filename", "")).exists():
                continue
            geometry = boxes.get(f"{visual.get('name')}_collision")
            if geometry is None or geometry.find("box") is None:
                raise FileNotFoundError(
                    f"{path}: visual mesh {mesh.get('filename')} missing, no box to stand in"
                )
            visual.remove(visual.find("geometry"))
            visual.append(geometry)
            ET.SubElement(visual, "material", name="stone_standin")
            patched = True
    if not patched:
        return path
    material = ET.SubElement(root, "material", name="stone_standin")
    ET.SubElement(material, "color", rgba=" ".join(f"{v:.5f}" for v in STONE_TOP_RGBA))
    out = Path(tempfile.gettempdir()) / "robovlm_simpler" / f"{station}_box_top.urdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    tree.write(out)
    return out


def with_head(qpos: list[float], robot: Any, head: tuple[float, float]) -> list[float]:
    """``qpos`` (the robot's active-joint order) with the head's pan and tilt set to ``head``."""
    names = [j.name for j in robot.active_joints]
    out = list(qpos)
    out[names.index("joint_head_pan")], out[names.index("joint_head_tilt")] = head
    return out


def drop_distractors(env: Any, actors: list, xys: list, quat: tuple, drop_z: float, settle_s: tuple) -> None:
    """SimplerEnv's distractor drop (GraspSingleInSceneEnv._initialize_actors): one at a time from
    ``drop_z`` with only z free (and the turn about z), ``settle_s[0]`` s each; then each released at rest
    with ``settle_s[1]`` s each, and ``settle_s[2]`` s more if anything still moves."""
    import torch
    from mani_skill.utils.structs.pose import Pose

    def settle(seconds: float) -> None:
        for _ in range(int(env.sim_freq * seconds)):
            env.scene.px.step()

    first, second, more = settle_s
    for actor, xy in zip(actors, xys, strict=True):
        p = torch.tensor([[xy[0], xy[1], drop_z]], dtype=torch.float32)
        actor.set_pose(Pose.create_from_pq(p, torch.tensor([quat], dtype=torch.float32)))
        body = actor._bodies[0]
        body.set_linear_velocity([0.0, 0.0, 0.0])
        body.set_angular_velocity([0.0, 0.0, 0.0])
        body.set_locked_motion_axes([True, True, False, True, True, False])
        settle(first)
    for actor in actors:
        body = actor._bodies[0]
        body.set_locked_motion_axes([False] * 6)
        body.set_linear_velocity([0.0, 0.0, 0.0])
        body.set_angular_velocity([0.0, 0.0, 0.0])
        settle(second)
    lin = sum(float(np.linalg.norm(a._bodies[0].linear_velocity)) for a in actors)
    ang = sum(float(np.linalg.norm(a._bodies[0].angular_velocity)) for a in actors)
    if lin > 1e-3 or ang > 1e-2:
        settle(more)
