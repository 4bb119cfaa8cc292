"""The SimplerEnv-style tasks on SimplerEnv's own embodiments, behind the suite's Gymnasium interface.

``SimplerRealEnv(task)`` runs a task on the robot SimplerEnv evaluates it on (the Bridge tasks on
ManiSkill3's WidowX 250 S, :mod:`envs.simpler.bridge_scene`; the Google-robot tasks on ManiSkill3's
Google robot with SimplerEnv's controllers, :mod:`envs.simpler.google_scene`) with SimplerEnv's
camera, scanned objects, layouts, rules and, in visual matching, the real overlay image. It speaks
the same interface as :class:`envs.simpler.env.SimplerEnv` (today's primitive Panda scenes):

* observations: ``rgb_static`` (SimplerEnv's calibrated camera: Bridge 640 x 480, Google 640 x 512
  by default; another ``image_size`` renders the same view resized), ``robot_obs`` (16: TCP pose
  (7), gripper (1: WidowX finger opening in metres, Google mean finger joint in radians), the arm
  joints padded to 7, gripper closing target (1)), ``scene_obs`` (position and quaternion of each
  task object in ``info["objects"]`` order, then the cabinet's pose and its top, middle, bottom
  drawer joints, zeros without a cabinet);
* actions: 7-D ``[dx, dy, dz, axis-angle (3), gripper]`` in metres and radians (clipped to 0.1 per
  step) in the robot base frame, sent to the controller SimplerEnv uses: WidowX
  ``arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos`` with the gripper absolute (+1 open,
  -1 closed); Google robot ``arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_``
  ``target_delta_pos_interpolate_by_planner`` with the gripper relative (+1 closes, -1 opens, 0 keeps);
* ``info``: ``success``, ``partial`` (the source was grasped at some step), ``instruction``,
  ``task``, ``family``, ``episode``, ``variant``, ``objects``, ``step``, ``embodiment``.

Variants: ``base`` is visual matching (the real image behind robot and objects); the Google-robot
tasks also take SimplerEnv's variant-aggregation variants (:mod:`envs.simpler.real_variants`:
``sim_base``, table textures, backgrounds, lighting, distractors, cameras, cabinets), which render
an equivalent stage instead; SimplerEnv has no variant aggregation for Bridge. Assets come from ``MS_ASSET_DIR`` and ``SIMPLER_ASSET_DIR``
(:mod:`envs.simpler.assets`); a missing one stops with one line naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.simpler.assets import require_robot
from envs.simpler.env import MAX_ROTATION_RAD, MAX_TRANSLATION_M, ROBOT_OBS_DIM, ManiSkillWrapper
from envs.simpler.official import to_official_action
from envs.simpler.real_variants import check_real_variant, task_variants
from envs.simpler.reference import reference, task_reference
from envs.simpler.tasks import FAMILIES, TaskSpec, check_task

EMBODIMENT = {"bridge": "widowx250s", "google_robot": "googlerobot"}
MS_IDS = {"bridge": "RoboVLMSimplerBridge-v1", "google_robot": "RoboVLMSimplerGoogle-v1"}
CAMERA_UIDS = {"bridge": "3rd_view_camera", "google_robot": "overhead_camera"}
VARIANTS = ("base",)  # every task's; the Google-robot tasks add real_variants.task_variants(task)
CAMERAS = ("static",)


def real_tasks() -> tuple[str, ...]:
    """The tasks built on SimplerEnv's own embodiments so far."""
    return tuple(reference()["tasks"])


def check_real_task(task: str) -> TaskSpec:
    spec = check_task(task)
    if task not in real_tasks():
        raise ValueError(
            f"task {task!r} has no scene on SimplerEnv's own embodiment yet; valid: {', '.join(real_tasks())}"
        )
    return spec


