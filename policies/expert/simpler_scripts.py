"""Scripted expert of the SimplerEnv-style suite: waypoints from privileged state, delta-pose actions.

The script of a task is a list of phases (:class:`Phase`): a TCP target (position, gripper
orientation) computed from the object poses in ``scene_obs`` when the phase starts, a gripper state,
and when to move on. Actions are the SimplerEnv convention: translation and axis-angle deltas
towards the target (the env clips them), and the family's gripper convention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.simpler.objects import CABINET, OBJECTS, bottom_offset, top_offset
from envs.simpler.tasks import FAMILIES, TASKS, Layout

DOWN = Rotation.from_quat([1.0, 0.0, 0.0, 0.0])  # scipy (x, y, z, w): 180 degrees about x, fingers along y
#: Gripper pointing along +x with its fingers closing along y (for the upright drawer handles).
FORWARD = Rotation.from_euler("y", -45, degrees=True) * DOWN


@dataclass
class State:
    tcp: np.ndarray  # position
    rot: Rotation
    opening: float
    objects: dict[str, tuple[np.ndarray, Rotation]]
    cabinet: tuple[np.ndarray, Rotation] | None
    drawer_q: np.ndarray


@dataclass
class Phase:
    target: Callable[[State], tuple[np.ndarray, Rotation]] | None  # None: hold where it is
    closed: bool
    wait: int = 0  # hold this many steps once reached (or at once when target is None)
    max_steps: int = 30
    tol: float = 0.008


def parse(obs: Mapping[str, Any], names: tuple[str, ...]) -> State:
    robot, scene = np.asarray(obs["robot_obs"], float), np.asarray(obs["scene_obs"], float)
    objects = {}
    for i, name in enumerate(names):
        p, q = scene[7 * i : 7 * i + 3], scene[7 * i + 3 : 7 * i + 7]
        objects[name] = (p, Rotation.from_quat([q[1], q[2], q[3], q[0]]))
    rest = scene[7 * len(names) :]
    cabinet = None
    if np.any(rest[3:7]):
        q = rest[3:7]
        cabinet = (rest[:3], Rotation.from_quat([q[1], q[2], q[3], q[0]]))
    q = robot[3:7]
    return State(
        robot[:3], Rotation.from_quat([q[1], q[2], q[3], q[0]]), robot[7], objects, cabinet, rest[7:10]
    )


def _yaw_of(rot: Rotation) -> float:
    x_axis = rot.apply([1.0, 0.0, 0.0])
    return float(np.arctan2(x_axis[1], x_axis[0]))


def _fold(yaw: float, period: float) -> float:
    """The yaw closest to 0 that is equivalent under the gripper's (and object's) symmetry."""
    return float((yaw + period / 2) % period - period / 2)


def top_down(yaw: float) -> Rotation:
    """Gripper pointing down, fingers closing along the direction at ``yaw`` + 90 degrees."""
    return Rotation.from_euler("z", yaw) * DOWN


def grasp_yaw(name: str, rot: Rotation) -> float:
    """Yaw of a top-down grasp across the object (fingers closing across its narrow side)."""
    yaw = _yaw_of(rot)
    if name.endswith("_can"):
        axis = rot.apply([0.0, 0.0, 1.0])
        if abs(axis[2]) > 0.7:  # standing: any yaw
            return 0.0
        return _fold(float(np.arctan2(axis[1], axis[0])), np.pi)  # fingers across the lying can
    if name.endswith("_block") or name in ("apple", "orange"):
        return _fold(yaw, np.pi / 2)
    return _fold(yaw, np.pi)


def grasp_height(name: str, pos: np.ndarray, rot: Rotation) -> float:
    if name.endswith("_can"):
        axis = rot.apply([0.0, 0.0, 1.0])
        if abs(axis[2]) > 0.7:
            return float(pos[2] + 0.025)
        return float(max(pos[2] - 0.004, 0.018))
    return float(max(pos[2], 0.016))


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= limit else v * (limit / n)


class PhasedScript:
    """Steps through ``self.phases``: a phase sets its goal once, ends when ``_reached`` (then waits
    ``wait`` steps) or after ``max_steps``; the last phase stays current once all have ended.
    Subclasses set ``phases``, ``index``, ``goal``, ``steps_in_phase`` and ``waited``, and say when
    a phase's goal is reached (:meth:`_reached`)."""

    phases: list[Phase]

    def _reached(self, s: State, phase: Phase) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must say when a phase's goal is reached")

    def _advance(self, s: State) -> Phase:
        """The phase to act in at this step, after ending the phases that are done."""
        while self.index < len(self.phases):
            phase = self.phases[self.index]
            if self.goal is None and phase.target is not None:
                self.goal = phase.target(s)
            if phase.target is None or self._reached(s, phase):
                if self.waited < phase.wait:
                    self.waited += 1
                    break
                self._next()
                continue
            if self.steps_in_phase >= phase.max_steps:
                self._next()
                continue
            break
        self.steps_in_phase += 1
        return self.phases[min(self.index, len(self.phases) - 1)]

    def _next(self) -> None:
        self.index += 1
        self.goal = None
        self.steps_in_phase = 0
        self.waited = 0


