"""The task oracle: which of the 34 tasks a change of scene state completes.

Every rule compares the scene info at the start of a subtask with the current info, as CALVIN's
oracle does (see shared/reference/calvin.md, "The 34 tasks and how the oracle judges them").

Scene info (built by :meth:`envs.calvin.env.CalvinEnv.scene_info`) is a plain dict:
``joints`` (slider, drawer, button, switch positions), ``lights`` (lightbulb, led: 0/1) and
``blocks``: per colour ``pos`` (3,), ``orn`` (xyzw quaternion), ``lin_vel``, ``ang_vel`` and
``contacts``, a frozenset of what the block touches: ``robot``, ``table`` (the desk top),
``slider_shelf``, ``drawer``, ``slider``, ``button``, ``switch`` or another block (``red_block``...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

Info = Mapping[str, Any]
COLORS = ("red", "blue", "pink")
BLOCK_NAMES = frozenset(f"{c}_block" for c in COLORS)
ROBOT = "robot"
SURFACE_OF = {"table": "table", "slider": "slider_shelf", "drawer": "drawer"}


def _block(info: Info, color: str) -> Mapping[str, Any]:
    return info["blocks"][color]


def _rotate(color: str, direction: str) -> Callable[[Info, Info], bool]:
    sign = -1.0 if direction == "right" else 1.0

    def rule(start: Info, end: Info) -> bool:
        s, e = _block(start, color), _block(end, color)
        rel = Rotation.from_quat(e["orn"]) * Rotation.from_quat(s["orn"]).inv()
        x, y, z = rel.as_euler("xyz", degrees=True)
        moved = float(np.linalg.norm(np.subtract(e["pos"], s["pos"])))
        touches_other = bool(e["contacts"] - {ROBOT})
        return sign * z > 60 and abs(x) < 30 and abs(y) < 30 and moved <= 0.1 and touches_other

    return rule


def _push(color: str, direction: str) -> Callable[[Info, Info], bool]:
    sign = 1.0 if direction == "right" else -1.0

    def rule(start: Info, end: Info) -> bool:
        s, e = _block(start, color), _block(end, color)
        dx = sign * (e["pos"][0] - s["pos"][0])
        on_surface = bool(s["contacts"] - {ROBOT}) and bool(e["contacts"] - {ROBOT})
        return dx > 0.1 and on_surface and s["contacts"] <= e["contacts"]

    return rule


def _joint(name: str, threshold: float) -> Callable[[Info, Info], bool]:
    def rule(start: Info, end: Info) -> bool:
        delta = end["joints"][name] - start["joints"][name]
        return delta > threshold if threshold > 0 else delta < threshold

    return rule


def _lift(color: str, source: str) -> Callable[[Info, Info], bool]:
    min_rise = 0.03 if source == "slider" else 0.05
    surface = SURFACE_OF[source]

    def rule(start: Info, end: Info) -> bool:
        s, e = _block(start, color), _block(end, color)
        rise = e["pos"][2] - s["pos"][2]
        return rise > min_rise and e["contacts"] == {ROBOT} and surface in s["contacts"]

    return rule


def _place(surface: str) -> Callable[[Info, Info], bool]:
    def rule(start: Info, end: Info) -> bool:
        held = [c for c in COLORS if _block(start, c)["contacts"] == {ROBOT}]
        if len(held) != 1:
            return False
        e = _block(end, held[0])
        return ROBOT not in e["contacts"] and surface in e["contacts"]

    return rule


def _slow(block: Mapping[str, Any]) -> bool:
    return bool(np.all(np.abs(block["lin_vel"]) < 1) and np.all(np.abs(block["ang_vel"]) < 1))


def _touches_only_blocks(contacts: frozenset) -> bool:
    return bool(contacts) and contacts <= BLOCK_NAMES


def _stack(start: Info, end: Info) -> bool:
    for c in COLORS:
        s, e = _block(start, c), _block(end, c)
        if not (s["contacts"] & BLOCK_NAMES) and _touches_only_blocks(e["contacts"]) and _slow(e):
            return True
    return False


def _unstack(start: Info, end: Info) -> bool:
    for c in COLORS:
        s, e = _block(start, c), _block(end, c)
        if _touches_only_blocks(s["contacts"]) and _slow(s) and not (e["contacts"] & BLOCK_NAMES):
            return True
    return False


def _light(name: str, before: int, after: int) -> Callable[[Info, Info], bool]:
    def rule(start: Info, end: Info) -> bool:
        return start["lights"][name] == before and end["lights"][name] == after

    return rule


def _push_into_drawer(start: Info, end: Info) -> bool:
    for c in COLORS:
        s, e = _block(start, c), _block(end, c)
        if ROBOT in s["contacts"] or ROBOT in e["contacts"]:
            continue
        if s["contacts"] == {"table"} and "drawer" in e["contacts"]:
            return True
    return False


def _build_rules() -> dict[str, Callable[[Info, Info], bool]]:
    rules: dict[str, Callable[[Info, Info], bool]] = {}
    for c in COLORS:
        for d in ("right", "left"):
            rules[f"rotate_{c}_block_{d}"] = _rotate(c, d)
    for c in COLORS:
        for d in ("right", "left"):
            rules[f"push_{c}_block_{d}"] = _push(c, d)
    rules["move_slider_left"] = _joint("slider", 0.15)
    rules["move_slider_right"] = _joint("slider", -0.15)
    rules["open_drawer"] = _joint("drawer", 0.12)
    rules["close_drawer"] = _joint("drawer", -0.12)
    for c in COLORS:
        for source in ("table", "slider", "drawer"):
            rules[f"lift_{c}_block_{source}"] = _lift(c, source)
    rules["place_in_slider"] = _place("slider_shelf")
    rules["place_in_drawer"] = _place("drawer")
    rules["turn_on_lightbulb"] = _light("lightbulb", 0, 1)
    rules["turn_off_lightbulb"] = _light("lightbulb", 1, 0)
    rules["turn_on_led"] = _light("led", 0, 1)
    rules["turn_off_led"] = _light("led", 1, 0)
    rules["push_into_drawer"] = _push_into_drawer
    rules["stack_block"] = _stack
    rules["unstack_block"] = _unstack
    return rules


RULES = _build_rules()
TASK_NAMES = tuple(RULES)


def check_task(task: str) -> None:
    if task not in RULES:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(sorted(RULES))}")


def is_success(task: str, start: Info, end: Info) -> bool:
    """Whether ``task`` is completed between the ``start`` and ``end`` scene infos."""
    check_task(task)
    return bool(RULES[task](start, end))


def completed_tasks(start: Info, end: Info) -> set[str]:
    """All tasks that the change from ``start`` to ``end`` completes."""
    return {name for name, rule in RULES.items() if rule(start, end)}
