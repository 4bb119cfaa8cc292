"""Static and gripper cameras at CALVIN's poses and fields of view, rendered by TinyRenderer (CPU).

Poses, fields of view and clipping planes are CALVIN's (``conf/cameras/cameras/*.yaml``,
:mod:`envs.calvin.geometry`). The static camera looks at the desk obliquely from the front right;
the gripper camera sits on the hand's ``gripper_cam`` frame and looks along that frame's y axis
with -z up, as ``calvin_env/camera/gripper_camera.py`` does, so both fingers and the desk show.
The light is TinyRenderer's default, as in CALVIN's renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pybullet as p

from envs.calvin import geometry as g
from envs.calvin.layers import LayeredRenderer, Link, camera_image

STATIC = g.STATIC_CAMERA
GRIPPER = g.GRIPPER_CAMERA
CAM_POS, CAM_ORN = g.GRIPPER_CAM_OFFSET[0], p.getQuaternionFromEuler(g.GRIPPER_CAM_OFFSET[1])


def render_image(cid: int, size: int, view, proj, *, segmentation: bool = False) -> Any:
    """A ``size`` x ``size`` RGB image (TinyRenderer); with ``segmentation``, ``(rgb, seg)`` where
    ``seg`` holds PyBullet's object-and-link ids per pixel."""
    flags = p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if segmentation else p.ER_NO_SEGMENTATION_MASK
    rgb, _, seg = camera_image(cid, size, size, view, proj, flags)
    return (rgb, seg) if segmentation else rgb


class StaticCamera:
    """Fixed camera in front of the desk, to the right of the robot.

    After :meth:`set_fixed` it draws in layers (:mod:`envs.calvin.layers`): the links that never
    move once, the parts at rest only when one of them changes, and each frame only what moves,
    inside its rectangle of the image.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.view = p.computeViewMatrix(STATIC["eye"], STATIC["target"], STATIC["up"])
        self.proj = p.computeProjectionMatrixFOV(STATIC["fov"], 1.0, STATIC["near"], STATIC["far"])
        self.layers: LayeredRenderer | None = None

    def set_fixed(self, cid: int, links: Sequence[Link] | None) -> None:
        """The links of a newly built world that never move and never change colour (None: draw
        every frame whole)."""
        self.layers = None
        if links is not None:
            self.layers = LayeredRenderer(self.size, self.view, self.proj)
            self.layers.reset(cid, links)

    def render(self, cid: int) -> np.ndarray:
        if self.layers is None:
            return render_image(cid, self.size, self.view, self.proj)
        return self.layers.render(cid)


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
