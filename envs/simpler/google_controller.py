"""SimplerEnv's Google-robot controllers, written for ManiSkill3's controller interface.

SimplerEnv (ManiSkill2_real2sim) drives the RT-1 tasks with
``arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_target_delta_pos_interpolate_by_planner``.
ManiSkill 3.0.1's ``googlerobot`` agent defines no controller, so this module writes both halves:

* :class:`PlannedEEPoseController` (the arm): the action is a delta end-effector pose, a translation
  in metres and an axis-angle rotation in radians, both in the robot base frame with the rotation
  about the end effector (SimplerEnv's ``ee_align`` frame), added to the *measured* end-effector
  pose, not normalised nor clipped. The target joints come from damped least-squares IK (SAPIEN's
  Pinocchio model, the current joints as the start); the IK's failure keeps the current joints. A
  jerk-limited trajectory (Ruckig) from the previous plan's end point and velocity to the target is
  sampled at every physics step of the control step and sent as the joint drive targets.
* :class:`PlannedMimicGripperController` (the gripper): one action in [-1, 1] scaled to
  [-1.31, 1.31] rad is *added* to the last drive target of both fingers (so +1 closes, -1 opens,
  0 keeps), clipped to the finger limits +- 1 cm; an action below 1e-3 keeps the previous target.
  A jerk-limited trajectory from the sensed finger positions and velocities is sent as position
  and velocity targets.

The numbers (gains, limits, planner limits, IK iterations) are in the numbers file
(:mod:`envs.simpler.reference`, ``families.google_robot``). These controllers run on ManiSkill's
CPU backend with one environment (SimplerEnv's own setting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sapien
import torch
from gymnasium import spaces
from mani_skill.agents.controllers.base_controller import BaseController, ControllerConfig
from scipy.spatial.transform import Rotation


def plan_joint_path(
    start: np.ndarray,
    target: np.ndarray,
    start_velocity: np.ndarray,
    limits: Sequence[float],
    sim_steps: int,
    sim_freq: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities (``sim_steps + 1`` rows) of a time-synchronised jerk-limited path.

    ``limits`` are the velocity, acceleration and jerk limits; the path starts at ``start`` with
    ``start_velocity`` and zero acceleration and ends at rest at ``target``. Row ``i`` is time
    ``i / sim_freq``, held at the end once the path is done (SimplerEnv samples Ruckig the same way).
    """
    from ruckig import InputParameter, Result, Ruckig, Trajectory

    dof = len(start)
    vlim, alim, jlim = (np.full(dof, float(x)) for x in limits)
    inp = InputParameter(dof)
    inp.current_position = np.asarray(start, dtype=np.float64).tolist()
    inp.current_velocity = np.asarray(start_velocity, dtype=np.float64).tolist()
    inp.current_acceleration = [0.0] * dof
    inp.target_position = np.asarray(target, dtype=np.float64).tolist()
    inp.target_velocity = [0.0] * dof
    inp.target_acceleration = [0.0] * dof
    inp.max_velocity, inp.min_velocity = vlim.tolist(), (-vlim).tolist()
    inp.max_acceleration, inp.min_acceleration = alim.tolist(), (-alim).tolist()
    inp.max_jerk = jlim.tolist()
    trajectory = Trajectory(dof)
    result = Ruckig(dof).calculate(inp, trajectory)
    if result not in (Result.Working, Result.Finished):
        raise RuntimeError(
            f"Ruckig could not plan from {inp.current_position} to {inp.target_position}: {result}"
        )
    times = np.clip(np.arange(sim_steps + 1) / sim_freq, 0.0, trajectory.duration)
    positions, velocities = [], []
    for t in times:
        p, v, _ = trajectory.at_time(float(t))
        positions.append(p)
        velocities.append(v)
    return np.asarray(positions), np.asarray(velocities)


