"""CALVIN's own ``PlayTableSimEnv`` behind the Gymnasium interface of our play table.

The env is built from the checkout's hydra configs (``config_data_collection`` with scene
``calvin_scene_<A..D>``, the long-finger Panda, both cameras, no VR, no EGL) and judged by CALVIN's
``Tasks`` with ``conf/tasks/new_playtable_tasks.yaml``, exactly as CALVIN's evaluation does:
``begin_subtask`` keeps ``get_info()`` as the start info and every step asks the oracle whether
the task is done. Observations, reset options, ``begin_subtask``, ``info["success"]``,
``set_cameras``, ``observe`` and ``target_pose`` are those of :class:`envs.calvin.env.CalvinEnv`.

Actions go to CALVIN's env as its evaluation wrapper passes them: relative actions as a 7-vector
(CALVIN adds position x 0.02 m and Euler x 0.05 rad to its target pose, with no clipping), absolute
ones as (position, Euler angles, gripper); the gripper is +1 when its value is > 0, else -1.
``reset(options={"state": ...})`` builds CALVIN's evaluation start of the symbolic state
(:mod:`envs.calvin.official.reset`); ``{"robot_obs": ..., "scene_obs": ...}`` resets to given
states instead (for matched-state comparisons). Every reset reloads CALVIN's scene
(``PlayTableSimEnv.load``) first and sets the gripper action to ``robot_obs[14]`` (CALVIN's robot
keeps its last one), so an episode does not depend on the ones the env ran before.

``scene_obs`` lists the blocks red, blue, pink as our table's does, in and out: CALVIN's scenes list
them in their ``movable_objects`` order (A: pink, blue, red; B and D: red, blue, pink; C: blue, red, pink), and CALVIN's
evaluation start, written for D, places blocks by that index, so on A-C it would put the pink block
where the symbolic state says red. Here every scene places and reports blocks by colour.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.calvin.chains import initial_states
from envs.calvin.official.checkout import COMMIT, check_scene, find_checkout, import_module
from envs.calvin.official.info import from_calvin_info
from envs.calvin.official.objects import COLOURS, calvin_block_name
from envs.calvin.official.oracle import calvin_tasks
from envs.calvin.official.reset import ROBOT_OBS, calvin_start
from envs.calvin.robot import WORKSPACE_HIGH, WORKSPACE_LOW
from envs.calvin.tasks import check_task

CONTROL_HZ = 30
CAMERAS = ("static", "gripper")
ACTION_MODES = ("relative", "absolute")
RESET_OPTIONS = ("state", "task", "robot_obs", "scene_obs")
ROBOT_TARGET = "envs.calvin.official.robot.ClientBoundRobot"


def build_play_table(root: Path, scene: str, static_size: int, gripper_size: int) -> Any:
    """CALVIN's ``PlayTableSimEnv`` for ``scene``, composed from the checkout's own hydra configs.

    The robot is CALVIN's ``Robot`` loaded on the env's own PyBullet client
    (:class:`envs.calvin.official.robot.ClientBoundRobot`); everything else is as configured.
    """
    hydra = import_module(root, "hydra")
    play_table_env = import_module(root, "calvin_env.envs.play_table_env")
    # PlayTableSimEnv logs the checkout's git commit through GitPython, which fails on a copy without
    # .git (CI's read-only ../shared); the commit was checked by file digests instead.
    play_table_env.get_git_commit_hash = lambda _path: f"{COMMIT} (checked by file digests)"
    overrides = [
        f"scene=calvin_scene_{scene}",
        "robot=panda_longer_finger",
        "cameras=static_and_gripper",
        "use_vr=false",
        "env.use_egl=false",
        "env.show_gui=false",
        "env.use_scene_info=true",
        f"cameras.static.width={static_size}",
        f"cameras.static.height={static_size}",
        f"cameras.gripper.width={gripper_size}",
        f"cameras.gripper.height={gripper_size}",
    ]
    with (
        warnings.catch_warnings(),
        hydra.initialize_config_dir(config_dir=str(root / "conf"), version_base=None),
    ):
        warnings.simplefilter("ignore")  # CALVIN's configs predate hydra 1.1's _self_ ordering
        cfg = hydra.compose("config_data_collection", overrides=overrides)
    cfg.robot._target_ = ROBOT_TARGET
    return hydra.utils.instantiate(cfg.env, show_gui=False, use_vr=False, use_scene_info=True)


class CalvinOfficialEnv(gym.Env):
    """CALVIN's play table (its own code, from a checkout) with our observations and actions."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    backend = "calvin_env"  # its name in envs.calvin.backends.make_calvin_env

    def __init__(
        self,
        scene: str = "D",
        cameras: Sequence[str] = CAMERAS,
        static_size: int = 200,
        gripper_size: int = 84,
        action_mode: str = "relative",
        render_mode: str | None = None,
        calvin_env_dir: str | None = None,
    ) -> None:
        if action_mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {action_mode!r}; valid: {', '.join(ACTION_MODES)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, 'rgb_array'")
        for name, size in (("static_size", static_size), ("gripper_size", gripper_size)):
            if not isinstance(size, int) or size < 8:
                raise ValueError(f"{name} must be an integer >= 8, got {size!r}")
        root = find_checkout(calvin_env_dir)
        check_scene(root, scene)
        self.scene_name = scene
        self.action_mode = action_mode
        self.render_mode = render_mode
        self.sizes = {"static": static_size, "gripper": gripper_size}
        self.env = build_play_table(root, scene, static_size, gripper_size)
        names = [calvin_block_name(o.name) for o in self.env.scene.movable_objects]
        #: CALVIN's index of each block in our order (red, blue, pink): its scenes list them differently
        self._block_index = [names.index(f"{colour}_block") for colour in COLOURS]
        self.oracle = calvin_tasks(root)
        self._cameras = {cam.name: cam for cam in self.env.cameras}
        self.set_cameras(cameras)
        if action_mode == "relative":
            self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        else:  # the space our table's absolute actions use; CALVIN itself clips nothing
            low = np.concatenate([WORKSPACE_LOW, [-np.pi] * 3, [-1.0]]).astype(np.float32)
            high = np.concatenate([WORKSPACE_HIGH, [np.pi] * 3, [1.0]]).astype(np.float32)
            self.action_space = spaces.Box(low, high, (7,), np.float32)
        self._task: str | None = None
        self._task_start: dict | None = None
        self._absolute_target: np.ndarray | None = None
        self.symbolic_state: dict | None = None
        self._reset_done = False

    def set_cameras(self, cameras: Sequence[str]) -> None:
        """Choose the cameras rendered into observations (``()`` for none); updates the space."""
        cameras = tuple(cameras)
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; valid cameras: {', '.join(CAMERAS)}")
        self.cameras = cameras
        # CALVIN's get_obs renders the cameras in its list: only the chosen ones
        self.env.cameras = [self._cameras[c] for c in CAMERAS if c in cameras]
        obs_spaces: dict[str, spaces.Space] = {}
        for cam in CAMERAS:
            if cam in cameras:
                size = self.sizes[cam]
                obs_spaces[f"rgb_{cam}"] = spaces.Box(0, 255, (size, size, 3), np.uint8)
        obs_spaces["robot_obs"] = spaces.Box(-np.inf, np.inf, (15,), np.float32)
        obs_spaces["scene_obs"] = spaces.Box(-np.inf, np.inf, (24,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)

    def _check_reset(self, what: str) -> None:
        if not self._reset_done:
            raise RuntimeError(f"call reset() before {what}")

    def _obs(self, calvin_obs: dict) -> dict[str, np.ndarray]:
        obs = {k: np.asarray(v, dtype=np.uint8) for k, v in calvin_obs["rgb_obs"].items()}
        obs["robot_obs"] = np.asarray(calvin_obs["robot_obs"], dtype=np.float32)
        obs["scene_obs"] = self._blocks_by_colour(calvin_obs["scene_obs"], to_calvin=False)
        return obs

    def _blocks_by_colour(self, scene_obs: Any, to_calvin: bool) -> np.ndarray:
        """``scene_obs`` with its three block poses reordered from ours (red, blue, pink) to CALVIN's
        scene's order (``to_calvin``) or back; the parts' six entries stay."""
        source = np.asarray(scene_obs, dtype=np.float64)
        out = source.copy()
        for k, i in enumerate(self._block_index):
            ours, theirs = slice(6 + 6 * k, 12 + 6 * k), slice(6 + 6 * i, 12 + 6 * i)
            out[theirs if to_calvin else ours] = source[ours if to_calvin else theirs]
        return out.astype(np.float64 if to_calvin else np.float32)

    def observe(self) -> dict[str, np.ndarray]:
        """The observation of the current state (with the cameras now chosen)."""
        self._check_reset("observe()")
        return self._obs(self.env.get_obs())

    def calvin_info(self) -> dict:
        """CALVIN's own info of the current state (what its ``Tasks`` judges)."""
        self._check_reset("calvin_info()")
        return self.env.get_info()

    def scene_info(self) -> dict[str, Any]:
        """The current state in our oracle's format (:mod:`envs.calvin.tasks`)."""
        return from_calvin_info(self.calvin_info())

    # --- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: {', '.join(RESET_OPTIONS)}")
        state = options.get("state")
        given = {k: options[k] for k in ("robot_obs", "scene_obs") if options.get(k) is not None}
        if state is not None and given:
            raise ValueError("reset takes either options['state'] or robot_obs/scene_obs, not both")
        if given:
            robot_obs, scene_obs = _given_start(given)
            self.symbolic_state = None
        else:
            if state is None:
                states = initial_states()
                state = states[int(self.np_random.integers(len(states)))]
            robot_obs, scene_obs = calvin_start(state, self.scene_name)
            self.symbolic_state = dict(state)
        self.env.load()  # a fresh scene: PyBullet's contact caches would carry the last episode over
        # CALVIN's robot reset keeps its last gripper action (robot_obs[14]); take the given one
        self.env.robot.gripper_action = 1 if robot_obs[14] > 0 else -1
        obs = self.env.reset(robot_obs=robot_obs, scene_obs=self._blocks_by_colour(scene_obs, to_calvin=True))
        self._reset_done = True
        self._absolute_target = self._robot_target()
        self._task = None
        self._task_start = None
        if options.get("task") is not None:
            self.begin_subtask(options["task"])
        return self._obs(obs), self._step_info(None)

    def _robot_target(self) -> np.ndarray:
        robot = self.env.robot
        return np.concatenate([robot.target_pos, robot.target_orn]).astype(np.float64)

    def target_pose(self) -> np.ndarray:
        """The pose the arm is driven to: (x, y, z, Euler x, y, z)."""
        self._check_reset("target_pose()")
        if self.action_mode == "relative":
            return self._robot_target()
        return self._absolute_target.copy()

    def begin_subtask(self, task: str) -> None:
        """Judge ``task`` from now on: CALVIN's start info is the current ``get_info()``."""
        check_task(task)
        self._check_reset("begin_subtask()")
        self._task = task
        self._task_start = self.env.get_info()

    def _step_info(self, calvin_info: dict | None) -> dict[str, Any]:
        info: dict[str, Any] = {"scene": self.scene_name}
        if self._task is not None:
            current = calvin_info if calvin_info is not None else self.env.get_info()
            done = self.oracle.get_task_info_for_set(self._task_start, current, {self._task})
            info["task"] = self._task
            info["success"] = self._task in done
        return info

    def step(self, action):
        self._check_reset("step()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (7,):
            raise ValueError(f"action must have shape (7,), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a.tolist()}")
        gripper = 1 if a[6] > 0 else -1
        if self.action_mode == "relative":
            command: Any = a.copy()
            command[6] = gripper
        else:
            command = [a[:3].copy(), a[3:6].copy(), gripper]
            self._absolute_target = a[:6].copy()
        obs, _reward, _done, calvin_info = self.env.step(command)
        info = self._step_info(calvin_info)
        success = bool(info.get("success", False))
        return self._obs(obs), float(success), success, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        self._check_reset("render()")
        rgb, _depth = self._cameras["static"].render()
        return np.asarray(rgb, dtype=np.uint8)

    def close(self) -> None:
        env = getattr(self, "env", None)
        if env is not None and env.cid >= 0:
            env.close()
            env.cid = -1  # CALVIN's __del__ closes again; with -1 it has nothing left to do


def _given_start(given: dict) -> tuple[np.ndarray, np.ndarray]:
    """``robot_obs`` and ``scene_obs`` from reset options (CALVIN's evaluation arm pose by default)."""
    if "scene_obs" not in given:
        raise ValueError("options['robot_obs'] needs options['scene_obs'] (24,) too")
    robot_obs = np.asarray(given.get("robot_obs", ROBOT_OBS), dtype=np.float64)
    scene_obs = np.asarray(given["scene_obs"], dtype=np.float64)
    for name, value, size in (("robot_obs", robot_obs, 15), ("scene_obs", scene_obs, 24)):
        if value.shape != (size,):
            raise ValueError(f"options[{name!r}] must have shape ({size},), got {value.shape}")
    return robot_obs, scene_obs
