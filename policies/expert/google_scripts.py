"""Scripted expert for SimplerEnv's Google-robot tasks on ManiSkill3's Google robot.

Waypoints from privileged state (``scene_obs``: object poses, the cabinet's pose and drawer joints),
sent as SimplerEnv's 7-D delta actions in the robot base frame (the base faces -x in the world) with
the Google robot's relative gripper (+1 closes, -1 opens). SimplerEnv's Google controller moves the
hand from its *measured* pose and lags behind (about 3.5 cm per 1/3 s step at the 0.1 m command
limit), so each action is the whole remaining offset to the waypoint, clipped.

The hand keeps its start orientation (fingers closing along the robot's forward axis, the approach
tilted about 18 degrees forward), turned about the vertical where a grasp needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.simpler.google_layout import episode_layout
from envs.simpler.tasks import TASKS
from policies.expert.simpler_scripts import Phase, PhasedScript, State, _clip_norm, parse

STEP_M = 0.1
STEP_RAD = 0.1
#: How far below an object's centre of mass the TCP (between the fingertips) grasps it: the fingers
#: reach about 5 cm up from the TCP, and a lying can's centre is 3.3 cm above the table.
GRASP_BELOW_COM_M = {"standing": 0.035, "lying": 0.012}
#: The drawer station's front plate, in each drawer's frame (SimplerEnv's ``custom/mk_station_recolor.urdf``,
#: drawer_front_collision: origin x 0.305, box 0.015 x 0.615 x 0.14) and its drawers' joint heights.
PLATE_X, PLATE_HALF_THICKNESS, PLATE_HALF_HEIGHT = 0.305, 0.0075, 0.07
DRAWER_Z = {"top": 0.668, "middle": 0.423, "bottom": 0.178}
DRAWERS = ("top", "middle", "bottom")


def _quat_wxyz_to_rotation(q: Any) -> Rotation:
    return Rotation.from_quat([q[1], q[2], q[3], q[0]])


def _yaw_turn(rot: Rotation, direction: np.ndarray) -> Rotation:
    """``rot`` turned about the vertical so that its closing axis (y) points along ``direction`` (xy)
    or its opposite, whichever is the smaller turn."""
    closing = rot.apply([0.0, 1.0, 0.0])
    turn = np.arctan2(direction[1], direction[0]) - np.arctan2(closing[1], closing[0])
    turn = (turn + np.pi / 2) % np.pi - np.pi / 2
    return Rotation.from_euler("z", turn) * rot


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
        return _yaw_turn(self.start.rot, np.array([-axis[1], axis[0]]))  # fingers across the long axis

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

    def _drawer_frame(self, s: State, level: str) -> tuple[Callable[[np.ndarray], np.ndarray], Rotation]:
        pos, rot = s.cabinet
        q = s.drawer_q[DRAWERS.index(level)]

        def world(local: np.ndarray) -> np.ndarray:
            return pos + rot.apply(np.asarray(local, dtype=float) + [q, 0.0, DRAWER_Z[level]])

        return world, _yaw_turn(self.start.rot, rot.apply([1.0, 0.0, 0.0])[:2])

    def _open_drawer(self, level: str, pull: float) -> list[Phase]:
        """Hook the closed fingers behind the drawer's front plate and pull it out along the cabinet's x."""
        top = PLATE_HALF_HEIGHT
        behind = PLATE_X - PLATE_HALF_THICKNESS - 0.03

        def waypoint(local: list[float]) -> Callable[[State], tuple[np.ndarray, Rotation]]:
            def target(s: State) -> tuple[np.ndarray, Rotation]:
                world, r = self._drawer_frame(s, level)
                return world(np.array(local)), r

            return target

        pulled: dict[str, np.ndarray] = {}

        def out(s: State) -> tuple[np.ndarray, Rotation]:
            if "goal" not in pulled:
                world, r = self._drawer_frame(s, level)
                pulled["goal"] = world(np.array([behind, 0.0, top - 0.02])) + s.cabinet[1].apply(
                    [pull, 0.0, 0.0]
                )
                pulled["rot"] = r
            return pulled["goal"], pulled["rot"]

        return [
            Phase(waypoint([PLATE_X + 0.08, 0.0, top + 0.04]), True, tol=0.02, max_steps=25),
            Phase(waypoint([behind, 0.0, top + 0.04]), True, tol=0.012, max_steps=10),
            Phase(waypoint([behind, 0.0, top - 0.02]), True, tol=0.01, max_steps=8),
            Phase(out, True, tol=0.02, max_steps=14),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.08], s.rot), True, tol=0.03, max_steps=5),
        ]

    def _close_drawer(self, level: str) -> list[Phase]:
        """Push the drawer's front plate in with the closed fingers, at the plate's height."""

        def front(s: State, gap: float, closed_goal: bool) -> tuple[np.ndarray, Rotation]:
            world, r = self._drawer_frame(s, level)
            q = s.drawer_q[DRAWERS.index(level)]
            x = PLATE_X + PLATE_HALF_THICKNESS + gap - (q + 0.08 if closed_goal else 0.0)
            return world(np.array([x, 0.0, 0.0])), r

        return [
            Phase(lambda s: front(s, 0.1, False), True, tol=0.02, max_steps=25),
            Phase(lambda s: front(s, 0.03, False), True, tol=0.012, max_steps=8),
            Phase(lambda s: front(s, 0.0, True), True, tol=0.015, max_steps=12),
            Phase(lambda s: front(s, 0.12, False), True, tol=0.03, max_steps=8),
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
        self.closedness = 1.0 if phase.closed else 0.0
        action[6] = 1.0 if phase.closed else -1.0
        return action

    def _reached(self, s: State, phase: Phase) -> bool:
        goal_p, goal_r = self.goal
        return bool(np.linalg.norm(goal_p - s.tcp) < phase.tol and (goal_r * s.rot.inv()).magnitude() < 0.08)
