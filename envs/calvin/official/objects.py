"""Which body and link of each env is which object, and putting our table in CALVIN's state.

Object names are :data:`OBJECTS` (the means) and :data:`EXTRA` (reported, outside the means).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pybullet as p

from envs.calvin.official.info import PART_OF_LINK

OBJECTS = (
    "desk",
    "drawer",
    "slider",
    "button",
    "switch",
    "led",
    "lightbulb",
    "red_block",
    "blue_block",
    "pink_block",
    "robot",
)
EXTRA = ("floor", "pedestal")
#: CALVIN's table links -> our object names: the oracle's part names, with the desk top and the
#: cabinet's shelf (the plank) counted as one object, the desk.
CALVIN_TABLE_LINKS = {
    link: "desk" if part in ("table", "slider_shelf") else part for link, part in PART_OF_LINK.items()
}
#: CALVIN's table joints -> our parts' joints (scene_obs order: slider, drawer, button, switch).
CALVIN_JOINTS = {
    "base__slide": "slider",
    "base__drawer": "drawer",
    "base__button": "button",
    "base__switch": "switch",
}
COLOURS = ("red", "blue", "pink")


# --- body/link -> object names ---------------------------------------------------------------------
Segments = dict[tuple[int, int], str]  # (body uid, link index; -1 the base) -> object name


def _link_names(uid: int, cid: int) -> dict[str, int]:
    return {
        p.getJointInfo(uid, j, physicsClientId=cid)[12].decode(): j
        for j in range(p.getNumJoints(uid, physicsClientId=cid))
    }


def _all_links(uid: int, cid: int) -> range:
    return range(-1, p.getNumJoints(uid, physicsClientId=cid))


def _joint_names(uid: int, cid: int) -> dict[str, int]:
    return {
        p.getJointInfo(uid, j, physicsClientId=cid)[1].decode(): j
        for j in range(p.getNumJoints(uid, physicsClientId=cid))
    }


def calvin_segments(calvin: Any) -> Segments:
    """Every body and link of CALVIN's env (a :class:`CalvinOfficialEnv`) mapped to an object name."""
    env, cid = calvin.env, calvin.env.cid
    table = env.scene.fixed_objects[0].uid
    out: Segments = {}
    for name, link in _link_names(table, cid).items():
        out[(table, link)] = CALVIN_TABLE_LINKS.get(name, "desk")
    out[(table, -1)] = "desk"
    blocks = {o.uid for o in env.scene.movable_objects}
    for o in env.scene.movable_objects:
        out[(o.uid, -1)] = calvin_block_name(o.name)
    robot = env.robot.robot_uid
    for link in _all_links(robot, cid):
        out[(robot, link)] = "robot"
    for i in range(p.getNumBodies(physicsClientId=cid)):
        uid = p.getBodyUniqueId(i, physicsClientId=cid)
        if uid in (table, robot) or uid in blocks:
            continue
        # the rest: CALVIN's plane.urdf and the base cylinder its robot adds under the arm
        kind = "floor" if p.getBodyInfo(uid, physicsClientId=cid)[1] == b"plane" else "pedestal"
        for link in _all_links(uid, cid):
            out[(uid, link)] = kind
    return out


def calvin_block_name(name: str) -> str:
    colour = name.removeprefix("block_")
    if colour not in COLOURS:
        raise ValueError(
            f"CALVIN's scene has a movable object {name!r}; expected block_red, block_blue, block_pink"
        )
    return f"{colour}_block"


def our_segments(ours: Any) -> Segments:
    """Every body and link of our env (a reset :class:`CalvinEnv`) mapped to an object name."""
    cid, desk = ours.cid, ours.desk_bodies
    out: Segments = {}
    for uid, name in ((desk.table, "desk"), (desk.shelf, "desk"), (desk.floor, "floor")):
        for link in _all_links(uid, cid):
            out[(uid, link)] = name
    out[(desk.parts, -1)] = "desk"  # the parts' base: nothing drawn, named for completeness
    for name, link in desk.links.items():
        out[(desk.parts, link)] = name
    for colour, uid in ours.blocks.items():
        out[(uid, -1)] = f"{colour}_block"
    for link in _all_links(ours.robot.uid, cid):
        out[(ours.robot.uid, link)] = "robot"
    out[(ours.robot.pedestal, -1)] = "pedestal"
    return out


def unmapped_bodies(segments: Segments, cid: int) -> list[int]:
    """Bodies of client ``cid`` with a link that ``segments`` does not name (should be none)."""
    missing = []
    for i in range(p.getNumBodies(physicsClientId=cid)):
        uid = p.getBodyUniqueId(i, physicsClientId=cid)
        if any((uid, link) not in segments for link in _all_links(uid, cid)):
            missing.append(uid)
    return missing


