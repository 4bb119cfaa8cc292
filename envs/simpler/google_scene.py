"""SimplerEnv's Google-robot (RT-1) tasks on ManiSkill3's Google robot, with SimplerEnv's objects and overlays.

Registered with ManiSkill as ``RoboVLMSimplerGoogle-v1``; users go through
:class:`envs.simpler.real_env.SimplerRealEnv`. Every number (camera, robot base pose and joints,
controllers, layouts, lighting, rates, rule thresholds) comes from :mod:`envs.simpler.reference`;
the episode layouts from :mod:`envs.simpler.google_layout`, the rules from
:mod:`envs.simpler.google_rules`, the robot and its controllers from :mod:`envs.simpler.google_agent`.

Objects are SimplerEnv's meshes (``SIMPLER_ASSET_DIR/custom/models``) with the scales and densities of
their ``info_*.json`` (and SimplerEnv's special densities for move near); the drawer tasks load
SimplerEnv's drawer station ``custom/mk_station_recolor.urdf``.

What differs from SimplerEnv, and why:

* its stage mesh ``google_pick_coke_can_1_v4.glb`` is not available, so the coke-can and move-near
  table is a box whose top is SimplerEnv's table height (0.87 m) and whose extent
  (:data:`TABLE_XY`) was read off the real overlay ``google_coke_can_real_eval_1.png`` by projecting
  candidate corners with SimplerEnv's camera at the coke-can base pose. In visual matching the real
  image covers it, so only its collision matters;
* the drawer tasks render with the default shader (SimplerEnv uses ray tracing there, ``shader_dir=rt``,
  which a software Vulkan device cannot afford);
* ManiSkill3 balances the robot's passive forces by turning its links' gravity off (SimplerEnv's
  ManiSkill2 adds the gravity and Coriolis compensation as joint forces).

Episodes follow SimplerEnv: the robot is moved away, objects are dropped from 0.5 m above the
table with their tilt locked, settle for 0.5 s, are released and settle 0.5 s more (1.5 s more if
still moving); then the robot is put at its base pose and joints, and the drawers set.
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
from mani_skill.utils.structs.types import DefaultMaterialsConfig, SceneConfig, SimConfig

from envs.simpler import google_rules, google_stage
from envs.simpler.assets import require_simpler_files
from envs.simpler.bridge_scene import drop_and_settle, scaled_intrinsic
from envs.simpler.google_agent import agent_uid, family, init_qpos
from envs.simpler.google_layout import GoogleEpisode, instruction
from envs.simpler.google_variant_layout import distractor_xys, variant_layout
from envs.simpler.overlay import composite, load_overlay
from envs.simpler.real_variants import HEAD_BASE, Stage, stage
from envs.simpler.reference import scene_reference, task_reference
from envs.simpler.scanned import ScannedModels

CAMERA = "overhead_camera"
FAR_AWAY = [-10.0, 0.0, 0.0]  # where SimplerEnv parks the robot while the objects settle
#: The table top's x and y range (metres, SimplerEnv's world), estimated from the real overlay (see above).
TABLE_XY = ((-0.70, -0.025), (-0.1075, 0.5075))
TABLE_THICKNESS = 0.04
DRAWERS = ("top", "middle", "bottom")
TABLE_KINDS = ("pick_can", "move_near")


def _rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-12 or nb < 1e-12:
        return float(np.pi / 2)
    return float(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)))


@register_env("RoboVLMSimplerGoogle-v1", max_episode_steps=None)
class SimplerGoogleScene(BaseEnv):
    SUPPORTED_ROBOTS = [agent_uid(v) for v in family()["urdf_versions"]]
    SUPPORTED_REWARD_MODES = ("sparse", "none")

    def __init__(
        self,
        *args: Any,
        task: str = "pick_can_standing",
        image_size: tuple[int, int] = (640, 512),
        variant: str = "base",
        **kwargs: Any,
    ) -> None:
        self.task_name = task
        self.variant = variant
        self.layout: GoogleEpisode = variant_layout(task, 0, variant)
        # ``base`` is visual matching (the real image); the others render an equivalent stage.
        self.stage: Stage | None = None if variant == "base" else stage(task, variant)
        self.task_ref = task_reference(task)
        self.scene_ref = scene_reference(self.layout.scene)
        self.family_ref = family()
        self.kind = self.layout.kind
        self.image_size = tuple(image_size)
        self.use_overlay = variant == "base"
        self._check_assets()
        self.objs: dict[str, Any] = {}
        self.distractors: dict[str, Any] = {}
        self.cabinet: Any = None
        self._overlays: dict[str, np.ndarray] = {}
        self._keep_ids: torch.Tensor | None = None
        self._stats: dict[str, Any] = {}
        self.subtask = 0
        kwargs["robot_uids"] = agent_uid(self.layout.urdf_version)
        super().__init__(*args, **kwargs)

    def _check_assets(self) -> None:
        """Every file any episode of the task loads, checked before anything is built (one line if missing)."""
        files = (
            list(self.scene_ref.get("overlays") or [self.scene_ref["overlay"]]) if self.use_overlay else []
        )
        if "cabinet" in self.scene_ref:
            files.append(self._cabinet_file())
        require_simpler_files(files)
        self.models: ScannedModels | None = None
        if "model_json" in self.task_ref:
            self.models = ScannedModels(self.layout.model_json or self.task_ref["model_json"])
            if self.kind == "move_near":
                n = (
                    len(self.task_ref["triplets"])
                    * len(self.task_ref["xy_configs"])
                    * len(self.task_ref["pairs"])
                )
                models = {m for i in range(n) for m in variant_layout(self.task_name, i, self.variant).models}
            else:
                models = set(self.layout.models)
            self.models.require(sorted(models | set(self.stage.distractors if self.stage else ())))

    def _cabinet_file(self) -> str:
        """The cabinet URDF relative to SIMPLER_ASSET_DIR: visual matching's, or the variant's station."""
        if self.stage is None:
            return self.scene_ref["cabinet"]["urdf"]
        return f"custom/{self.stage.station}.urdf"

    @property
    def object_names(self) -> tuple[str, ...]:
        """The task objects of the current episode, in SimplerEnv's order."""
        return self.layout.models

    @property
    def instruction(self) -> str:
        return instruction(self.layout, self.subtask)

    # --- configuration ----------------------------------------------------------------------------
    @property
    def _default_sim_config(self) -> SimConfig:
        f = self.family_ref
        friction = f["default_friction"]
        return SimConfig(
            sim_freq=f["sim_hz"],
            control_freq=f["control_hz"],
            scene_config=SceneConfig(
                contact_offset=self.scene_ref["contact_offset"],
                solver_position_iterations=f["solver_iterations"],
                solver_velocity_iterations=f["solver_velocity_iterations"],
                enable_pcm=f["enable_pcm"],
                enable_tgs=True,
            ),
            default_materials_config=DefaultMaterialsConfig(friction, friction, 0.0),
        )

    def _camera_config(self, uid: str) -> CameraConfig:
        cam = self.family_ref["camera"]
        return CameraConfig(
            uid,
            pose=sapien.Pose(p=cam["p"], q=cam["q"]),
            width=self.image_size[0],
            height=self.image_size[1],
            intrinsic=scaled_intrinsic(cam["intrinsic"], (cam["width"], cam["height"]), self.image_size),
            near=cam["near"],
            far=cam["far"],
            mount=self.agent.robot.links_map[cam["mount"]],
        )

    @property
    def _default_sensor_configs(self) -> list[CameraConfig]:
        return [self._camera_config(CAMERA)]

    @property
    def _default_human_render_camera_configs(self) -> CameraConfig:
        return self._camera_config("render_camera")

    # --- building the scene -----------------------------------------------------------------------
    def _base_pose(self) -> sapien.Pose:
        x, y = self.layout.robot_xy
        return sapien.Pose(p=[x, y, self.family_ref["base_height"]], q=list(self.layout.robot_q))

    def _load_agent(self, options: dict) -> None:
        # The robot's URDF depends on the episode, so the layout is chosen here, before anything is built.
        self.layout = variant_layout(self.task_name, int(options.get("episode", 0)), self.variant)
        self.robot_uids = agent_uid(self.layout.urdf_version)
        super()._load_agent(options, self._base_pose())

    def _load_lighting(self, options: dict) -> None:
        if self.stage is not None:
            google_stage.add_lighting(self.scene, self.stage.lighting)
            return
        light = self.scene_ref["lighting"]
        self.scene.set_ambient_light(light["ambient"])
        for direction, colour in light["directional"]:
            self.scene.add_directional_light(direction, colour, shadow=False)

    def _load_scene(self, options: dict) -> None:
        f = self.family_ref
        if self.scene_ref["robot_material"]:
            for obj in self.agent.robot._objs:
                sapien_utils.set_articulation_render_material(
                    obj, specular=f["robot_specular"], roughness=f["robot_roughness"]
                )
        if self.kind in TABLE_KINDS:
            rgb = self.stage.table_rgb if self.stage else (0.6, 0.58, 0.55)
            self.table = google_stage.build_table(
                self.scene, TABLE_XY, f["table_height"], TABLE_THICKNESS, rgb
            )
        self.room = google_stage.build_room(self.scene, self.stage) if self.stage else []
        self.cabinet = None
        if "cabinet" in self.scene_ref:
            self._load_cabinet()
        self.objs = {}
        for i, name in enumerate(self.layout.models):
            actor = self.models.build(
                self.scene,
                name,
                f["object_friction"],
                initial_pose=sapien.Pose(p=[0.0, 2.0 + 0.3 * i, f["table_height"] + 0.5]),
            )
            self._tune_object(name, actor)
            self.objs[name] = actor
        self.distractors = {}
        for i, name in enumerate(self.stage.distractors if self.stage else ()):
            pose = sapien.Pose(p=[0.0, -2.0 - 0.3 * i, f["table_height"] + 0.5])
            actor = self.models.build(self.scene, name, f["object_friction"], initial_pose=pose)
            self._tune_object(name, actor)
            self.distractors[name] = actor

    def _load_cabinet(self) -> None:
        c = self.scene_ref["cabinet"]
        loader = self.scene.create_urdf_loader()
        loader.fix_root_link = True
        root = require_simpler_files([self._cabinet_file()])
        urdf = (
            google_stage.station_urdf(root / "custom", self.stage.station) if self.stage else root / c["urdf"]
        )
        builder = loader.parse(str(urdf))["articulation_builders"][0]
        builder.initial_pose = sapien.Pose(p=c["p"], q=c["q"])
        self.cabinet = builder.build(name="cabinet")
        for joint in self.cabinet.active_joints:
            joint.set_friction(c["joint_friction"])
            joint.set_drive_properties(stiffness=0.0, damping=c["joint_damping"])
        names = [j.name for j in self.cabinet.active_joints]
        self._drawer_index = {d: names.index(f"{d}_drawer_joint") for d in DRAWERS}

    def _tune_object(self, name: str, actor: Any) -> None:
        """SimplerEnv's damping; move near's special densities and matte materials."""
        damping = self.family_ref["object_damping"]
        body = actor._bodies[0]
        body.set_linear_damping(damping)
        body.set_angular_damping(damping)
        if self.kind != "move_near":
            return
        special = dict(self.layout.densities or self.task_ref["densities"])
        if name in special:
            ratio = special[name] / float(self.models.info(name).get("density", 1000))
            body.set_mass(body.mass * ratio)
            body.set_inertia(np.asarray(body.inertia) * ratio)
        if self.stage is not None:  # MoveNearGoogleInScene-v0 keeps the models' own materials
            return
        rough = self.task_ref["roughness"]
        for component in actor._objs[0].components:
            if isinstance(component, sapien.render.RenderBodyComponent):
                for shape in component.render_shapes:
                    for part in shape.parts:
                        part.material.set_roughness(rough)
                        part.material.set_metallic(0.0)
                        part.material.set_specular(0.0)

    def _after_reconfigure(self, options: dict) -> None:
        super()._after_reconfigure(options)
        ids = [link.per_scene_id for link in self.agent.robot.get_links()]
        ids += [actor.per_scene_id for actor in [*self.objs.values(), *self.distractors.values()]]
        if self.cabinet is not None:
            ids += [link.per_scene_id for link in self.cabinet.get_links()]
        self._keep_ids = torch.unique(torch.cat(ids))
        if self.use_overlay and self.layout.overlay not in self._overlays:
            root = require_simpler_files([self.layout.overlay])
            self._overlays[self.layout.overlay] = load_overlay(root / self.layout.overlay, self.image_size)
        self._cmass = {name: a._bodies[0].cmass_local_pose for name, a in self.objs.items()}
        self._links = {n: self.agent.robot.links_map[n]._objs[0].entity for n in self._finger_links()}
        self._robot_entities = {link._objs[0].entity for link in self.agent.robot.get_links()}

    @staticmethod
    def _finger_links() -> tuple[str, ...]:
        return tuple(f"link_finger{part}_{side}" for side in ("left", "right") for part in ("", "_tip"))

    @property
    def overlay_image(self) -> np.ndarray | None:
        return self._overlays.get(self.layout.overlay)

    # --- episodes ---------------------------------------------------------------------------------
    def _drop_objects(self) -> None:
        f, height = self.family_ref, self.family_ref["table_height"]
        placements = zip(self.layout.models, self.layout.xys, self.layout.quats, strict=True)
        drop_and_settle(self, self.objs, placements, height + f["drop_height"], f["settle_s"])

    def _initialize_episode(self, env_idx: torch.Tensor, options: dict) -> None:
        episode = int(options.get("episode", 0))
        wanted = variant_layout(self.task_name, episode, self.variant)
        if (wanted.models, wanted.urdf_version) != (self.layout.models, self.layout.urdf_version):
            raise ValueError(
                f"episode {episode} of {self.task_name} needs other objects or another robot URDF than the "
                "built scene: reset it with options={'episode': ..., 'reconfigure': True}"
            )
        self.layout, self.episode = wanted, episode
        self.agent.robot.set_pose(sapien.Pose(p=FAR_AWAY))
        if self.cabinet is not None:
            self.cabinet.set_qpos(torch.zeros(1, len(self.cabinet.active_joints)))
        if self.objs:
            self._drop_objects()
        if self.distractors:
            f = self.family_ref
            xys = distractor_xys(self.task_name, episode, self.variant, wanted.xys[0], len(self.distractors))
            drop_z = f["table_height"] + f["drop_height"]
            actors = list(self.distractors.values())
            google_stage.drop_distractors(self, actors, xys, wanted.quats[0], drop_z, f["settle_s"])
        head = self.stage.head if self.stage else HEAD_BASE
        q = google_stage.with_head(init_qpos(self.agent.robot), self.agent.robot, head)
        self.agent.reset(torch.tensor([q], dtype=torch.float32))
        self.agent.robot.set_pose(self._base_pose())
        if self.cabinet is not None and self.layout.drawer is not None:
            q = torch.zeros(1, len(self.cabinet.active_joints))
            q[0, self._drawer_index[self.layout.drawer]] = self.layout.start_q
            self.cabinet.set_qpos(q)
            self.cabinet.set_qvel(torch.zeros_like(q))
        settled = {n: a.pose.raw_pose[0].cpu().numpy().astype(np.float64) for n, a in self.objs.items()}
        self.subtask = 0
        self._stats = {"settled": settled, "contact_steps": 0}
        if self.kind == "pick_can":
            self._stats["judge"] = google_rules.PickCanJudge(
                self.task_ref["lift_m"], self.task_ref["lift_steps"]
            )

    # --- judging ----------------------------------------------------------------------------------
    def com_position(self, name: str) -> np.ndarray:
        pose = self.objs[name].pose.sp * self._cmass[name]
        return np.asarray(pose.p, dtype=np.float64)

    def drawer_q(self, drawer: str) -> float:
        return float(self.cabinet.get_qpos()[0, self._drawer_index[drawer]])

    def _impulses(self, contacts: list, entity: Any) -> dict[Any, np.ndarray]:
        """Total contact impulse on ``entity`` from each other entity it touches."""
        out: dict[Any, np.ndarray] = {}
        for contact in contacts:
            e0, e1 = contact.bodies[0].entity, contact.bodies[1].entity
            if entity not in (e0, e1):
                continue
            impulse = (
                np.sum([point.impulse for point in contact.points], axis=0) if contact.points else np.zeros(3)
            )
            other, sign = (e1, 1.0) if e0 is entity else (e0, -1.0)
            out[other] = out.get(other, np.zeros(3)) + sign * impulse
        return out

    def is_grasping(self, name: str, contacts: list) -> bool:
        """SimplerEnv's grasp test: both fingers (link or tip) push on the object, within the
        maximum angle of their opening direction, with at least the minimum impulse."""
        f = self.family_ref
        on_object = self._impulses(contacts, self.objs[name]._objs[0])
        flags = []
        for side in ("left", "right"):
            norms, angles = [], []
            for part in ("_tip", ""):
                link = self._links[f"link_finger{part}_{side}"]
                impulse = -on_object.get(link, np.zeros(3))  # the impulse on the finger
                opening = link.pose.to_transformation_matrix()[:3, 1]
                norms.append(float(np.linalg.norm(impulse)))
                angles.append(_angle(opening, impulse))
            flags.append(
                max(norms) >= f["grasp_min_impulse"] and np.rad2deg(min(angles)) <= f["grasp_max_angle_deg"]
            )
        return all(flags)

    def evaluate(self) -> dict[str, Any]:
        if not self._stats:
            return {"success": torch.tensor([False])}
        info: dict[str, Any]
        if self.kind == "pick_can":
            info = self._evaluate_pick()
        elif self.kind == "move_near":
            info = self._evaluate_move_near()
        elif self.kind in ("open_drawer", "close_drawer"):
            q = self.drawer_q(self.layout.drawer)
            info = {"success": google_rules.drawer(self.kind, q, self.task_ref["success_q"]), "drawer_q": q}
        else:
            info = self._evaluate_apple()
        return {k: torch.tensor([v]) for k, v in info.items()}

    def _evaluate_pick(self) -> dict[str, Any]:
        name = self.layout.models[0]
        contacts = self.scene.px.get_contacts()
        grasped = self.is_grasping(name, contacts)
        limit = self.family_ref["contact_min_impulse"]
        touching = self._impulses(contacts, self.objs[name]._objs[0])
        other = any(e not in self._robot_entities and np.linalg.norm(i) > limit for e, i in touching.items())
        gain = float(self.objs[name].pose.p[0, 2]) - self._stats["settled"][name][2]
        return self._stats["judge"].update(grasped, other, gain)

    def _evaluate_move_near(self) -> dict[str, Any]:
        t, names = self.task_ref, self.layout.models
        settled = np.array([self._stats["settled"][n][:3] for n in names])
        now = np.array([self.objs[n].pose.raw_pose[0, :3].cpu().numpy() for n in names], dtype=np.float64)
        src, tgt = names[self.layout.source], names[self.layout.target]
        boxes = {n: _rotation(self._stats["settled"][n][3:]) @ self.models.bbox_size(n) for n in (src, tgt)}
        return google_rules.move_near(
            settled,
            now,
            self.layout.source,
            self.layout.target,
            self.com_position(src),
            self.com_position(tgt),
            boxes[src],
            boxes[tgt],
            knocked_m=t["knocked_m"],
            fell_m=t["fell_m"],
            moved_m=t["moved_m"],
            near_margin_m=t["near_margin_m"],
            closest_margin_m=t["closest_margin_m"],
        )

    def _evaluate_apple(self) -> dict[str, Any]:
        t = self.task_ref
        # SimplerEnv switches to placing before the step after ``switch_step`` steps.
        if self.elapsed_steps[0] > t["switch_step"]:
            self.subtask = 1
        q = self.drawer_q(self.layout.drawer)
        link = self.cabinet.links_map[f"{self.layout.drawer}_drawer"]._objs[0]
        floor = link.collision_shapes[t["drawer_floor_shape"]]
        apple = self.objs[self.layout.models[0]]._objs[0]
        limit = self.family_ref["contact_min_impulse"]
        impulse = np.zeros(3)
        for contact in self.scene.px.get_contacts():
            bodies = (contact.bodies[0].entity, contact.bodies[1].entity)
            if apple in bodies and floor in contact.shapes:
                sign = 1.0 if bodies[0] is apple else -1.0
                impulse += sign * np.sum([p.impulse for p in contact.points], axis=0)
        self._stats["contact_steps"] += int(np.linalg.norm(impulse) > limit)
        success = google_rules.apple_in_drawer(self.subtask, q, t["open_q"], self._stats["contact_steps"])
        return {"success": success, "drawer_q": q, "subtask": self.subtask}

    # --- observations -----------------------------------------------------------------------------
    def robot_obs(self, closedness: float) -> np.ndarray:
        """16 values: TCP pose (7), mean finger joint (rad, 0 open), the 7 arm joints, gripper target."""
        robot = self.agent.robot
        qpos = dict(
            zip([j.name for j in robot.active_joints], robot.get_qpos()[0].cpu().numpy(), strict=True)
        )
        arm = [qpos[n] for n in self.family_ref["arm_joints"][:7]]
        fingers = float(np.mean([qpos[n] for n in self.family_ref["gripper_joints"]]))
        tcp = self.agent.tcp.pose.raw_pose[0].cpu().numpy()
        return np.concatenate([tcp, [fingers], arm, [closedness]]).astype(np.float32)

    def scene_obs(self) -> np.ndarray:
        """Each task object's pose (position, quaternion w x y z), then the cabinet's pose and its
        top, middle, bottom drawer joints (zeros without a cabinet)."""
        parts = [self.objs[n].pose.raw_pose[0].cpu().numpy() for n in self.layout.models]
        if self.cabinet is not None:
            q = self.cabinet.get_qpos()[0].cpu().numpy()
            parts += [
                self.cabinet.pose.raw_pose[0].cpu().numpy(),
                [q[self._drawer_index[d]] for d in DRAWERS],
            ]
        else:
            parts.append(np.zeros(10))
        return np.concatenate(parts).astype(np.float32)

    def _get_obs_sensor_data(self, apply_texture_transforms: bool = True) -> dict:
        obs = super()._get_obs_sensor_data(apply_texture_transforms)
        overlay = self.overlay_image
        if self.use_overlay and overlay is not None and CAMERA in obs and "segmentation" in obs[CAMERA]:
            data = obs[CAMERA]
            data["rgb"] = composite(data["rgb"], data["segmentation"], self._keep_ids, overlay)
        return obs

    def _get_obs_extra(self, info: dict) -> dict:
        return {}

    def compute_sparse_reward(self, obs: Any, action: torch.Tensor, info: dict) -> torch.Tensor:
        return info["success"].float()