class _PlannedJointController(BaseController):
    """What both controllers share: raw PhysX joints, drive gains, a sampled path per control step."""

    config: PlannedEEPoseControllerConfig | PlannedMimicGripperControllerConfig
    sets_target_qpos = True
    sets_target_qvel = False

    def _initialize_joints(self) -> None:
        super()._initialize_joints()
        if self.scene.num_envs != 1 or self.device.type != "cpu":
            raise ValueError(
                "SimplerEnv's Google-robot controllers run on ManiSkill's CPU backend with one env; "
                f"got num_envs={self.scene.num_envs} on {self.device}"
            )
        self._index = self.active_joint_indices.cpu().numpy()
        self._px_joints = [joint._objs[0] for joint in self.joints]
        self._sim_freq = round(1.0 / self.articulation.px.timestep)
        self._path: np.ndarray | None = None
        self._path_velocity: np.ndarray | None = None
        self._step = 0

    def _qpos(self) -> np.ndarray:
        return self.articulation.get_qpos()[0].cpu().numpy().astype(np.float64)

    def _qvel(self) -> np.ndarray:
        return self.articulation.get_qvel()[0].cpu().numpy().astype(np.float64)[self._index]

    def set_drive_property(self) -> None:
        n = len(self.joints)
        stiffness = np.broadcast_to(self.config.stiffness, n)
        damping = np.broadcast_to(self.config.damping, n)
        force_limit = np.broadcast_to(self.config.force_limit, n)
        for i, joint in enumerate(self._px_joints):
            joint.set_drive_properties(float(stiffness[i]), float(damping[i]), float(force_limit[i]), "force")
            joint.set_friction(float(self.config.friction))

    def _set_targets(self, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        for i, joint in enumerate(self._px_joints):
            joint.set_drive_target(float(positions[i]))
            if velocities is not None:
                joint.set_drive_velocity_target(float(velocities[i]))

    def _plan(self, start: np.ndarray, target: np.ndarray, velocity: np.ndarray) -> None:
        self._path, self._path_velocity = plan_joint_path(
            start, target, velocity, self.config.planner_limits, self._sim_steps, self._sim_freq
        )
        self._step = 0

    def _path_point(self) -> int:
        return min(self._step, len(self._path) - 1)


class PlannedEEPoseController(_PlannedJointController):
    config: PlannedEEPoseControllerConfig

    def _initialize_joints(self) -> None:
        super()._initialize_joints()
        px = self.articulation._objs[0]
        self._pmodel = px.create_pinocchio_model()
        self._qmask = np.zeros(px.dof, dtype=bool)
        self._qmask[self._index] = True
        if self.config.ee_link not in self.articulation.links_map:
            raise ValueError(f"end-effector link {self.config.ee_link!r} not in the robot's links")
        ee = self.articulation.links_map[self.config.ee_link]._objs[0]
        self._ee_index = ee.index
        self._ee = ee.entity
        self._root = px.links[0].entity

    def _initialize_action_space(self) -> None:
        # SimplerEnv's bounds (1 m, pi/2 rad); with normalize_action=False they are not enforced.
        bound = np.array([1.0] * 3 + [np.pi / 2] * 3, dtype=np.float32)
        self.single_action_space = spaces.Box(-bound, bound, dtype=np.float32)

    def ee_pose_at_base(self) -> sapien.Pose:
        return self._root.pose.inv() * self._ee.pose

    def reset(self) -> None:
        super().reset()
        self._path = self._path_velocity = None
        self._step = 0
        self._set_targets(self._qpos()[self._index])

    def target_pose(self, delta: np.ndarray) -> sapien.Pose:
        """The measured end-effector pose (base frame) moved by ``delta`` in SimplerEnv's ``ee_align`` frame."""
        prev = self.ee_pose_at_base()
        x, y, z, w = Rotation.from_rotvec(delta[3:6]).as_quat()
        target = sapien.Pose(q=[w, x, y, z]) * prev
        target.set_p(prev.p + delta[:3])
        return target

    def set_action(self, action: torch.Tensor) -> None:
        delta = self._preprocess_action(action)[0].cpu().numpy().astype(np.float64)
        qpos = self._qpos()
        result, success, _ = self._pmodel.compute_inverse_kinematics(
            self._ee_index,
            self.target_pose(delta),
            initial_qpos=qpos,
            active_qmask=self._qmask,
            max_iterations=int(self.config.ik_max_iterations),
        )
        target = np.asarray(result)[self._index] if success else qpos[self._index]
        vlim = self.config.planner_limits[0]
        if self._path is None:
            start, velocity = qpos[self._index], np.clip(self._qvel(), -vlim, vlim)
        else:
            # Continue from where the last plan was at the end of its control step.
            end = min(self._sim_steps, len(self._path) - 1)
            start, velocity = self._path[end], self._path_velocity[end]
        self._plan(start, target, velocity)

    def before_simulation_step(self) -> None:
        self._step += 1
        self._set_targets(self._path[self._path_point()])


class PlannedMimicGripperController(_PlannedJointController):
    config: PlannedMimicGripperControllerConfig

    def _initialize_joints(self) -> None:
        super()._initialize_joints()
        limits = self.articulation.get_qlimits()[0].cpu().numpy()[self._index]
        if not np.allclose(limits, limits[0]):
            raise ValueError(
                f"mimic gripper joints {self.config.joint_names} must share limits, got {limits.tolist()}"
            )
        margin = self.config.clip_margin
        self._low, self._high = float(limits[0, 0]) - margin, float(limits[0, 1]) + margin
        self._target = np.zeros(len(self._index))
        self._last_drive = np.zeros(len(self._index))

    def _initialize_action_space(self) -> None:
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self) -> None:
        super().reset()
        q = self._qpos()[self._index]
        self._target, self._last_drive = q.copy(), q.copy()
        self._path = self._path_velocity = None
        self._step = 0
        self._set_targets(q)

    def set_action(self, action: torch.Tensor) -> None:
        a = float(np.clip(self._preprocess_action(action)[0, 0].item(), -1.0, 1.0))
        low, high = self.config.action_range
        delta = low + 0.5 * (a + 1.0) * (high - low)
        previous = self._target
        target = np.clip(self._last_drive + delta, self._low, self._high)
        if abs(delta) < self.config.small_action:
            target = previous.copy()
        self._target = target
        vlim = self.config.planner_limits[0]
        # From the sensed position, but with the last plan's velocity at the end of its control step
        # (SimplerEnv takes the sensed velocity). Under SAPIEN 3 / PhysX 5 a squeezing finger reports
        # -0.3 to -0.7 rad/s while it still closes, so a plan from the sensed velocity first backed
        # the fingers off: no grip force for half of each step, and a lifted can slid out (the
        # expert lifted 0 of 20 lying cans). In free motion the two velocities agree.
        if self._path is None:
            velocity = np.clip(self._qvel(), -vlim, vlim)
        else:
            velocity = self._path_velocity[min(self._sim_steps, len(self._path) - 1)]
        self._plan(self._qpos()[self._index], target, velocity)

    def before_simulation_step(self) -> None:
        self._step += 1
        i = self._path_point()
        self._last_drive = self._path[i]
        self._set_targets(self._path[i], self._path_velocity[i])


@dataclass
class PlannedEEPoseControllerConfig(ControllerConfig):
    """The arm's gains and limits; the agent fills them from the numbers file."""

    ee_link: str
    stiffness: Sequence[float]
    damping: Sequence[float]
    force_limit: Sequence[float]
    friction: float
    planner_limits: Sequence[float]  # velocity, acceleration, jerk
    ik_max_iterations: int
    controller_cls = PlannedEEPoseController


@dataclass
class PlannedMimicGripperControllerConfig(ControllerConfig):
    """The fingers' gains and limits; the agent fills them from the numbers file."""

    stiffness: float
    damping: float
    force_limit: float
    friction: float
    planner_limits: Sequence[float]  # velocity, acceleration, jerk
    action_range: Sequence[float]  # joint change of action -1 and +1
    clip_margin: float
    small_action: float
    controller_cls = PlannedMimicGripperController
