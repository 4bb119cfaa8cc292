"""Task scripts of the CALVIN-style expert: one generator of waypoints per task family.

Scripts read privileged state from the observation (``robot_obs``, ``scene_obs``) and the scene
layout (positions of handles, button and switch) from :mod:`envs.calvin.scene`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.transform import Rotation

from envs.calvin import geometry as g
from envs.calvin import scene as sc
from policies.expert.controller import Script, Waypoint, wrap

SAFE_Z = 0.62
OPEN, CLOSE = 1.0, -1.0
BLOCK_SLICES = {"red": slice(6, 12), "blue": slice(12, 18), "pink": slice(18, 24)}
PUSH_DISTANCE = 0.115
FLICK = 0.02  # the paddle stops this short of PUSH_DISTANCE and the block slides on
FLICK_SPEED = 0.7  # fraction of the top speed for the final stroke of a flick
DRAWER_INNER_HALF_WIDTH = g.DRAWER["box_half_x"] - g.DRAWER["wall"]
DESK_FRONT_Y = g.DESK_Y[0]


def block_pose(obs: dict, color: str) -> tuple[np.ndarray, float]:
    pose = np.asarray(obs["scene_obs"][BLOCK_SLICES[color]], dtype=float)
    return pose[:3], float(pose[5])


def tcp(obs: dict) -> np.ndarray:
    return np.asarray(obs["robot_obs"][:3], dtype=float)


def tcp_yaw(obs: dict) -> float:
    return float(obs["robot_obs"][5])


def held_block(obs: dict) -> str | None:
    """The block between the fingers, if any."""
    width, closing = float(obs["robot_obs"][6]), float(obs["robot_obs"][14]) < 0
    if width < 0.02 or not closing:
        return None
    t = tcp(obs)
    for color in BLOCK_SLICES:
        pos, _ = block_pose(obs, color)
        # between the fingers: close in height, and horizontally within half the longest block
        if abs(pos[2] - t[2]) < 0.04 and np.linalg.norm(pos[:2] - t[:2]) < 0.06:
            return color
    return None


def choose_yaw(obs: dict, axis_yaw: float, then_rotate: float = 0.0) -> float:
    """Gripper yaw equal to ``axis_yaw`` modulo pi that keeps the wrist joint inside its range.

    The wrist joint moves opposite to the yaw: q7 ~ q7_now - (yaw change). ``then_rotate`` is a
    further yaw change the script will make after grasping.
    """
    return _yaw_and_wrist_cost(obs, axis_yaw, then_rotate)[0]


def _yaw_and_wrist_cost(obs: dict, axis_yaw: float, then_rotate: float) -> tuple[float, float]:
    """Best yaw for ``axis_yaw`` (mod pi) and the largest wrist angle it needs."""
    q7 = float(obs["robot_obs"][13])
    best, best_cost = axis_yaw, np.inf
    for k in (0, 1):
        cand = float(wrap(axis_yaw + k * np.pi))
        q_grasp = q7 - float(wrap(cand - tcp_yaw(obs)))
        q_end = q_grasp - then_rotate
        cost = max(abs(q_grasp), abs(q_end))
        if cost < best_cost:
            best, best_cost = cand, cost
    return best, best_cost


FINGER_CENTRE = 0.047  # open finger pad centre from the TCP along the closing axis (m)
FINGER_RADIUS = 0.018  # half the finger's footprint plus a margin
OPEN_HALF_WIDTH = 0.04  # inner face of an open finger from the TCP
ENOUGH_ROOM = 0.015  # finger clearance beyond which a grasp does not need to move off centre
WRIST_LIMIT = 2.7  # |q7| the wrist may need (its range is +-2.9 rad)


def _box_distance(point: np.ndarray, centre: np.ndarray, yaw: float, half: tuple) -> float:
    """Distance in the table plane from ``point`` to a block's footprint (0 inside)."""
    c, s = np.cos(yaw), np.sin(yaw)
    rel = point - centre[:2]
    local = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1]])
    return float(np.linalg.norm(np.maximum(np.abs(local) - np.array(half[:2]), 0.0)))


