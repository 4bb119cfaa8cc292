"""Our play table, robot and cameras against CALVIN's numbers (and CALVIN's own URDFs when present)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pybullet as p
import pytest

from envs.calvin import geometry as g
from envs.calvin import scene as sc
from envs.calvin.camera import GripperCamera, StaticCamera, gripper_view
from envs.calvin.env import CalvinEnv

CALVIN_DIR = Path(
    os.environ.get("CALVIN_ENV_DIR", Path(__file__).resolve().parents[2] / "shared" / "calvin_env")
)
# CALVIN's reset robot_obs (get_env_state_for_initial_condition): TCP pose and joints
CALVIN_ROBOT_OBS = np.array(
    [0.02586889, -0.2313129, 0.5712808, 3.09045411, -0.02908596, 1.50013585, 0.07999963]
    + [-1.21779124, 1.03987629, 2.11978254, -2.34205014, -0.87015899, 1.64119093, 0.55344928, 1.0]
)


CLOSED = {
    "led": 0,
    "lightbulb": 0,
    "slider": "right",
    "drawer": "closed",
    "red_block": "table",
    "blue_block": "table",
    "pink_block": "slider_left",
    "grasped": 0,
}


def _stops_at(env: CalvinEnv, part: str, upper: float) -> float:
    """How far the joint gets when it runs into its upper end at 1 m/s: its travel."""
    p.resetJointState(env.desk, env.links[part], upper - 0.005, 1.0, physicsClientId=env.cid)
    q = 0.0
    for _ in range(60):
        p.stepSimulation(physicsClientId=env.cid)
        q = max(q, p.getJointState(env.desk, env.links[part], physicsClientId=env.cid)[0])
    p.resetJointState(env.desk, env.links[part], 0.0, physicsClientId=env.cid)
    return q


@pytest.fixture(scope="module")
def envs_by_scene():
    out = {s: CalvinEnv(scene=s, cameras=()) for s in "ABCD"}
    for env in out.values():
        env.reset(seed=0, options={"state": CLOSED})
    yield out
    for env in out.values():
        env.close()


def _link_aabb(env: CalvinEnv, name: str) -> np.ndarray:
    lo, hi = p.getAABB(env.desk, env.links[name], physicsClientId=env.cid)
    return np.array([lo, hi])


def test_numbers_quoted_from_calvin_live_scene_d(envs_by_scene):
    env = envs_by_scene["D"]
    button = _link_aabb(env, "button").mean(0)
    assert button[:2] == pytest.approx((-0.12, -0.12), abs=0.002)
    assert _link_aabb(env, "switch").mean(0)[0] == pytest.approx(0.30, abs=0.002)
    assert _link_aabb(env, "drawer").mean(0)[0] == pytest.approx(0.18, abs=0.002)
    assert _link_aabb(env, "led").mean(0) == pytest.approx((-0.12, 0.16, 0.656), abs=0.003)
    base = p.getLinkState(env.robot.uid, 0, physicsClientId=env.cid)  # joint 1 frame = base + 0.333 z
    assert base[4][:2] == pytest.approx(g.ROBOT_BASE[:2], abs=1e-6)
    assert base[4][2] == pytest.approx(g.ROBOT_BASE[2] + 0.333, abs=1e-6)


def test_robot_starts_where_calvin_starts(envs_by_scene):
    obs = envs_by_scene["D"].observe()["robot_obs"]
    np.testing.assert_allclose(obs, CALVIN_ROBOT_OBS, atol=2e-3)


@pytest.mark.parametrize("scene,travel", [("A", 0.28), ("B", 0.304), ("C", 0.24), ("D", 0.28)])
def test_joint_travel_and_forces(envs_by_scene, scene, travel):
    env = envs_by_scene[scene]
    for part, upper in (("slider", travel), ("drawer", 0.22), ("switch", 0.088)):
        assert _stops_at(env, part, upper) == pytest.approx(upper, abs=0.004), part
    assert env.cfg.slider_travel == travel and sc.JOINT_FORCE == 4.0


def test_switch_runs_up_a_60_degree_rail(envs_by_scene):
    env = envs_by_scene["D"]
    axis = np.array(p.getJointInfo(env.desk, env.links["switch"], physicsClientId=env.cid)[13])
    orn = p.getLinkState(env.desk, env.links["switch"], physicsClientId=env.cid)[5]
    world = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3) @ axis
    assert np.degrees(np.arctan2(world[2], world[1])) == pytest.approx(60.0, abs=0.1)


def test_shelf_moves_with_the_door_in_b_and_c(envs_by_scene):
    def shelf_x(env):
        lo, hi = p.getAABB(env.desk_bodies.shelf, -1, physicsClientId=env.cid)
        return (lo[0] + hi[0]) / 2

    assert shelf_x(envs_by_scene["D"]) == pytest.approx(-0.10, abs=1e-3)
    assert shelf_x(envs_by_scene["B"]) == pytest.approx(0.08, abs=1e-3)
    assert shelf_x(envs_by_scene["C"]) == pytest.approx(0.08, abs=1e-3)


def test_blocks_sizes_and_colours():
    long_sides = sorted(2 * h[0] for h in g.BLOCK_HALF_EXTENTS.values())
    assert long_sides == pytest.approx([0.04, 0.056, 0.08])
    assert g.BLOCK_COLORS["pink"] == (1.0, 0.0, 1.0, 1.0)


def test_cameras_use_calvins_matrices():
    cam = StaticCamera(200)
    s = g.STATIC_CAMERA
    assert cam.view == pytest.approx(p.computeViewMatrix(s["eye"], s["target"], s["up"]))
    assert cam.proj == pytest.approx(p.computeProjectionMatrixFOV(10.0, 1.0, 0.01, 10.0))
    assert GripperCamera(84).proj == pytest.approx(p.computeProjectionMatrixFOV(75.0, 1.0, 0.01, 2.0))
    # gripper camera: 0.1 m behind the hand origin along its x, looking along the frame's y
    view = np.array(gripper_view((0, 0, 1), (0, 0, 0, 1))).reshape(4, 4).T
    eye = -view[:3, :3].T @ view[:3, 3]
    assert eye == pytest.approx((-0.1, 0.0, 1.0), abs=1e-6)


@pytest.mark.skipif(not (CALVIN_DIR / "data").is_dir(), reason=f"no calvin_env checkout at {CALVIN_DIR}")
@pytest.mark.parametrize("scene", "ABCD")
def test_parts_match_calvins_urdf_within_5_mm(envs_by_scene, scene):
    """Centres of the moving parts and the shelf against CALVIN's own table, loaded scaled by 0.8."""
    env = envs_by_scene[scene]
    cid = p.connect(p.DIRECT)
    try:
        urdf = CALVIN_DIR / "data" / f"calvin_table_{scene}" / "urdf" / f"calvin_table_{scene}.urdf"
        uid = p.loadURDF(str(urdf), globalScaling=g.GLOBAL_SCALING, physicsClientId=cid)
        names = {
            p.getJointInfo(uid, j, physicsClientId=cid)[12].decode(): j
            for j in range(p.getNumJoints(uid, physicsClientId=cid))
        }

        def calvin(link):
            lo, hi = p.getAABB(uid, names[link], physicsClientId=cid)
            return (np.array(lo) + np.array(hi)) / 2

        pairs = {
            "button": "button_link",
            "drawer": "drawer_link",
            "led": "led_link",
            "lightbulb": "light_link",
            "switch": "switch_link",
            "slider": "slide_link",
        }
        for ours, theirs in pairs.items():
            err = np.abs(_link_aabb(env, ours).mean(0) - calvin(theirs))
            assert err.max() < 0.005, (ours, err)
        lo, hi = p.getAABB(env.desk_bodies.shelf, -1, physicsClientId=env.cid)
        assert np.abs((np.array(lo) + hi) / 2 - calvin("plank_link")).max() < 0.005
    finally:
        p.disconnect(cid)