# --- matching the state ----------------------------------------------------------------------------
def match_state(calvin: Any, ours: Any, state: dict, seed: int = 0) -> float:
    """Reset CALVIN's env to the evaluation start of ``state``, put ours in the same configuration.

    Returns the largest absolute difference between the two envs' ``scene_obs`` afterwards (both
    list the blocks red, blue, pink), a check that they agree.
    """
    calvin.reset(options={"state": state})
    ours.reset(seed=seed, options={"state": state})
    cid, ccid = ours.cid, calvin.env.cid
    table = calvin.env.scene.fixed_objects[0].uid
    for name, j in _joint_names(table, ccid).items():
        if name in CALVIN_JOINTS:
            q = p.getJointState(table, j, physicsClientId=ccid)[0]
            p.resetJointState(ours.desk, ours.links[CALVIN_JOINTS[name]], q, physicsClientId=cid)
    for o in calvin.env.scene.movable_objects:
        pos, orn = p.getBasePositionAndOrientation(o.uid, physicsClientId=ccid)
        colour = calvin_block_name(o.name).removesuffix("_block")
        p.resetBasePositionAndOrientation(ours.blocks[colour], pos, orn, physicsClientId=cid)
        p.resetBaseVelocity(ours.blocks[colour], (0, 0, 0), (0, 0, 0), physicsClientId=cid)
    robot, our_robot = calvin.env.robot.robot_uid, ours.robot.uid
    theirs = _joint_names(robot, ccid)
    for name, j in _joint_names(our_robot, cid).items():
        if p.getJointInfo(our_robot, j, physicsClientId=cid)[2] == p.JOINT_FIXED:
            continue
        if name not in theirs:
            raise ValueError(f"CALVIN's robot has no joint {name!r} to match ours with")
        q = p.getJointState(robot, theirs[name], physicsClientId=ccid)[0]
        p.resetJointState(our_robot, j, q, physicsClientId=cid)
    calvin_obs = calvin.observe()
    ours.led = int(round(float(calvin_obs["scene_obs"][5])))
    ours.refresh_state()  # the env reads its parts once per control step; the matched ones now
    mine = ours.scene_obs().astype(np.float64)
    diff = np.abs(mine - np.asarray(calvin_obs["scene_obs"], dtype=np.float64))
    for k in range(6, 24, 6):  # Euler angles: compare modulo 2 pi
        diff[k + 3 : k + 6] = np.abs((diff[k + 3 : k + 6] + np.pi) % (2 * np.pi) - np.pi)
    return float(diff.max())


def label_image(seg: np.ndarray, segments: Segments) -> np.ndarray:
    """Object names per pixel ('' for the background) of a PyBullet object-and-link segmentation."""
    out = np.full(seg.shape, "", dtype=object)
    valid = seg >= 0
    uid = np.where(valid, seg & ((1 << 24) - 1), -1)
    link = np.where(valid, (seg >> 24) - 1, -2)
    for (u, lk), name in segments.items():
        out[(uid == u) & (link == lk)] = name
    return out


def ious(a: np.ndarray, b: np.ndarray, names: Sequence[str] = OBJECTS + EXTRA) -> dict[str, float]:
    """IoU per object name that shows in either label image."""
    out = {}
    for name in names:
        ma, mb = a == name, b == name
        union = int((ma | mb).sum())
        if union:
            out[name] = int((ma & mb).sum()) / union
    return out


def _aabb_centre(uid: int, link: int, cid: int) -> np.ndarray:
    lo, hi = p.getAABB(uid, link, physicsClientId=cid)
    return (np.asarray(lo) + np.asarray(hi)) / 2


def _body_aabb_centre(uid: int, cid: int) -> np.ndarray:
    boxes = [p.getAABB(uid, link, physicsClientId=cid) for link in _all_links(uid, cid)]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return (lo + hi) / 2


def part_positions(calvin: Any, ours: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per part, (CALVIN's position, ours) in metres: bounding-box centres, arm link frames."""
    ccid, cid = calvin.env.cid, ours.cid
    table = calvin.env.scene.fixed_objects[0].uid
    links = _link_names(table, ccid)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "desk": (_aabb_centre(table, -1, ccid), _body_aabb_centre(ours.desk_bodies.table, cid)),
        "shelf": (
            _aabb_centre(table, links["plank_link"], ccid),
            _aabb_centre(ours.desk_bodies.shelf, -1, cid),
        ),
    }
    for theirs, mine in CALVIN_TABLE_LINKS.items():
        if mine != "desk":
            out[mine] = (
                _aabb_centre(table, links[theirs], ccid),
                _aabb_centre(ours.desk, ours.links[mine], cid),
            )
    for o in calvin.env.scene.movable_objects:
        name = calvin_block_name(o.name)
        out[name] = (
            _aabb_centre(o.uid, -1, ccid),
            _aabb_centre(ours.blocks[name.removesuffix("_block")], -1, cid),
        )
    robot, our_robot = calvin.env.robot.robot_uid, ours.robot.uid
    theirs_links = _link_names(robot, ccid)
    for name, j in _link_names(our_robot, cid).items():
        if name in theirs_links:
            a = p.getLinkState(
                robot, theirs_links[name], computeForwardKinematics=True, physicsClientId=ccid
            )[4]
            b = p.getLinkState(our_robot, j, computeForwardKinematics=True, physicsClientId=cid)[4]
            out[f"robot/{name}"] = (np.asarray(a), np.asarray(b))
    return out
