"""The ManiSkill3 environment behind every SimplerEnv-style task: table, objects, robot, cameras, judge.

One class serves all tasks: ``task`` picks the objects, the layouts and the success rule, and
``appearance`` the lighting, colours, distractors and camera pose (a variant). Only the Panda arm,
primitive shapes and articulations built here are used, so nothing has to be downloaded.
Registered with ManiSkill as ``RoboVLMSimpler-v1``; users go through :class:`envs.simpler.env.SimplerEnv`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sapien
import torch
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.registration import register_env
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SimConfig

from envs.simpler import rules
from envs.simpler.objects import (
    CABINET,
    DISTRACTORS,
    OBJECTS,
    bottom_offset,
    build_cabinet,
    build_object,
    half_extents,
)
from envs.simpler.tasks import FAMILIES, ROBOT_BASE, TASKS, Layout, Placement, TaskSpec
from envs.simpler.variants import Appearance

REST_QPOS = np.array([0.0, -0.25, 0.0, -2.45, 0.0, 2.2, np.pi / 4, 0.04, 0.04])

#: Camera (eye, target) per family; the Google robot looks from its head over the arm, the Bridge
#: camera over the robot's shoulder.
CAMERAS = {
    "google_robot": ((-0.3, -0.62, 0.8), (0.02, 0.0, 0.12)),
    "bridge": ((-0.5, 0.42, 0.58), (-0.08, 0.0, 0.02)),
}


def _quat_yaw(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def _quat_mul(a: list[float], b: list[float]) -> list[float]:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return [
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ]


def camera_eye(family: str, appearance: Appearance) -> tuple[np.ndarray, np.ndarray]:
    """Eye and target of the static camera after the variant's yaw and pitch about the target."""
    eye, target = (np.array(v, dtype=float) for v in CAMERAS[family])
    d = eye - target
    yaw = np.deg2rad(appearance.camera_yaw_deg)
    d = np.array([np.cos(yaw) * d[0] - np.sin(yaw) * d[1], np.sin(yaw) * d[0] + np.cos(yaw) * d[1], d[2]])
    horizontal = np.hypot(d[0], d[1])
    elevation = np.arctan2(d[2], horizontal) - np.deg2rad(appearance.camera_pitch_deg)
    length = np.linalg.norm(d)
    scale = length * np.cos(elevation) / horizontal
    d = np.array([d[0] * scale, d[1] * scale, length * np.sin(elevation)])
    return target + d, target


