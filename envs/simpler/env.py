"""The Gymnasium face of the SimplerEnv-style suite: common observations, 7-D delta actions.

``SimplerEnv(task, variant)`` wraps the ManiSkill3 scene (:mod:`envs.simpler.scene`) and speaks the
same interface as the CALVIN-style suite:

* observations: ``rgb_static`` (third-person camera, H x W x 3 uint8), optionally ``rgb_gripper``
  (a wrist camera), and ``robot_obs`` (16 floats: TCP position (3), TCP quaternion w, x, y, z (4),
  gripper opening in metres (1), the 7 arm joints, the gripper closing target in [0, 1]), and
  ``scene_obs`` (privileged state for scripted experts: position and quaternion of each task object
  in ``info["objects"]`` order, then the cabinet's pose and its three drawer positions, zeros when
  the task has no cabinet);
  the instruction is ``info["instruction"]`` (it changes mid-episode in the apple task);
* actions: 7-D ``[dx, dy, dz, axis-angle (3), gripper]`` in metres and radians, in the robot base
  frame about the TCP, as SimplerEnv's; translations are clipped to 0.1 m and rotations to 0.1 rad
  per step (the controller's range). The gripper follows the family's convention: Google robot
  ``relative`` (+1 closes, -1 opens, 0 keeps), Bridge ``absolute`` (+1 open, -1 closed);
* ``reset(seed=, options={"episode": i, "variant": name})``: episode ``i`` is the task's i-th
  layout (the seed picks one when it is not given), ``variant`` an appearance of
  :mod:`envs.simpler.variants`;
* ``info``: ``success`` (the task's rule now), ``partial`` (Bridge: the source object was grasped at
  some step), ``instruction``, ``episode``, ``variant``, and task-specific values.

An episode is truncated at the task's step limit; success is read at the end, as in SimplerEnv.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.simpler.tasks import FAMILIES, TaskSpec, check_task
from envs.simpler.variants import appearance, check_variant
from envs.simpler.vulkan import VulkanUnavailable, check_vulkan, is_vulkan_error

MAX_TRANSLATION_M = 0.1
MAX_ROTATION_RAD = 0.1
ROBOT_OBS_DIM = 16
CAMERAS = ("static", "wrist")


def to_controller(
    action: np.ndarray, closedness: float, gripper_mode: str, rot_unit: float = -MAX_ROTATION_RAD
) -> tuple[np.ndarray, float]:
    """A 7-D SimplerEnv action -> (ManiSkill ``pd_ee_delta_pose`` command in [-1, 1], new closedness).

    Translations are scaled by the controller's 0.1 m range and clipped; the axis-angle rotation is
    clipped by its norm (keeping its axis) and turned into the controller's intrinsic XYZ Euler
    angles. ``rot_unit`` is the angle one unit of rotation command means to the controller:
    ManiSkill 3.0 multiplies the command by its ``rot_lower`` (-0.1), so the sign flips.
    ``closedness`` is the gripper target in [0, 1] (0 open, 1 closed).
    """
    from scipy.spatial.transform import Rotation

    a = np.asarray(action, dtype=np.float64)
    if a.shape != (7,):
        raise ValueError(f"action must have shape (7,), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action has NaN/inf: {a.tolist()}")
    cmd = np.empty(7, dtype=np.float32)
    cmd[:3] = np.clip(a[:3] / MAX_TRANSLATION_M, -1.0, 1.0)
    rotvec = a[3:6]
    norm = float(np.linalg.norm(rotvec))
    if norm > MAX_ROTATION_RAD:
        rotvec = rotvec * (MAX_ROTATION_RAD / norm)
    euler = Rotation.from_rotvec(rotvec).as_euler("XYZ")
    cmd[3:6] = np.clip(euler / rot_unit, -1.0, 1.0)
    g = float(np.clip(a[6], -1.0, 1.0))
    if gripper_mode == "relative":
        closedness = float(np.clip(closedness + g, 0.0, 1.0))
    elif gripper_mode == "absolute":
        closedness = (1.0 - g) / 2.0
    else:
        raise ValueError(f"unknown gripper mode {gripper_mode!r}; valid: relative, absolute")
    cmd[6] = 1.0 - 2.0 * closedness  # the Panda gripper: +1 open, -1 closed
    return cmd, closedness


class ManiSkillWrapper(gym.Env):
    """What our envs over a ManiSkill3 env (``self._ms``) share: building it on the CPU backend (a
    missing Vulkan device as :class:`VulkanUnavailable`), reading its scene, rendering and closing it."""

    render_mode: str | None = None
    cameras: tuple[str, ...] = ()
    _ms: Any = None

    def _make_ms(self, env_id: str, **kwargs: Any) -> None:
        """(Re)build ``self._ms`` as ManiSkill's ``env_id`` with ``kwargs`` on the CPU backend."""
        check_vulkan()
        if self._ms is not None:
            self._ms.close()
        try:
            self._ms = gym.make(
                env_id,
                render_mode="rgb_array" if self.render_mode else None,
                sim_backend="cpu",
                render_backend="cpu" if (self.cameras or self.render_mode) else "none",
                **kwargs,
            )
        except RuntimeError as exc:
            if is_vulkan_error(exc):
                raise VulkanUnavailable(str(exc)) from None
            raise

    @property
    def scene(self) -> Any:
        """The ManiSkill environment (for experts and tests that read privileged state)."""
        return self._ms.unwrapped

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        frame = self._ms.render()
        return np.asarray(frame[0].cpu().numpy() if hasattr(frame, "cpu") else frame, dtype=np.uint8)

    def close(self) -> None:
        if self._ms is not None:
            self._ms.close()
            self._ms = None


