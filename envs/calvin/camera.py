"""Static and wrist cameras rendered with PyBullet's TinyRenderer (CPU, headless)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

STATIC_EYE = (-0.05, 0.2, 1.5)  # above the back of the desk, looking down towards the robot
STATIC_TARGET = (0.0, -0.15, 0.4)
STATIC_FOV = 60.0
GRIPPER_FOV = 75.0


@dataclass(frozen=True)
class CameraSpec:
    name: str
    size: int


def _render(cid: int, size: int, view, proj) -> np.ndarray:
    _, _, rgba, _, _ = p.getCameraImage(
        size,
        size,
        viewMatrix=view,
        projectionMatrix=proj,
        renderer=p.ER_TINY_RENDERER,
        flags=p.ER_NO_SEGMENTATION_MASK,
        shadow=0,
        lightDirection=(0.4, -0.6, 1.0),
        physicsClientId=cid,
    )
    return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()


class StaticCamera:
    """Fixed camera above the back of the desk: drawer, blocks, slider, button and switch in view."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.view = p.computeViewMatrix(STATIC_EYE, STATIC_TARGET, (0, 0, 1))
        self.proj = p.computeProjectionMatrixFOV(STATIC_FOV, 1.0, 0.05, 3.0)

    def render(self, cid: int) -> np.ndarray:
        return _render(cid, self.size, self.view, self.proj)


class GripperCamera:
    """Wrist camera on the hand, looking along the gripper between the fingers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.proj = p.computeProjectionMatrixFOV(GRIPPER_FOV, 1.0, 0.01, 2.0)

    def render(self, cid: int, robot_uid: int, hand_link: int) -> np.ndarray:
        state = p.getLinkState(robot_uid, hand_link, computeForwardKinematics=True, physicsClientId=cid)
        pos, orn = np.array(state[4]), state[5]
        rot = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        forward, up = rot[:, 2], -rot[:, 0]
        eye = pos + rot @ np.array([0.05, 0.0, 0.02])
        view = p.computeViewMatrix(eye, eye + forward, up)
        return _render(cid, self.size, view, self.proj)