def _best_grasp(
    obs: dict, color: str, cfg: sc.SceneConfig, then_rotate: float = 0.0
) -> tuple[float, np.ndarray, float]:
    """TCP position and yaw for grasping ``color``.

    Candidates are the block's horizontal body axes whose side fits between the open fingers (a
    tipped block has other horizontal axes). Each candidate may shift along its closing axis by
    the slack between block and fingers; the finger pads must keep clear of neighbouring blocks,
    e.g. one that a push left right next to this block. The 5 cm side is preferred when it is clear.
    """
    pose = np.asarray(obs["scene_obs"][BLOCK_SLICES[color]], dtype=float)
    pos = pose[:3].copy()
    rot = Rotation.from_euler("xyz", pose[3:6]).as_matrix()
    half = sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[color]]
    on_table = pos[1] < 0.0 and pos[2] > sc.TABLE_Z
    candidates = [
        (float(np.arctan2(rot[1, i], rot[0, i]) - np.pi / 2), half[i])
        for i in range(3)
        if abs(rot[2, i]) < 0.5 and half[i] <= OPEN_HALF_WIDTH - 0.004
    ]
    if not candidates:
        candidates = [(float(pose[5]), half[1])]
    if pos[1] > 0.0:  # slider compartment: the hand, wide along the closing axis, must not reach the
        # door in front or the cabinet behind, so the fingers close along x
        candidates = [min(candidates, key=lambda c: abs(np.cos(c[0])))]
    neighbours = []
    for c in BLOCK_SLICES:
        other = np.asarray(obs["scene_obs"][BLOCK_SLICES[c]], dtype=float)
        if c != color and abs(other[2] - pos[2]) < 0.05:
            neighbours.append((other[:3], float(other[5]), sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[c]]))
    in_drawer = pos[2] < sc.TABLE_Z - 0.02
    if in_drawer:  # the drawer's four walls are obstacles for the fingers too
        centre_y = sc.DRAWER_Y0 - float(obs["scene_obs"][1])
        wall_x = g.DRAWER["box_half_x"] - g.DRAWER["wall"] / 2
        half_y = (g.DRAWER["y"][1] - g.DRAWER["y"][0]) / 2
        for dx, dy, hx, hy in (
            (wall_x, 0, 0.01, half_y),
            (-wall_x, 0, 0.01, half_y),
            (0, half_y - 0.01, wall_x, 0.01),
            (0, -half_y - 0.01, g.DRAWER["panel"]["half_x"], 0.01),
        ):
            neighbours.append((np.array([cfg.drawer_x + dx, centre_y + dy, 0.0]), 0.0, (hx, hy, 0.03)))

    def clearance(centre: np.ndarray, axis: float) -> float:
        d = np.array([-np.sin(axis), np.cos(axis)])
        fingers = [centre[:2] + s * FINGER_CENTRE * d for s in (-1, 1)]
        if not neighbours:
            return 1.0
        return min(_box_distance(f, *n) for f in fingers for n in neighbours) - FINGER_RADIUS

    options = []
    for rank, (axis, half_along) in enumerate(sorted(candidates, key=lambda c: c[1])):
        wrist_ok = _yaw_and_wrist_cost(obs, axis, then_rotate)[1] < WRIST_LIMIT
        slack = max(0.0, OPEN_HALF_WIDTH - half_along - 0.004)
        d = np.array([-np.sin(axis), np.cos(axis), 0.0])
        # in the slider compartments the blocks lie apart: grasp centred
        for shift in (0.0, slack, -slack) if on_table or in_drawer else (0.0,):
            centre = pos + shift * d
            room = clearance(centre, axis)
            # more room than ENOUGH_ROOM counts the same, so the centred grasp wins when it fits
            options.append((wrist_ok, room >= 0.004, -rank, min(room, ENOUGH_ROOM), centre, axis))
    best = max(options, key=lambda o: o[:4])
    return best[3], best[4], best[5]


def plan_grasp(
    obs: dict, color: str, cfg: sc.SceneConfig, then_rotate: float = 0.0
) -> tuple[np.ndarray, float]:
    """TCP position and yaw for grasping ``color`` (see :func:`_best_grasp`)."""
    _, centre, axis = _best_grasp(obs, color, cfg, then_rotate)
    return centre, choose_yaw(obs, axis, then_rotate)


def make_room(obs: dict, color: str, cfg: sc.SceneConfig) -> Script:
    """If no grasp of ``color`` keeps the fingers off a neighbouring block, push that neighbour
    towards the back of the desk (its free side) until the fingers fit. Returns the last observation.
    """
    clearance, centre, axis = _best_grasp(obs, color, cfg)
    if clearance >= 0.0:
        return obs
    target = block_pose(obs, color)[0]
    others = [c for c in BLOCK_SLICES if c != color and abs(block_pose(obs, c)[0][2] - target[2]) < 0.05]
    if not others:
        return obs
    blocker = min(others, key=lambda c: np.linalg.norm(block_pose(obs, c)[0][:2] - centre[:2]))
    pos, yaw = block_pose(obs, blocker)
    half = sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[blocker]]
    y_ext = abs(np.sin(yaw)) * half[0] + abs(np.cos(yaw)) * half[1]
    new_y = min(target[1] + FINGER_RADIUS + 0.01 + y_ext, -0.06 - y_ext)
    if new_y <= pos[1] + 0.01:
        return obs
    g = choose_yaw(obs, np.pi / 2)  # fingers side by side along x: a wide paddle pushing along y
    start_y = pos[1] - y_ext - 0.03
    z = sc.TABLE_Z + 0.02
    yield from move_over(obs, (pos[0], start_y), g, CLOSE)
    yield Waypoint(_at(pos[0], start_y, z), g, CLOSE, tol=0.01, max_steps=50)
    end_y = new_y - y_ext - 0.01
    yield Waypoint(_at(pos[0], end_y, z), g, CLOSE, tol=0.008, max_steps=60, speed=0.5)
    yield Waypoint(_at(pos[0], end_y - 0.02, z + 0.01), g, CLOSE, tol=0.02, max_steps=20)
    last = yield Waypoint(_at(pos[0], end_y - 0.02, SAFE_Z), g, CLOSE, tol=0.03, max_steps=40)
    return last if last is not None else obs