@register_env("RoboVLMSimpler-v1", max_episode_steps=None)
class SimplerTableEnv(BaseEnv):
    SUPPORTED_ROBOTS = ["panda", "panda_wristcam"]
    SUPPORTED_REWARD_MODES = ("sparse", "none")

    def __init__(
        self,
        *args: Any,
        task: str = "pick_can_standing",
        appearance: Appearance | None = None,
        image_size: tuple[int, int] = (224, 224),
        wrist_camera: bool = False,
        **kwargs: Any,
    ) -> None:
        from envs.simpler.variants import appearance as appearance_of

        self.task_spec: TaskSpec = TASKS[task]
        self.family = FAMILIES[self.task_spec.family]
        self.appearance = appearance or appearance_of(self.task_spec.family, "base")
        self.image_size = image_size
        self.wrist_camera = wrist_camera
        self.layout: Layout | None = None
        self.objs: dict[str, Any] = {}
        self.distractors: list[Any] = []
        self.cabinet = None
        self._stats: dict[str, Any] = {}
        # The wrist camera is ManiSkill's Panda variant with a camera on the hand ("hand_camera").
        kwargs.setdefault("robot_uids", "panda_wristcam" if wrist_camera else "panda")
        if wrist_camera:
            width, height = image_size
            kwargs.setdefault("sensor_configs", {"hand_camera": {"width": width, "height": height}})
        super().__init__(*args, **kwargs)

    # --- configuration ----------------------------------------------------------------------------
    @property
    def _default_sim_config(self) -> SimConfig:
        return SimConfig(sim_freq=self.family.sim_hz, control_freq=self.family.control_hz)

    @property
    def _default_sensor_configs(self) -> list[CameraConfig]:
        width, height = self.image_size
        eye, target = camera_eye(self.task_spec.family, self.appearance)
        configs = [
            CameraConfig(
                "static", sapien_utils.look_at(eye=eye, target=target), width, height, np.deg2rad(55)
            )
        ]
        return configs

    @property
    def _default_human_render_camera_configs(self) -> CameraConfig:
        eye, target = camera_eye(self.task_spec.family, self.appearance)
        return CameraConfig("render", sapien_utils.look_at(eye=eye, target=target), 512, 512, np.deg2rad(55))

    # --- building the scene -----------------------------------------------------------------------
    def _load_agent(self, options: dict) -> None:
        super()._load_agent(options, sapien.Pose(p=list(ROBOT_BASE)))

    def _load_lighting(self, options: dict) -> None:
        s = self.appearance.light_scale
        self.scene.set_ambient_light([0.35 * s] * 3)
        self.scene.add_directional_light([0.4, 0.3, -1.0], [1.1 * s] * 3, shadow=False)
        self.scene.add_directional_light([-0.5, -0.4, -0.6], [0.45 * s] * 3)

    def _load_scene(self, options: dict) -> None:
        a = self.appearance

        def slab(name: str, half: list[float], centre: list[float], colour) -> Any:
            builder = self.scene.create_actor_builder()
            material = sapien.render.RenderMaterial(base_color=list(colour), roughness=0.8)
            builder.add_box_visual(half_size=half, material=material)
            builder.add_box_collision(half_size=half)
            builder.initial_pose = sapien.Pose(p=centre)
            return builder.build_static(name=name)

        self.table = slab("table", [0.7, 0.9, 0.02], [-0.15, 0.0, -0.02], a.table_color)
        slab("floor", [3.0, 3.0, 0.01], [0.0, 0.0, -0.76], a.floor_color)
        slab("background", [0.02, 3.0, 1.5], [0.9, 0.0, 0.5], a.background_color)
        self.objs = {}
        layout0 = self.task_spec.layout(0)
        for i, name in enumerate(self.task_spec.object_names):
            pose = sapien.Pose(p=[0.0, 0.0, 2.0 + 0.3 * i])
            self.objs[name] = build_object(self.scene, OBJECTS[name], name, initial_pose=pose)
        self.half = {name: half_extents(OBJECTS[name]) for name in self.objs}
        self.cabinet = None
        if layout0.cabinet is not None:
            self.cabinet = build_cabinet(self.scene, CABINET, "cabinet", sapien.Pose(p=[0.3, 0.0, 0.0]))
        self.distractors = [
            build_object(
                self.scene,
                DISTRACTORS[k % len(DISTRACTORS)],
                f"distractor_{k}",
                initial_pose=sapien.Pose(p=[0.0, 1.5 + 0.15 * k, 0.05]),
            )
            for k in range(a.n_distractors)
        ]

    # --- episodes ---------------------------------------------------------------------------------
    def _initialize_episode(self, env_idx: torch.Tensor, options: dict) -> None:
        episode = int(options.get("episode", 0))
        self.layout = layout = self.task_spec.layout(episode)
        self.episode = episode
        self.agent.reset(torch.tensor(REST_QPOS, dtype=torch.float32))
        self.agent.robot.set_pose(sapien.Pose(p=list(ROBOT_BASE)))
        for i, name in enumerate(self.objs):
            if name in layout.objects:
                self._place(self.objs[name], name, layout.objects[name])
            else:  # not in this episode: parked on the floor out of sight
                pose = [1.5, -1.0 + 0.3 * i, -0.74 + bottom_offset(OBJECTS[name])]
                self.objs[name].set_pose(
                    Pose.create_from_pq(torch.tensor([pose]), torch.tensor([[1.0, 0, 0, 0]]))
                )
        for k, actor in enumerate(self.distractors):
            x, y = layout.distractor_spots[k]
            z = bottom_offset(DISTRACTORS[k % len(DISTRACTORS)]) + 0.002
            actor.set_pose(Pose.create_from_pq(torch.tensor([[x, y, z]]), torch.tensor([[1.0, 0, 0, 0]])))
        if self.cabinet is not None:
            c = layout.cabinet
            # The cabinet's frame is its front face's middle; its body extends to +x (away).
            self.cabinet.set_pose(
                Pose.create_from_pq(torch.tensor([[c.x, c.y, 0.0]]), torch.tensor([_quat_yaw(c.yaw)]))
            )
            qpos = torch.zeros(1, len(CABINET.levels))
            for level, q in layout.drawer_q.items():
                qpos[0, CABINET.levels.index(level)] = q
            self.cabinet.set_qpos(qpos)
            self.cabinet.set_qvel(torch.zeros_like(qpos))
        self._stats = {"start": None, "grasped_ever": False, "lift_steps": 0, "steps": 0}

    def _place(self, actor: Any, name: str, p: Placement) -> None:
        q = _quat_yaw(p.yaw)
        z = bottom_offset(OBJECTS[name])
        if p.pose in ("lie_y", "lie_x"):  # a can laid down: its axis (local z) along world y or x
            turn = [0.7071068, 0.7071068, 0.0, 0.0] if p.pose == "lie_y" else [0.7071068, 0.0, 0.7071068, 0.0]
            q = _quat_mul(q, turn)
            z = float(self.half[name][0])
        actor.set_pose(Pose.create_from_pq(torch.tensor([[p.x, p.y, z + 0.002]]), torch.tensor([q])))

    # --- judging ----------------------------------------------------------------------------------
    def drawer_q(self, level: str) -> float:
        return float(self.cabinet.get_qpos()[0, CABINET.levels.index(level)])

    def drawer_link(self, level: str) -> Any:
        return self.cabinet.links_map[f"cabinet_{level}_drawer"]

    def _contact(self, a: Any, b: Any) -> float:
        return float(torch.linalg.norm(self.scene.get_pairwise_contact_forces(a, b), dim=-1)[0])

    def evaluate(self) -> dict[str, Any]:
        spec, layout, stats = self.task_spec, self.layout, self._stats
        if layout is None:
            return {"success": torch.tensor([False])}
        positions = {name: self.objs[name].pose.p[0].cpu().numpy() for name in layout.objects}
        if stats["start"] is None:
            stats["start"] = {name: p.copy() for name, p in positions.items()}
        else:
            stats["steps"] += 1
        source = self.objs.get(layout.source) if layout.source else None
        grasped = bool(self.agent.is_grasping(source)[0]) if source is not None else False
        stats["grasped_ever"] |= grasped
        info: dict[str, Any] = {"is_src_grasped": grasped, "src_grasped_ever": stats["grasped_ever"]}
        if spec.kind == "pick_can":
            lift = float(positions["coke_can"][2] - stats["start"]["coke_can"][2])
            stats["lift_steps"] = stats["lift_steps"] + 1 if lift > rules.CAN_LIFT_HELD_M else 0
            others = [self.table, *self.distractors]
            touches = any(self._contact(source, o) > 1e-3 for o in others)
            success = rules.can_picked(lift, touches, stats["lift_steps"])
            info.update(lift=lift)
        elif spec.kind == "move_near":
            moved = [
                float(np.linalg.norm(positions[n][:2] - stats["start"][n][:2]))
                for n in layout.objects
                if n != layout.source
            ]
            upright = [
                rules.is_upright(self._z_axis(self.objs[n])) for n in layout.objects if n.endswith("_can")
            ]
            success = rules.moved_near(
                positions[layout.source][:2], positions[layout.target][:2], moved, upright
            )
            info.update(
                distance=float(np.linalg.norm(positions[layout.source][:2] - positions[layout.target][:2]))
            )
        elif spec.kind in ("open_drawer", "close_drawer"):
            q = self.drawer_q(spec.params["level"])
            success = rules.drawer_open(q) if spec.kind == "open_drawer" else rules.drawer_closed(q)
            info.update(drawer_q=q)
        elif spec.kind == "apple_drawer":
            success = (not grasped) and rules.inside(
                self._in_tray("top", positions["apple"]), _TRAY_INNER, above=0.05
            )
            info.update(drawer_q=self.drawer_q("top"))
        else:
            target = self.objs[layout.target]
            if spec.kind == "put_on":
                src_half = rules.world_half_extents(self.half[layout.source], self._rotation(source))
                tgt_half = rules.world_half_extents(self.half[layout.target], self._rotation(target))
                force = self._contact(source, target)
                success = (not grasped) and rules.on_top(
                    positions[layout.source], src_half, positions[layout.target], tgt_half, force
                )
            else:
                local = self._rotation(target).T @ (positions[layout.source] - positions[layout.target])
                success = (not grasped) and rules.inside(local, _BASKET_INNER, above=0.03)
        info["success"] = bool(success)
        return {k: torch.tensor([v]) for k, v in info.items()}

    def _rotation(self, actor: Any) -> np.ndarray:
        w, x, y, z = actor.pose.q[0].cpu().numpy()
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    def _z_axis(self, actor: Any) -> np.ndarray:
        return self._rotation(actor)[:, 2]

    def _in_tray(self, level: str, point: np.ndarray) -> np.ndarray:
        """A world point in the frame of a drawer's inner tray (centred on it)."""
        link = self.drawer_link(level)
        local = self._rotation(link).T @ (point - link.pose.p[0].cpu().numpy())
        tray_centre = np.array([CABINET.depth / 2 - CABINET.wall, 0.0, 0.0])
        return local - tray_centre

    def _get_obs_extra(self, info: dict) -> dict:
        return {"tcp_pose": self.agent.tcp.pose.raw_pose}

    def compute_sparse_reward(self, obs: Any, action: torch.Tensor, info: dict) -> torch.Tensor:
        return info["success"].float()


_TRAY_INNER = CABINET.tray_inner()
_BASKET_INNER = (0.09, 0.075, 0.035)
