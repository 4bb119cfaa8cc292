"""SimplerEnv's Bridge tasks on ManiSkill3's WidowX 250 S, with SimplerEnv's scanned objects and overlays.

Registered with ManiSkill as ``RoboVLMSimplerBridge-v1``; users go through
:class:`envs.simpler.real_env.SimplerRealEnv`. Every number (camera, robot base pose and joints,
layouts, lighting, rates, rule thresholds) comes from :mod:`envs.simpler.reference`; the objects are
SimplerEnv's own meshes with the scales and densities of their ``info_*.json`` (``SIMPLER_ASSET_DIR``).

What differs from SimplerEnv, and why: its stage meshes (``bridge_table_1_v1/v2.glb``) are not
available, so the table is a box whose top is SimplerEnv's table height (0.87 m). In visual matching
the stage is background and the real image replaces it, so only its collision matters.

Episodes follow SimplerEnv: the robot is moved away, the objects are dropped from 0.5 m above the
table with their tilt locked, settle for 0.5 s, are released and settle 0.5 s more (1.5 s more if
still moving); then the robot is put at its base pose and joints. The rules read the objects'
centre-of-mass poses and the bounding boxes of ``info_*.json`` turned by the settled orientation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sapien
import torch
from mani_skill.agents.registration import register_agent
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.envs.tasks.digital_twins.bridge_dataset_eval.base_env import WidowX250SBridgeDatasetFlatTable
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.registration import register_env
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SimConfig

from envs.simpler import rules
from envs.simpler.overlay import composite, load_overlay
from envs.simpler.reference import layout_reference, reference, scene_reference, task_reference
from envs.simpler.scanned import ScannedModels

CAMERA = "3rd_view_camera"
FAR_AWAY = [-10.0, 0.0, 0.0]  # where SimplerEnv parks the robot while the objects settle


def drop_and_settle(
    env: BaseEnv, objs: dict[str, Any], placements: Any, drop_z: float, settle_s: Any
) -> None:
    """SimplerEnv's object placement: each ``(name, xy, quat)`` of ``placements`` is dropped from
    ``drop_z`` with roll and pitch locked, settles for ``settle_s[0]`` s, is released at rest and
    settles for ``settle_s[1]`` s, and for ``settle_s[2]`` s more if anything still moves."""

    def settle(seconds: float) -> None:
        for _ in range(int(env.sim_freq * seconds)):
            env.scene.px.step()

    for name, xy, q in placements:
        p = torch.tensor([[xy[0], xy[1], drop_z]], dtype=torch.float32)
        objs[name].set_pose(Pose.create_from_pq(p, torch.tensor([q], dtype=torch.float32)))
        objs[name]._bodies[0].set_locked_motion_axes([False, False, False, True, True, False])
    first, second, more = settle_s
    settle(first)
    for actor in objs.values():
        body = actor._bodies[0]
        body.set_locked_motion_axes([False] * 6)
        body.set_linear_velocity([0.0, 0.0, 0.0])
        body.set_angular_velocity([0.0, 0.0, 0.0])
    settle(second)
    lin = sum(float(np.linalg.norm(a._bodies[0].linear_velocity)) for a in objs.values())
    ang = sum(float(np.linalg.norm(a._bodies[0].angular_velocity)) for a in objs.values())
    if lin > 1e-3 or ang > 1e-2:
        settle(more)


def scaled_intrinsic(intrinsic: list, calibrated: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The calibrated intrinsic matrix for an image of ``size`` (w, h): the same view resized."""
    k = np.array(intrinsic, dtype=np.float64)
    sx, sy = size[0] / calibrated[0], size[1] / calibrated[1]
    k[0, :] *= sx
    k[1, :] *= sy
    return k


@register_agent()
class SimplerWidowX(WidowX250SBridgeDatasetFlatTable):
    """ManiSkill3's WidowX 250 S with the controllers ManiSkill3 tunes for the Bridge digital twins,
    SimplerEnv's finger material (friction 2, patch radius 1 cm) and no camera of its own (the env
    mounts SimplerEnv's camera on ``base_link``)."""

    uid = "robovlm_simpler_widowx"

    @property
    def urdf_config(self) -> dict:  # type: ignore[override]
        family = reference()["families"]["bridge"]
        friction, radius = family["finger_friction"], family["finger_patch_radius"]
        finger = {"material": "gripper", "patch_radius": radius, "min_patch_radius": radius}
        return {
            "_materials": {
                "gripper": {"static_friction": friction, "dynamic_friction": friction, "restitution": 0.0}
            },
            "link": {"left_finger_link": dict(finger), "right_finger_link": dict(finger)},
        }

    @property
    def _sensor_configs(self) -> list:
        return []