def _at(x: float, y: float, z: float) -> np.ndarray:
    return np.array([x, y, z], dtype=float)


FACE_CLEAR_Y = -0.04  # a TCP behind this y, low, is at the cabinet's face or in its compartment
HAND_HALF_WIDTH = 0.11  # half the hand's length along the closing axis, plus a margin
SWITCH_CLEARANCE = 0.08  # half the switch's width plus a margin


def retreat(obs: dict) -> Script:
    """Move straight up to the safe height, keeping the gripper as it is, and wait a few steps so
    that a block the last task set in motion comes to rest. Returns the last observation.

    Closing on the way up would grab a block just released between the fingers; the task's next
    waypoint changes the gripper once the hand is clear.
    """
    t = tcp(obs)
    grip = OPEN if float(obs["robot_obs"][14]) > 0 else CLOSE
    z = SAFE_Z if t[2] < SAFE_Z - 0.03 else t[2]
    if t[1] > FACE_CLEAR_Y and t[2] < SAFE_Z - 0.03:
        # at the cabinet (shelf, door, switch): back off towards the robot before going up
        tilt = SHELF_TILT if t[1] > g.FRONT_TOP_Y + 0.02 else 0.0
        out = _at(t[0], FACE_CLEAR_Y - 0.02, t[2] + 0.01)
        yield Waypoint(out, tcp_yaw(obs), grip, tol=0.015, max_steps=40, speed=0.6, tilt=tilt)
        t = out
    last = yield Waypoint(_at(t[0], t[1], z), tcp_yaw(obs), grip, tol=0.03, wait=4, max_steps=45)
    return last if last is not None else obs


def move_over(obs: dict, xy, yaw: float, grip: float, tilt: float = 0.0) -> Script:
    """Go to the safe height above ``xy``; a point over the compartment is entered from the front,
    so that the hand never passes over the door and its handle."""
    if xy[1] > g.FRONT_TOP_Y:
        yield Waypoint(_at(xy[0], g.FRONT_TOP_Y - 0.06, SAFE_Z), yaw, grip, tol=0.02, max_steps=80, tilt=tilt)
    yield Waypoint(_at(xy[0], xy[1], SAFE_Z), yaw, grip, tol=0.02, max_steps=80, tilt=tilt)


SHELF_TILT = 0.3  # lean of the hand over the shelf, so that the wrist clears the cabinet's roof
SWITCH_TILT = 0.5
SHELF_ROOM = 0.08  # distance from a place on the shelf to the nearest other block
SHELF_RISE = 0.045  # a block on the shelf is lifted this much, then drawn out of the compartment


def in_compartment(pos: np.ndarray) -> bool:
    """Whether a position lies in the cabinet's shelf compartment (behind the desk top)."""
    return bool(pos[1] > g.FRONT_TOP_Y)


def grasp_at(obs: dict, pos: np.ndarray, yaw: float, lift_to: float = SAFE_Z) -> Script:
    """Open, go above ``pos``, descend, close, lift. On the shelf the hand leans back and the block
    is lifted a little, then drawn out towards the robot before it rises."""
    shelf = in_compartment(pos)
    tilt = SHELF_TILT if shelf else 0.0
    yield from move_over(obs, pos, yaw, OPEN, tilt=tilt)
    yield Waypoint(_at(pos[0], pos[1], pos[2] + 0.06), yaw, OPEN, tol=0.01, max_steps=40, tilt=tilt)
    low = _at(pos[0], pos[1], pos[2] - 0.008)
    yield Waypoint(low, yaw, OPEN, tol=0.006, wait=2, max_steps=40, speed=0.5, tilt=tilt)
    yield Waypoint(low, yaw, CLOSE, tol=0.02, wait=12, max_steps=20, tilt=tilt)
    if shelf:
        up = _at(pos[0], pos[1], pos[2] + SHELF_RISE)
        yield Waypoint(up, yaw, CLOSE, tol=0.01, max_steps=30, speed=0.5, tilt=tilt)
        out = _at(pos[0], g.FRONT_TOP_Y - 0.06, pos[2] + SHELF_RISE)
        yield Waypoint(out, yaw, CLOSE, tol=0.015, max_steps=40, speed=0.6, tilt=tilt)
        yield Waypoint(_at(out[0], out[1], lift_to), yaw, CLOSE, tol=0.02, max_steps=40, speed=0.6)
    else:
        yield Waypoint(_at(pos[0], pos[1], lift_to), yaw, CLOSE, tol=0.02, max_steps=60, speed=0.6)


