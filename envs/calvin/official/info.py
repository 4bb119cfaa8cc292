"""Scene infos in CALVIN's format and back.

:func:`to_calvin_info` turns a scene info of ours (:mod:`envs.calvin.tasks`) into the info dict
CALVIN's env returns and its ``Tasks`` reads (``robot_info`` and ``scene_info`` with PyBullet
contact tuples: body ids and link indices numbered as CALVIN's scene loads them);
:func:`from_calvin_info` reads an info of CALVIN's env into ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from envs.calvin.tasks import BLOCK_NAMES, COLORS, CONTACT_NAMES, FLOOR, TABLE_PARTS

Info = Mapping[str, Any]

# Body ids and link indices as CALVIN's PlayTableSimEnv loads scene A..D (robot, its base
# cylinder, the blocks, the table, the floor plane), and the links of its table URDF.
ROBOT_UID = 0
BLOCK_UIDS = {"red": 2, "blue": 3, "pink": 4}
TABLE_UID = 5
FLOOR_UID = 6
TABLE_LINKS = {
    "base_link": -1,
    "button_link": 0,
    "switch_link": 1,
    "slide_link": 2,
    "drawer_link": 3,
    "led_link": 4,
    "light_link": 5,
    "plank_link": 6,
}
#: Our contact name of each of CALVIN's table links.
PART_OF_LINK = {
    "base_link": "table",
    "plank_link": "slider_shelf",
    "drawer_link": "drawer",
    "slide_link": "slider",
    "button_link": "button",
    "switch_link": "switch",
    "led_link": "led",
    "light_link": "lightbulb",
}
LINK_OF_PART = {part: link for link, part in PART_OF_LINK.items()}
FINGER_LINKS = (9, 11)  # panda_longer_finger's finger links (its gripper joints)
DOORS = {"slider": "base__slide", "drawer": "base__drawer"}


def _pair_of(name: str) -> tuple[int, int]:
    """(body id, link index) of a non-robot contact name in CALVIN's scene."""
    if name in TABLE_PARTS:
        return TABLE_UID, TABLE_LINKS[LINK_OF_PART[name]]
    if name == FLOOR:
        return FLOOR_UID, -1
    if name in BLOCK_NAMES:
        return BLOCK_UIDS[name.removesuffix("_block")], -1
    raise ValueError(f"unknown contact name {name!r}; valid: {', '.join(sorted(CONTACT_NAMES))}")


def _points(body: int, link: int, other: int, other_link: int, count: int) -> list[tuple]:
    """``count`` PyBullet contact tuples (flag, A, B, linkA, linkB, posA, posB, normal, distance, ...)."""
    zero = (0.0, 0.0, 0.0)
    return [(0, body, other, link, other_link, zero, zero, zero, 0.0, 0.0, 0.0, zero, 0.0, zero)] * count


def _contact_list(body: int, names: Iterable[str], robot_links: tuple[int, ...], points: int) -> list[tuple]:
    out: list[tuple] = []
    for name in sorted(names):
        if name == "robot":
            for link in robot_links:
                out += _points(body, -1, ROBOT_UID, link, points)
        else:
            out += _points(body, -1, *_pair_of(name), points)
    return out


def to_calvin_info(info: Info, *, robot_links: tuple[int, ...] = FINGER_LINKS, points: int = 1) -> dict:
    """CALVIN's info dict (``get_info()`` of its env) for one scene info of ours.

    ``robot_links``: the robot links that touch a block the robot touches; ``points``: contact
    points per touching pair (CALVIN keeps all, its rules read sets of bodies or (body, link)).
    """
    movable = {}
    for color in COLORS:
        b = info["blocks"][color]
        uid = BLOCK_UIDS[color]
        movable[f"block_{color}"] = {
            "current_pos": tuple(float(v) for v in b["pos"]),
            "current_orn": tuple(float(v) for v in b["orn"]),
            "current_lin_vel": tuple(float(v) for v in b["lin_vel"]),
            "current_ang_vel": tuple(float(v) for v in b["ang_vel"]),
            "contacts": _contact_list(uid, b["contacts"], robot_links, points),
            "uid": uid,
        }
    bulb, led = int(info["lights"]["lightbulb"]), int(info["lights"]["led"])
    robot_contacts = []
    for name in sorted(info["robot"]["contacts"]):
        for link in robot_links:
            robot_contacts += _points(ROBOT_UID, link, *_pair_of(name), points)
    return {
        "robot_info": {"uid": ROBOT_UID, "contacts": robot_contacts},
        "scene_info": {
            "fixed_objects": {"table": {"uid": TABLE_UID, "links": dict(TABLE_LINKS)}},
            "movable_objects": movable,
            "doors": {door: {"current_state": float(info["joints"][j])} for j, door in DOORS.items()},
            "buttons": {
                "base__button": {"joint_state": float(info["joints"]["button"]), "logical_state": led}
            },
            "switches": {
                "base__switch": {"joint_state": float(info["joints"]["switch"]), "logical_state": bulb}
            },
            "lights": {"lightbulb": {"logical_state": bulb}, "led": {"logical_state": led}},
        },
    }


def from_calvin_info(info: Info) -> dict:
    """Our scene info (:mod:`envs.calvin.tasks`) from the info dict of CALVIN's env."""
    scene = info["scene_info"]
    robot_uid = info["robot_info"]["uid"]
    table = scene["fixed_objects"]["table"]
    part_of = {(table["uid"], idx): PART_OF_LINK[link] for link, idx in table["links"].items()}
    block_of = {
        obj["uid"]: f"{name.removeprefix('block_')}_block" for name, obj in scene["movable_objects"].items()
    }

    def names(contacts: Iterable[tuple]) -> frozenset[str]:
        out = set()
        for c in contacts:
            other, link = c[2], c[4]
            if other == robot_uid:
                out.add("robot")
            elif other in block_of:
                out.add(block_of[other])
            elif (other, link) in part_of:
                out.add(part_of[other, link])
            else:
                out.add(FLOOR)  # the only other body of CALVIN's scene is its floor plane
        return frozenset(out)

    blocks = {}
    for name, obj in scene["movable_objects"].items():
        blocks[name.removeprefix("block_")] = {
            "pos": np.array(obj["current_pos"]),
            "orn": np.array(obj["current_orn"]),
            "lin_vel": np.array(obj["current_lin_vel"]),
            "ang_vel": np.array(obj["current_ang_vel"]),
            "contacts": names(obj["contacts"]),
        }
    doors = scene["doors"]
    return {
        "joints": {
            "slider": float(doors["base__slide"]["current_state"]),
            "drawer": float(doors["base__drawer"]["current_state"]),
            "button": float(scene["buttons"]["base__button"]["joint_state"]),
            "switch": float(scene["switches"]["base__switch"]["joint_state"]),
        },
        "lights": {n: int(scene["lights"][n]["logical_state"]) for n in ("lightbulb", "led")},
        "robot": {"contacts": names(info["robot_info"]["contacts"])},
        "blocks": blocks,
    }
