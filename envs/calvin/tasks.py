"""The task oracle: which of the 34 tasks a change of scene state completes.

Every rule compares the scene info at the start of a subtask with the current info and gives
CALVIN's verdict (``calvin_env/envs/tasks.py`` with ``conf/tasks/new_playtable_tasks.yaml``, see
shared/reference/calvin.md, "The 34 tasks and how the oracle judges them"), including CALVIN's
quirks: push_into_drawer lets the robot touch the block (only its one-contact rule at the start
holds it back), place_in_* needs the robot to touch exactly one body at the start. The
differential test against CALVIN's own ``Tasks`` (``tests/test_oracle_differential.py``, via
:mod:`envs.calvin.official.oracle`) keeps the two in agreement.

Scene info (built by :meth:`envs.calvin.env.CalvinEnv.scene_info`) is a plain dict:
``joints`` (slider, drawer, button, switch positions), ``lights`` (lightbulb, led: 0/1),
``robot``: ``contacts``, the frozenset of what the robot touches (blocks, parts, floor), and
``blocks``: per colour ``pos`` (3,), ``orn`` (xyzw quaternion), ``lin_vel``, ``ang_vel`` and
``contacts``, a frozenset of what the block touches: ``robot``, ``floor``, another block
(``red_block``...) or a part of CALVIN's table body (:data:`TABLE_PARTS`: ``table`` is the desk
top and cabinet, CALVIN's ``base_link``). Each name stands for one (body, link) pair of CALVIN's
scene, the robot for any of its links; every contact point counts, however far apart.
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
FLOOR = "floor"
#: The links of CALVIN's one table body, by the names contacts use (CALVIN's link in brackets):
#: desk top and cabinet (base_link), slider shelf (plank_link), drawer (drawer_link), sliding door
#: (slide_link), button (button_link), switch (switch_link), LED (led_link), bulb (light_link).
TABLE_PARTS = frozenset({"table", "slider_shelf", "drawer", "slider", "button", "switch", "led", "lightbulb"})
#: Every name a contact set may hold.
CONTACT_NAMES = frozenset({ROBOT, FLOOR}) | TABLE_PARTS | BLOCK_NAMES
SURFACE_OF = {"table": "table", "slider": "slider_shelf", "drawer": "drawer"}


def _block(info: Info, color: str) -> Mapping[str, Any]:
    return info["blocks"][color]


def body_of(name: str) -> str:
    """The body a contact name belongs to: every table part is one body, as in CALVIN's scene."""
    return "table" if name in TABLE_PARTS else name


def _rotate(color: str, direction: str) -> Callable[[Info, Info], bool]:
    sign = -1.0 if direction == "right" else 1.0

    def rule(start: Info, end: Info) -> bool:
        s, e = _block(start, color), _block(end, color)
        rel = Rotation.from_quat(e["orn"]) * Rotation.from_quat(s["orn"]).inv()
        x, y, z = rel.as_euler("xyz", degrees=True)
        moved = float(np.linalg.norm(np.subtract(e["pos"], s["pos"])))
        touches_other = bool(e["contacts"] - {ROBOT})
        return 60 < sign * z < 180 and abs(x) < 30 and abs(y) < 30 and moved <= 0.1 and touches_other

    return rule


def _push(color: str, direction: str) -> Callable[[Info, Info], bool]:
    sign = 1.0 if direction == "right" else -1.0

    def rule(start: Info, end: Info) -> bool:
        s, e = _block(start, color), _block(end, color)
        dx = sign * (e["pos"][0] - s["pos"][0])
        before, after = s["contacts"] - {ROBOT}, e["contacts"] - {ROBOT}  # CALVIN drops the robot first
        return dx > 0.1 and bool(before) and bool(after) and before <= after

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
        touched = {body_of(n) for n in start["robot"]["contacts"]}
        if len(touched) != 1:
            return False
        (held,) = touched
        if held not in BLOCK_NAMES or held in end["robot"]["contacts"]:
            return False
        color = held.removesuffix("_block")
        return _block(start, color)["contacts"] == {ROBOT} and surface in _block(end, color)["contacts"]

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
    # CALVIN's robot check never rejects (see the module doc): a block touching only the desk top
    # at the start and the drawer at the end counts, whatever the robot touches.
    return any(
        _block(start, c)["contacts"] == {"table"} and "drawer" in _block(end, c)["contacts"] for c in COLORS
    )


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