def release_at(obs: dict, pos: np.ndarray, yaw: float) -> Script:
    """Carry the held block above ``pos``, lower it there, open and go up."""
    if in_compartment(pos):
        return (yield from _release_on_shelf(obs, pos, yaw))
    yield from move_over(obs, pos, yaw, CLOSE)
    yield Waypoint(
        _at(pos[0], pos[1], pos[2] + 0.005), yaw, CLOSE, tol=0.008, wait=3, max_steps=60, speed=0.6
    )
    yield Waypoint(_at(pos[0], pos[1], pos[2] + 0.005), yaw, OPEN, tol=0.05, wait=8, max_steps=12)
    last = yield Waypoint(_at(pos[0], pos[1], SAFE_Z), yaw, OPEN, tol=0.03, max_steps=40)
    return last


def _release_on_shelf(obs: dict, pos: np.ndarray, yaw: float) -> Script:
    """Bring the block in front of the compartment low, slide it in over the shelf, set it down,
    open, and draw the hand out before going up (the cabinet's roof is above)."""
    t = SHELF_TILT
    front = _at(pos[0], g.FRONT_TOP_Y - 0.06, pos[2] + SHELF_RISE)
    yield from move_over(obs, front, yaw, CLOSE, tilt=t)
    yield Waypoint(front, yaw, CLOSE, tol=0.01, max_steps=50, tilt=t)
    yield Waypoint(_at(pos[0], pos[1], front[2]), yaw, CLOSE, tol=0.01, max_steps=40, speed=0.6, tilt=t)
    low = _at(pos[0], pos[1], pos[2] + 0.005)
    yield Waypoint(low, yaw, CLOSE, tol=0.008, wait=3, max_steps=40, speed=0.5, tilt=t)
    yield Waypoint(low, yaw, OPEN, tol=0.05, wait=8, max_steps=12, tilt=t)
    yield Waypoint(_at(pos[0], pos[1], pos[2] + 0.03), yaw, OPEN, tol=0.015, max_steps=20, tilt=t)
    yield Waypoint(_at(pos[0], front[1], pos[2] + 0.03), yaw, OPEN, tol=0.02, max_steps=40, tilt=t)
    last = yield Waypoint(_at(pos[0], front[1], SAFE_Z), yaw, OPEN, tol=0.03, max_steps=40)
    return last


def free_table_spot(obs: dict, exclude: str | None = None, cfg: sc.SceneConfig | None = None) -> np.ndarray:
    """A table position far from the other blocks and the button."""
    others = [block_pose(obs, c)[0][:2] for c in BLOCK_SLICES if c != exclude]
    if cfg is not None:
        others.append(np.array([cfg.button_x, sc.BUTTON_Y]))
    best, best_d = None, -1.0
    for x in np.linspace(-0.3, 0.32, 12):
        for y in (-0.13, -0.09):
            d = min(np.linalg.norm(np.array([x, y]) - o) for o in others)
            if d > best_d:
                best, best_d = (x, y), d
    return _at(best[0], best[1], sc.TABLE_Z + sc.BLOCK_HALF_HEIGHT)


def put_down_held(obs: dict, cfg: sc.SceneConfig) -> Script:
    """Prologue for tasks that need a free gripper: set a held block down on the table.

    Returns the observation at the end, from which the task's own script starts.
    """
    color = held_block(obs)
    if color is None:
        return obs
    obs = yield from retreat(obs)
    spot = free_table_spot(obs, exclude=color, cfg=cfg)
    last = yield from release_at(obs, spot, tcp_yaw(obs))
    return last if last is not None else obs


# --- task scripts -----------------------------------------------------------------------------------
def lift(color: str) -> Callable[[dict, sc.SceneConfig], Script]:
    def script(obs: dict, cfg: sc.SceneConfig) -> Script:
        obs = yield from retreat(obs)
        pos = block_pose(obs, color)[0]
        if in_compartment(pos):
            obs = yield from clear_door_for(obs, cfg, float(pos[0]))
        obs = yield from make_room(obs, color, cfg)
        yield from grasp_at(obs, *plan_grasp(obs, color, cfg))

    return script


def rotate(color: str, direction: str) -> Callable[[dict, sc.SceneConfig], Script]:
    turn = -np.pi / 2 if direction == "right" else np.pi / 2

    def script(obs: dict, cfg: sc.SceneConfig) -> Script:
        obs = yield from retreat(obs)
        obs = yield from make_room(obs, color, cfg)
        pos, g = plan_grasp(obs, color, cfg, then_rotate=turn)
        yield from grasp_at(obs, pos, g, lift_to=pos[2] + 0.03)
        end = float(wrap(g + turn))
        yield Waypoint(_at(pos[0], pos[1], pos[2] + 0.03), end, CLOSE, tol=0.02, wait=3, max_steps=60)
        yield Waypoint(
            _at(pos[0], pos[1], pos[2] + 0.002), end, CLOSE, tol=0.01, wait=2, max_steps=30, speed=0.5
        )
        yield Waypoint(_at(pos[0], pos[1], pos[2] + 0.002), end, OPEN, tol=0.05, wait=8, max_steps=12)
        yield Waypoint(_at(pos[0], pos[1], SAFE_Z), end, OPEN, tol=0.03, max_steps=40)

    return script