def clip_action(action: np.ndarray) -> np.ndarray:
    """The suite's action limits: translation per axis, rotation by its norm (keeping the axis)."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (7,) or not np.all(np.isfinite(a)):
        raise ValueError(f"action must be 7 finite values, got shape {a.shape}: {a.tolist()}")
    out = a.copy()
    out[:3] = np.clip(a[:3], -MAX_TRANSLATION_M, MAX_TRANSLATION_M)
    norm = float(np.linalg.norm(a[3:6]))
    if norm > MAX_ROTATION_RAD:
        out[3:6] = a[3:6] * (MAX_ROTATION_RAD / norm)
    out[6] = np.clip(a[6], -1.0, 1.0)
    return out


class SimplerRealEnv(ManiSkillWrapper):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        task: str = "put_carrot_on_plate",
        variant: str = "base",
        cameras: Sequence[str] = ("static",),
        image_size: int | tuple[int, int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.task: TaskSpec = check_real_task(task)
        self.family = FAMILIES[self.task.family]
        self.embodiment = EMBODIMENT[self.task.family]
        check_real_variant(task, variant)
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ValueError(f"unknown camera(s) {bad}; valid: {', '.join(CAMERAS)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.variant = variant
        self.cameras = tuple(cameras)
        if image_size is None:
            cam = self._calibrated_camera()
            image_size = (cam["width"], cam["height"])
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.family.control_hz}
        self._set_observation_space()
        limit = np.array([MAX_TRANSLATION_M] * 3 + [MAX_ROTATION_RAD] * 3 + [1.0], dtype=np.float32)
        self.action_space = gym.spaces.Box(-limit, limit, dtype=np.float32)
        self._closedness = 0.0
        self._steps = 0
        self.episode = 0
        self._ms: Any = None
        self._build()

    def _set_observation_space(self) -> None:
        """The spaces of the current variant (move near without distractors has two objects, not three)."""
        w, h = self.image_size
        spaces: dict[str, gym.Space] = {}
        if self.cameras:
            spaces["rgb_static"] = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        spaces["robot_obs"] = gym.spaces.Box(-np.inf, np.inf, (ROBOT_OBS_DIM,), np.float32)
        spaces["scene_obs"] = gym.spaces.Box(-np.inf, np.inf, (7 * self._n_objects() + 10,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants this task takes on SimplerEnv's embodiment."""
        return ("base", *task_variants(self.task.name)) if self.google else VARIANTS

    @property
    def google(self) -> bool:
        return self.task.family == "google_robot"

    def _calibrated_camera(self) -> dict:
        ref = reference()
        if self.google:
            return ref["families"]["google_robot"]["camera"]
        return ref["scenes"][task_reference(self.task.name)["scene"]]["camera"]

    def _n_objects(self) -> int:
        if self.google:
            from envs.simpler.google_variant_layout import variant_layout

            return len(variant_layout(self.task.name, 0, self.variant).models)
        return 2

    @property
    def object_names(self) -> tuple[str, ...]:
        """The task objects of the current episode (move near changes them per episode)."""
        return tuple(self.scene.object_names)

    def _build(self) -> None:
        import mani_skill.envs  # noqa: F401 - ManiSkill's registry

        import envs.simpler.bridge_scene  # noqa: F401 - registers RoboVLMSimplerBridge-v1
        import envs.simpler.google_scene  # noqa: F401 - registers RoboVLMSimplerGoogle-v1

        require_robot(self.embodiment)
        scene_kwargs = {"variant": self.variant} if self.google else {"overlay": True}
        self._make_ms(
            MS_IDS[self.task.family],
            task=self.task.name,
            image_size=self.image_size,
            **scene_kwargs,
            obs_mode="rgb+segmentation" if self.cameras else "none",
            control_mode=reference()["families"][self.task.family]["control_mode"],
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"episode", "variant"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: episode, variant")
        variant = options.get("variant", self.variant)
        check_real_variant(self.task.name, variant)
        if variant != self.variant:  # another stage: a new ManiSkill scene, perhaps other spaces
            self.variant = variant
            self._set_observation_space()
            self._build()
        if "episode" in options:
            episode = int(options["episode"])
            if episode < 0:
                raise ValueError(f"episode must be >= 0, got {episode}")
        else:
            episode = int(self.np_random.integers(self.task.episodes))
        self.episode = episode
        self._closedness = 0.0
        self._steps = 0
        # Every reset rebuilds the physics scene: PhysX keeps contact caches across a plain reset, and
        # SimplerEnv's episode start (objects settling) simulates, so without it an episode would
        # depend on what the env ran before (its construction included).
        ms_obs, ms_info = self._ms.reset(seed=seed, options={"episode": episode, "reconfigure": True})
        return self._obs(ms_obs), self._info(ms_info)

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        a = clip_action(action)
        if self.google:
            # SimplerEnv's Google controller takes the axis-angle delta and the relative gripper as they are.
            self._closedness = float(np.clip(self._closedness + a[6], 0.0, 1.0))
            command = a.astype(np.float32)
        else:
            self._closedness = float((1.0 - a[6]) / 2.0)
            command = to_official_action(a)
        ms_obs, _, _, _, ms_info = self._ms.step(command)
        self._steps += 1
        info = self._info(ms_info)
        truncated = self._steps >= self.task.max_steps
        return self._obs(ms_obs), float(info["success"]), False, truncated, info

    @property
    def instruction(self) -> str:
        return self.scene.instruction if self.google else self.scene.task_ref["instruction"]

    def robot_obs(self) -> np.ndarray:
        if self.google:
            return self.scene.robot_obs(self._closedness)
        robot = self.scene.agent.robot
        tcp = robot.links_map["ee_gripper_link"].pose.raw_pose[0].cpu().numpy()
        qpos = robot.get_qpos()[0].cpu().numpy()
        arm = np.zeros(7)
        arm[:6] = qpos[:6]
        return np.concatenate([tcp, [qpos[6] + qpos[7]], arm, [self._closedness]]).astype(np.float32)

    def scene_obs(self) -> np.ndarray:
        if self.google:
            return self.scene.scene_obs()
        parts = [self.scene.objs[n].pose.raw_pose[0].cpu().numpy() for n in self.object_names]
        return np.concatenate([*parts, np.zeros(10)]).astype(np.float32)

    def _obs(self, ms_obs: Any) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if self.cameras:
            rgb = ms_obs["sensor_data"][CAMERA_UIDS[self.task.family]]["rgb"][0]
            obs["rgb_static"] = rgb.cpu().numpy().astype(np.uint8)
        obs["robot_obs"] = self.robot_obs()
        obs["scene_obs"] = self.scene_obs()
        return obs

    def _info(self, ms_info: dict) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for key, value in ms_info.items():
            if key in ("elapsed_steps", "reconfigure"):
                continue
            info[key] = value.item() if hasattr(value, "item") else value
        info["success"] = bool(info.get("success", False))
        info["partial"] = bool(info.get("src_grasped_ever", False))
        info.update(
            instruction=self.instruction,
            task=self.task.name,
            family=self.task.family,
            episode=self.episode,
            variant=self.variant,
            objects=self.object_names,
            step=self._steps,
            embodiment=self.embodiment,
        )
        return info
