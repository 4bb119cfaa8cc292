"""The task oracle on hand-made scene infos: a state that satisfies each rule and ones that violate it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from envs.calvin.tasks import RULES, TASK_NAMES, completed_tasks, is_success


def quat(yaw_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    return Rotation.from_euler("xyz", [roll_deg, 0, yaw_deg], degrees=True).as_quat()


def block(x=0.0, y=-0.12, z=0.46, yaw=90.0, contacts=("table",), vel=0.0) -> dict:
    return {
        "pos": np.array([x, y, z]),
        "orn": quat(yaw),
        "lin_vel": np.full(3, vel),
        "ang_vel": np.zeros(3),
        "contacts": frozenset(contacts),
    }


def base_info() -> dict:
    return {
        "joints": {"slider": 0.0, "drawer": 0.0, "button": 0.0, "switch": 0.0},
        "lights": {"lightbulb": 0, "led": 0},
        "robot": {"contacts": frozenset()},
        "blocks": {
            "red": block(0.05),
            "blue": block(0.23),
            "pink": block(-0.24, 0.09, 0.464, contacts=("slider_shelf",)),
        },
    }


def changed(info: dict, robot=None, **blocks) -> dict:
    """``info`` with some blocks replaced; the robot touches the blocks that touch it, plus ``robot``."""
    out = copy.deepcopy(info)
    for color, kw in blocks.items():
        out["blocks"][color] = block(**kw)
    held = {f"{c}_block" for c, b in out["blocks"].items() if "robot" in b["contacts"]}
    out["robot"] = {"contacts": frozenset(held | set(robot or ()))}
    return out


def test_there_are_34_tasks():
    assert len(TASK_NAMES) == 34 == len(set(TASK_NAMES))


def test_nothing_happens_completes_nothing():
    info = base_info()
    assert completed_tasks(info, copy.deepcopy(info)) == set()


@pytest.mark.parametrize(
    "direction,yaw,ok",
    [("right", 90 - 70, True), ("left", 90 + 70, True), ("right", 90 + 70, False), ("left", 90 - 50, False)],
)
def test_rotate(direction, yaw, ok):
    start = base_info()
    end = changed(start, red={"x": 0.05, "yaw": yaw, "contacts": ("table", "robot")})
    assert is_success(f"rotate_red_block_{direction}", start, end) is ok


@pytest.mark.parametrize("direction,yaw", [("left", 180.0), ("right", -180.0)])
def test_rotate_by_exactly_half_a_turn_is_not_a_rotation(direction, yaw):
    start = base_info()
    start["blocks"]["red"]["orn"] = np.array([0.0, 0.0, 0.0, 1.0])
    end = copy.deepcopy(start)
    end["blocks"]["red"]["orn"] = Rotation.from_euler("z", yaw, degrees=True).as_quat()
    assert not is_success(f"rotate_red_block_{direction}", start, end)  # CALVIN: strictly below 180


def test_rotate_needs_flat_small_move_and_support():
    start = base_info()
    moved = changed(start, red={"x": 0.2, "yaw": 10})
    assert not is_success("rotate_red_block_right", start, moved)
    held = changed(start, red={"x": 0.05, "yaw": 10, "contacts": ("robot",)})
    assert not is_success("rotate_red_block_right", start, held)
    tilted = copy.deepcopy(start)
    tilted["blocks"]["red"]["orn"] = Rotation.from_euler("xyz", [40, 0, 10], degrees=True).as_quat()
    assert not is_success("rotate_red_block_right", start, tilted)


@pytest.mark.parametrize(
    "dx,task,ok",
    [
        (0.11, "push_blue_block_right", True),
        (-0.11, "push_blue_block_left", True),
        (0.09, "push_blue_block_right", False),
        (0.11, "push_blue_block_left", False),
    ],
)
def test_push(dx, task, ok):
    start = base_info()
    end = changed(start, blue={"x": 0.23 + dx, "contacts": ("table", "robot")})
    assert is_success(task, start, end) is ok


def test_push_ignores_the_robot_at_either_end():
    pushed_at_start = changed(base_info(), blue={"x": 0.23, "contacts": ("table", "robot")})
    end = changed(pushed_at_start, blue={"x": 0.36, "contacts": ("table",)})
    assert is_success("push_blue_block_right", pushed_at_start, end)  # robot removed before the subset check
    onto_drawer = changed(pushed_at_start, blue={"x": 0.36, "contacts": ("drawer",)})
    assert not is_success("push_blue_block_right", pushed_at_start, onto_drawer)  # left the desk top


def test_push_lifted_block_is_not_a_push():
    start = base_info()
    end = changed(start, blue={"x": 0.36, "z": 0.55, "contacts": ("robot",)})
    assert not is_success("push_blue_block_right", start, end)


@pytest.mark.parametrize(
    "joint,delta,task",
    [
        ("slider", 0.16, "move_slider_left"),
        ("slider", -0.16, "move_slider_right"),
        ("drawer", 0.13, "open_drawer"),
        ("drawer", -0.13, "close_drawer"),
    ],
)
def test_articulations(joint, delta, task):
    start = base_info()
    start["joints"][joint] = 0.2 if delta < 0 else 0.0
    end = copy.deepcopy(start)
    end["joints"][joint] += delta
    assert is_success(task, start, end)
    small = copy.deepcopy(start)
    small["joints"][joint] += delta * 0.5
    assert not is_success(task, start, small)


def test_lift_from_each_surface():
    start = base_info()
    assert is_success("lift_red_block_table", start, changed(start, red={"z": 0.52, "contacts": ("robot",)}))
    assert not is_success(
        "lift_red_block_table", start, changed(start, red={"z": 0.50, "contacts": ("robot",)})
    )
    assert not is_success(
        "lift_red_block_table", start, changed(start, red={"z": 0.52, "contacts": ("robot", "blue_block")})
    )
    assert not is_success(
        "lift_red_block_slider", start, changed(start, red={"z": 0.52, "contacts": ("robot",)})
    )
    assert is_success(
        "lift_pink_block_slider", start, changed(start, pink={"z": 0.498, "contacts": ("robot",)})
    )
    in_drawer = changed(start, blue={"z": 0.355, "contacts": ("drawer",)})
    assert is_success(
        "lift_blue_block_drawer", in_drawer, changed(in_drawer, blue={"z": 0.41, "contacts": ("robot",)})
    )


def test_place_needs_exactly_one_held_block():
    start = changed(base_info(), red={"z": 0.6, "contacts": ("robot",)})
    end = changed(start, red={"x": -0.24, "y": 0.09, "z": 0.464, "contacts": ("slider_shelf",)})
    assert is_success("place_in_slider", start, end)
    assert not is_success("place_in_drawer", start, end)
    still_held = changed(
        start, red={"x": -0.24, "y": 0.09, "z": 0.464, "contacts": ("slider_shelf", "robot")}
    )
    assert not is_success("place_in_slider", start, still_held)
    nothing_held = base_info()
    assert not is_success("place_in_slider", nothing_held, end)
    drawer_end = changed(start, red={"z": 0.355, "contacts": ("drawer",)})
    assert is_success("place_in_drawer", start, drawer_end)


@pytest.mark.parametrize("other", ["table", "drawer", "floor", "blue_block"])
def test_place_needs_the_robot_to_touch_one_body_only(other):
    start = changed(base_info(), robot=[other], red={"z": 0.6, "contacts": ("robot",)})
    end = changed(start, robot=[], red={"x": -0.24, "y": 0.09, "z": 0.464, "contacts": ("slider_shelf",)})
    assert not is_success("place_in_slider", start, end)


def test_stack_and_unstack():
    start = changed(base_info(), red={"z": 0.6, "contacts": ("robot",)})
    stacked = changed(
        start,
        red={"x": 0.23, "z": 0.51, "contacts": ("blue_block",)},
        blue={"x": 0.23, "contacts": ("table", "red_block")},
    )
    assert is_success("stack_block", start, stacked)
    fast = changed(stacked, red={"x": 0.23, "z": 0.51, "contacts": ("blue_block",), "vel": 2.0})
    assert not is_success("stack_block", start, fast)
    unstacked = changed(
        stacked, red={"x": 0.1, "z": 0.55, "contacts": ("robot",)}, blue={"x": 0.23, "contacts": ("table",)}
    )
    assert is_success("unstack_block", stacked, unstacked)
    assert not is_success("unstack_block", start, unstacked)


@pytest.mark.parametrize("light", ["lightbulb", "led"])
def test_lights(light):
    start = base_info()
    end = copy.deepcopy(start)
    end["lights"][light] = 1
    assert is_success(f"turn_on_{light}", start, end)
    assert not is_success(f"turn_off_{light}", start, end)
    assert is_success(f"turn_off_{light}", end, start)


def test_push_into_drawer():
    start = base_info()
    end = changed(start, red={"y": -0.3, "z": 0.355, "contacts": ("drawer",)})
    assert is_success("push_into_drawer", start, end)
    # CALVIN's robot check never rejects: touching the block at the end still counts ...
    carried = changed(start, red={"y": -0.3, "z": 0.355, "contacts": ("drawer", "robot")})
    assert is_success("push_into_drawer", start, carried)
    # ... but at the start the block must touch the desk top alone (one contact)
    touched = changed(start, red={"contacts": ("table", "robot")})
    assert not is_success("push_into_drawer", touched, end)
    on_two_parts = changed(start, red={"contacts": ("table", "slider")})
    assert not is_success("push_into_drawer", on_two_parts, end)


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: .*open_drawer"):
        is_success("open_the_door", base_info(), base_info())
    assert set(RULES) == set(TASK_NAMES)