def push_block(
    obs: dict,
    color: str,
    cfg: sc.SceneConfig,
    direction: tuple[float, float],
    distance: float,
    flick: float = 0.0,
    z: float = sc.TABLE_Z + 0.02,
) -> Script:
    """Push ``color`` along the table by ``distance`` in ``direction`` (+-x or +-y) with the closed
    fingers side by side as a paddle, then back off. Returns the last observation.

    With ``flick`` > 0 the paddle stops that far short at full speed and the block slides the rest,
    so that it ends the push untouched (push_into_drawer, for one, needs an untouched block).
    """
    d = np.array(direction, dtype=float)
    pos, yaw = block_pose(obs, color)
    half = sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[color]]
    extent = abs(d @ [np.cos(yaw), np.sin(yaw)]) * half[0] + abs(d @ [-np.sin(yaw), np.cos(yaw)]) * half[1]
    start = pos[:2] - d * (extent + 0.03)
    end = pos[:2] + d * (distance - extent - 0.01 - flick)
    axis = float(np.arctan2(d[1], d[0]))  # closing axis across the push: a wide paddle
    lo, hi = sorted((start[0], end[0]))
    near_switch = lo - HAND_HALF_WIDTH < cfg.switch_x + SWITCH_CLEARANCE and hi + HAND_HALF_WIDTH > (
        cfg.switch_x - SWITCH_CLEARANCE
    )
    # a hand wide along y would reach the switch: lean it back over the desk
    t = (
        SHELF_TILT
        if abs(d[0]) > 0.5 and near_switch and pos[1] + HAND_HALF_WIDTH > FACE_CLEAR_Y - 0.01
        else 0.0
    )
    g = choose_yaw(obs, axis)
    yield from move_over(obs, start, g, CLOSE, tilt=t)
    yield Waypoint(_at(*start, z), g, CLOSE, tol=0.01, max_steps=50, tilt=t)
    if flick > 0:
        run_up = end - d * 0.04
        yield Waypoint(_at(*run_up, z), g, CLOSE, tol=0.008, max_steps=80, speed=0.5, tilt=t)
        yield Waypoint(_at(*end, z), g, CLOSE, tol=0.05, max_steps=3, speed=FLICK_SPEED, tilt=t)
    else:
        yield Waypoint(_at(*end, z), g, CLOSE, tol=0.008, max_steps=80, speed=0.5, tilt=t)
    back = end - d * 0.02
    yield Waypoint(_at(*back, z + 0.01), g, CLOSE, tol=0.02, max_steps=20, tilt=t)
    last = yield Waypoint(_at(*back, SAFE_Z), g, CLOSE, tol=0.03, max_steps=40)
    return last if last is not None else obs


def push(color: str, direction: str) -> Callable[[dict, sc.SceneConfig], Script]:
    sign = 1.0 if direction == "right" else -1.0

    def script(obs: dict, cfg: sc.SceneConfig) -> Script:
        obs = yield from retreat(obs)
        x0 = block_pose(obs, color)[0][0]
        # The oracle needs 0.1 m: a flick leaves the block untouched at the end (a later
        # push_into_drawer needs that); a plain push finishes the job if the block slid short.
        obs = yield from push_block(obs, color, cfg, (sign, 0.0), PUSH_DISTANCE, flick=FLICK)
        moved = sign * (block_pose(obs, color)[0][0] - x0)
        if moved < PUSH_DISTANCE - 0.01:
            yield from push_block(obs, color, cfg, (sign, 0.0), PUSH_DISTANCE - moved)

    return script


def _face_point(x: float, u: float, n: float) -> np.ndarray:
    return g.slope_point(x, u, n)


def slide_door(obs: dict, cfg: sc.SceneConfig, goal_q: float) -> Script:
    """Push the sliding door beside its grip bar until the slider joint reaches ``goal_q``.

    Returns the last observation."""
    q = float(obs["scene_obs"][0])
    sign = 1.0 if goal_q > q else -1.0  # the joint increases when the door moves to -x
    yaw = choose_yaw(obs, np.pi / 2)  # fingers side by side along x, thin along y
    handle = sc.door_handle_position(cfg, q)
    # the fingertips beside the grip bar, between the door's face and the bar's front
    side = handle[0] + sign * (g.DOOR_HANDLE["half_x"] + 0.025)
    u = sum(g.DOOR_HANDLE["u"]) / 2
    n = g.DOOR_HANDLE["n"][1] - 0.012
    start = _face_point(side, u, n)
    out = start + g.SLOPE_N * 0.06
    yield from move_over(obs, out, yaw, CLOSE)
    yield Waypoint(out, yaw, CLOSE, tol=0.01, max_steps=50)
    yield Waypoint(start, yaw, CLOSE, tol=0.01, max_steps=40, speed=0.5)
    end = start - np.array([goal_q - q + sign * 0.01, 0.0, 0.0])  # the door's x is door_x0 - q
    yield Waypoint(end, yaw, CLOSE, tol=0.015, max_steps=80, speed=0.6)
    back = end + g.SLOPE_N * 0.06
    yield Waypoint(back, yaw, CLOSE, tol=0.02, max_steps=30)
    last = yield Waypoint(_at(back[0], back[1], SAFE_Z), yaw, CLOSE, tol=0.03, max_steps=40)
    return last if last is not None else obs


