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
the squeeze came and went with the control steps and the can slid out on the lift). Move near 9
of 10 (the same pick, a 5 cm lift, the hand held while the fingers close and turned to spare the
wrist on the carry, the source put where the rule holds with margins: :func:`near_spot`). Open
drawer top 9, middle 10 and bottom 10 of 10 (the tilted hand hooks the half-closed fingers behind
the front plate, because SimplerEnv's handles have no collision shape). Apple in the top drawer 9
of 10 (the same hook, then the can's pick and a drop over the drawer's uncovered floor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.simpler.google_variant_layout import variant_layout
from envs.simpler.reference import task_reference
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
#: Open drawer: the TCP passes HOOK_ABOVE_M over the plate's top edge, then drops to HOOK_Z over
#: the plate's middle. The rear finger (about 3 cm above the TCP in the tilted hand) is then behind
#: the plate (its back face at x 0.2975) and above the drawer's inner front wall (collision box x
#: 0.275 to 0.295, up to z 0.03). The front
#: finger is in front of the plate. The hand is tilted forward by HOOK_TILT_RAD (45 degrees from
#: vertical in all): the finger links and the hand's body stay in front of the cabinet.
HOOK_ABOVE_M = 0.015
HOOK_X, HOOK_Z = PLATE_X, PLATE_TOP - 0.05
HOOK_TILT_RAD = 0.5
#: Where the TCP pushes to, beyond the handle of the closed drawer: the closed fingers reach 3.5 cm
#: forward of it, and 1.5 cm more presses the drawer against its stop.
PUSH_REACH = 0.035 - 0.015
DRAWERS = ("top", "middle", "bottom")
#: Apple in drawer: where the apple's centre is let go, in the drawer's frame: over the part of the
#: floor (z -0.05) that a drawer pulled out 24 cm leaves uncovered (x 0.075 to 0.275).
DRAWER_DROP_X, DRAWER_DROP_Z = 0.175, 0.03
#: Move near: the lift before the carry. Every layout's path from the source to its spot passes no
#: other object, and a lower hand keeps the wrist (joint_wrist, limit 1.79 rad, 1.4 to 1.6 at a
#: grasp on the far row) off its limit: with the 10 cm lift the far-row carries drove it there, the
#: controller's IK failed on every step and the hand drifted away from the spot.
CARRY_LIFT_M = 0.05
#: Move near: what the carry (lift, move, lowering) aims the wrist joint at, turning the held object
#: (tilting it forward) by up to WRIST_RELIEF_MAX_RAD: a 5 cm lift from a grasp on the far row with
#: the hand turned for a standing can still took the wrist from 1.6 to its limit.
WRIST_EASY_RAD = 1.3
WRIST_RELIEF_MAX_RAD = 0.3
#: Move near: the gap left between the source's and the target's footprints ...
NEAR_CLEARANCE_M = 0.02
#: ... within the rule's reach less this (the object shifts a little as it is let go) ...
NEAR_SLACK_M = 0.04
#: ... the other objects this much farther than the target beyond the rule's own margin ...
CLOSEST_SLACK_M = 0.03
#: ... and the footprint this far inside the table's edges.
TABLE_EDGE_M = 0.03
#: The source is let go this high above where it settled.
RELEASE_ABOVE_M = 0.01


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


def turn_about_wrist(rot: Rotation, gripper_joint: float, turn: float) -> Rotation:
    """``rot`` turned by ``turn`` about the wrist joint's axis: the hand's closing axis (y) turned by
    minus the last joint (``joint_gripper``, which turns the hand about its approach axis) about the
    approach axis. A negative turn tilts the approach forward (the hand's body towards the robot)
    and bends the wrist back."""
    axis = rot.apply(Rotation.from_euler("z", -gripper_joint).apply([0.0, 1.0, 0.0]))
    return Rotation.from_rotvec(turn * axis) * rot


def wrist_relief(rot: Rotation, wrist: float, gripper_joint: float) -> Rotation:
    """``rot`` turned about the wrist joint's axis so that the wrist bends back towards WRIST_EASY_RAD.

    The wrist's axis is the hand's closing axis (y) turned by minus the last joint
    (``joint_gripper``, which turns the hand about its approach axis) about the approach axis; a
    turn of the hand by -a about it bends the wrist back by about 1.4 a (the IK spreads the
    rest over the arm). The hand is turned back by at most WRIST_RELIEF_MAX_RAD.
    """
    turn = float(np.clip((wrist - WRIST_EASY_RAD) / 1.4, 0.0, WRIST_RELIEF_MAX_RAD))
    return turn_about_wrist(rot, gripper_joint, -turn)


def footprint_extent(rot: Rotation, size: np.ndarray, along: np.ndarray) -> float:
    """How far an object's bounding box (``size`` in its own frame, turned by ``rot``) reaches from
    its centre along the horizontal unit vector ``along`` (the box's support function)."""
    axes = rot.as_matrix()[:2]  # the box axes' horizontal parts, one column per axis
    return float(np.sum(np.abs(along @ axes) * np.asarray(size) / 2))


def rule_half_diagonal(rot: Rotation, size: np.ndarray) -> float:
    """Half the xy norm of the bounding box turned by ``rot``: what the move-near rule adds up."""
    return float(np.linalg.norm((rot.as_matrix() @ np.asarray(size))[:2]) / 2)


def near_spot(
    s: State,
    source: str,
    target: str,
    others: Sequence[str],
    sizes: Mapping[str, np.ndarray],
    home: np.ndarray,
) -> np.ndarray:
    """Where to put the source's centre (xy) so that SimplerEnv's move-near rule holds with margins.

    Around the target, at each of 36 directions: the footprints (bounding boxes turned by the
    objects' orientations) NEAR_CLEARANCE_M apart, and no farther than the rule's reach (the two
    turned half diagonals plus its margin) less NEAR_SLACK_M; every other object farther than the
    target by CLOSEST_SLACK_M and clear of the source's footprint; the whole footprint on the table
    (an object pushed off its edge falls). Of the spots that satisfy all, the one nearest the source's
    start (the shortest carry); spots that break a condition cost 10 m each.
    """
    from envs.simpler.google_scene import TABLE_XY  # the scene's module loads the simulator

    rules = task_reference("move_near")
    tp, tr = s.objects[target][0][:2], s.objects[target][1]
    sr = s.objects[source][1]
    reach = rule_half_diagonal(tr, sizes[target]) + rule_half_diagonal(sr, sizes[source])
    reach += rules["near_margin_m"] - NEAR_SLACK_M
    (x0, x1), (y0, y1) = TABLE_XY
    best, best_cost = tp, np.inf
    for angle in np.linspace(0.0, 2 * np.pi, 36, endpoint=False):
        u = np.array([np.cos(angle), np.sin(angle)])
        touch = footprint_extent(sr, sizes[source], u) + footprint_extent(tr, sizes[target], u)
        d = min(touch + NEAR_CLEARANCE_M, reach)
        p = tp + d * u
        broken = 0
        for o in others:
            v = p - s.objects[o][0][:2]
            dist = float(np.linalg.norm(v))
            w = v / max(dist, 1e-9)
            apart = footprint_extent(sr, sizes[source], w) + footprint_extent(s.objects[o][1], sizes[o], w)
            broken += int(dist < d + rules["closest_margin_m"] + CLOSEST_SLACK_M or dist < apart + 0.03)
        ex = footprint_extent(sr, sizes[source], np.array([1.0, 0.0])) + TABLE_EDGE_M
        ey = footprint_extent(sr, sizes[source], np.array([0.0, 1.0])) + TABLE_EDGE_M
        broken += int(not (x0 + ex < p[0] < x1 - ex and y0 + ey < p[1] < y1 - ey))
        # The farther the others are beyond the target, the less a shifted release matters.
        spare = min((float(np.linalg.norm(p - s.objects[o][0][:2])) - d for o in others), default=1.0)
        cost = float(np.linalg.norm(p - home)) - min(spare, 0.2) + 10.0 * broken
        if cost < best_cost:
            best, best_cost = p, cost
    return best


class GoogleRobotScript(PhasedScript):
    """The expert of one Google-robot episode: ``act(obs)`` gives the next 7-D action."""

    def __init__(self, task: str, episode: int, names: tuple[str, ...], variant: str = "base") -> None:
        self.task = TASKS[task]
        self.layout = variant_layout(task, episode, variant)
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
        self.partial_phases: set[int] = set()  # phases that close the fingers only to push_closing
        self.arm = np.zeros(7)  # the arm's joints (robot_obs), read at every step
        self.carry_rot: Rotation | None = None
        self.upright_rot: Rotation | None = None  # the grasp's orientation without the wrist's tilts

    # --- plans -----------------------------------------------------------------------------------
    def _models(self) -> Any:
        from envs.simpler.reference import task_reference
        from envs.simpler.scanned import ScannedModels

        return ScannedModels(self.layout.model_json or task_reference(self.task.name)["model_json"])

    def _long_axis(self, name: str, s: State) -> np.ndarray:
        size = self._models().bbox_size(name)
        return s.objects[name][1].apply(np.eye(3)[int(np.argmax(size))])

    def _grasp_rot(self, name: str, s: State) -> Rotation:
        axis = self._long_axis(name, s)
        if abs(axis[2]) > 0.7 or np.linalg.norm(axis[:2]) < 1e-6:  # standing: the start orientation
            return self.start.rot
        return _turn_about_approach(self.start.rot, np.array([-axis[1], axis[0]]))  # across the long axis

    def _pick(self, name: str, lift: float, relieve: bool = False) -> list[Phase]:
        def at(s: State) -> tuple[np.ndarray, Rotation]:
            p = s.objects[name][0]
            standing = abs(self._long_axis(name, s)[2]) > 0.7
            below = GRASP_BELOW_COM_M["standing" if standing else "lying"]
            self.upright_rot = self._grasp_rot(name, s)
            return np.array([p[0], p[1], p[2] - below]), self.upright_rot

        def above(s: State) -> tuple[np.ndarray, Rotation]:
            p, r = at(s)
            return p + [0.0, 0.0, 0.1], r

        return [
            Phase(above, False, tol=0.02, max_steps=25),
            Phase(at, False, tol=0.008, max_steps=14),
            # The fingers close at SimplerEnv's 1 rad/s planner limit: 1.3 s, four control steps.
            # Carrying, the hand is held where the closing starts: with zero actions the controller
            # re-targets the measured pose every step, and a squeezed standing can pushed the
            # hand 5 cm towards the robot (and the wrist 0.2 rad nearer its limit) as it closed.
            Phase(lambda s: (s.tcp.copy(), s.rot), True, wait=6, tol=0.02, max_steps=8)
            if relieve
            else Phase(None, True, wait=6),
            Phase(
                lambda s: (s.tcp + [0.0, 0.0, lift], self._carry_rot(s, relieve)), True, tol=0.03, max_steps=8
            ),
        ]

    def _carry_rot(self, s: State, relieve: bool) -> Rotation:
        """The hand's orientation for carrying what it holds, fixed when the lift starts."""
        if self.carry_rot is None:
            self.carry_rot = wrist_relief(s.rot, *self.arm[5:7]) if relieve else s.rot
        return self.carry_rot

    def _place_near(self, source: str, target: str, others: list[str]) -> list[Phase]:
        """Carry the lifted source to :func:`near_spot` (its centre there) and put it down."""
        sizes = {n: self._models().bbox_size(n) for n in self.names}
        settled_z = self.start.objects[source][0][2]
        carry: dict[str, tuple[np.ndarray, Rotation]] = {}

        def over(s: State) -> tuple[np.ndarray, Rotation]:
            if not carry:  # fixed at the phase's start: the object hangs in the hand at an offset
                carry["spot"] = near_spot(s, source, target, others, sizes, self.start.objects[source][0][:2])
                in_hand = s.tcp[:2] - s.objects[source][0][:2]
                carry["goal"] = (np.array([*(carry["spot"] + in_hand), s.tcp[2]]), self._carry_rot(s, True))
            return carry["goal"]

        def down(s: State) -> tuple[np.ndarray, Rotation]:
            # Over the spot as the object hangs now (the carry leaves it a centimetre or two off), and
            # lowered until the object is RELEASE_ABOVE_M above where it settled.
            xy = s.tcp[:2] + carry["spot"] - s.objects[source][0][:2]
            z = s.tcp[2] - (s.objects[source][0][2] - settled_z) + RELEASE_ABOVE_M
            # Turned back to the grasp's orientation: a tilted tall object topples when let go.
            return np.array([*xy, z]), self.upright_rot

        return [
            Phase(over, True, tol=0.015, max_steps=25),
            Phase(down, True, tol=0.01, max_steps=10),
            Phase(None, False, wait=3),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.05], s.rot), False, tol=0.02, max_steps=6),
        ]

    def _drawer_point(self, s: State, level: str, local: Sequence[float]) -> np.ndarray:
        """World position of a point given in the drawer's frame (it moves with the drawer)."""
        pos, rot = s.cabinet
        q = s.drawer_q[DRAWERS.index(level)]
        return pos + rot.apply(np.asarray(local, dtype=float) + [q, 0.0, DRAWER_Z[level]])

    def _open_drawer(self, level: str, pull: float) -> list[Phase]:
        """Hook the half-closed fingers behind the drawer's front plate and pull the drawer out.

        SimplerEnv's drawer handles are drawn but have no collision shape, so the front plate is what
        the hand can pull. Above each plate there is a 10.5 cm slot under the cabinet's top or the
        drawer above (both flush with the plate's front). From above, the open fingers (22 cm apart)
        ran into it; in the start orientation even half-closed fingers reach 10 cm above the TCP.
        So the hand first tilts forward about the wrist's axis by HOOK_TILT_RAD, in place (turning
        while moving far drove the wrist into its limit). The fingers close to PUSH_CLOSING (fully
        closed they press on each other and turn the hand), pass over the plate's top edge from the
        front and drop behind it, the rear finger above the drawer's inner front wall. Then the hand
        pulls the drawer out.
        """
        hook: dict[str, Rotation] = {}

        def rot(s: State) -> Rotation:
            if not hook:
                hook["rot"] = turn_about_wrist(self.start.rot, self.arm[6], -HOOK_TILT_RAD)
            return hook["rot"]

        def at(x: float, z: float) -> Callable[[State], tuple[np.ndarray, Rotation]]:
            return lambda s: (self._drawer_point(s, level, [x, 0.0, z]), rot(s))

        grip: dict[str, tuple[np.ndarray, Rotation]] = {}

        def out(s: State) -> tuple[np.ndarray, Rotation]:
            if not grip:  # fixed when the pull starts: the plate moves with the drawer
                grip["goal"] = (s.tcp + s.cabinet[1].apply([pull, 0.0, 0.0]), s.rot)
            return grip["goal"]

        return [
            # The tilt first, in place: turning while moving far drove the wrist into its limit.
            Phase(lambda s: (self.start.tcp, rot(s)), True, wait=10, tol=0.02, max_steps=14),
            Phase(at(PLATE_X + 0.1, PLATE_TOP + HOOK_ABOVE_M), True, tol=0.015, max_steps=35),
            Phase(at(HOOK_X, PLATE_TOP + HOOK_ABOVE_M), True, tol=0.012, max_steps=12),
            Phase(at(HOOK_X, HOOK_Z), True, tol=0.01, max_steps=10),
            Phase(out, True, tol=0.02, max_steps=40),
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
            return [*self._pick(src, CARRY_LIFT_M, relieve=True), *self._place_near(src, tgt, others), hold]
        if kind == "open_drawer":
            return [*self._open_drawer(self.layout.drawer, 0.24), hold]
        if kind == "close_drawer":
            return [*self._close_drawer(self.layout.drawer), hold]
        opening = self._open_drawer("top", 0.24)
        self.partial_phases = set(range(len(opening)))
        return [
            *opening,
            *self._leave_drawer(),
            *self._pick(self.names[0], 0.1),
            *self._place_in_drawer("top"),
            hold,
        ]

    def _leave_drawer(self) -> list[Phase]:
        """After the hook: open the fingers, lift them out from behind the plate, untilt in place."""
        return [
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.08], s.rot), False, tol=0.02, max_steps=6),
            Phase(lambda s: (s.tcp.copy(), self.start.rot), False, wait=10, tol=0.02, max_steps=14),
        ]

    def _place_in_drawer(self, level: str) -> list[Phase]:
        """Carry the lifted object over the opened drawer's uncovered part and let it go low."""
        carry: dict[str, np.ndarray] = {}

        def spot(s: State) -> np.ndarray:
            return self._drawer_point(s, level, [DRAWER_DROP_X, 0.0, DRAWER_DROP_Z])

        def over(s: State) -> tuple[np.ndarray, Rotation]:
            if not carry:
                carry["in_hand"] = s.tcp - s.objects[self.names[0]][0]
            p = spot(s) + carry["in_hand"]
            return np.array([p[0], p[1], max(s.tcp[2], p[2] + 0.08)]), s.rot

        def down(s: State) -> tuple[np.ndarray, Rotation]:
            return spot(s) + s.tcp - s.objects[self.names[0]][0], s.rot

        return [
            Phase(over, True, tol=0.02, max_steps=25),
            Phase(down, True, tol=0.015, max_steps=12),
            Phase(None, False, wait=4),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.08], s.rot), False, tol=0.03, max_steps=6),
        ]

    # --- acting ----------------------------------------------------------------------------------
    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        s = parse(obs, self.names)
        self.arm = np.asarray(obs["robot_obs"], dtype=float)[8:15]
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
        partial = self.layout.kind in ("close_drawer", "open_drawer") or self.index in self.partial_phases
        wanted = self.push_closing if phase.closed and partial else float(phase.closed)
        change = wanted - self.closedness
        action[6] = 0.0 if abs(change) < 1e-6 else float(np.clip(change, -1.0, 1.0))
        self.closedness = float(np.clip(self.closedness + float(action[6]), 0.0, 1.0))
        return action

    def _reached(self, s: State, phase: Phase) -> bool:
        goal_p, goal_r = self.goal
        return bool(
            np.linalg.norm(goal_p - s.tcp) < phase.tol and (goal_r * s.rot.inv()).magnitude() < ROT_TOL_RAD
        )
