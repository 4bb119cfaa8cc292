"""Franka Panda arm as CALVIN mounts it: base pose, initial joints, longer fingers, tcp and camera frames.

The URDF is pybullet_data's Panda, rewritten at run time: its low-poly collision meshes serve as
visual meshes too (fast to render), the fingers become boxes shaped like CALVIN's longer fingers,
and two fixed frames are added where CALVIN's ``panda_longer_finger.urdf`` has them (``tcp`` and
``gripper_cam``); the numbers are in :mod:`envs.calvin.geometry`.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

from envs.calvin import geometry as g

ROBOT_BASE = g.ROBOT_BASE
ARM_JOINTS = 7
# CALVIN's initial configuration: TCP at (0.026, -0.231, 0.571), gripper pointing down, fingers open.
HOME_JOINTS = g.ROBOT_INITIAL_JOINTS
JOINT_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
JOINT_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 120.0, 120.0)
FINGER_FORCE = 100.0
FINGER_OPEN = g.FINGER_OPEN  # per finger, metres
WORKSPACE_LOW = np.array([-0.65, -0.75, 0.3])
WORKSPACE_HIGH = np.array([0.65, 0.3, 0.9])


# Longer finger as boxes in the finger frame (x, y, z ranges): a base, a neck and the thin pad that
# reaches 9.6 cm (CALVIN's longer_finger_v2 profile; the stock finger ends at 5.4 cm).
FINGER_BOXES = (
    ((-0.0104, 0.0104), (0.006, 0.027), (0.0, 0.03)),
    ((-0.0104, 0.0104), (0.006, 0.0216), (0.03, 0.06)),
    ((-0.0088, 0.0088), (0.004, 0.0085), (0.06, g.FINGER_LENGTH)),
)


def _finger_geometry(mirror: bool) -> str:
    parts = []
    for (x0, x1), (y0, y1), (z0, z1) in FINGER_BOXES:
        c = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2]) * (
            -1 if mirror else 1,
            -1 if mirror else 1,
            1,
        )
        size = f"{x1 - x0:.5f} {y1 - y0:.5f} {z1 - z0:.5f}"
        geom = f'<origin xyz="{c[0]:.5f} {c[1]:.5f} {c[2]:.5f}"/><geometry><box size="{size}"/></geometry>'
        parts.append(f'<visual>{geom}<material name="panda_white"/></visual><collision>{geom}</collision>')
    return "".join(parts)


def _replace_finger(text: str, link: str, mirror: bool) -> str:
    start = text.index(f'<link name="{link}">')
    end = text.index("</link>", start)
    body = text[start:end]
    first = body.index("<visual>")
    return text[:start] + body[:first] + _finger_geometry(mirror) + text[end:]


def _frames() -> str:
    (cx, cy, cz), (rr, rp, ry) = g.GRIPPER_CAM_OFFSET
    frames = (("tcp", (0.0, 0.0, g.TCP_OFFSET), (0.0, 0.0, 0.0)), ("gripper_cam", (cx, cy, cz), (rr, rp, ry)))
    out = []
    for name, xyz, rpy in frames:
        out.append(
            f'<link name="{name}"><inertial><mass value="0.0"/><inertia ixx="0" ixy="0" ixz="0" iyy="0" '
            f'iyz="0" izz="0"/></inertial></link><joint name="{name}_joint" type="fixed"><parent link="panda_hand"/>'
            f'<child link="{name}"/><origin xyz="{xyz[0]} {xyz[1]} {xyz[2]}" rpy="{rpy[0]} {rpy[1]} {rpy[2]}"/></joint>'
        )
    return "".join(out)


@functools.lru_cache(maxsize=1)
def light_panda_urdf() -> str:
    """pybullet_data's Panda with light visual meshes, CALVIN's longer fingers and its tcp / camera frames.

    The stock visual meshes hold about 100k triangles, which dominates TinyRenderer's cost; the
    collision meshes hold about 3.5k and still show the arm's shape.
    """
    src_dir = Path(pybullet_data.getDataPath()) / "franka_panda"
    text = (src_dir / "panda.urdf").read_text()
    text = text.replace("package://meshes/visual/", "package://meshes/collision/")
    text = text.replace("package://meshes/", f"{src_dir.as_posix()}/meshes/")
    text = _replace_finger(text, "panda_leftfinger", mirror=False)
    text = _replace_finger(text, "panda_rightfinger", mirror=True)
    text = text.replace("</robot>", _frames() + "</robot>")
    out_dir = Path(tempfile.gettempdir()) / f"robovlm_bench_{os.getuid() if hasattr(os, 'getuid') else 0}"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "panda_longer_finger_light.urdf"
    if not out.exists() or out.read_text() != text:
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return str(out)


class Panda:
    """The arm inside one PyBullet client."""

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.uid = p.loadURDF(
            light_panda_urdf(),
            basePosition=ROBOT_BASE,
            useFixedBase=True,
            flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT,
            physicsClientId=cid,
        )
        names = {
            p.getJointInfo(self.uid, j, physicsClientId=cid)[12].decode(): j
            for j in range(p.getNumJoints(self.uid, physicsClientId=cid))
        }
        self.tcp_link = names["tcp"]
        self.hand_link = names["panda_hand"]
        self.camera_link = names["gripper_cam"]
        self.arm_joints = list(range(ARM_JOINTS))
        self.finger_joints = [names["panda_leftfinger"], names["panda_rightfinger"]]
        for j in self.finger_joints:
            p.changeDynamics(self.uid, j, lateralFriction=1.5, spinningFriction=0.003, physicsClientId=cid)
        self._ranges = list(JOINT_UPPER - JOINT_LOWER)
        self._add_pedestal()
        self.reset(HOME_JOINTS)

    def _add_pedestal(self) -> None:
        """The white cylinder CALVIN draws under the arm's base (visual only)."""
        x, y, z = ROBOT_BASE
        cyl = g.ROBOT_BASE_CYLINDER
        vis = p.createVisualShape(
            p.GEOM_CYLINDER,
            radius=cyl["radius"],
            length=z,
            rgbaColor=(1, 1, 1, 1),
            physicsClientId=self.cid,
        )
        self.pedestal = p.createMultiBody(
            baseVisualShapeIndex=vis, basePosition=(x + cyl["offset_x"], y, z / 2), physicsClientId=self.cid
        )

    def reset(self, joints=HOME_JOINTS, gripper_open: bool = True) -> None:
        for j, q in zip(self.arm_joints, joints, strict=True):
            p.resetJointState(self.uid, j, q, physicsClientId=self.cid)
        width = FINGER_OPEN if gripper_open else 0.0
        for j in self.finger_joints:
            p.resetJointState(self.uid, j, width, physicsClientId=self.cid)
        self.joint_targets = np.array(joints, dtype=float)
        self.gripper_action = 1.0 if gripper_open else -1.0
        self.command_joints(self.joint_targets)
        self.command_gripper(self.gripper_action, force_send=True)

    # --- state ---------------------------------------------------------------------------------
    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and quaternion (4,, xyzw)."""
        state = p.getLinkState(
            self.uid, self.tcp_link, computeForwardKinematics=True, physicsClientId=self.cid
        )
        return np.array(state[4]), np.array(state[5])

    def joint_positions(self) -> np.ndarray:
        states = p.getJointStates(self.uid, self.arm_joints, physicsClientId=self.cid)
        return np.array([s[0] for s in states])

    def gripper_width(self) -> float:
        states = p.getJointStates(self.uid, self.finger_joints, physicsClientId=self.cid)
        return float(states[0][0] + states[1][0])

    def observation(self) -> np.ndarray:
        """CALVIN's robot_obs: TCP pos (3), TCP Euler (3), gripper width, 7 joints, last gripper action."""
        pos, orn = self.tcp_pose()
        euler = p.getEulerFromQuaternion(orn)
        return np.concatenate(
            [pos, euler, [self.gripper_width()], self.joint_positions(), [self.gripper_action]]
        ).astype(np.float32)

    # --- control -------------------------------------------------------------------------------
    def inverse_kinematics(self, pos: np.ndarray, orn_quat: np.ndarray) -> np.ndarray:
        # Null-space IK, pulled towards the initial configuration as CALVIN's solver is; PyBullet
        # applies the null space only when the arrays cover every degree of freedom (arm + fingers).
        fingers = [self.gripper_width() / 2] * 2
        q = p.calculateInverseKinematics(
            self.uid,
            self.tcp_link,
            targetPosition=list(pos),
            targetOrientation=list(orn_quat),
            lowerLimits=list(JOINT_LOWER) + [0.0, 0.0],
            upperLimits=list(JOINT_UPPER) + [FINGER_OPEN, FINGER_OPEN],
            jointRanges=self._ranges + [FINGER_OPEN, FINGER_OPEN],
            restPoses=list(HOME_JOINTS) + fingers,
            maxNumIterations=20,
            residualThreshold=1e-4,
            physicsClientId=self.cid,
        )
        return np.clip(np.array(q[:ARM_JOINTS]), JOINT_LOWER, JOINT_UPPER)

    def command_joints(self, q: np.ndarray) -> None:
        self.joint_targets = np.asarray(q, dtype=float)
        p.setJointMotorControlArray(
            self.uid,
            self.arm_joints,
            p.POSITION_CONTROL,
            targetPositions=list(self.joint_targets),
            forces=list(ARM_FORCES),
            positionGains=[0.3] * ARM_JOINTS,
            physicsClientId=self.cid,
        )

    def command_gripper(self, action: float, force_send: bool = False) -> None:
        new = 1.0 if action > 0 else -1.0
        if new == self.gripper_action and not force_send:
            return  # the motor already holds this target
        self.gripper_action = new
        target = FINGER_OPEN if self.gripper_action > 0 else 0.0
        p.setJointMotorControlArray(
            self.uid,
            self.finger_joints,
            p.POSITION_CONTROL,
            targetPositions=[target, target],
            forces=[FINGER_FORCE, FINGER_FORCE],
            positionGains=[0.2, 0.2],
            physicsClientId=self.cid,
        )