class SimplerScript(PhasedScript):
    """The expert of one episode: ``act(obs)`` gives the next 7-D action."""

    def __init__(self, task: str, episode: int, names: tuple[str, ...]) -> None:
        self.task = TASKS[task]
        self.family = FAMILIES[self.task.family]
        self.layout: Layout = self.task.layout(episode)
        self.names = names
        self.phases = self._plan()
        self.index = 0
        self.steps_in_phase = 0
        self.waited = 0
        self.goal: tuple[np.ndarray, Rotation] | None = None
        self.closedness = 0.0

    # --- plans -----------------------------------------------------------------------------------
    def _pick(self, name: str, lift: float = 0.12) -> list[Phase]:
        def obj(s: State) -> tuple[np.ndarray, Rotation]:
            return s.objects[name]

        def above(s: State) -> tuple[np.ndarray, Rotation]:
            p, r = obj(s)
            return np.array([p[0], p[1], grasp_height(name, p, r) + 0.1]), top_down(grasp_yaw(name, r))

        def at(s: State) -> tuple[np.ndarray, Rotation]:
            p, r = obj(s)
            return np.array([p[0], p[1], grasp_height(name, p, r)]), top_down(grasp_yaw(name, r))

        return [
            Phase(above, False, tol=0.015),
            Phase(at, False),
            Phase(None, True, wait=2 if self.family.control_hz < 5 else 3),
            Phase(lambda s: (s.tcp + [0.0, 0.0, lift], s.rot), True, tol=0.015),
        ]

    def _place_at(
        self, point: Callable[[State], np.ndarray], release_z: Callable[[State], float]
    ) -> list[Phase]:
        def over(s: State) -> tuple[np.ndarray, Rotation]:
            p = point(s)
            return np.array([p[0], p[1], max(release_z(s) + 0.06, s.tcp[2])]), s.rot

        def down(s: State) -> tuple[np.ndarray, Rotation]:
            p = point(s)
            return np.array([p[0], p[1], release_z(s)]), s.rot

        return [
            Phase(over, True, tol=0.012),
            Phase(down, True),
            Phase(None, False, wait=2 if self.family.control_hz < 5 else 3),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.08], s.rot), False, tol=0.02),
        ]

    def _handle(self, s: State, level: str) -> tuple[np.ndarray, Rotation]:
        """World position of a drawer handle's bar and the grasp orientation for it."""
        pos, rot = s.cabinet
        q = s.drawer_q[CABINET.levels.index(level)]
        local = np.array([CABINET.handle_offset() - q, 0.0, CABINET.level_z(level)])
        return pos + rot.apply(local), Rotation.from_euler("z", _yaw_of(rot)) * FORWARD

    def _drawer(self, level: str, pull: float | None) -> list[Phase]:
        """Open (``pull`` metres along the cabinet's -x) or, with ``pull=None``, push the drawer shut."""

        def front(s: State, back: float) -> tuple[np.ndarray, Rotation]:
            p, r = self._handle(s, level)
            away = s.cabinet[1].apply([-back, 0.0, 0.0])
            return p + away, r

        if pull is None:
            return [
                Phase(lambda s: front(s, 0.12), True, tol=0.015, max_steps=40),
                Phase(lambda s: front(s, 0.04), True),
                Phase(
                    lambda s: front(s, -0.01 - s.drawer_q[CABINET.levels.index(level)]), True, max_steps=20
                ),
                Phase(lambda s: front(s, 0.1), False, tol=0.02),
            ]
        return [
            Phase(lambda s: front(s, 0.12), False, tol=0.015, max_steps=40),
            Phase(lambda s: front(s, -0.012), False),
            Phase(None, True, wait=2),
            Phase(lambda s: front(s, pull / 2), True, max_steps=10),
            Phase(lambda s: front(s, pull / 2), True, max_steps=10),
            Phase(None, False, wait=2),
            Phase(lambda s: front(s, 0.1), False, tol=0.02),
        ]

    def _plan(self) -> list[Phase]:
        t, layout = self.task, self.layout
        if t.kind == "pick_can":
            return [*self._pick("coke_can"), Phase(None, True, wait=10**6)]
        if t.kind in ("open_drawer", "close_drawer"):
            return self._drawer(t.params["level"], 0.22 if t.kind == "open_drawer" else None)
        source, target = layout.source, layout.target
        if t.kind == "move_near":
            start = np.array([layout.objects[source].x, layout.objects[source].y])

            # Put it down next to the target along the hand's x-axis, so that the opening fingers move
            # sideways and do not push the target; of the two sides, the one nearer the start.
            def near(s: State) -> np.ndarray:
                tp = s.objects[target][0][:2]
                yaw = _yaw_of(s.rot)
                axis = np.array([np.cos(yaw), np.sin(yaw)])
                gap = _extent_along(source, axis) + _radius(target) + 0.012
                sides = [tp + axis * gap, tp - axis * gap]
                # Low spots close to the robot's base are awkward for the arm: avoid them.
                return min(sides, key=lambda p: float(np.linalg.norm(p - start)) + max(0.0, -0.09 - p[0]) * 5)

            # Carry it high: a held object hanging below the tops of the cans (12 cm) sweeps into
            # them on the way, which moves an object that must stay put.
            return [
                *self._pick(source, lift=0.16),
                *self._place_at(near, lambda s: bottom_offset(OBJECTS[source]) + 0.012),
            ]
        if t.kind == "apple_drawer":
            return [
                *self._drawer("top", 0.22),
                *self._pick("apple", lift=0.0),
                Phase(lambda s: (np.array([s.tcp[0], s.tcp[1], 0.5]), s.rot), True, tol=0.02),
                *self._place_at(self._tray_point, lambda s: CABINET.level_z("top") + 0.1),
            ]
        if t.kind == "put_in":
            return [
                *self._pick(source),
                *self._place_at(lambda s: s.objects[target][0][:2], lambda s: 0.12),
            ]
        lift_point = grasp_height(
            source, np.array([0.0, 0.0, bottom_offset(OBJECTS[source])]), Rotation.identity()
        )

        def on(s: State) -> float:
            return float(s.objects[target][0][2] + top_offset(OBJECTS[target]) + lift_point + 0.012)

        return [*self._pick(source), *self._place_at(lambda s: s.objects[target][0][:2], on)]

    def _tray_point(self, s: State) -> np.ndarray:
        pos, rot = s.cabinet
        q = s.drawer_q[CABINET.levels.index("top")]
        return (pos + rot.apply([-q + 0.07, 0.0, 0.0]))[:2]

    # --- acting ----------------------------------------------------------------------------------
    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        s = parse(obs, self.names)
        phase = self._advance(s)
        closed = phase.closed if self.index < len(self.phases) else self.closedness > 0.5
        action = np.zeros(7, dtype=np.float32)
        if self.goal is not None and self.index < len(self.phases):
            goal_p, goal_r = self.goal
            action[:3] = _clip_norm(goal_p - s.tcp, 0.1)
            action[3:6] = _clip_norm((goal_r * s.rot.inv()).as_rotvec(), 0.1)
        action[6] = self._gripper(closed)
        return action

    def _reached(self, s: State, phase: Phase) -> bool:
        goal_p, goal_r = self.goal
        rot_err = (goal_r * s.rot.inv()).magnitude()
        return bool(np.linalg.norm(goal_p - s.tcp) < phase.tol and rot_err < 0.06)

    def _gripper(self, closed: bool) -> float:
        self.closedness = 1.0 if closed else 0.0
        if self.family.gripper == "relative":
            return 1.0 if closed else -1.0
        return -1.0 if closed else 1.0


