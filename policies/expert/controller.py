"""Waypoint following for the scripted expert.

The controller moves a commanded target pose towards each waypoint along a straight line, with a
speed that ramps up and down (at most one relative-action step, 0.02 m / 0.05 rad, per control
step, so the equivalent relative actions are smooth rather than bang-bang), and sends that target
as an *absolute* action. It starts from the env's target when it is given one, so that the first
relative action is the true change of the target. A waypoint whose motion stalls (the arm
blocked short of it) is left after ``STALL_STEPS`` steps without progress. The
environment therefore holds exactly the target the expert believes in (no drift between the two
after a blocked motion, e.g. a press on the button), and the equivalent relative action
(target change / scale, always within [-1, 1]) is available for data collection.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

POS_SCALE = 0.02  # metres per unit of relative action (the env's scaling)
ORN_SCALE = 0.05  # radians per unit of relative action
DOWN_ROLL = np.pi
ACCEL = 0.25  # speed change per step, as a fraction of the top speed
STALL_STEPS = 8  # steps of less than STALL_MOTION metres of TCP motion, target reached: move on
STALL_MOTION = 0.001


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
    tilt: float = 0.0  # rotation about world x (rad): > 0 leans the hand back over -y, the TCP ahead


def gripper_euler(yaw: float, tilt: float = 0.0) -> np.ndarray:
    """Euler angles (PyBullet's x-y-z) of the gripper pointing down at ``yaw``, tilted about world x."""
    down = Rotation.from_euler("xyz", [DOWN_ROLL, 0.0, yaw])
    return (
        (Rotation.from_euler("x", tilt) * down).as_euler("xyz") if tilt else np.array([DOWN_ROLL, 0.0, yaw])
    )


Script = Generator[Waypoint, dict, None]  # receives the latest observation dict


class WaypointController:
    """Turns a script (a generator of waypoints that receives observations) into absolute actions."""

    def __init__(self, script: Script, obs: dict, start_target: np.ndarray | None = None) -> None:
        self.script = script
        robot_obs = np.asarray(obs["robot_obs"], dtype=float)
        start = robot_obs[:6] if start_target is None else np.asarray(start_target, dtype=float)
        self.target_pos = np.array(start[:3], dtype=float)
        self.target_euler = np.array(start[3:6], dtype=float)
        self.speed = 0.0
        self.turn_speed = 0.0
        self.stalled = 0
        self.last_tcp = robot_obs[:3].copy()
        self.grip = float(robot_obs[14]) if len(robot_obs) > 14 else 1.0
        self.wp: Waypoint | None = None
        self.steps = 0
        self.settled = 0
        self.stalled = 0
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
        self.stalled = 0

    def act(self, obs: dict) -> np.ndarray:
        robot_obs = np.asarray(obs["robot_obs"], dtype=float)
        wp = self.wp
        if wp is not None and self._reached(wp, robot_obs):
            self._advance(obs)
            wp = self.wp
        if wp is not None:
            self.steps += 1
            top = POS_SCALE * wp.speed
            delta = wp.pos - self.target_pos
            dist = float(np.linalg.norm(delta))
            # trapezoidal speed: ramp up by ACCEL, and slow down to stop at the waypoint
            brake = np.sqrt(2.0 * ACCEL * top * dist)
            self.speed = min(top, self.speed + ACCEL * top, brake, dist)
            if dist > 1e-9:
                self.target_pos = self.target_pos + delta / dist * self.speed
            if dist <= 1e-4:
                self.target_pos = wp.pos.astype(float).copy()
                self.speed = 0.0
            d_orn = wrap(gripper_euler(wp.yaw, wp.tilt) - self.target_euler)
            turn = float(np.linalg.norm(d_orn))
            brake = np.sqrt(2.0 * ACCEL * ORN_SCALE * turn)
            self.turn_speed = min(ORN_SCALE, self.turn_speed + ACCEL * ORN_SCALE, brake, turn)
            if turn > 1e-9:
                self.target_euler = wrap(self.target_euler + d_orn / turn * self.turn_speed)
            if turn <= 1e-5:
                self.turn_speed = 0.0
            self.grip = wp.grip
        return np.concatenate([self.target_pos, self.target_euler, [self.grip]]).astype(np.float32)

    def _reached(self, wp: Waypoint, robot_obs: np.ndarray) -> bool:
        if self.steps >= wp.max_steps:
            return True
        target_there = np.allclose(self.target_pos, wp.pos, atol=1e-6) and np.all(
            np.abs(wrap(self.target_euler - gripper_euler(wp.yaw, wp.tilt))) < 1e-3
        )
        moved = float(np.linalg.norm(robot_obs[:3] - self.last_tcp))
        self.last_tcp = robot_obs[:3].copy()
        self.stalled = self.stalled + 1 if target_there and moved < STALL_MOTION else 0
        if target_there and self.stalled >= STALL_STEPS and wp.wait == 0:
            return True  # blocked short of the waypoint: waiting longer would not get there
        if not target_there or np.linalg.norm(robot_obs[:3] - wp.pos) > wp.tol:
            return False
        self.settled += 1
        return self.settled > wp.wait
