"""Gymnasium environment of the CALVIN-style play table.

Observations follow CALVIN's meaning (``rgb_static``, ``rgb_gripper``, ``robot_obs`` (15),
``scene_obs`` (24)); actions are 7-D relative (0.02 m / 0.05 rad per unit, added to the previous
target pose) or absolute (target TCP position and Euler angles); gripper +1 open, -1 close.
Control runs at 30 Hz with 8 physics sub-steps at 240 Hz.

Use :meth:`CalvinEnv.begin_subtask` to start judging a task: from then on ``step`` reports
``info["success"]`` (reward 1 and ``terminated`` on success) by comparing the scene info at that
moment with the current one. ``reset(options={"state": {...}})`` builds the physical start of a
symbolic chain state; ``options={"task": name}`` starts judging that task right away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from gymnasium import spaces

from envs.calvin import scene as sc
from envs.calvin.camera import GripperCamera, StaticCamera
from envs.calvin.layers import fixed_links
from envs.calvin.robot import WORKSPACE_HIGH, WORKSPACE_LOW, Panda
from envs.calvin.tasks import check_task, is_success

CONTROL_HZ = 30
PHYSICS_HZ = 240
SUBSTEPS = PHYSICS_HZ // CONTROL_HZ
POS_SCALE = 0.02
ORN_SCALE = 0.05
CAMERAS = ("static", "gripper")
ACTION_MODES = ("relative", "absolute")
PARTS = ("slider", "drawer", "button", "switch")  # articulated parts, in scene_obs order
SETTLE_STEPS = 24  # physics steps after a reset so that blocks come to rest


def relative_action(prev_target: np.ndarray, target: np.ndarray, gripper: float) -> np.ndarray:
    """The relative action that moves the target pose from ``prev_target`` to ``target``.

    Both poses are (x, y, z, Euler x, y, z); the result is (7,) with position / 0.02 m, the
    wrapped Euler difference / 0.05 rad and the gripper sign. Data collection uses it to store
    both action forms of an expert that sends absolute targets.
    """
    delta = np.asarray(target, dtype=np.float64) - np.asarray(prev_target, dtype=np.float64)
    rel = np.empty(7, dtype=np.float32)
    rel[:3] = delta[:3] / POS_SCALE
    rel[3:6] = ((delta[3:6] + np.pi) % (2 * np.pi) - np.pi) / ORN_SCALE
    rel[6] = 1.0 if gripper > 0 else -1.0
    return rel


class CalvinEnv(gym.Env):
    """The play table with a Panda arm; one episode = one start state (see module doc)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    backend = "ours"  # its name in envs.calvin.backends.make_calvin_env

    def __init__(
        self,
        scene: str = "D",
        cameras: Sequence[str] = CAMERAS,
        static_size: int = 200,
        gripper_size: int = 84,
        action_mode: str = "relative",
        render_mode: str | None = None,
    ) -> None:
        self.cfg = sc.get_scene(scene)
        if action_mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {action_mode!r}; valid: {', '.join(ACTION_MODES)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, 'rgb_array'")
        for name, size in (("static_size", static_size), ("gripper_size", gripper_size)):
            if not isinstance(size, int) or size < 8:
                raise ValueError(f"{name} must be an integer >= 8, got {size!r}")
        self.scene_name = scene
        self.action_mode = action_mode
        self.render_mode = render_mode
        self.static_camera = StaticCamera(static_size)
        self.gripper_camera = GripperCamera(gripper_size)
        self.set_cameras(cameras)
        if action_mode == "relative":
            self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        else:
            low = np.concatenate([WORKSPACE_LOW, [-np.pi] * 3, [-1.0]]).astype(np.float32)
            high = np.concatenate([WORKSPACE_HIGH, [np.pi] * 3, [1.0]]).astype(np.float32)
            self.action_space = spaces.Box(low, high, (7,), np.float32)

        self.cid = p.connect(p.DIRECT)
        self._task: str | None = None
        self._task_start: dict | None = None
        self.symbolic_state: dict | None = None
        self._built = False

    def set_cameras(self, cameras: Sequence[str]) -> None:
        """Choose the cameras rendered into observations (``()`` for none); updates the space.

        Data collection turns them off while the expert sets up a task it does not record.
        """
        cameras = tuple(cameras)
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; valid cameras: {', '.join(CAMERAS)}")
        self.cameras = cameras
        s, g = self.static_camera.size, self.gripper_camera.size
        obs_spaces: dict[str, spaces.Space] = {}
        if "static" in cameras:
            obs_spaces["rgb_static"] = spaces.Box(0, 255, (s, s, 3), np.uint8)
        if "gripper" in cameras:
            obs_spaces["rgb_gripper"] = spaces.Box(0, 255, (g, g, 3), np.uint8)
        obs_spaces["robot_obs"] = spaces.Box(-np.inf, np.inf, (15,), np.float32)
        obs_spaces["scene_obs"] = spaces.Box(-np.inf, np.inf, (24,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)

    def observe(self) -> dict[str, np.ndarray]:
        """The observation of the current state (with the cameras now chosen)."""
        if not self._built:
            raise RuntimeError("call reset() before observe()")
        return self._obs()

    # --- world ---------------------------------------------------------------------------------
    def _build(self, state: dict) -> None:
        cid = self.cid
        p.resetSimulation(physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=1.0 / PHYSICS_HZ,
            numSolverIterations=30,
            deterministicOverlappingPairs=1,
            physicsClientId=cid,
        )
        p.setGravity(0, 0, -9.8, physicsClientId=cid)
        desk = sc.build_desk(cid, self.cfg)
        self.desk, self.links = desk.parts, desk.links
        self.desk_bodies = desk
        self.robot = Panda(cid)
        placements = sc.symbolic_block_positions(state, self.np_random, self.cfg)
        self.blocks = {
            c: sc.build_block(cid, c, self.cfg.block_sizes[c], placements[c][:3], placements[c][3])
            for c in sc.BLOCKS
        }
        self._static_names = {desk.table: "table", desk.shelf: "slider_shelf", desk.floor: "floor"}
        self._link_names = {idx: name for name, idx in self.links.items()}
        self._block_of = {uid: f"{c}_block" for c, uid in self.blocks.items()}
        lights = [(self.desk, self.links[name]) for name in ("led", "lightbulb")]
        self.static_camera.set_fixed(cid, fixed_links(cid, exclude=lights))
        self._built = True

        joints = {
            "slider": self.cfg.slider_left_state if state.get("slider") == "left" else 0.0,
            "drawer": sc.DRAWER_TRAVEL if state.get("drawer") == "open" else 0.0,
            "button": 0.0,
            "switch": sc.SWITCH_TRAVEL if int(state.get("lightbulb", 0)) else 0.0,
        }
        for name, q in joints.items():
            p.resetJointState(self.desk, self.links[name], q, physicsClientId=cid)
        self._hold_parts()
        self._shown: dict[str, tuple] = {}  # light colours on the rebuilt desk: its defaults
        self.led = int(state.get("led", 0))
        self._button_down = False
        for _ in range(SETTLE_STEPS):
            p.stepSimulation(physicsClientId=cid)
        self._read_state()
        self._pos_target, orn = self.robot.tcp_pose()
        self._orn_target = np.array(p.getEulerFromQuaternion(orn))
        self._update_lights()

    def _hold_parts(self) -> None:
        """Joint friction for the articulated parts and the button's spring (CALVIN's force 4)."""
        for name in ("slider", "drawer", "switch"):
            p.setJointMotorControl2(
                self.desk,
                self.links[name],
                p.VELOCITY_CONTROL,
                targetVelocity=0,
                force=sc.JOINT_FORCE,
                physicsClientId=self.cid,
            )
        p.setJointMotorControl2(
            self.desk,
            self.links["button"],
            p.POSITION_CONTROL,
            targetPosition=0.0,
            force=sc.JOINT_FORCE,
            physicsClientId=self.cid,
        )

    def refresh_state(self) -> None:
        """Re-read the parts, lights and light colours after bodies were moved from outside the env
        (``p.resetJointState`` and the like, as matching another env's state does); ``led`` is kept."""
        self._read_state()
        self._update_lights()
        self._sync_light_colours()

    def _read_state(self) -> None:
        """Read the articulated parts and block poses once per control step (many readers use them)."""
        indices = [self.links[n] for n in PARTS]
        states = p.getJointStates(self.desk, indices, physicsClientId=self.cid)
        self._joints = {n: float(s[0]) for n, s in zip(PARTS, states, strict=True)}
        self._block_poses = {
            c: p.getBasePositionAndOrientation(uid, physicsClientId=self.cid)
            for c, uid in self.blocks.items()
        }

    def _update_lights(self) -> None:
        pressed = self._joints["button"] > sc.BUTTON_TRAVEL / 2
        if pressed and not self._button_down:
            self.led = 1 - self.led
        self._button_down = pressed
        self.lightbulb = int(self._joints["switch"] > sc.SWITCH_TRAVEL / 2)

    def _sync_light_colours(self) -> None:
        """Show the lights' states on the desk before an image is rendered (only then: it costs)."""
        colours = {
            "led": sc.LED_ON if self.led else sc.LED_OFF,
            "lightbulb": sc.BULB_ON if self.lightbulb else sc.BULB_OFF,
        }
        for name, rgba in colours.items():
            if self._shown.get(name) != rgba:
                p.changeVisualShape(self.desk, self.links[name], rgbaColor=rgba, physicsClientId=self.cid)
                self._shown[name] = rgba

    # --- observations --------------------------------------------------------------------------
    def scene_obs(self) -> np.ndarray:
        """CALVIN's scene_obs: slider, drawer, button, switch, lightbulb, led, 3 x block pose."""
        values = [self._joints[n] for n in PARTS] + [self.lightbulb, self.led]
        for c in sc.BLOCKS:
            pos, orn = self._block_poses[c]
            values.extend(pos)
            values.extend(p.getEulerFromQuaternion(orn))
        return np.array(values, dtype=np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if self.cameras:
            self._sync_light_colours()
        if "static" in self.cameras:
            obs["rgb_static"] = self.static_camera.render(self.cid)
        if "gripper" in self.cameras:
            obs["rgb_gripper"] = self.gripper_camera.render(self.cid, self.robot.uid, self.robot.hand_link)
        obs["robot_obs"] = self.robot.observation()
        obs["scene_obs"] = self.scene_obs()
        return obs

    def _contacts(self, body: int) -> frozenset[str]:
        """What ``body`` touches: every contact point PyBullet reports counts, as in CALVIN."""
        names = set()
        for c in p.getContactPoints(bodyA=body, physicsClientId=self.cid):
            other, link = c[2], c[4]
            if other == body:
                continue  # the arm's self-collision; CALVIN's arm has none
            if other == self.robot.uid:
                names.add("robot")
            elif other in self._block_of:
                names.add(self._block_of[other])
            elif other in self._static_names:
                names.add(self._static_names[other])
            elif other == self.desk:
                names.add(self._link_names[link])
        return frozenset(names)

    def scene_info(self) -> dict[str, Any]:
        """The state the task oracle judges (see :mod:`envs.calvin.tasks`)."""
        blocks = {}
        for c, uid in self.blocks.items():
            pos, orn = self._block_poses[c]
            lin, ang = p.getBaseVelocity(uid, physicsClientId=self.cid)
            blocks[c] = {
                "pos": np.array(pos),
                "orn": np.array(orn),
                "lin_vel": np.array(lin),
                "ang_vel": np.array(ang),
                "contacts": self._contacts(uid),
            }
        return {
            "joints": dict(self._joints),
            "lights": {"lightbulb": self.lightbulb, "led": self.led},
            "robot": {"contacts": self._contacts(self.robot.uid)},
            "blocks": blocks,
        }

    # --- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"state", "task"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: 'state', 'task'")
        state = options.get("state")
        if state is None:
            from envs.calvin.chains import initial_states

            states = initial_states()
            state = states[int(self.np_random.integers(len(states)))]
        self.symbolic_state = dict(state)
        self._build(self.symbolic_state)
        self._task = None
        self._task_start = None
        if options.get("task") is not None:
            self.begin_subtask(options["task"])
        return self._obs(), self._info()

    def target_pose(self) -> np.ndarray:
        """The pose the arm is driven to: (x, y, z, Euler x, y, z), as relative actions update it."""
        if not self._built:
            raise RuntimeError("call reset() before target_pose()")
        return np.concatenate([self._pos_target, self._orn_target]).astype(np.float64)

    def begin_subtask(self, task: str) -> None:
        """Judge ``task`` from now on: the oracle's start info is the current scene info."""
        check_task(task)
        if not self._built:
            raise RuntimeError("call reset() before begin_subtask()")
        self._task = task
        self._task_start = self.scene_info()

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"scene": self.scene_name}
        if self._task is not None:
            info["task"] = self._task
            info["success"] = is_success(self._task, self._task_start, self.scene_info())
        return info

    def _check_action(self, action: Any) -> np.ndarray:
        arr = np.asarray(action, dtype=np.float64)
        if arr.shape != (7,):
            raise ValueError(f"action must have shape (7,), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action contains NaN or inf: {arr.tolist()}")
        return arr

    def step(self, action):
        if not self._built:
            raise RuntimeError("call reset() before step()")
        a = self._check_action(action)
        if self.action_mode == "relative":
            a[:6] = np.clip(a[:6], -1.0, 1.0)
            self._pos_target = self._pos_target + a[:3] * POS_SCALE
            self._orn_target = self._orn_target + a[3:6] * ORN_SCALE
        else:
            self._pos_target = a[:3].copy()
            self._orn_target = a[3:6].copy()
        self._pos_target = np.clip(self._pos_target, WORKSPACE_LOW, WORKSPACE_HIGH)
        self._orn_target = (self._orn_target + np.pi) % (2 * np.pi) - np.pi
        quat = p.getQuaternionFromEuler(self._orn_target)
        self.robot.command_joints(self.robot.inverse_kinematics(self._pos_target, np.array(quat)))
        self.robot.command_gripper(a[6])
        for _ in range(SUBSTEPS):
            p.stepSimulation(physicsClientId=self.cid)
        self._read_state()
        self._update_lights()
        info = self._info()
        success = bool(info.get("success", False))
        return self._obs(), float(success), success, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        self._sync_light_colours()
        return self.static_camera.render(self.cid)

    def close(self) -> None:
        if getattr(self, "cid", None) is not None and p.isConnected(self.cid):
            p.disconnect(self.cid)
        self.cid = None