class SimplerEnv(ManiSkillWrapper):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        task: str = "pick_can_standing",
        variant: str = "base",
        cameras: Sequence[str] = ("static",),
        image_size: int | tuple[int, int] = 224,
        render_mode: str | None = None,
    ) -> None:
        self.task: TaskSpec = check_task(task)
        self.family = FAMILIES[self.task.family]
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ValueError(f"unknown camera(s) {bad}; valid: {', '.join(CAMERAS)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.cameras = tuple(cameras)
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.family.control_hz}
        check_variant(variant)
        self.variant = variant
        self._ms: Any = None
        self._ms_variant: str | None = None
        spaces: dict[str, gym.Space] = {}
        w, h = self.image_size
        if "static" in self.cameras:
            spaces["rgb_static"] = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        if "wrist" in self.cameras:
            spaces["rgb_gripper"] = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        spaces["robot_obs"] = gym.spaces.Box(-np.inf, np.inf, (ROBOT_OBS_DIM,), np.float32)
        self.object_names = self.task.object_names
        spaces["scene_obs"] = gym.spaces.Box(-np.inf, np.inf, (7 * len(self.object_names) + 10,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        limit = np.array([MAX_TRANSLATION_M] * 3 + [MAX_ROTATION_RAD] * 3 + [1.0], dtype=np.float32)
        self.action_space = gym.spaces.Box(-limit, limit, dtype=np.float32)
        self._closedness = 0.0
        self._steps = 0
        self.episode = 0
        self._build(variant)

    # --- the ManiSkill scene ---------------------------------------------------------------------
    def _build(self, variant: str) -> None:
        import mani_skill.envs  # noqa: F401 - ManiSkill's registry

        import envs.simpler.scene  # noqa: F401 - registers RoboVLMSimpler-v1

        self._make_ms(
            "RoboVLMSimpler-v1",
            task=self.task.name,
            appearance=appearance(self.task.family, variant),
            image_size=self.image_size,
            wrist_camera="wrist" in self.cameras,
            obs_mode="rgb" if self.cameras else "none",
            control_mode="pd_ee_delta_pose",
        )
        self._ms_variant = variant
        self._dirty = False  # gym.make reset the new scene once; nothing has been simulated yet
        arm = self._ms.unwrapped.agent.controller.controllers["arm"].config
        self._rot_unit = float(np.ravel(arm.rot_lower)[0])

    # --- Gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"episode", "variant"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: episode, variant")
        variant = options.get("variant", self.variant)
        check_variant(variant)
        if variant != self._ms_variant:
            self._build(variant)
        self.variant = variant
        if "episode" in options:
            episode = int(options["episode"])
            if episode < 0:
                raise ValueError(f"episode must be >= 0, got {episode}")
        else:
            episode = int(self.np_random.integers(self.task.episodes))
        self.episode = episode
        self._closedness = 0.0
        self._steps = 0
        # Rebuild the physics scene unless nothing has run since it was built: PhysX keeps contact
        # caches across a plain reset, so an episode would depend on the ones the env ran before.
        rebuild, self._dirty = self._dirty, False
        ms_obs, ms_info = self._ms.reset(seed=seed, options={"episode": episode, "reconfigure": rebuild})
        return self._obs(ms_obs), self._info(ms_info)

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        cmd, self._closedness = to_controller(
            np.asarray(action), self._closedness, self.family.gripper, self._rot_unit
        )
        ms_obs, _, _, _, ms_info = self._ms.step(cmd)
        self._dirty = True
        self._steps += 1
        info = self._info(ms_info)
        truncated = self._steps >= self.task.max_steps
        return self._obs(ms_obs), float(info["success"]), False, truncated, info

    # --- observation and info ---------------------------------------------------------------------
    @property
    def instruction(self) -> str:
        return self.task.instruction(self.scene.layout, self._steps)

    def robot_obs(self) -> np.ndarray:
        agent = self.scene.agent
        tcp = agent.tcp.pose.raw_pose[0].cpu().numpy()
        qpos = agent.robot.get_qpos()[0].cpu().numpy()
        return np.concatenate([tcp, [qpos[7] + qpos[8]], qpos[:7], [self._closedness]]).astype(np.float32)

    def _obs(self, ms_obs: Any) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if self.cameras:
            sensors = ms_obs["sensor_data"]
            if "static" in self.cameras:
                obs["rgb_static"] = sensors["static"]["rgb"][0].cpu().numpy().astype(np.uint8)
            if "wrist" in self.cameras:
                obs["rgb_gripper"] = sensors["hand_camera"]["rgb"][0].cpu().numpy().astype(np.uint8)
        obs["robot_obs"] = self.robot_obs()
        obs["scene_obs"] = self.scene_obs()
        return obs

    def scene_obs(self) -> np.ndarray:
        scene = self.scene
        parts = [scene.objs[name].pose.raw_pose[0].cpu().numpy() for name in self.object_names]
        if scene.cabinet is not None:
            parts += [scene.cabinet.pose.raw_pose[0].cpu().numpy(), scene.cabinet.get_qpos()[0].cpu().numpy()]
        else:
            parts.append(np.zeros(10))
        return np.concatenate(parts).astype(np.float32)

    def _info(self, ms_info: dict) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for key, value in ms_info.items():
            if key in ("elapsed_steps", "reconfigure"):
                continue
            info[key] = value.item() if hasattr(value, "item") else value
        info["success"] = bool(info.get("success", False))
        if self.task.family == "bridge":
            info["partial"] = bool(info.get("src_grasped_ever", False))
        info.update(
            instruction=self.instruction,
            task=self.task.name,
            family=self.task.family,
            episode=self.episode,
            variant=self.variant,
            objects=self.object_names,
            step=self._steps,
        )
        return info
