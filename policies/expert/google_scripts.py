"""Scripted expert for SimplerEnv's Google-robot tasks on ManiSkill3's Google robot.

Waypoints from privileged state (``scene_obs``: object poses, the cabinet's pose and drawer joints),
sent as SimplerEnv's 7-D delta actions in the robot base frame (the base faces -x in the world) with
the Google robot's relative gripper (+1 closes, -1 opens). SimplerEnv's Google controller moves the
hand from its *measured* pose and lags behind (about 3.5 cm per 1/3 s step at the 0.1 m command
limit), so each action is the whole remaining offset to the waypoint, clipped.

The hand keeps its start orientation (fingers closing along the robot's forward axis, the approach
tilted about 18 degrees forward), turned about its own approach axis where a grasp needs it. Turns
are slow (about 0.03 rad per step at the 0.1 rad command limit), so plans avoid them where they can.

Status (10 episodes per task, visual matching): the coke can horizontal, vertical and standing 10
of 10 each, close drawer 29 of 30 (pushed shut with half-closed fingers). The can picks hold since
the gripper plans from its last plan's velocity (``envs.simpler.google_controller``: from the sensed one
the squeeze came and went with the control steps and the can slid out on the lift). Move near 7
of 10 (the same pick). Open drawer (pinching the front plate's top edge, because SimplerEnv's
handles have no collision shape) and the apple task are not solved yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.simpler.google_layout import episode_layout
from envs.simpler.tasks import TASKS
from policies.expert.simpler_scripts import Phase, PhasedScript, State, _clip_norm, parse

STEP_M = 0.1
STEP_RAD = 0.1
#: A waypoint's orientation counts as reached within this: while the hand translates, the controller
#: (which plans in joint space from the measured pose) lets the orientation drift by up to about
#: 0.3 rad and takes several steps to take it back; no grasp here needs it closer.
ROT_TOL_RAD = 0.3
#: How far the fingers close (of their 1.31 rad command range) to push a drawer: fully closed
#: fingers press on each other, and that self-contact pushes the hand off its orientation.
PUSH_CLOSING = 0.6
#: How far below an object's centre of mass the TCP (between the fingertips) grasps it. Closing on
#: a can, the fingertips touch it 1 to 6 cm above the TCP, so a lying can (centre 3.3 cm above the
#: table) is grasped with the TCP 0.8 cm above the table, and a standing one 3.5 cm below its centre;
#: fingers that squeeze it above its middle push it down and out of the grasp.
GRASP_BELOW_COM_M = {"standing": 0.035, "lying": 0.025}
#: The drawer station, in each drawer's frame (SimplerEnv's ``custom/mk_station_recolor.urdf``): the
#: front plate (collision box at x 0.305, 0.015 x 0.615 x 0.14), the handle's bar in front of it
#: (visual only: x 0.3425, z 0.02), and the drawers' joint heights (``*_drawer_joint`` origins).
PLATE_X, PLATE_TOP = 0.305, 0.07
HANDLE_X = 0.3425
DRAWER_Z = {"top": 0.668, "middle": 0.423, "bottom": 0.178}
#: The TCP 4 cm below the plate's top edge: the closing fingertips reach 1 to 4.5 cm up from it.
PINCH_Z = PLATE_TOP - 0.04
#: Where the TCP pushes to, beyond the handle of the closed drawer: the closed fingers reach 3.5 cm
#: forward of it, and 1.5 cm more presses the drawer against its stop.
PUSH_REACH = 0.035 - 0.015
DRAWERS = ("top", "middle", "bottom")


def _quat_wxyz_to_rotation(q: Any) -> Rotation:
    return Rotation.from_quat([q[1], q[2], q[3], q[0]])


def _turn_about_approach(rot: Rotation, along: np.ndarray) -> Rotation:
    """``rot`` turned about its own approach axis (z) so that its closing axis (y) points along the
    horizontal direction ``along`` or its opposite, whichever is the smaller turn.

    Only the last wrist joint turns the hand about its approach axis; a turn about the world's
    vertical would also tilt the wrist, which sits near its joint limit in the start pose.
    """
    perp = np.array([-along[1], along[0], 0.0])
    x_axis, y_axis = rot.apply([1.0, 0.0, 0.0]), rot.apply([0.0, 1.0, 0.0])
    turn = np.arctan2(float(y_axis @ perp), float(x_axis @ perp))
    turn = (turn + np.pi / 2) % np.pi - np.pi / 2
    return rot * Rotation.from_euler("z", turn)


class GoogleRobotScript(PhasedScript):
    """The expert of one Google-robot episode: ``act(obs)`` gives the next 7-D action."""

    def __init__(self, task: str, episode: int, names: tuple[str, ...]) -> None:
        self.task = TASKS[task]
        self.layout = episode_layout(task, episode)
        if tuple(names) != self.layout.models:
            raise ValueError(
                f"expert: episode {episode} of {task} has objects {self.layout.models}, got {names}"
            )
        self.names = tuple(names)
        self.base = _quat_wxyz_to_rotation(self.layout.robot_q)
        self.start: State | None = None
        self.phases: list[Phase] = []
        self.index, self.steps_in_phase, self.waited = 0, 0, 0
        self.goal: tuple[np.ndarray, Rotation] | None = None
        self.closedness = 0.0
        self.push_closing = PUSH_CLOSING

    # --- plans -----------------------------------------------------------------------------------
    def _models(self) -> Any:
        from envs.simpler.reference import task_reference
        from envs.simpler.scanned import ScannedModels

        return ScannedModels(task_reference(self.task.name)["model_json"])

    def _long_axis(self, name: str, s: State) -> np.ndarray:
        size = self._models().bbox_size(name)
        return s.objects[name][1].apply(np.eye(3)[int(np.argmax(size))])

    def _grasp_rot(self, name: str, s: State) -> Rotation:
        axis = self._long_axis(name, s)
        if abs(axis[2]) > 0.7 or np.linalg.norm(axis[:2]) < 1e-6:  # standing: the start orientation
            return self.start.rot
        return _turn_about_approach(self.start.rot, np.array([-axis[1], axis[0]]))  # across the long axis

    def _pick(self, name: str, lift: float) -> list[Phase]:
        def at(s: State) -> tuple[np.ndarray, Rotation]:
            p = s.objects[name][0]
            standing = abs(self._long_axis(name, s)[2]) > 0.7
            below = GRASP_BELOW_COM_M["standing" if standing else "lying"]
            return np.array([p[0], p[1], p[2] - below]), self._grasp_rot(name, s)

        def above(s: State) -> tuple[np.ndarray, Rotation]:
            p, r = at(s)
            return p + [0.0, 0.0, 0.1], r

        return [
            Phase(above, False, tol=0.02, max_steps=25),
            Phase(at, False, tol=0.008, max_steps=14),
            # The fingers close at SimplerEnv's 1 rad/s planner limit: 1.3 s, four control steps.
            Phase(None, True, wait=6),
            Phase(lambda s: (s.tcp + [0.0, 0.0, lift], s.rot), True, tol=0.03, max_steps=8),
        ]

    def _place_near(self, source: str, target: str, others: list[str]) -> list[Phase]:
        start = self.start
        models = self._models()

        def half_diagonal(name: str) -> float:
            return float(np.linalg.norm(models.bbox_size(name)[:2]) / 2)

        def spot(s: State) -> np.ndarray:
            tp = s.objects[target][0][:2]
            gap = half_diagonal(source) + half_diagonal(target) + 0.01
            home = start.objects[source][0][:2]
            best, best_cost = None, np.inf
            for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
                p = tp + gap * np.array([np.cos(angle), np.sin(angle)])
                clear = all(
                    np.linalg.norm(p - s.objects[o][0][:2]) > gap + 0.03 + half_diagonal(o) for o in others
                )
                cost = float(np.linalg.norm(p - home)) + (0.0 if clear else 10.0)
                if cost < best_cost:
                    best, best_cost = p, cost
            return best

        release_z = start.objects[source][0][2] + 0.015 - GRASP_BELOW_COM_M["lying"]

        def over(s: State) -> tuple[np.ndarray, Rotation]:
            p = spot(s)
            return np.array([p[0], p[1], max(s.tcp[2], release_z + 0.08)]), s.rot

        return [
            Phase(over, True, tol=0.02, max_steps=25),
            Phase(lambda s: (np.array([*over(s)[0][:2], release_z]), s.rot), True, tol=0.012, max_steps=8),
            Phase(None, False, wait=3),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.1], s.rot), False, tol=0.03, max_steps=6),
        ]

    def _drawer_point(self, s: State, level: str, local: Sequence[float]) -> np.ndarray:
        """World position of a point given in the drawer's frame (it moves with the drawer)."""
        pos, rot = s.cabinet
        q = s.drawer_q[DRAWERS.index(level)]
        return pos + rot.apply(np.asarray(local, dtype=float) + [q, 0.0, DRAWER_Z[level]])

    def _open_drawer(self, level: str, pull: float) -> list[Phase]:
        """Pinch the top edge of the drawer's front plate from above and pull the drawer out.

        SimplerEnv's drawer handles are drawn but have no collision shape, so the plate is what the
        fingers can hold: in the start orientation they close along the cabinet's x, one finger in
        front of the plate and one behind it.
        """

        def at(z: float) -> Callable[[State], tuple[np.ndarray, Rotation]]:
            return lambda s: (self._drawer_point(s, level, [PLATE_X, 0.0, z]), self.start.rot)

        grip: dict[str, tuple[np.ndarray, Rotation]] = {}

        def out(s: State) -> tuple[np.ndarray, Rotation]:
            if not grip:  # fixed when the pull starts: the plate moves with the drawer
                grip["goal"] = (s.tcp + s.cabinet[1].apply([pull, 0.0, 0.0]), s.rot)
            return grip["goal"]

        return [
            Phase(at(PINCH_Z + 0.1), False, tol=0.015, max_steps=30),
            Phase(at(PINCH_Z), False, tol=0.008, max_steps=14),
            Phase(None, True, wait=5),
            Phase(out, True, tol=0.02, max_steps=20),
            Phase(None, False, wait=3),
        ]

    def _close_drawer(self, level: str) -> list[Phase]:
        """Push the front plate in with the closed fingers, in the start orientation, and keep pushing."""

        def front(x: float) -> Callable[[State], tuple[np.ndarray, Rotation]]:
            return lambda s: (self._drawer_point(s, level, [x, 0.0, 0.0]), self.start.rot)

        def shut(s: State) -> tuple[np.ndarray, Rotation]:
            q = s.drawer_q[DRAWERS.index(level)]
            return self._drawer_point(s, level, [HANDLE_X + PUSH_REACH - q, 0.0, 0.0]), self.start.rot

        return [
            Phase(front(HANDLE_X + 0.12), True, tol=0.02, max_steps=30),
            Phase(front(HANDLE_X + 0.05), True, tol=0.012, max_steps=10),
            # Held to the episode's end: the rule reads the joint then, and backing off with the
            # fingers over the front plate's top edge can drag the drawer out again.
            Phase(shut, True, wait=10**6, max_steps=10**6),
        ]

    def _plan(self) -> list[Phase]:
        kind = self.layout.kind
        hold = Phase(None, kind == "pick_can", wait=10**6)
        if kind == "pick_can":
            return [*self._pick(self.names[0], 0.12), hold]
        if kind == "move_near":
            src, tgt = self.names[self.layout.source], self.names[self.layout.target]
            others = [n for n in self.names if n not in (src, tgt)]
            return [*self._pick(src, 0.1), *self._place_near(src, tgt, others), hold]
        if kind == "open_drawer":
            return [*self._open_drawer(self.layout.drawer, 0.24), hold]
        if kind == "close_drawer":
            return [*self._close_drawer(self.layout.drawer), hold]
        return [*self._open_drawer("top", 0.24), *self._pick(self.names[0], 0.12), hold]

    # --- acting ----------------------------------------------------------------------------------
    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        s = parse(obs, self.names)
        if self.start is None:
            self.start = s
            self.phases = self._plan()
        phase = self._advance(s)
        action = np.zeros(7, dtype=np.float32)
        if self.goal is not None and self.index < len(self.phases):
            goal_p, goal_r = self.goal
            action[:3] = self.base.inv().apply(_clip_norm(goal_p - s.tcp, STEP_M))
            action[3:6] = self.base.inv().apply(_clip_norm((goal_r * s.rot.inv()).as_rotvec(), STEP_RAD))
        # The gripper is relative: send the change to the wanted closing once, then 0 (keep).
        wanted = (
            self.push_closing if phase.closed and self.layout.kind == "close_drawer" else float(phase.closed)
        )
        change = wanted - self.closedness
        action[6] = 0.0 if abs(change) < 1e-6 else float(np.clip(change, -1.0, 1.0))
        self.closedness = float(np.clip(self.closedness + float(action[6]), 0.0, 1.0))
        return action

    def _reached(self, s: State, phase: Phase) -> bool:
        goal_p, goal_r = self.goal
        return bool(
            np.linalg.norm(goal_p - s.tcp) < phase.tol and (goal_r * s.rot.inv()).magnitude() < ROT_TOL_RAD
        )
