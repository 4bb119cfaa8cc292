"""Synthetic (start, end) scene infos around every oracle rule's limits, for the differential check.

:func:`synthetic_pairs` draws them deterministically from a seed; :func:`pairs_digest` fingerprints
them, so that stored verdicts are only ever compared with the pairs they were made from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.calvin.tasks import COLORS, FLOOR

Pair = tuple[dict, dict]
DEFAULT_PAIRS = 3000
DEFAULT_SEED = 0
SURFACES = ("table", "slider_shelf", "drawer")
OTHER_PARTS = ("slider", "button", "switch", "led", "lightbulb", FLOOR)
#: The task family one block of a pair follows; lift twice, for its 9 tasks.
THEMES = ("free", "rotate", "push", "lift", "lift", "place", "stack", "unstack", "into_drawer")
#: Axis and limits of the moves that are tried exactly: push x, lift rise, rotate's largest move.
EXACT_LIMITS = {"push": (0, (0.1, -0.1)), "lift": (2, (0.05, 0.03)), "rotate": (0, (0.1, -0.1))}


@dataclass
class _Draw:
    rng: np.random.Generator

    def pick(self, options: tuple | list) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def near(self, value: float, spread: float) -> float:
        """Exactly ``value`` a quarter of the time, else within ``spread`` of it."""
        return value if self.chance(0.25) else value + float(self.rng.uniform(-spread, spread))

    def velocity(self) -> np.ndarray:
        if self.chance(0.6):
            return np.zeros(3)
        return np.array([self.pick((0.0, 0.3, -0.7, 0.999, -1.0, 1.0, 1.2, -2.0)) for _ in range(3)])

    def support(self, theme_surface: str | None = None) -> set[str]:
        """What a block rests on: usually one surface, sometimes several parts, the floor or nothing."""
        if theme_surface is not None and self.chance(0.7):
            return {theme_surface}
        kind = self.rng.random()
        if kind < 0.55:
            return {self.pick(SURFACES)}
        if kind < 0.75:
            return {self.pick(SURFACES), self.pick(SURFACES + OTHER_PARTS)}
        if kind < 0.9:
            return {self.pick(OTHER_PARTS)}
        return set()


def _rotation(draw: _Draw) -> Rotation:
    """A relative rotation around the rotate rules' limits (60 and 180 degrees about z, 30 tilted)."""
    z = draw.pick(
        (
            draw.near(60.0, 3.0),
            -draw.near(60.0, 3.0),
            draw.near(180.0, 1.0),
            -draw.near(180.0, 1.0),
            float(draw.rng.uniform(-180, 180)),
        )
    )
    x = draw.pick((0.0, draw.near(30.0, 2.0), -draw.near(30.0, 2.0), float(draw.rng.uniform(-60, 60))))
    y = draw.pick((0.0, 0.0, draw.near(30.0, 2.0), float(draw.rng.uniform(-60, 60))))
    return Rotation.from_euler("xyz", [x, y, z], degrees=True)


def _move(draw: _Draw, theme: str) -> np.ndarray:
    if theme == "push":
        return np.array([draw.pick((1, -1)) * draw.near(0.1, 0.02), draw.rng.normal(0, 0.02), 0.0])
    if theme == "lift":
        return np.array(
            [*draw.rng.normal(0, 0.02, 2), draw.pick((draw.near(0.05, 0.01), draw.near(0.03, 0.01)))]
        )
    if theme == "rotate":
        return draw.rng.normal(0, 0.005, 3) * draw.pick((1.0, 20.0))  # around the 0.1 m limit
    return draw.rng.normal(0, draw.pick((0.01, 0.06, 0.15)), 3)


def _block_pair(draw: _Draw, theme: str, focus: bool) -> tuple[dict, dict, set[str], set[str]]:
    """Start and end pose/velocity of one block, and its start and end contacts (without other blocks)."""
    pos = np.array([draw.rng.uniform(-0.3, 0.3), draw.rng.uniform(-0.2, 0.12), draw.rng.uniform(0.34, 0.6)])
    start_rot = Rotation.from_euler(
        "xyz", [draw.rng.normal(0, 3), draw.rng.normal(0, 3), draw.rng.uniform(-180, 180)], degrees=True
    )
    themed = theme if focus else "free"
    move = _move(draw, themed)
    if themed in EXACT_LIMITS and draw.chance(0.2):
        # a move of exactly the rule's limit: from 0 along the axis, so that end - start is exact
        axis, limits = EXACT_LIMITS[themed]
        pos[axis], move[:] = 0.0, 0.0
        move[axis] = draw.pick(limits)
    rel = _rotation(draw) if themed == "rotate" or draw.chance(0.2) else Rotation.identity()
    start = {"pos": pos, "orn": start_rot.as_quat(), "lin_vel": draw.velocity(), "ang_vel": draw.velocity()}
    end = {
        "pos": pos + move,
        "orn": (rel * start_rot).as_quat(),
        "lin_vel": draw.velocity(),
        "ang_vel": draw.velocity(),
    }
    s, e = draw.support(), draw.support()
    if focus and themed == "push":
        s = draw.support("table")
        e = s | draw.support() if draw.chance(0.6) else draw.support()
        s |= {"robot"} if draw.chance(0.5) else set()
        e |= {"robot"} if draw.chance(0.5) else set()
    elif focus and themed in ("lift", "place"):
        held = {"robot"} if draw.chance(0.8) else {"robot", draw.pick(SURFACES + OTHER_PARTS)}
        if themed == "lift":
            s = draw.support(draw.pick(SURFACES)) | ({"robot"} if draw.chance(0.4) else set())
            e = held
        else:
            s = held
            e = {draw.pick(SURFACES)} | ({"robot"} if draw.chance(0.25) else set())
    elif focus and themed == "into_drawer":
        s = {"table"} if draw.chance(0.75) else draw.support("table") | {"robot"}
        e = (
            {"drawer"}
            | ({"robot"} if draw.chance(0.5) else set())
            | (draw.support() if draw.chance(0.3) else set())
        )
    elif focus and themed == "rotate":
        e = draw.support("table") | ({"robot"} if draw.chance(0.5) else set())
        if draw.chance(0.15):
            e = {"robot"}
    else:
        s |= {"robot"} if draw.chance(0.1) else set()
        e |= {"robot"} if draw.chance(0.1) else set()
    return start, end, s, e