@register_env("RoboVLMSimplerBridge-v1", max_episode_steps=None)
class SimplerBridgeScene(BaseEnv):
    SUPPORTED_ROBOTS = [SimplerWidowX.uid]
    SUPPORTED_REWARD_MODES = ("sparse", "none")

    def __init__(
        self,
        *args: Any,
        task: str = "put_carrot_on_plate",
        image_size: tuple[int, int] = (640, 480),
        overlay: bool = True,
        **kwargs: Any,
    ) -> None:
        self.task_name = task
        self.task_ref = task_reference(task)
        self.scene_ref = scene_reference(self.task_ref["scene"])
        self.family_ref = reference()["families"]["bridge"]
        self.image_size = tuple(image_size)
        self.use_overlay = overlay
        self.models = ScannedModels(self.task_ref["model_json"])
        names = [self.task_ref["source"], self.task_ref["target"]]
        self.models.require(names + list(self.scene_ref["fixed_objects"]), overlay=self.scene_ref["overlay"])
        self.object_names: tuple[str, ...] = tuple(names)
        self.objs: dict[str, Any] = {}
        self.fixed: dict[str, Any] = {}
        self._overlay_image: np.ndarray | None = None
        self._keep_ids: torch.Tensor | None = None
        self._stats: dict[str, Any] = {}
        kwargs["robot_uids"] = SimplerWidowX.uid
        super().__init__(*args, **kwargs)

    # --- configuration ----------------------------------------------------------------------------
    @property
    def _default_sim_config(self) -> SimConfig:
        f = self.family_ref
        return SimConfig(sim_freq=f["sim_hz"], control_freq=f["control_hz"])

    def _camera_config(self, uid: str) -> CameraConfig:
        cam = self.scene_ref["camera"]
        calibrated = (cam["width"], cam["height"])
        return CameraConfig(
            uid,
            pose=sapien.Pose(p=cam["p"], q=cam["q"]),
            width=self.image_size[0],
            height=self.image_size[1],
            intrinsic=scaled_intrinsic(cam["intrinsic"], calibrated, self.image_size),
            near=0.01,
            far=10.0,
            mount=self.agent.robot.links_map[cam["mount"]],
        )

    @property
    def _default_sensor_configs(self) -> list[CameraConfig]:
        return [self._camera_config(CAMERA)]

    @property
    def _default_human_render_camera_configs(self) -> CameraConfig:
        return self._camera_config("render_camera")

    # --- building the scene -----------------------------------------------------------------------
    def _load_agent(self, options: dict) -> None:
        base = self.scene_ref["robot_base"]
        super()._load_agent(options, sapien.Pose(p=base["p"], q=base["q"]))

    def _load_lighting(self, options: dict) -> None:
        light = self.scene_ref["lighting"]
        self.scene.set_ambient_light(light["ambient"])
        for direction, colour in light["directional"]:
            self.scene.add_directional_light(direction, colour, shadow=False)

    def _load_scene(self, options: dict) -> None:
        f = self.family_ref
        for obj in self.agent.robot._objs:
            sapien_utils.set_articulation_render_material(
                obj, specular=f["robot_specular"], roughness=f["robot_roughness"]
            )
        height = self.scene_ref["table_height"]
        builder = self.scene.create_actor_builder()
        # The table ends in front of the robot's base (x 0.127..0.147), which stands on it.
        half = [0.4, 0.6, 0.02]
        centre = [-0.3, 0.0, height - half[2]]
        builder.add_box_collision(half_size=half)
        material = sapien.render.RenderMaterial(base_color=[0.55, 0.55, 0.55, 1.0], roughness=0.8)
        builder.add_box_visual(half_size=half, material=material)
        builder.initial_pose = sapien.Pose(p=centre)
        self.table = builder.build_static(name="table")
        friction = f["object_friction"]
        self.fixed = {}
        for name, pose in self.scene_ref["fixed_objects"].items():
            self.fixed[name] = self.models.build(
                self.scene, name, friction, kinematic=True, initial_pose=sapien.Pose(p=pose["p"], q=pose["q"])
            )
        self.objs = {}
        for i, name in enumerate(self.object_names):
            actor = self.models.build(
                self.scene, name, friction, initial_pose=sapien.Pose(p=[0.0, 2.0 + 0.3 * i, height + 0.5])
            )
            for body in actor._bodies:
                body.set_linear_damping(f["object_damping"])
                body.set_angular_damping(f["object_damping"])
            self.objs[name] = actor

    def _after_reconfigure(self, options: dict) -> None:
        super()._after_reconfigure(options)
        overlaid = set(self.task_ref["always_overlay"])
        ids = [link.per_scene_id for link in self.agent.robot.get_links()]
        ids += [actor.per_scene_id for name, actor in self.objs.items() if name not in overlaid]
        self._keep_ids = torch.unique(torch.cat(ids))
        if self.use_overlay and self._overlay_image is None:
            path = self.models.root / self.scene_ref["overlay"]
            self._overlay_image = load_overlay(path, self.image_size)
        body = {name: actor._bodies[0] for name, actor in self.objs.items()}
        self._cmass = {name: b.cmass_local_pose for name, b in body.items()}

    # --- episodes ---------------------------------------------------------------------------------
    def _initialize_episode(self, env_idx: torch.Tensor, options: dict) -> None:
        episode = int(options.get("episode", 0))
        self.episode = episode
        f, height = self.family_ref, self.scene_ref["table_height"]
        xys, quats = layout_reference(self.task_name, episode)
        self.agent.robot.set_pose(sapien.Pose(p=FAR_AWAY))
        placements = zip(self.object_names, xys, quats, strict=True)
        drop_and_settle(self, self.objs, placements, height + f["drop_height"], f["settle_s"])
        base = self.scene_ref["robot_base"]
        self.agent.reset(torch.tensor(self.scene_ref["init_qpos"], dtype=torch.float32))
        self.agent.robot.set_pose(sapien.Pose(p=base["p"], q=base["q"]))
        # SimplerEnv's bounding boxes: the model's box size turned by the settled orientation, halved.
        half = {n: self._rotation(self.objs[n]) @ self.models.bbox_size(n) / 2 for n in self.object_names}
        self._stats = {"half": half, "grasped_ever": False}

    # --- judging ----------------------------------------------------------------------------------
    def _rotation(self, actor: Any) -> np.ndarray:
        w, x, y, z = actor.pose.q[0].cpu().numpy().astype(np.float64)
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    def com_position(self, name: str) -> np.ndarray:
        """World position of an object's centre of mass (the point SimplerEnv's rules read)."""
        pose = self.objs[name].pose.sp * self._cmass[name]
        return np.asarray(pose.p, dtype=np.float64)

    def _touch_force(self, a: Any, b: Any) -> float:
        return float(torch.linalg.norm(self.scene.get_pairwise_contact_forces(a, b), dim=-1)[0])

    def evaluate(self) -> dict[str, Any]:
        if not self._stats:
            return {"success": torch.tensor([False])}
        f = self.family_ref
        src, tgt = self.object_names
        source = self.objs[src]
        # SimplerEnv thresholds are impulses per physics step; ManiSkill reports forces (impulse / dt).
        grasp_force = f["grasp_min_impulse"] * self.sim_freq
        grasped = bool(
            self.agent.is_grasping(source, min_force=grasp_force, max_angle=f["grasp_max_angle_deg"])[0]
        )
        self._stats["grasped_ever"] |= grasped
        touches_other = False
        if self.task_ref["require_no_other_contact"]:
            others = [self.table, *self.fixed.values()]
            others += [a for n, a in self.objs.items() if n not in (src, tgt)]
            limit = f["contact_min_impulse"] * self.sim_freq
            touches_other = any(self._touch_force(source, o) > limit for o in others)
        offset = self.com_position(src) - self.com_position(tgt)
        on_target = rules.bridge_on_target(
            offset,
            self._stats["half"][src],
            self._stats["half"][tgt],
            touches_other,
            z_margin=self.task_ref["z_margin"],
            xy_margin=f["on_xy_margin"],
        )
        info = {
            "success": on_target,
            "src_on_target": on_target,
            "is_src_grasped": grasped,
            "src_grasped_ever": self._stats["grasped_ever"],
        }
        return {k: torch.tensor([v]) for k, v in info.items()}

    # --- observations -----------------------------------------------------------------------------
    def _get_obs_sensor_data(self, apply_texture_transforms: bool = True) -> dict:
        obs = super()._get_obs_sensor_data(apply_texture_transforms)
        if self.use_overlay and CAMERA in obs and "segmentation" in obs[CAMERA]:
            data = obs[CAMERA]
            data["rgb"] = composite(data["rgb"], data["segmentation"], self._keep_ids, self._overlay_image)
        return obs

    def _get_obs_extra(self, info: dict) -> dict:
        return {}

    def compute_sparse_reward(self, obs: Any, action: torch.Tensor, info: dict) -> torch.Tensor:
        return info["success"].float()
