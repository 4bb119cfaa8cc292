"""Waypoint following for the scripted expert.

The controller moves a commanded target pose towards each waypoint by at most one relative-action
step (0.02 m, 0.05 rad) per control step and sends that target as an *absolute* action. The
environment therefore holds exactly the target the expert believes in (no drift between the two
after a blocked motion, e.g. a press on the button), and the equivalent relative action
(target change / scale, always within [-1, 1]) is available for data collection.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

POS_SCALE = 0.02  # metres per unit of relative action (the env's scaling)
ORN_SCALE = 0.05  # radians per unit of relative action
DOWN_ROLL = np.pi


def wrap(angle: float | np.ndarray) -> float | np.ndarray:
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


@dataclass
class Waypoint:
    """Move the TCP to ``pos`` with yaw ``yaw`` (gripper pointing down) and gripper state ``grip``.

    Done when the TCP is within ``tol`` metres (and the commanded target has arrived), after
    ``wait`` extra steps; or after ``max_steps`` steps in any case.
    """

    pos: np.ndarray
    yaw: float
    grip: float  # +1 open, -1 close
    tol: float = 0.01
    wait: int = 0
    max_steps: int = 60
    speed: float = 1.0  # fraction of the maximum step (0.02 m)


Script = Generator[Waypoint, dict, None]  # receives the latest observation dict


class WaypointController:
    """Turns a script (a generator of waypoints that receives observations) into absolute actions."""

    def __init__(self, script: Script, obs: dict) -> None:
        self.script = script
        robot_obs = np.asarray(obs["robot_obs"], dtype=float)
        self.target_pos = np.array(robot_obs[:3], dtype=float)
        self.target_euler = np.array(robot_obs[3:6], dtype=float)
        self.grip = float(robot_obs[14]) if len(robot_obs) > 14 else 1.0
        self.wp: Waypoint | None = None
        self.steps = 0
        self.settled = 0
        self.finished = False
        self._advance(obs, first=True)

    def _advance(self, obs: dict, first: bool = False) -> None:
        try:
            self.wp = next(self.script) if first else self.script.send(obs)
        except StopIteration:
            self.wp = None
            self.finished = True
        self.steps = 0
        self.settled = 0

    def act(self, obs: dict) -> np.ndarray:
        robot_obs = np.asarray(obs["robot_obs"], dtype=float)
        wp = self.wp
        if wp is not None and self._reached(wp, robot_obs):
            self._advance(obs)
            wp = self.wp
        if wp is not None:
            self.steps += 1
            step = POS_SCALE * wp.speed
            self.target_pos = self.target_pos + np.clip(wp.pos - self.target_pos, -step, step)
            goal_euler = np.array([DOWN_ROLL, 0.0, wp.yaw])
            d_orn = np.clip(wrap(goal_euler - self.target_euler), -ORN_SCALE, ORN_SCALE)
            self.target_euler = wrap(self.target_euler + d_orn)
            self.grip = wp.grip
        return np.concatenate([self.target_pos, self.target_euler, [self.grip]]).astype(np.float32)

    def _reached(self, wp: Waypoint, robot_obs: np.ndarray) -> bool:
        if self.steps >= wp.max_steps:
            return True
        target_there = (
            np.allclose(self.target_pos, wp.pos, atol=1e-6)
            and abs(wrap(self.target_euler[2] - wp.yaw)) < 1e-3
        )
        if not target_there or np.linalg.norm(robot_obs[:3] - wp.pos) > wp.tol:
            return False
        self.settled += 1
        return self.settled > wp.wait