def _radius(name: str) -> float:
    """Largest horizontal half size of an object standing as built."""
    from envs.simpler.objects import half_extents

    return float(max(half_extents(OBJECTS[name])[:2]))


def _extent_along(name: str, direction: np.ndarray) -> float:
    """Half size of an upright object (at yaw 0) along a horizontal direction."""
    from envs.simpler.objects import half_extents

    half = half_extents(OBJECTS[name])
    return float(abs(direction[0]) * half[0] + abs(direction[1]) * half[1])


# --- SimplerEnv's own embodiments: the WidowX on the Bridge tasks ------------------------------------
#: The WidowX gripper pointing down (its x-axis), fingers closing along its y-axis (world -y at yaw 0).
WIDOWX_DOWN = Rotation.from_matrix([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
WIDOWX_STEP_M = 0.05  # largest translation command per step (the env allows 0.1)
WIDOWX_STEP_RAD = 0.1
#: Grasp symmetry of a model's top-down grasp: cubes every 90 degrees, elongated objects every 180.
_QUARTER_TURN_MODELS = ("cube",)
#: Where to grasp a model, in its own frame (x, y): the spoon by its bowl, since its handle (1.5 to
#: 2.3 cm) is narrower than the WidowX fingers close (2.8 cm apart at ManiSkill3's lower limit).
_GRASP_POINT = {"bridge_spoon_generated_modified": (-0.045, 0.0)}
#: The WidowX fingertips reach 1.6 cm below the TCP (``ee_gripper_link``). Fingers pressed on what
#: the object rests on (the table, the sink's curved floor) stick to it (finger friction 2) and do
#: not close, so a grasp keeps them a quarter of the object's height (at least 5 mm) above its bottom.
_FINGERTIP_BELOW_TCP_M = 0.016
#: Gripper command while reaching for a model (+1: fully open). The eggplant lies in a sink whose
#: sloped walls the fingers of a fully open gripper hit; it is reached for half open (0.1).
_REACH_OPENING = {"eggplant": 0.1}
_FINGERTIP_CLEARANCE_M = 0.005


class WidowXBridgeScript(PhasedScript):
    """The expert of one Bridge episode on the WidowX: pick the source object, put it on (in) the target.

    SimplerEnv's WidowX controller adds each delta to its previous *target* pose, so the script keeps
    that target itself and sends target changes, expressed in the robot base frame (the base faces
    -x in the world).
    """

    def __init__(self, task: str, names: tuple[str, ...]) -> None:
        from envs.simpler.reference import scene_reference, task_reference
        from envs.simpler.scanned import ScannedModels

        ref = task_reference(task)
        if tuple(names) != (ref["source"], ref["target"]):
            raise ValueError(
                f"expert: task {task} expects objects {(ref['source'], ref['target'])}, got {names}"
            )
        self.task = TASKS[task]
        self.family = FAMILIES[self.task.family]
        self.source, self.target = names
        self.names = tuple(names)
        q = scene_reference(ref["scene"])["robot_base"]["q"]
        self.base = Rotation.from_quat([q[1], q[2], q[3], q[0]])
        models = ScannedModels(ref["model_json"])
        self.half = {n: models.bbox_size(n) / 2 for n in names}
        self.reach_opening = _REACH_OPENING.get(self.source, 1.0)
        self.phases = self._plan()
        self.index, self.steps_in_phase, self.waited = 0, 0, 0
        self.goal: tuple[np.ndarray, Rotation] | None = None
        self.target_pose: tuple[np.ndarray, Rotation] | None = None
        self.closedness = 0.0

    def _grasp_rot(self, s: State) -> Rotation:
        rot = s.objects[self.source][1]
        period = np.pi / 2 if any(k in self.source for k in _QUARTER_TURN_MODELS) else np.pi
        return Rotation.from_euler("z", _fold(_yaw_of(rot), period)) * WIDOWX_DOWN

    def _plan(self) -> list[Phase]:
        src, tgt = self.source, self.target
        drop_gap = 0.04 if self.task.kind == "put_in" else 0.012

        def grasp_point(s: State) -> np.ndarray:
            p, rot = s.objects[src]
            dx, dy = _GRASP_POINT.get(src, (0.0, 0.0))
            point = p + rot.apply([dx, dy, 0.0])
            height = 2 * float((np.abs(rot.as_matrix()) @ self.half[src])[2])
            bottom = p[2] - height / 2
            lowest = bottom + max(_FINGERTIP_CLEARANCE_M, height / 4) + _FINGERTIP_BELOW_TCP_M
            return np.array([point[0], point[1], max(point[2], lowest)])

        def above(s: State) -> tuple[np.ndarray, Rotation]:
            return grasp_point(s) + [0.0, 0.0, 0.08], self._grasp_rot(s)

        def at(s: State) -> tuple[np.ndarray, Rotation]:
            return grasp_point(s), self._grasp_rot(s)

        def release_z(s: State) -> float:
            held = s.tcp[2] - s.objects[src][0][2]  # the object hangs this far below the TCP
            top = s.objects[tgt][0][2] + self.half[tgt][2]
            return float(top + self.half[src][2] + drop_gap + held)

        def over(s: State) -> tuple[np.ndarray, Rotation]:
            p = s.objects[tgt][0]
            return np.array([p[0], p[1], max(release_z(s) + 0.04, s.tcp[2])]), s.rot

        def down(s: State) -> tuple[np.ndarray, Rotation]:
            p = s.objects[tgt][0]
            return np.array([p[0], p[1], release_z(s)]), s.rot

        return [
            Phase(above, False, tol=0.015, max_steps=12),
            Phase(at, False, tol=0.008, max_steps=8),
            # The fingers take about 0.8 s to close (ManiSkill3's gripper gains for the Bridge twin).
            Phase(None, True, wait=4),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.08], s.rot), True, tol=0.02, max_steps=6),
            Phase(over, True, tol=0.015, max_steps=12),
            Phase(down, True, tol=0.01, max_steps=6),
            Phase(None, False, wait=2),
            Phase(lambda s: (s.tcp + [0.0, 0.0, 0.06], s.rot), False, tol=0.02, max_steps=6),
            Phase(None, False, wait=10**6),
        ]

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        s = parse(obs, self.names)
        if self.target_pose is None:
            self.target_pose = (s.tcp.copy(), s.rot)
        phase = self._advance(s)
        action = np.zeros(7, dtype=np.float32)
        if self.goal is not None and self.index < len(self.phases):
            goal_p, goal_r = self.goal
            target_p, target_r = self.target_pose
            dp = _clip_norm(goal_p - target_p, WIDOWX_STEP_M)
            dr = Rotation.from_rotvec(_clip_norm((goal_r * target_r.inv()).as_rotvec(), WIDOWX_STEP_RAD))
            self.target_pose = (target_p + dp, dr * target_r)
            action[:3] = self.base.inv().apply(dp)
            action[3:6] = self.base.inv().apply(dr.as_rotvec())
        self.closedness = 1.0 if phase.closed else 0.0
        action[6] = -1.0 if phase.closed else (self.reach_opening if self.index < 2 else 1.0)
        return action

    def _reached(self, s: State, phase: Phase) -> bool:
        goal_p, goal_r = self.goal
        target_p, target_r = self.target_pose
        commanded = np.linalg.norm(goal_p - target_p) < 1e-6 and (goal_r * target_r.inv()).magnitude() < 1e-4
        return bool(commanded and np.linalg.norm(goal_p - s.tcp) < phase.tol)


def script_for(
    task: str, episode: int, names: tuple[str, ...], embodiment: str = "panda", variant: str = "base"
) -> Any:
    """The expert of one episode for the embodiment the env reports (``info["embodiment"]``); the
    Google robot's variant (``info["variant"]``) sets its layout in variant aggregation."""
    if embodiment == "panda":
        return SimplerScript(task, episode, names)
    if embodiment == "widowx250s":
        return WidowXBridgeScript(task, names)
    if embodiment == "googlerobot":
        from policies.expert.google_scripts import GoogleRobotScript

        return GoogleRobotScript(task, episode, names, variant)
    raise ValueError(f"expert: unknown embodiment {embodiment!r}; valid: panda, widowx250s, googlerobot")
