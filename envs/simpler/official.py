"""Adapter for ManiSkill3's own ports of SimplerEnv's Bridge tasks (real scanned assets, WidowX robot).

These tasks need assets that ManiSkill downloads on request; with them in place, this adapter runs
them through the same interface and metrics as the suite's own tasks::

    python -m mani_skill.utils.download_asset bridge_v2_real2sim
    python -m mani_skill.utils.download_asset widowx250s
    python -m bench.run --suite simpler --official --tasks bridge --policy P --out DIR

| our task | ManiSkill3 id |
|---|---|
| put_spoon_on_towel | PutSpoonOnTableClothInScene-v1 |
| put_carrot_on_plate | PutCarrotOnPlateInScene-v1 |
| stack_green_on_yellow | StackGreenCubeOnYellowCubeBakedTexInScene-v1 |
| put_eggplant_in_basket | PutEggplantInBasketScene-v1 |

Their controller takes ``[dx, dy, dz, Euler XYZ (3), gripper]`` with the translation in metres
and the rotation in radians, unnormalised, and the gripper normalised (+1 open, -1 closed): the
suite's 7-D axis-angle actions are converted by :func:`to_official_action`. Success and partial
success come from the task's own ``info`` (``success``; ``is_src_obj_grasped`` at some step).
Visual matching only: the real backgrounds are composited in by ManiSkill ("greenscreening").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.simpler.tasks import TASKS

OFFICIAL_IDS: dict[str, str] = {
    "put_spoon_on_towel": "PutSpoonOnTableClothInScene-v1",
    "put_carrot_on_plate": "PutCarrotOnPlateInScene-v1",
    "stack_green_on_yellow": "StackGreenCubeOnYellowCubeBakedTexInScene-v1",
    "put_eggplant_in_basket": "PutEggplantInBasketScene-v1",
}
ASSETS = {"bridge_v2_real2sim": "tasks/bridge_v2_real2sim_dataset", "widowx250s": "robots/widowx"}
CONTROL_MODE = "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos"
CAMERA = "3rd_view_camera"


class OfficialAssetsMissing(RuntimeError):
    """The downloaded assets of ManiSkill3's SimplerEnv tasks are not there."""


def check_official_task(task: str) -> str:
    if task not in OFFICIAL_IDS:
        raise ValueError(f"no official ManiSkill3 port of task {task!r}; valid: {', '.join(OFFICIAL_IDS)}")
    return OFFICIAL_IDS[task]


def missing_assets(asset_dir: str | Path | None = None) -> list[str]:
    """Names of the asset packs not found under ManiSkill's asset folder (``MS_ASSET_DIR``)."""
    if asset_dir is None:
        from mani_skill import ASSET_DIR

        asset_dir = ASSET_DIR
    return [name for name, rel in ASSETS.items() if not (Path(asset_dir) / rel).is_dir()]


def require_assets(asset_dir: str | Path | None = None) -> None:
    missing = missing_assets(asset_dir)
    if missing:
        commands = "; ".join(f"python -m mani_skill.utils.download_asset {name}" for name in missing)
        where = asset_dir or "ManiSkill's asset folder (MS_ASSET_DIR, default ~/.maniskill/data)"
        raise OfficialAssetsMissing(
            f"the official ManiSkill3 SimplerEnv tasks need downloaded assets missing from {where}: "
            f"{', '.join(missing)}. Download them once with: {commands}"
        )


def to_official_action(action: np.ndarray) -> np.ndarray:
    """The suite's 7-D action (metres, axis-angle, gripper +1 open) -> the official controller's."""
    from scipy.spatial.transform import Rotation

    a = np.asarray(action, dtype=np.float64)
    if a.shape != (7,) or not np.all(np.isfinite(a)):
        raise ValueError(f"action must be 7 finite values, got shape {a.shape}: {a.tolist()}")
    out = np.empty(7, dtype=np.float32)
    out[:3] = a[:3]
    out[3:6] = Rotation.from_rotvec(a[3:6]).as_euler("XYZ")
    out[6] = np.clip(a[6], -1.0, 1.0)
    return out