def _stack_contacts(draw: _Draw, theme: str, contacts: dict[str, set[str]], focus: str, before: bool) -> None:
    """Add symmetric block-on-block contacts (a tower at the stack's end or the unstack's start)."""
    stacked = (theme == "stack" and not before) or (theme == "unstack" and before)
    if stacked:
        other = draw.pick([c for c in COLORS if c != focus])
        contacts[focus] = {f"{other}_block"} | ({"robot"} if draw.chance(0.2) else set())
        if draw.chance(0.2):
            contacts[focus] |= {draw.pick(SURFACES)}
        contacts[other] |= {f"{focus}_block"}
    elif draw.chance(0.1):
        a, b = draw.rng.choice(COLORS, size=2, replace=False)
        contacts[str(a)] |= {f"{b}_block"}
        contacts[str(b)] |= {f"{a}_block"}


def _joint_pair(draw: _Draw) -> tuple[dict, dict]:
    start = {
        "slider": float(draw.rng.uniform(0, 0.3)),
        "drawer": float(draw.rng.uniform(0, 0.22)),
        "button": float(draw.rng.uniform(0, 0.02)),
        "switch": float(draw.rng.uniform(0, 0.09)),
    }
    end = dict(start)
    for joint, limit in (("slider", 0.15), ("drawer", 0.12)):
        if draw.chance(0.15):  # exactly the limit: from 0, so that end - start is exact
            start[joint], end[joint] = 0.0, draw.pick((1, -1)) * limit
        elif draw.chance(0.6):
            delta = draw.pick((draw.near(limit, 0.02), float(draw.rng.uniform(0, 0.3))))
            end[joint] = start[joint] + draw.pick((1, -1)) * delta
    return start, end


def synthetic_pairs(n: int = DEFAULT_PAIRS, seed: int = DEFAULT_SEED) -> list[Pair]:
    """``n`` (start, end) scene infos of ours, drawn around every rule's limits (deterministic in ``seed``).

    Each pair has a theme (a task family) that one block follows; the other blocks, the joints,
    lights, velocities and the robot's other contacts are drawn freely. Block-on-block and
    robot contacts are symmetric, as PyBullet reports them.
    """
    draw = _Draw(np.random.default_rng(seed))
    pairs: list[Pair] = []
    for _ in range(n):
        theme = draw.pick(THEMES)
        focus = draw.pick(COLORS)
        infos: tuple[dict, dict] = ({}, {})
        contacts: tuple[dict, dict] = ({}, {})
        for color in COLORS:
            s, e, cs, ce = _block_pair(draw, theme, color == focus)
            infos[0][color], infos[1][color] = s, e
            contacts[0][color], contacts[1][color] = cs, ce
        for before, side in ((True, 0), (False, 1)):
            _stack_contacts(draw, theme, contacts[side], focus, before)
        joints = _joint_pair(draw)
        out = []
        for side in (0, 1):
            robot = {f"{c}_block" for c in COLORS if "robot" in contacts[side][c]}
            if draw.chance(0.25):
                robot.add(draw.pick(SURFACES + OTHER_PARTS))
            blocks = {c: {**infos[side][c], "contacts": frozenset(contacts[side][c])} for c in COLORS}
            out.append(
                {
                    "joints": joints[side],
                    "lights": {"lightbulb": int(draw.rng.integers(2)), "led": int(draw.rng.integers(2))},
                    "robot": {"contacts": frozenset(robot)},
                    "blocks": blocks,
                }
            )
        pairs.append((out[0], out[1]))
    return pairs


def pairs_digest(pairs: Iterable[Pair]) -> str:
    """SHA-256 of the pairs' numbers and contact names, to tell whether stored verdicts fit them."""
    h = hashlib.sha256()
    for pair in pairs:
        for info in pair:
            h.update(
                np.array([info["joints"][k] for k in sorted(info["joints"])], dtype=np.float64).tobytes()
            )
            h.update(bytes([info["lights"]["lightbulb"], info["lights"]["led"]]))
            h.update(",".join(sorted(info["robot"]["contacts"])).encode())
            for color in COLORS:
                b = info["blocks"][color]
                h.update(
                    np.concatenate([b["pos"], b["orn"], b["lin_vel"], b["ang_vel"]])
                    .astype(np.float64)
                    .tobytes()
                )
                h.update(",".join(sorted(b["contacts"])).encode())
    return h.hexdigest()
