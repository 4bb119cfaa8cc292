"""Static and gripper cameras at CALVIN's poses and fields of view, rendered by TinyRenderer (CPU).

Poses, fields of view and clipping planes are CALVIN's (``conf/cameras/cameras/*.yaml``,
:mod:`envs.calvin.geometry`). The static camera looks at the desk obliquely from the front right;
the gripper camera sits on the hand's ``gripper_cam`` frame and looks along that frame's y axis
with -z up, as ``calvin_env/camera/gripper_camera.py`` does, so both fingers and the desk show.
The light is TinyRenderer's default, as in CALVIN's renders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pybullet as p

from envs.calvin import geometry as g

STATIC = g.STATIC_CAMERA
GRIPPER = g.GRIPPER_CAMERA
CAM_POS, CAM_ORN = g.GRIPPER_CAM_OFFSET[0], p.getQuaternionFromEuler(g.GRIPPER_CAM_OFFSET[1])


def _camera_image(cid: int, size: int, view, proj, flags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rgb, depth buffer, segmentation)`` of one TinyRenderer image, ``size`` x ``size``."""
    _, _, rgba, depth, seg = p.getCameraImage(
        size,
        size,
        viewMatrix=view,
        projectionMatrix=proj,
        renderer=p.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=cid,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()
    shape = (size, size)
    return (
        rgb,
        np.asarray(depth, dtype=np.float32).reshape(shape),
        np.asarray(seg, dtype=np.int64).reshape(shape),
    )


def render_image(cid: int, size: int, view, proj, *, segmentation: bool = False) -> Any:
    """A ``size`` x ``size`` RGB image (TinyRenderer); with ``segmentation``, ``(rgb, seg)`` where
    ``seg`` holds PyBullet's object-and-link ids per pixel."""
    flags = p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if segmentation else p.ER_NO_SEGMENTATION_MASK
    rgb, _, seg = _camera_image(cid, size, view, proj, flags)
    return (rgb, seg) if segmentation else rgb


Link = tuple[int, int]  # (body unique id, link index; -1 the base)


def fixed_links(cid: int, exclude: Sequence[Link] = ()) -> list[Link]:
    """The links with a visual shape that can never move: on a body with a fixed base (mass 0),
    joined to that base by fixed joints only; ``exclude`` (e.g. lights that change colour) left out."""
    found = []
    for index in range(p.getNumBodies(physicsClientId=cid)):
        uid = p.getBodyUniqueId(index, physicsClientId=cid)
        if p.getDynamicsInfo(uid, -1, physicsClientId=cid)[0] != 0:
            continue
        for link in dict.fromkeys(v[1] for v in p.getVisualShapeData(uid, physicsClientId=cid)):
            at = link
            while at != -1 and p.getJointInfo(uid, at, physicsClientId=cid)[2] == p.JOINT_FIXED:
                at = p.getJointInfo(uid, at, physicsClientId=cid)[16]
            if at == -1 and (uid, link) not in exclude:
                found.append((uid, link))
    return found


def _colours(cid: int, links: Sequence[Link]) -> dict[Link, list[tuple]]:
    """Each link's shapes' RGBA colours, in shape order."""
    out: dict[Link, list[tuple]] = {link: [] for link in links}
    for uid in dict.fromkeys(uid for uid, _ in links):
        for v in p.getVisualShapeData(uid, physicsClientId=cid):
            if (uid, v[1]) in out:
                out[uid, v[1]].append(tuple(v[7]))
    return out


@contextlib.contextmanager
def _hidden(cid: int, colours: dict[Link, list[tuple]]):
    """The links of ``colours`` invisible for the block (TinyRenderer skips zero-alpha shapes), then
    each shape back in its colour."""
    for uid, link in colours:
        p.changeVisualShape(uid, link, rgbaColor=(0, 0, 0, 0), physicsClientId=cid)
    try:
        yield
    finally:
        for (uid, link), shapes in colours.items():
            for i, rgba in enumerate(shapes):
                p.changeVisualShape(uid, link, shapeIndex=i, rgbaColor=rgba, physicsClientId=cid)


class StaticCamera:
    """Fixed camera in front of the desk, to the right of the robot.

    After :meth:`set_fixed`, the links that never move (desk, shelf, floor, robot base) are drawn once
    into a background image and depth buffer, and each frame draws only the moving parts and lays them
    over it by depth: about 3x cheaper than drawing the whole scene, and the same image except for a
    pixel or two where a moving and a fixed surface meet at equal depth (``tests/test_env.py``).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.view = p.computeViewMatrix(STATIC["eye"], STATIC["target"], STATIC["up"])
        self.proj = p.computeProjectionMatrixFOV(STATIC["fov"], 1.0, STATIC["near"], STATIC["far"])
        self._fixed: dict[Link, list[tuple]] | None = None
        self._background: tuple[np.ndarray, np.ndarray] | None = None

    def set_fixed(self, cid: int, links: Sequence[Link] | None) -> None:
        """The links of a newly built world that never move and never change colour (None: draw
        every frame whole)."""
        self._fixed = None if links is None else _colours(cid, links)
        self._background = None

    def _colour_and_depth(self, cid: int) -> tuple[np.ndarray, np.ndarray]:
        return _camera_image(cid, self.size, self.view, self.proj, p.ER_NO_SEGMENTATION_MASK)[:2]

    def render(self, cid: int) -> np.ndarray:
        if self._fixed is None:
            return render_image(cid, self.size, self.view, self.proj)
        if self._background is None:
            fixed = set(self._fixed)
            bodies = [
                p.getBodyUniqueId(i, physicsClientId=cid) for i in range(p.getNumBodies(physicsClientId=cid))
            ]
            moving = [(u, v[1]) for u in bodies for v in p.getVisualShapeData(u, physicsClientId=cid)]
            with _hidden(cid, _colours(cid, [link for link in dict.fromkeys(moving) if link not in fixed])):
                self._background = self._colour_and_depth(cid)
        with _hidden(cid, self._fixed):
            rgb, depth = self._colour_and_depth(cid)
        back_rgb, back_depth = self._background
        return np.where((depth < back_depth)[:, :, None], rgb, back_rgb)


def gripper_view(hand_pos, hand_orn) -> tuple:
    """View matrix of the gripper camera for the hand link's world pose."""
    pos, orn = p.multiplyTransforms(hand_pos, hand_orn, CAM_POS, CAM_ORN)
    rot = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
    pos = np.asarray(pos)
    return p.computeViewMatrix(pos, pos + rot[:, 1], -rot[:, 2])


class GripperCamera:
    """Wrist camera on the hand, at CALVIN's ``gripper_cam`` frame."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.proj = p.computeProjectionMatrixFOV(GRIPPER["fov"], 1.0, GRIPPER["near"], GRIPPER["far"])

    def render(self, cid: int, robot_uid: int, hand_link: int) -> np.ndarray:
        state = p.getLinkState(robot_uid, hand_link, computeForwardKinematics=True, physicsClientId=cid)
        return render_image(cid, self.size, gripper_view(state[4], state[5]), self.proj)
