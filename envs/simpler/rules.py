"""Success rules of the SimplerEnv-style tasks as pure functions of object states.

Thresholds are the reference's (``shared/reference/simpler.md``): a can counts as picked when it is
lifted more than 1 cm touching nothing but the robot, or more than 2 cm for 5 steps in a row; a
drawer is open at a joint position >= 0.15 m and closed at <= 0.05 m; a Bridge source object is on
its target when its centre lies within the target's bounding-box half diagonal (+3 mm) in xy, sits
above the target by at most 2 cm beyond the two half heights, and presses on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CAN_LIFT_M = 0.01
CAN_LIFT_HELD_M = 0.02
CAN_LIFT_HELD_STEPS = 5
DRAWER_OPEN_M = 0.15
DRAWER_CLOSE_START_M = 0.2
DRAWER_CLOSED_M = 0.05
NEAR_M = 0.1  # move near: the moved object's centre within this xy distance of the target's
MOVED_M = 0.03  # move near: other objects may move at most this much in xy
UPRIGHT_COS = np.cos(np.deg2rad(45.0))  # move near: cans tilted more than 45 degrees are knocked over
ON_XY_MARGIN_M = 0.003
ON_Z_MARGIN_M = 0.02
ON_MIN_FORCE_N = 0.05


def can_picked(lift: float, touches_other: bool, held_steps: int) -> bool:
    """Pick can: ``lift`` above the start height (m), ``held_steps`` consecutive steps above 2 cm."""
    return (lift > CAN_LIFT_M and not touches_other) or held_steps >= CAN_LIFT_HELD_STEPS


def drawer_open(q: float) -> bool:
    return q >= DRAWER_OPEN_M


def drawer_closed(q: float) -> bool:
    return q <= DRAWER_CLOSED_M


def moved_near(
    source_xy: Sequence[float],
    target_xy: Sequence[float],
    others_moved: Sequence[float],
    upright: Sequence[bool],
) -> bool:
    """Move near: source within :data:`NEAR_M` of the target, nothing else moved, nothing knocked over.

    ``others_moved`` are the xy displacements of the objects other than the source since the start;
    ``upright`` holds one flag per object that must stay upright.
    """
    near = float(np.linalg.norm(np.subtract(source_xy, target_xy))) <= NEAR_M
    return near and all(d <= MOVED_M for d in others_moved) and all(upright)


def is_upright(z_axis_world: Sequence[float]) -> bool:
    """Whether an object's local z-axis (in world coordinates) is within 45 degrees of vertical."""
    z = np.asarray(z_axis_world, dtype=float)
    return float(z[2] / (np.linalg.norm(z) + 1e-12)) >= UPRIGHT_COS


def on_top(
    source_pos: Sequence[float],
    source_half: Sequence[float],
    target_pos: Sequence[float],
    target_half: Sequence[float],
    contact_force: float,
) -> bool:
    """Bridge put-on rule on world bounding boxes (half sizes) and the source-target contact force."""
    offset = np.subtract(source_pos, target_pos)
    xy = (
        float(np.linalg.norm(offset[:2]))
        <= float(np.linalg.norm(np.asarray(target_half)[:2])) + ON_XY_MARGIN_M
    )
    gap = offset[2] - target_half[2] - source_half[2]
    z = offset[2] > 0 and gap <= ON_Z_MARGIN_M
    return bool(xy and z and contact_force > ON_MIN_FORCE_N)


def inside(pos_in_container: Sequence[float], inner_half: Sequence[float], *, above: float = 0.0) -> bool:
    """Whether a point (in the container's frame, about its inner centre) is in the inner box.

    ``above`` lets the point stick out of the top by that much (an apple resting in a shallow tray).
    """
    p = np.asarray(pos_in_container, dtype=float)
    h = np.asarray(inner_half, dtype=float)
    return bool(abs(p[0]) <= h[0] and abs(p[1]) <= h[1] and -h[2] <= p[2] <= h[2] + above)


def world_half_extents(local_half: Sequence[float], rotation: np.ndarray) -> np.ndarray:
    """Half sizes of the world-axis-aligned box around a box of ``local_half`` turned by ``rotation``."""
    return np.abs(np.asarray(rotation)) @ np.asarray(local_half, dtype=float)


def bridge_on_target(
    offset: Sequence[float],
    source_half: Sequence[float],
    target_half: Sequence[float],
    touches_other: bool,
    *,
    z_margin: float,
    xy_margin: float,
) -> bool:
    """SimplerEnv's Bridge rule: the source's centre of mass is over the target and just above it.

    ``offset`` is source minus target (centres of mass); the half sizes are SimplerEnv's signed
    bounding-box vectors (box size turned by the settled orientation, halved); ``touches_other``
    is whether the source touches anything but the target and the robot (ignored by the tasks
    that do not require it, which pass False).
    """
    d = np.asarray(offset, dtype=float)
    xy = float(np.linalg.norm(d[:2])) <= float(np.linalg.norm(np.asarray(target_half)[:2])) + xy_margin
    z = d[2] > 0 and d[2] - target_half[2] - source_half[2] <= z_margin
    return bool(xy and z and not touches_other)