def door_clear_of(cfg: sc.SceneConfig, q: float, x: float) -> bool:
    """Whether a hand reaching into the compartment at ``x`` stays clear of the door at ``q``."""
    left = cfg.slider_x - q
    return x - HAND_HALF_WIDTH > left + 2 * g.DOOR["half_x"] or x + HAND_HALF_WIDTH < left


def clear_door_for(obs: dict, cfg: sc.SceneConfig, x: float) -> Script:
    """Slide the door to whichever end leaves room for the hand at ``x`` (a task may have left it
    part open). Returns the last observation."""
    q = float(obs["scene_obs"][0])
    if door_clear_of(cfg, q, x):
        return obs
    ends = [e for e in (0.0, cfg.slider_travel) if door_clear_of(cfg, e, x)]
    if not ends:
        return obs
    goal = min(ends, key=lambda e: abs(e - q))
    return (yield from slide_door(obs, cfg, goal))


def move_slider(direction: str) -> Callable[[dict, sc.SceneConfig], Script]:
    def script(obs: dict, cfg: sc.SceneConfig) -> Script:
        obs = yield from retreat(obs)
        yield from slide_door(obs, cfg, cfg.slider_travel if direction == "left" else 0.0)

    return script


def open_drawer(obs: dict, cfg: sc.SceneConfig) -> Script:
    """Hook the closed fingers behind the handle bar and pull the drawer out."""
    obs = yield from retreat(obs)
    q = float(obs["scene_obs"][1])
    bar = sc.drawer_handle_position(cfg, q)
    yaw = choose_yaw(obs, np.pi / 2)  # fingers side by side along x, thin along y
    behind = _at(bar[0], bar[1] + 0.035, bar[2])
    yield from move_over(obs, behind, yaw, CLOSE)
    yield Waypoint(_at(behind[0], behind[1], bar[2] + 0.06), yaw, CLOSE, tol=0.01, max_steps=40)
    yield Waypoint(behind, yaw, CLOSE, tol=0.006, wait=1, max_steps=40, speed=0.5)
    end_y = behind[1] - (sc.DRAWER_TRAVEL - q) - 0.01
    yield Waypoint(_at(behind[0], end_y, bar[2]), yaw, CLOSE, tol=0.015, max_steps=80, speed=0.5)
    yield Waypoint(_at(behind[0], end_y, SAFE_Z), yaw, CLOSE, tol=0.03, max_steps=40)


def close_drawer(obs: dict, cfg: sc.SceneConfig) -> Script:
    """Push the drawer's handle bar back in."""
    obs = yield from retreat(obs)
    q = float(obs["scene_obs"][1])
    bar = sc.drawer_handle_position(cfg, q)
    yaw = choose_yaw(obs, np.pi / 2)
    front = _at(bar[0], bar[1] - 0.03, bar[2])
    yield from move_over(obs, front, yaw, CLOSE)
    yield Waypoint(front, yaw, CLOSE, tol=0.01, max_steps=50)
    closed_y = sc.drawer_handle_position(cfg, 0.0)[1] - 0.025
    yield Waypoint(_at(front[0], closed_y, front[2]), yaw, CLOSE, tol=0.015, max_steps=80, speed=0.6)
    yield Waypoint(_at(front[0], closed_y - 0.03, SAFE_Z), yaw, CLOSE, tol=0.03, max_steps=40)


def press_button(obs: dict, cfg: sc.SceneConfig) -> Script:
    obs = yield from retreat(obs)
    yaw = choose_yaw(obs, np.pi / 2)
    top = g.BUTTON["z"][1]
    yield from move_over(obs, (cfg.button_x, sc.BUTTON_Y), yaw, CLOSE)
    yield Waypoint(_at(cfg.button_x, sc.BUTTON_Y, top + 0.04), yaw, CLOSE, tol=0.01, max_steps=40)
    yield Waypoint(
        _at(cfg.button_x, sc.BUTTON_Y, top - 0.02), yaw, CLOSE, tol=0.004, wait=2, max_steps=30, speed=0.4
    )
    yield Waypoint(_at(cfg.button_x, sc.BUTTON_Y, SAFE_Z), yaw, CLOSE, tol=0.03, max_steps=40)


