"""ManiSkill3's Google robot (RT-1 embodiment) as SimplerEnv configures it: static base, finger
materials, and SimplerEnv's planner-interpolated controllers (:mod:`envs.simpler.google_controller`).

One agent is registered per robot URDF SimplerEnv evaluates with (its visual-matching recolourings,
``families.google_robot.urdf_versions`` in the numbers file): ``agent_uid(version)`` names it. The
URDFs are ManiSkill's own (``MS_ASSET_DIR``, ``python -m mani_skill.utils.download_asset googlerobot``).
The env mounts SimplerEnv's overhead camera itself (on ``link_camera``), so the agent has none.
"""

from __future__ import annotations

from typing import Any

from mani_skill.agents.base_agent import BaseAgent
from mani_skill.agents.registration import register_agent

from envs.simpler.google_controller import PlannedEEPoseControllerConfig, PlannedMimicGripperControllerConfig
from envs.simpler.reference import reference

UID_PREFIX = "robovlm_simpler_googlerobot"


def family() -> dict:
    return reference()["families"]["google_robot"]


def agent_uid(version: str) -> str:
    versions = family()["urdf_versions"]
    if version not in versions:
        raise ValueError(f"unknown Google-robot URDF version {version!r}; valid: {versions}")
    return UID_PREFIX if not version else f"{UID_PREFIX}_{version}"


def urdf_file(version: str) -> str:
    """The URDF of ``version`` relative to ManiSkill's asset folder (SimplerEnv's naming)."""
    base = family()["urdf"]
    return base if not version else base.replace(".urdf", f"_{version}.urdf")


def urdf_config() -> dict:
    """SimplerEnv's materials of the fingers, finger tips, nails, base and wheels."""
    f = family()

    def material(static: float, dynamic: float) -> dict:
        return {"static_friction": static, "dynamic_friction": dynamic, "restitution": 0.0}

    def link(name: str, radius: float) -> dict:
        return {"material": name, "patch_radius": radius, "min_patch_radius": radius}

    finger, nail = f["finger_friction"], f["finger_nail_friction"]
    r_finger, r_nail, r_base = f["finger_patch_radius"], f["finger_nail_patch_radius"], f["base_patch_radius"]
    links = {"link_base": link("base_mat", r_base)}
    for side in ("left", "right"):
        links[f"link_wheel_{side}"] = link("wheel_mat", r_base)
        links[f"link_finger_{side}"] = link("finger_mat", r_finger)
        links[f"link_finger_tip_{side}"] = link("finger_tip_mat", r_finger)
        links[f"link_finger_nail_{side}"] = link("finger_nail_mat", r_nail)
    return {
        "_materials": {
            "finger_mat": material(finger, finger),
            "finger_tip_mat": material(finger, finger),
            "finger_nail_mat": material(nail, nail),
            "base_mat": material(*f["base_friction"]),
            "wheel_mat": material(*f["wheel_friction"]),
        },
        "link": links,
    }


class SimplerGoogleRobot(BaseAgent):
    """The Google robot with a fixed base and SimplerEnv's controllers (one control mode)."""

    uid = UID_PREFIX
    urdf_version = ""
    fix_root_link = True

    @property
    def urdf_path(self) -> str:  # type: ignore[override]
        from envs.simpler.assets import maniskill_asset_dir

        return f"{maniskill_asset_dir()}/{urdf_file(self.urdf_version)}"  # read now: tests move the folder

    @property
    def urdf_config(self) -> dict:  # type: ignore[override]
        return urdf_config()

    @property
    def _controller_configs(self) -> dict[str, Any]:
        f = family()
        arm = PlannedEEPoseControllerConfig(
            joint_names=list(f["arm_joints"]),
            ee_link=f["ee_link"],
            stiffness=f["arm_stiffness"],
            damping=f["arm_damping"],
            force_limit=f["arm_force_limit"],
            friction=f["arm_friction"],
            planner_limits=f["arm_planner_limits"],
            ik_max_iterations=f["ik_max_iterations"],
        )
        gripper = PlannedMimicGripperControllerConfig(
            joint_names=list(f["gripper_joints"]),
            stiffness=f["gripper_stiffness"],
            damping=f["gripper_damping"],
            force_limit=f["gripper_force_limit"],
            friction=0.0,  # SimplerEnv leaves it at its controller config default, 0
            planner_limits=f["gripper_planner_limits"],
            action_range=f["gripper_action_range"],
            clip_margin=f["gripper_clip_margin"],
            small_action=f["small_action"],
        )
        return {f["control_mode"]: {"arm": arm, "gripper": gripper}}

    @property
    def _sensor_configs(self) -> list:
        return []

    @property
    def tcp(self) -> Any:
        return self.robot.links_map[family()["ee_link"]]


def _register_versions() -> dict[str, type[SimplerGoogleRobot]]:
    classes: dict[str, type[SimplerGoogleRobot]] = {}
    for version in family()["urdf_versions"]:
        uid = agent_uid(version)
        name = "SimplerGoogleRobot" + "".join(p.capitalize() for p in version.split("_"))
        cls = SimplerGoogleRobot if not version else type(name, (SimplerGoogleRobot,), {})
        cls.uid, cls.urdf_version = uid, version
        classes[version] = register_agent()(cls)
    return classes


AGENTS: dict[str, type[SimplerGoogleRobot]] = _register_versions()


def init_qpos(robot: Any) -> list[float]:
    """SimplerEnv's start joints in ``robot``'s active-joint order (SimplerEnv lists them in SAPIEN 2's)."""
    f = family()
    by_name = dict(zip(f["init_qpos_joints"], f["init_qpos"], strict=True))
    names = [j.name for j in robot.active_joints]
    if set(names) != set(by_name):
        raise ValueError(f"robot joints {names} differ from SimplerEnv's {list(by_name)}")
    return [float(by_name[n]) for n in names]