def robot_obs_from(tcp_pose: np.ndarray, qpos: np.ndarray, closedness: float) -> np.ndarray:
    """16 values as the suite's ``robot_obs``: TCP pose (7), gripper opening, 7 arm joints (padded), target."""
    arm = np.zeros(7)
    arm[: min(7, len(qpos) - 2)] = qpos[: min(7, len(qpos) - 2)]
    opening = float(np.sum(qpos[-2:]))
    return np.concatenate([tcp_pose[:7], [opening], arm, [closedness]]).astype(np.float32)


class OfficialSimplerEnv(gym.Env):
    """One official task behind the suite's observation/action interface (``rgb_static``, ``robot_obs``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, task: str, variant: str = "base", image_size: int | tuple[int, int] = 224, **_: Any):
        if variant != "base":
            raise ValueError(
                f"the official tasks have visual matching only (variant 'base'), got {variant!r}"
            )
        self.ms_id = check_official_task(task)
        require_assets()
        import mani_skill.envs  # noqa: F401

        self.task = TASKS[task]
        self.variant = variant
        self._ms = gym.make(self.ms_id, obs_mode="rgb", control_mode=CONTROL_MODE, sim_backend="cpu")
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        w, h = self.image_size
        self.observation_space = gym.spaces.Dict(
            {
                "rgb_static": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
                "robot_obs": gym.spaces.Box(-np.inf, np.inf, (16,), np.float32),
            }
        )
        limit = np.array([0.1] * 3 + [0.1] * 3 + [1.0], dtype=np.float32)
        self.action_space = gym.spaces.Box(-limit, limit, dtype=np.float32)
        self.object_names: tuple[str, ...] = ()
        self._steps = 0
        self._grasped = False
        self._closedness = 0.0
        self.episode = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        self.episode = int(options.get("episode", self.np_random.integers(self.task.episodes)))
        obs, info = self._ms.reset(seed=seed, options={"episode_id": self.episode})
        self._steps, self._grasped, self._closedness = 0, False, 0.0
        return self._obs(obs), self._info(info)

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        a = np.asarray(action, dtype=np.float64)
        self._closedness = float((1.0 - np.clip(a[6], -1, 1)) / 2.0)
        obs, _, _, _, info = self._ms.step(to_official_action(a))
        self._steps += 1
        out = self._info(info)
        return self._obs(obs), float(out["success"]), False, self._steps >= self.task.max_steps, out

    def close(self) -> None:
        self._ms.close()

    def _obs(self, obs: Any) -> dict[str, np.ndarray]:
        from PIL import Image

        rgb = obs["sensor_data"][CAMERA]["rgb"][0].cpu().numpy().astype(np.uint8)
        if rgb.shape[:2] != (self.image_size[1], self.image_size[0]):
            rgb = np.asarray(Image.fromarray(rgb).resize(self.image_size))
        agent = self._ms.unwrapped.agent
        tcp = agent.tcp.pose.raw_pose[0].cpu().numpy() if hasattr(agent, "tcp") else np.zeros(7)
        qpos = agent.robot.get_qpos()[0].cpu().numpy()
        return {"rgb_static": rgb, "robot_obs": robot_obs_from(tcp, qpos, self._closedness)}

    def _info(self, info: dict) -> dict[str, Any]:
        grasped = bool(info.get("is_src_obj_grasped", False))
        self._grasped |= grasped
        instruction = self._ms.unwrapped.get_language_instruction()[0]
        return {
            "success": bool(info.get("success", False)),
            "partial": self._grasped,
            "instruction": instruction,
            "task": self.task.name,
            "family": self.task.family,
            "episode": self.episode,
            "variant": self.variant,
            "objects": self.object_names,
            "step": self._steps,
        }