def flip_switch(up: bool) -> Callable[[dict, sc.SceneConfig], Script]:
    """Push the switch up (or down) its 60 degree rail with the closed fingertips.

    The hand leans back (``SWITCH_TILT``): the switch's upper end lies at the edge of the arm's
    reach with the gripper vertical."""

    def script(obs: dict, cfg: sc.SceneConfig) -> Script:
        obs = yield from retreat(obs)
        q = float(obs["scene_obs"][3])
        yaw = choose_yaw(obs, np.pi / 2)  # fingers side by side along x: a paddle across the switch
        sw = g.SWITCH
        n = sum(sw["n"]) / 2 + 0.005
        if up:
            u0, u1 = sw["u"][0] + q - 0.014, sw["u"][0] + sc.SWITCH_TRAVEL + 0.006
        else:
            u0, u1 = sw["u"][1] + q + 0.014, sw["u"][1] - 0.006
        start = _face_point(cfg.switch_x, u0, n)
        out = start + g.SLOPE_N * 0.07
        yield from move_over(obs, out, yaw, CLOSE, tilt=SWITCH_TILT)
        yield Waypoint(out, yaw, CLOSE, tol=0.01, max_steps=50, tilt=SWITCH_TILT)
        yield Waypoint(start, yaw, CLOSE, tol=0.008, max_steps=40, speed=0.5, tilt=SWITCH_TILT)
        end = _face_point(cfg.switch_x, u1, n)
        yield Waypoint(end, yaw, CLOSE, tol=0.012, max_steps=60, speed=0.4, tilt=SWITCH_TILT)
        back = end + g.SLOPE_N * 0.07
        yield Waypoint(back, yaw, CLOSE, tol=0.02, max_steps=30, tilt=SWITCH_TILT)
        yield Waypoint(_at(back[0], back[1], SAFE_Z), yaw, CLOSE, tol=0.03, max_steps=40)

    return script


def _held_or_nearest(obs: dict) -> str:
    color = held_block(obs)
    if color is not None:
        return color
    t = tcp(obs)
    return min(BLOCK_SLICES, key=lambda c: np.linalg.norm(block_pose(obs, c)[0] - t))


def place_in_slider(obs: dict, cfg: sc.SceneConfig) -> Script:
    color = _held_or_nearest(obs)
    obs = yield from retreat(obs)
    others = [block_pose(obs, c)[0][:2] for c in BLOCK_SLICES if c != color]
    y = cfg.slider_spots["slider_left"][1] - 0.01
    q = float(obs["scene_obs"][0])
    lo, hi = cfg.shelf_x - g.SHELF["half"][0] + 0.06, cfg.shelf_x + g.SHELF["half"][0] - 0.06
    xs = np.linspace(lo, hi, 16)

    def best_spot(door_q: float) -> tuple[float, tuple[float, float] | None]:
        free = [(x, y) for x in xs if door_clear_of(cfg, door_q, x)]
        if not free:
            return -1.0, None
        spot = max(free, key=lambda s: min([np.linalg.norm(np.array(s) - o) for o in others] + [1.0]))
        return min([np.linalg.norm(np.array(spot) - o) for o in others] + [1.0]), spot

    room, spot = best_spot(q)
    if room < SHELF_ROOM:  # no free place beside the door as it is: try the door at either end
        goal = max((0.0, cfg.slider_travel), key=lambda e: (best_spot(e)[0] >= SHELF_ROOM, -abs(e - q)))
        if best_spot(goal)[0] > room:
            obs = yield from slide_door(obs, cfg, goal)
            q = float(obs["scene_obs"][0])
            room, spot = best_spot(q)
    spot = spot or (lo, y)
    target = _at(spot[0], spot[1], sc.SHELF_TOP_Z + sc.BLOCK_HALF_HEIGHT + 0.008)
    yield from release_at(obs, target, choose_yaw(obs, np.pi / 2))


def drawer_open_middle_y(obs: dict) -> float:
    """y of the middle of the part of the drawer that sticks out of the desk.

    The oracle ends open_drawer at 0.12 m, so a later task may find the drawer only part open.
    """
    front_inner = g.DRAWER["y"][0] + g.DRAWER["wall"] - float(obs["scene_obs"][1])
    return (front_inner + DESK_FRONT_Y) / 2


def place_in_drawer(obs: dict, cfg: sc.SceneConfig) -> Script:
    obs = yield from retreat(obs)
    # fingers close along y, so the block's long side lies along the drawer's width
    target = _at(cfg.drawer_x, drawer_open_middle_y(obs), sc.DRAWER_FLOOR_Z + sc.BLOCK_HALF_HEIGHT + 0.015)
    yield from release_at(obs, target, choose_yaw(obs, 0.0))


def stack_block(obs: dict, cfg: sc.SceneConfig) -> Script:
    color = _held_or_nearest(obs)
    obs = yield from retreat(obs)
    candidates = [c for c in BLOCK_SLICES if c != color]
    bottom = min(
        candidates,
        key=lambda c: (
            abs(block_pose(obs, c)[0][2] - (sc.TABLE_Z + sc.BLOCK_HALF_HEIGHT))
            + 10 * (block_pose(obs, c)[0][1] > 0.0)
        ),
    )
    pos, yaw = block_pose(obs, bottom)
    target = _at(pos[0], pos[1], pos[2] + 2 * sc.BLOCK_HALF_HEIGHT + 0.006)
    yield from release_at(obs, target, choose_yaw(obs, yaw))


def _extent(cfg: sc.SceneConfig, color: str, yaw: float, d: np.ndarray) -> float:
    """Half the footprint of ``color`` along the unit direction ``d``."""
    half = sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[color]]
    return abs(d @ [np.cos(yaw), np.sin(yaw)]) * half[0] + abs(d @ [-np.sin(yaw), np.cos(yaw)]) * half[1]


