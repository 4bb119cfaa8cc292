"""The tasks of the SimplerEnv-style suite: families, step limits, instructions and episode layouts.

Each task has a fixed, documented list of episode layouts (object positions, orientations, cabinet
pose), as SimplerEnv has: episode ``i`` of a task is always the same scene, in every mode and
variant, so variants differ only in what they claim to change. The number of layouts is the
reference's episode count per variant (coke can 25 per orientation on a 5 x 5 grid, move near 60,
drawers 27, apple 27, Bridge 24); an episode index past it wraps round.

Coordinates: the table top is z = 0, the robot's base stands at (-0.615, 0, 0) facing +x.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field

import numpy as np

ROBOT_BASE = (-0.615, 0.0, 0.0)


@dataclass(frozen=True)
class Family:
    name: str
    control_hz: int
    sim_hz: int
    #: ``relative``: the gripper action changes the closing target (+1 close, -1 open; Google robot).
    #: ``absolute``: the gripper action is the opening target (+1 open, -1 close; WidowX).
    gripper: str
    robot: str  # the real robot of the family (the suite simulates a Panda arm for both)


FAMILIES: dict[str, Family] = {
    "google_robot": Family("google_robot", 3, 513, "relative", "Google robot"),
    "bridge": Family("bridge", 5, 500, "absolute", "WidowX"),
}


@dataclass(frozen=True)
class Placement:
    x: float
    y: float
    yaw: float = 0.0
    pose: str = "rest"  # rest (as built), lie_y / lie_x (a can laid with its axis along y / x)


@dataclass(frozen=True)
class Layout:
    objects: dict[str, Placement]
    source: str | None = None
    target: str | None = None
    cabinet: Placement | None = None  # x, y: the middle of the cabinet's front face
    drawer_q: dict[str, float] = field(default_factory=dict)
    #: Free spots for distractors, in the order they are filled.
    distractor_spots: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str
    group: str  # the row of the reference's real-world table it belongs to
    kind: str  # pick_can, move_near, open_drawer, close_drawer, apple_drawer, put_on, put_in
    max_steps: int
    episodes: int  # reference episodes per variant (= number of layouts)
    params: dict = field(default_factory=dict)
    description: str = ""

    @property
    def gym_id(self) -> str:
        camel = "".join(part.capitalize() for part in self.name.split("_"))
        return f"robovlm/Simpler-{camel}-v0"

    def instruction(self, layout: Layout, step: int = 0) -> str:
        """The instruction in force at ``step`` (it changes mid-episode for the apple task)."""
        from envs.simpler.objects import OBJECTS

        p = self.params
        if self.kind == "pick_can":
            return "pick coke can"
        if self.kind == "move_near":
            return f"move {OBJECTS[layout.source].words} near {OBJECTS[layout.target].words}"
        if self.kind in ("open_drawer", "close_drawer"):
            return f"{self.kind.split('_')[0]} {p['level']} drawer"
        if self.kind == "apple_drawer":
            return "open top drawer" if step < p["switch_step"] else "place apple into top drawer"
        if self.name == "stack_green_on_yellow":
            return "stack the green block on the yellow block"
        if self.kind == "put_in":
            return f"put {OBJECTS[layout.source].words} in {OBJECTS[layout.target].words}"
        return f"put {OBJECTS[layout.source].words} on {OBJECTS[layout.target].words}"

    @property
    def object_names(self) -> tuple[str, ...]:
        """Every object any layout of the task uses, in first-use order (the scene builds them all)."""
        names: list[str] = []
        for i in range(self.episodes):
            names += [n for n in self.layout(i).objects if n not in names]
        return tuple(names)

    def layout(self, episode: int) -> Layout:
        """Layout of episode ``episode`` (wraps round after :attr:`episodes`)."""
        if episode < 0:
            raise ValueError(f"episode index must be >= 0, got {episode}")
        return _LAYOUTS[self.kind](self, episode % self.episodes)


def _rng(task: str, episode: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(task.encode()), episode])


def _spots(rng: np.random.Generator, taken: list[tuple[float, float]], n: int = 4) -> tuple:
    """Distractor spots on the table at least 9 cm from everything taken (and from each other)."""
    found: list[tuple[float, float]] = []
    for _ in range(400):
        if len(found) == n:
            break
        p = (float(rng.uniform(-0.3, 0.12)), float(rng.uniform(-0.32, 0.32)))
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= 0.09 for q in [*taken, *found]):
            found.append(p)
    return tuple(found)


def _pick_can(spec: TaskSpec, i: int) -> Layout:
    xs, ys = np.linspace(-0.22, -0.02, 5), np.linspace(-0.2, 0.2, 5)
    x, y = float(xs[i // 5]), float(ys[i % 5])
    pose = {"horizontal": "lie_y", "vertical": "lie_x", "standing": "rest"}[spec.params["orientation"]]
    can = Placement(x, y, 0.0, pose)
    return Layout({"coke_can": can}, source="coke_can", distractor_spots=_spots(_rng(spec.name, i), [(x, y)]))


MOVE_NEAR_TRIPLETS = (
    ("coke_can", "apple", "sponge"),
    ("pepsi_can", "orange", "redbull_can"),
    ("apple", "redbull_can", "sponge"),
    ("orange", "coke_can", "pepsi_can"),
    ("sponge", "pepsi_can", "apple"),
)


def _move_near(spec: TaskSpec, i: int) -> Layout:
    triplet = MOVE_NEAR_TRIPLETS[i // 12]
    arrangement = (i // 6) % 2
    source, target = list(itertools.permutations(range(3), 2))[i % 6]
    ys = (-0.16, 0.0, 0.16)
    xs = (-0.12, -0.05, -0.12) if arrangement == 0 else (-0.06, -0.14, -0.06)
    objects = {name: Placement(x, y) for name, x, y in zip(triplet, xs, ys, strict=True)}
    taken = [(p.x, p.y) for p in objects.values()]
    return Layout(
        objects,
        source=triplet[source],
        target=triplet[target],
        distractor_spots=_spots(_rng(spec.name, i), taken),
    )


def _cabinet_pose(i: int) -> Placement:
    dx, dy, yaw = (-0.03, 0.0, 0.03), (-0.06, 0.0, 0.06), (-8.0, 0.0, 8.0)
    return Placement(0.16 + dx[i // 9], dy[(i // 3) % 3], float(np.deg2rad(yaw[i % 3])))


def _cabinet_spots(spec: TaskSpec, i: int, cabinet: Placement) -> tuple:
    # Distractors stay on the table to the sides of the drawers' path.
    rng = _rng(spec.name, i)
    taken = [(cabinet.x - dx, cabinet.y + dy) for dx in (0.0, 0.1, 0.2, 0.3) for dy in (-0.15, 0.0, 0.15)]
    return _spots(rng, taken + [(0.1, cabinet.y), (0.2, cabinet.y)])


def _drawer(spec: TaskSpec, i: int) -> Layout:
    cabinet = _cabinet_pose(i)
    q = 0.0 if spec.kind == "open_drawer" else spec.params["start_q"]
    return Layout(
        {},
        cabinet=cabinet,
        drawer_q={spec.params["level"]: q},
        distractor_spots=_cabinet_spots(spec, i, cabinet),
    )


def _apple_drawer(spec: TaskSpec, i: int) -> Layout:
    dx, dy = (-0.03, 0.0, 0.03), (-0.05, 0.0, 0.05)
    cabinet = Placement(0.16 + dx[i // 9], dy[(i // 3) % 3], 0.0)
    apple_y = (-0.27, -0.31, 0.29)[i % 3]
    apple = Placement(-0.16 - 0.03 * (i % 2), cabinet.y + apple_y)
    return Layout(
        {"apple": apple},
        source="apple",
        cabinet=cabinet,
        drawer_q={"top": 0.0},
        distractor_spots=_cabinet_spots(spec, i, cabinet),
    )


BRIDGE_SPOT_PAIRS = (
    ((-0.12, -0.1), (-0.1, 0.1)),
    ((-0.18, 0.08), (-0.04, -0.08)),
    ((-0.05, 0.12), (-0.2, -0.06)),
    ((-0.15, 0.0), (0.0, 0.05)),
)


def _bridge(spec: TaskSpec, i: int) -> Layout:
    pair = BRIDGE_SPOT_PAIRS[i // 6]
    swap = (i // 3) % 2
    (sx, sy), (tx, ty) = pair if swap == 0 else pair[::-1]
    yaw = (-np.pi / 6, 0.0, np.pi / 6)[i % 3]
    source, target = spec.params["source"], spec.params["target"]
    objects = {source: Placement(sx, sy, float(yaw)), target: Placement(tx, ty, 0.0)}
    return Layout(
        objects,
        source=source,
        target=target,
        distractor_spots=_spots(_rng(spec.name, i), [(sx, sy), (tx, ty)]),
    )


_LAYOUTS = {
    "pick_can": _pick_can,
    "move_near": _move_near,
    "open_drawer": _drawer,
    "close_drawer": _drawer,
    "apple_drawer": _apple_drawer,
    "put_on": _bridge,
    "put_in": _bridge,
}


def _tasks() -> dict[str, TaskSpec]:
    specs = [
        TaskSpec(
            f"pick_can_{o}",
            "google_robot",
            "pick_coke_can",
            "pick_can",
            80,
            25,
            {"orientation": o},
            f"pick up a coke can ({o}) and lift it",
        )
        for o in ("horizontal", "vertical", "standing")
    ]
    specs.append(
        TaskSpec(
            "move_near", "google_robot", "move_near", "move_near", 80, 60, {}, "move one object near another"
        )
    )
    for verb, start in (("open", 0.0), ("close", 0.2)):
        specs += [
            TaskSpec(
                f"{verb}_drawer_{level}",
                "google_robot",
                f"{verb}_drawer",
                f"{verb}_drawer",
                113,
                27,
                {"level": level, "start_q": start},
                f"{verb} the {level} drawer of the cabinet",
            )
            for level in ("top", "middle", "bottom")
        ]
    specs.append(
        TaskSpec(
            "place_apple_in_top_drawer",
            "google_robot",
            "place_apple_in_top_drawer",
            "apple_drawer",
            200,
            27,
            {"switch_step": 100},
            "open the closed top drawer, then place the apple into it (instruction switches at step 100)",
        )
    )
    for name, kind, source, target, steps in (
        ("put_spoon_on_towel", "put_on", "spoon", "towel", 60),
        ("put_carrot_on_plate", "put_on", "carrot", "plate", 60),
        ("stack_green_on_yellow", "put_on", "green_block", "yellow_block", 60),
        ("put_eggplant_in_basket", "put_in", "eggplant", "basket", 120),
    ):
        specs.append(
            TaskSpec(
                name,
                "bridge",
                name,
                kind,
                steps,
                24,
                {"source": source, "target": target},
                f"put the {source.replace('_', ' ')} {'in' if kind == 'put_in' else 'on'} the "
                f"{target.replace('_', ' ')}",
            )
        )
    return {s.name: s for s in specs}


TASKS: dict[str, TaskSpec] = _tasks()
GROUPS: dict[str, tuple[str, ...]] = {}
for _spec in TASKS.values():
    GROUPS.setdefault(_spec.group, ())
    GROUPS[_spec.group] += (_spec.name,)


def check_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def select_tasks(names: list[str] | None) -> list[TaskSpec]:
    """Task specs for names or group names (``None``: every task); raises naming the valid ones."""
    if not names:
        return list(TASKS.values())
    out: list[TaskSpec] = []
    for name in names:
        if name in TASKS:
            chosen = [TASKS[name]]
        elif name in FAMILIES:
            chosen = [t for t in TASKS.values() if t.family == name]
        elif name in GROUPS:
            chosen = [TASKS[t] for t in GROUPS[name]]
        else:
            raise ValueError(
                f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}; groups: "
                f"{', '.join(g for g in GROUPS if g not in TASKS)}; families: {', '.join(FAMILIES)}"
            )
        out += [t for t in chosen if t not in out]
    return out