def unstack_block(obs: dict, cfg: sc.SceneConfig) -> Script:
    """Push the top block sideways off the bottom one, towards the freer side.

    It drops onto the table untouched: lifting it instead would complete the task while the block
    is still in the hand, and a following push, rotate or lift of that block needs it on the table.
    """
    obs = yield from retreat(obs)
    top = max(BLOCK_SLICES, key=lambda c: block_pose(obs, c)[0][2])
    top_pos, top_yaw = block_pose(obs, top)
    bottom = min(
        (c for c in BLOCK_SLICES if c != top),
        key=lambda c: np.linalg.norm(block_pose(obs, c)[0][:2] - top_pos[:2]),
    )
    bottom_pos, bottom_yaw = block_pose(obs, bottom)
    others = [block_pose(obs, c)[0][:2] for c in BLOCK_SLICES if c not in (top, bottom)]

    def free_space(d: np.ndarray) -> float:
        landing = bottom_pos[:2] + d * 0.09
        if not -0.45 < landing[0] < 0.45:
            return -1.0
        return min([np.linalg.norm(landing - o) for o in others] + [1.0])

    d = max((np.array([1.0, 0.0]), np.array([-1.0, 0.0])), key=free_space)
    rel = (top_pos[:2] - bottom_pos[:2]) @ d
    distance = _extent(cfg, bottom, bottom_yaw, d) - rel + 0.5 * _extent(cfg, top, top_yaw, d) + 0.02
    yield from push_block(obs, top, cfg, tuple(d), distance, z=top_pos[2])


def push_into_drawer(obs: dict, cfg: sc.SceneConfig) -> Script:
    """Push the block on the table over the desk's front edge into the open drawer: first along x
    until it is in line with the drawer, then towards the robot."""
    obs = yield from retreat(obs)
    table_z = sc.TABLE_Z + sc.BLOCK_HALF_HEIGHT
    on_table = [
        c
        for c in BLOCK_SLICES
        if abs(block_pose(obs, c)[0][2] - table_z) < 0.01 and block_pose(obs, c)[0][1] < 0
    ]
    color = on_table[0] if on_table else min(BLOCK_SLICES, key=lambda c: block_pose(obs, c)[0][1])
    pos, yaw = block_pose(obs, color)
    half = sc.BLOCK_HALF_EXTENTS[cfg.block_sizes[color]]
    x_extent = abs(np.cos(yaw)) * half[0] + abs(np.sin(yaw)) * half[1]
    room = DRAWER_INNER_HALF_WIDTH - x_extent - 0.01
    offset = pos[0] - cfg.drawer_x
    if abs(offset) > room / 2:  # in line with the drawer's middle, so that it lands clear of the walls
        obs = yield from push_block(obs, color, cfg, (-np.sign(offset), 0.0), abs(offset))
        pos, _ = block_pose(obs, color)
    # pushed past the desk's front edge, the block drops into the drawer
    drop_y = float(np.clip(drawer_open_middle_y(obs), -0.3, -0.25))
    yield from push_block(obs, color, cfg, (0.0, -1.0), pos[1] - drop_y)


def build_scripts() -> dict[str, Callable[[dict, sc.SceneConfig], Script]]:
    scripts: dict[str, Callable[[dict, sc.SceneConfig], Script]] = {}
    for c in BLOCK_SLICES:
        for d in ("right", "left"):
            scripts[f"rotate_{c}_block_{d}"] = rotate(c, d)
            scripts[f"push_{c}_block_{d}"] = push(c, d)
        for source in ("table", "slider", "drawer"):
            scripts[f"lift_{c}_block_{source}"] = lift(c)
    scripts["move_slider_left"] = move_slider("left")
    scripts["move_slider_right"] = move_slider("right")
    scripts["open_drawer"] = open_drawer
    scripts["close_drawer"] = close_drawer
    scripts["place_in_slider"] = place_in_slider
    scripts["place_in_drawer"] = place_in_drawer
    scripts["stack_block"] = stack_block
    scripts["unstack_block"] = unstack_block
    scripts["turn_on_led"] = press_button
    scripts["turn_off_led"] = press_button
    scripts["turn_on_lightbulb"] = flip_switch(up=True)
    scripts["turn_off_lightbulb"] = flip_switch(up=False)
    scripts["push_into_drawer"] = push_into_drawer
    return scripts


SCRIPTS = build_scripts()
KEEPS_GRASP = {"place_in_slider", "place_in_drawer", "stack_block"}


def task_script(task: str, obs: dict, cfg: sc.SceneConfig) -> Script:
    """The full script for ``task``: a held block is set down first unless the task uses it."""
    if task not in SCRIPTS:
        raise ValueError(f"the expert has no script for task {task!r}; valid: {', '.join(sorted(SCRIPTS))}")

    def full() -> Script:
        current = obs
        if task not in KEEPS_GRASP:
            current = yield from put_down_held(obs, cfg)
        yield from SCRIPTS[task](current, cfg)

    return full()
