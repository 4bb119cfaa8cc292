"""SimplerEnv's Google-robot (RT-1) tasks on ManiSkill3's Google robot with SimplerEnv's controllers.

Layouts, rules and the planner are tested on plain numbers. The tests that build scenes need
ManiSkill's robot assets (``MS_ASSET_DIR``) and SimplerEnv's data folder (``SIMPLER_ASSET_DIR``);
they skip with the reason when either is missing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from envs.simpler import TASKS
from envs.simpler.assets import SimplerAssetsMissing
from envs.simpler.google_layout import base_quat, episode_layout, google_tasks, instruction, object_words
from envs.simpler.reference import reference, scene_reference, task_reference
from tests.simpler_assets import require_assets

GOOGLE_TASKS = google_tasks()
FAMILY = reference()["families"]["google_robot"]


# --- numbers and layouts (no assets needed) --------------------------------------------------------
def test_every_google_task_of_the_suite_has_simplerenv_numbers() -> None:
    assert set(GOOGLE_TASKS) == {t for t, s in TASKS.items() if s.family == "google_robot"}
    for task in GOOGLE_TASKS:
        assert task_reference(task)["max_steps"] == TASKS[task].max_steps
    assert (FAMILY["sim_hz"], FAMILY["control_hz"]) == (513, 3)


def test_base_orientation_is_simplerenv_composition() -> None:
    # euler2quat(0, 0, rotz) * [0, 0, 0, 1]: facing -x, turned by rotz.
    np.testing.assert_allclose(base_quat(0.0), [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(base_quat(-0.09), [math.sin(0.045), 0, 0, math.cos(0.045)], atol=1e-12)


def test_layouts_follow_simplerenv_episode_order() -> None:
    first, last = episode_layout("pick_can_horizontal", 0), episode_layout("pick_can_horizontal", 24)
    assert first.xys == ((-0.35, -0.02),) and last.xys == ((-0.12, 0.42),)
    assert episode_layout("pick_can_vertical", 6).xys == ((-0.2925, 0.09),)
    assert first.robot_xy == (0.35, 0.20) and first.models == ("opened_coke_can",)
    # URDF version i % 4 (SimplerEnv runs every layout with all four).
    assert [episode_layout("pick_can_standing", i).urdf_version for i in range(5)] == [
        *FAMILY["urdf_versions"],
        "",
    ]
    mn = episode_layout("move_near", 13)  # triplet 1, xy config 0, pair 1: (0, 2)
    assert mn.models == ("baked_opened_7up_can_v2", "baked_apple_v2", "baked_sponge_v2")
    assert (mn.source, mn.target) == (0, 2) and mn.xys[0] == (-0.33, 0.04)
    assert instruction(mn) == "move 7up can near sponge"
    drawer = episode_layout("open_drawer_middle", 10)  # overlay a1
    assert drawer.overlay.endswith("open_drawer_a1.png") and drawer.robot_xy == (0.765, -0.182)
    np.testing.assert_allclose(drawer.robot_q, base_quat(-0.02))
    assert episode_layout("close_drawer_top", 0).start_q == 0.2
    apple = episode_layout("place_apple_in_top_drawer", 10)  # overlay b0, apple x -0.08, y 0.03
    assert apple.overlay.endswith("open_drawer_b0.png") and apple.xys == ((-0.08, 0.03),)
    assert (
        instruction(apple, 0) == "open top drawer" and instruction(apple, 1) == "place apple into top drawer"
    )
    with pytest.raises(ValueError, match="not a Google-robot task"):
        episode_layout("put_carrot_on_plate", 0)


def test_object_words_drop_simplerenv_words() -> None:
    drop = task_reference("move_near")["instruction_drop_words"]
    assert object_words("baked_opened_pepsi_can_v2", drop) == "pepsi can"
    assert object_words("blue_plastic_bottle", drop) == "blue plastic bottle"


# --- rules ----------------------------------------------------------------------------------------
def test_pick_can_rule() -> None:
    from envs.simpler.google_rules import PickCanJudge

    judge = PickCanJudge([0.01, 0.02], 5)
    assert not judge.update(True, True, 0.05)["success"]  # still touching the table
    assert not judge.update(True, False, 0.005)["success"]  # not high enough
    assert judge.update(True, False, 0.015)["success"]
    assert judge.update(True, True, 0.015)["success"]  # held: stays lifted though it touches something
    assert not judge.update(False, True, 0.015)["success"]  # dropped onto something
    # In the air touching nothing but the robot counts without a grasp (SimplerEnv's rule).
    assert judge.update(False, False, 0.015)["success"]
    judge = PickCanJudge([0.01, 0.02], 5)
    for _ in range(5):
        judge.update(True, False, 0.03)
    # lifted significantly on 5 steps: success even once put down
    assert judge.update(False, True, 0.0)["success"]


def test_move_near_rule() -> None:
    from envs.simpler.google_rules import move_near

    t = task_reference("move_near")
    kw = {k: t[k] for k in ("knocked_m", "fell_m", "moved_m", "near_margin_m", "closest_margin_m")}
    settled = np.array([[-0.33, 0.04, 0.9], [-0.33, 0.34, 0.9], [-0.13, 0.19, 0.9]])
    box = np.array([0.06, 0.06, 0.12])
    now = settled.copy()
    now[0, :2] = [-0.33, 0.25]  # source next to the target
    ok = move_near(settled, now, 0, 1, now[0], now[1], box, box, **kw)
    assert ok["success"]
    assert not move_near(settled, settled, 0, 1, settled[0], settled[1], box, box, **kw)["success"]
    knocked = now.copy()
    knocked[2, 2] -= 0.05  # the third object knocked over
    assert not move_near(settled, knocked, 0, 1, now[0], now[1], box, box, **kw)["success"]
    wrong = now.copy()
    wrong[2, :2] += 0.3  # another object moved more than the source
    assert move_near(settled, wrong, 0, 1, now[0], now[1], box, box, **kw)["moved_wrong_obj"]


def test_drawer_and_apple_rules() -> None:
    from envs.simpler.google_rules import apple_in_drawer, drawer

    assert drawer("open_drawer", 0.15, 0.15) and not drawer("open_drawer", 0.149, 0.15)
    assert drawer("close_drawer", 0.05, 0.05) and not drawer("close_drawer", 0.06, 0.05)
    assert apple_in_drawer(1, 0.2, 0.05, 1)
    assert not apple_in_drawer(0, 0.2, 0.05, 3) and not apple_in_drawer(1, 0.04, 0.05, 3)
    assert not apple_in_drawer(1, 0.2, 0.05, 0)
    with pytest.raises(ValueError, match="valid: open_drawer, close_drawer"):
        drawer("pick_can", 0.0, 0.1)


def test_planner_is_jerk_limited_and_reaches_the_target() -> None:
    from envs.simpler.google_controller import plan_joint_path

    start, target = np.array([0.0, 0.5]), np.array([0.02, 0.47])
    pos, vel = plan_joint_path(start, target, np.zeros(2), (1.5, 2.0, 50.0), 171, 513)
    assert pos.shape == (172, 2) and vel.shape == (172, 2)
    np.testing.assert_allclose(pos[0], start)
    np.testing.assert_allclose(pos[-1], target, atol=1e-9)  # small moves end within the control step
    assert np.abs(vel).max() <= 1.5 + 1e-9 and np.abs(np.diff(vel, axis=0)).max() * 513 <= 2.0 + 1e-6
    far, _ = plan_joint_path(start, np.array([1.0, 0.5]), np.zeros(2), (1.5, 2.0, 50.0), 171, 513)
    assert 0.0 < far[-1, 0] < 0.2  # a long move is cut at the control step's end


# --- the scenes -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets() -> None:
    require_assets(["custom/info_pick_custom_v0.json", "custom/mk_station_recolor.urdf"], "googlerobot")


SIZE = (80, 64)


@pytest.fixture(scope="module")
def scenes(assets):
    """One env per task (small camera), shared by the tests below: building one takes seconds."""
    from envs.simpler.real_env import SimplerRealEnv

    built: dict = {}

    def get(task: str):
        if task not in built:
            built[task] = SimplerRealEnv(task, image_size=SIZE)
        return built[task]

    yield get
    for env in built.values():
        env.close()


def _episode_with_turned_base(task: str) -> int:
    n = TASKS[task].episodes
    return next((i for i in range(n) if abs(episode_layout(task, i).robot_q[0]) > 1e-9), n - 1)


@pytest.mark.parametrize("task", GOOGLE_TASKS)
def test_camera_and_base_pose_match_the_numbers(scenes, task: str) -> None:
    """SimplerEnv's overhead camera (intrinsics, pose on link_camera) and robot base pose, and the green screen."""
    import torch

    from envs.simpler.google_scene import CAMERA

    env = scenes(task)
    cam = FAMILY["camera"]
    scene_ref = scene_reference(task_reference(task)["scene"])
    for episode in sorted({0, _episode_with_turned_base(task)}):
        obs, info = env.reset(seed=episode, options={"episode": episode})
        assert obs["rgb_static"].shape == (SIZE[1], SIZE[0], 3) and info["embodiment"] == "googlerobot"
        scene = env.scene
        layout = episode_layout(task, episode)
        pose_index = [tuple(xy) for xy in scene_ref["robot_xy"]].index(layout.robot_xy)
        base = scene.agent.robot.pose
        expected_xy = scene_ref["robot_xy"][pose_index]
        np.testing.assert_allclose(base.p[0].numpy(), [*expected_xy, FAMILY["base_height"]], atol=1e-6)
        np.testing.assert_allclose(
            base.q[0].numpy(), base_quat(scene_ref["robot_rotz"][pose_index]), atol=1e-6
        )
        camera = scene._sensors[CAMERA]
        k = camera.camera.get_intrinsic_matrix()[0].numpy()
        expected = np.array(cam["intrinsic"], dtype=float) * [[SIZE[0] / 640], [SIZE[1] / 512], [1]]
        np.testing.assert_allclose(k, expected, rtol=1e-5)
        assert camera.config.mount.name.endswith(cam["mount"])
        np.testing.assert_allclose(camera.config.pose.p[0].numpy(), cam["p"], atol=1e-6)
        np.testing.assert_allclose(camera.config.pose.q[0].numpy(), cam["q"], atol=1e-6)
        assert scene.agent.robot.name.startswith("robovlm_simpler_googlerobot")
        assert scene.agent.urdf_path.endswith(layout.urdf_version + ".urdf")
        # Every pixel not showing the robot, a task object or the cabinet is the real image's pixel.
        raw = scene.get_obs()["sensor_data"][CAMERA]
        keep = torch.isin(raw["segmentation"][0, ..., 0], scene._keep_ids).numpy()
        assert 0.01 < keep.mean() < 0.8
        np.testing.assert_array_equal(obs["rgb_static"][~keep], scene.overlay_image[~keep])


def test_check_env_and_gym_id(scenes) -> None:
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from envs.simpler import real_gym_id

    check_env(scenes("pick_can_standing"), skip_render_check=True)
    made = gym.make(real_gym_id("open_drawer_top"), cameras=())
    assert made.spec.max_episode_steps == 113 and "rgb_static" not in made.observation_space.spaces
    made.close()


def _mean_fingers(obs) -> float:
    return float(obs["robot_obs"][7])


def test_controller_moves_the_tcp_and_the_relative_gripper(scenes) -> None:
    env = scenes("pick_can_standing")
    obs, _ = env.reset(seed=0, options={"episode": 12})
    start = obs["robot_obs"][:3].copy()
    for _ in range(4):
        obs, *_ = env.step(np.array([0.0, 0.0, 0.03, 0, 0, 0, 0.0]))
    moved = obs["robot_obs"][:3] - start
    assert moved[2] > 0.025 and np.linalg.norm(moved[:2]) < 0.01, moved  # up, not sideways
    obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # +1 closes ...
    for _ in range(3):
        obs, *_ = env.step(np.zeros(7))  # ... and 0 keeps closing towards the target
    assert _mean_fingers(obs) > 1.0 and obs["robot_obs"][15] == 1.0
    for _ in range(4):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert _mean_fingers(obs) < 0.2 and obs["robot_obs"][15] == 0.0


def test_drawer_rules_in_the_scene(scenes) -> None:
    import torch

    env = scenes("close_drawer_bottom")
    _, info = env.reset(seed=0, options={"episode": 4})
    assert info["drawer_q"] == pytest.approx(0.2, abs=1e-6) and not info["success"]
    scene = env.scene
    q = torch.zeros(1, len(scene.cabinet.active_joints))
    scene.cabinet.set_qpos(q)
    assert bool(scene.evaluate()["success"][0])


def test_move_near_teleported_source_succeeds(scenes) -> None:
    import torch

    env = scenes("move_near")
    _, info = env.reset(seed=0, options={"episode": 0})
    assert not info["success"] and info["instruction"] == "move blue plastic bottle near pepsi can"
    scene = env.scene
    src, tgt = scene.object_names[0], scene.object_names[1]
    target = scene.objs[tgt].pose.raw_pose.clone()
    pose = scene.objs[src].pose.raw_pose.clone()
    pose[0, :2] = target[0, :2] + torch.tensor([0.0, -0.09])
    scene.objs[src].pose = pose
    assert bool(scene.evaluate()["success"][0])


def test_missing_assets_give_one_line(tmp_path, monkeypatch) -> None:
    from envs.simpler.real_env import SimplerRealEnv

    monkeypatch.setenv("SIMPLER_ASSET_DIR", str(tmp_path))
    with pytest.raises(SimplerAssetsMissing) as info:
        SimplerRealEnv("open_drawer_top", cameras=())
    assert "\n" not in str(info.value) and "missing" in str(info.value)


@pytest.mark.slow
def test_bench_run_embodiment_simpler_runs_a_google_task(assets, tmp_path) -> None:
    import json

    from bench import run

    out = tmp_path / "run"
    argv = ["--suite", "simpler", "--embodiment", "simpler", "--tasks", "open_drawer_top"]
    argv += ["--policy", "random", "--episodes-per-variant", "1", "--workers", "1", "--quiet"]
    assert run.main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["embodiment"] == "simpler" and list(summary["tasks"]) == ["open_drawer_top"]


# --- the scripted expert --------------------------------------------------------------------------
def _quat_wxyz(rot) -> list[float]:
    x, y, z, w = rot.as_quat()
    return [w, x, y, z]


def test_expert_turns_the_hand_about_its_approach_axis_only() -> None:
    from scipy.spatial.transform import Rotation

    from policies.expert.google_scripts import _turn_about_approach

    start = Rotation.from_euler("xyz", [2.9, 0.3, 0.4])  # tilted, like the start pose
    for along in ([1.0, 0.0], [0.3, -1.0], [-1.0, 1.0]):
        turned = _turn_about_approach(start, np.array(along))
        np.testing.assert_allclose(turned.apply([0, 0, 1]), start.apply([0, 0, 1]), atol=1e-9)
        closing = turned.apply([0, 1, 0])
        perp = np.array([-along[1], along[0], 0.0])
        assert abs(closing @ perp) < 1e-9  # the closing axis lies in the vertical plane of `along`
        assert (turned * start.inv()).magnitude() <= np.pi / 2 + 1e-9  # the smaller of the two turns


def test_close_drawer_expert_half_closes_once_and_pushes_to_the_closed_plate() -> None:
    from scipy.spatial.transform import Rotation

    from policies.expert.google_scripts import HANDLE_X, PUSH_CLOSING, PUSH_REACH, GoogleRobotScript

    script = GoogleRobotScript("close_drawer_middle", 0, ())
    hand = Rotation.from_euler("xyz", [2.9, 0.3, 0.4])
    robot = np.zeros(16, dtype=np.float32)
    robot[:3], robot[3:7] = [0.2, 0.0, 1.0], _quat_wxyz(hand)
    cabinet = [-0.295, 0.0, 0.017, 1.0, 0.0, 0.0, 0.0]
    obs = {"robot_obs": robot, "scene_obs": np.array([*cabinet, 0.0, 0.2, 0.0], dtype=np.float32)}
    first, second = script.act(obs), script.act(obs)
    # Fully closed fingers press on each other (that pushes the hand off its orientation): the
    # relative gripper gets one partial close, then 0 (keep).
    assert first[6] == pytest.approx(PUSH_CLOSING) and second[6] == 0.0
    np.testing.assert_allclose(first[3:6], 0.0, atol=1e-6)  # keeps the start orientation
    assert np.linalg.norm(first[:3]) == pytest.approx(0.1, abs=1e-6)  # a full step towards the drawer
    shut = script.phases[2].target(parse_state(obs))[0]
    np.testing.assert_allclose(shut, [-0.295 + HANDLE_X + PUSH_REACH, 0.0, 0.017 + 0.423], atol=1e-6)


def parse_state(obs):
    from policies.expert.simpler_scripts import parse

    return parse(obs, ())


def _expert_episode(env, task: str, episode: int) -> dict:
    """Play the scripted expert through one episode; the last step's info."""
    from policies.expert.simpler_scripts import script_for

    obs, info = env.reset(seed=episode, options={"episode": episode})
    script = script_for(task, episode, tuple(info["objects"]), info["embodiment"])
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(script.act(obs))
        done = terminated or truncated
    return info


@pytest.mark.slow
@pytest.mark.parametrize("task,episode", [("close_drawer_top", 0), ("close_drawer_bottom", 8)])
def test_expert_closes_the_drawer(scenes, task: str, episode: int) -> None:
    info = _expert_episode(scenes(task), task, episode)
    assert info["success"] and info["drawer_q"] <= 0.05, info["drawer_q"]


@pytest.mark.slow
@pytest.mark.parametrize("task,episode", [("pick_can_horizontal", 0), ("pick_can_vertical", 9)])
def test_expert_lifts_the_lying_can(scenes, task: str, episode: int) -> None:
    """With the gripper planned from rest the squeeze holds through the lift (from the sensed finger
    velocity the expert lifted none of 20 lying cans)."""
    info = _expert_episode(scenes(task), task, episode)
    assert info["success"]


# --- move near: where the expert puts the source ----------------------------------------------------
#: Bounding-box sizes (SimplerEnv's ``info_pick_custom_baked_tex_v1.json`` bboxes at scale 1) of
#: episode 0-11's triplet, so that these tests need no assets.
_MN_SIZES = {
    "blue_plastic_bottle": np.array([0.06, 0.203, 0.06]),
    "baked_opened_pepsi_can_v2": np.array([0.066, 0.123, 0.066]),
    "orange": np.array([0.07, 0.07, 0.068]),
}


def _move_near_state(episode: int):
    from scipy.spatial.transform import Rotation

    from policies.expert.simpler_scripts import State

    layout = episode_layout("move_near", episode)
    objects = {}
    for name, xy, q in zip(layout.models, layout.xys, layout.quats, strict=True):
        objects[name] = (np.array([*xy, 0.93]), Rotation.from_quat([q[1], q[2], q[3], q[0]]))
    hand = Rotation.from_euler("xyz", [2.9, 0.3, 0.4])
    state = State(np.array([-0.07, 0.47, 1.04]), hand, 0.0, objects, None, np.zeros(3))
    src, tgt = layout.models[layout.source], layout.models[layout.target]
    return state, src, tgt, [n for n in layout.models if n not in (src, tgt)]


@pytest.mark.parametrize("episode", range(12))
def test_move_near_spot_satisfies_the_rule_with_margins(episode: int) -> None:
    """The spot is within the rule's reach (half diagonals of the *turned* boxes: the standing bottle's
    long axis is vertical), clear of the target, farther from the others, and on the table."""
    from envs.simpler.google_scene import TABLE_XY
    from policies.expert.google_scripts import (
        CLOSEST_SLACK_M,
        NEAR_SLACK_M,
        TABLE_EDGE_M,
        footprint_extent,
        near_spot,
        rule_half_diagonal,
    )

    s, src, tgt, others = _move_near_state(episode)
    t = task_reference("move_near")
    spot = near_spot(s, src, tgt, others, _MN_SIZES, s.objects[src][0][:2])
    d = float(np.linalg.norm(spot - s.objects[tgt][0][:2]))
    reach = rule_half_diagonal(s.objects[src][1], _MN_SIZES[src])
    reach += rule_half_diagonal(s.objects[tgt][1], _MN_SIZES[tgt]) + t["near_margin_m"]
    assert d <= reach - NEAR_SLACK_M + 1e-9, (d, reach)
    u = (spot - s.objects[tgt][0][:2]) / d
    touch = footprint_extent(s.objects[src][1], _MN_SIZES[src], u)
    assert d > touch + footprint_extent(s.objects[tgt][1], _MN_SIZES[tgt], u)  # no overlap
    for o in others:
        assert np.linalg.norm(spot - s.objects[o][0][:2]) > d + t["closest_margin_m"] + CLOSEST_SLACK_M
    (x0, x1), (y0, y1) = TABLE_XY
    ex = footprint_extent(s.objects[src][1], _MN_SIZES[src], np.array([1.0, 0.0])) + TABLE_EDGE_M
    assert x0 + ex < spot[0] < x1 - ex and y0 < spot[1] < y1  # episode 7's bottle once fell off at x -0.03


def test_standing_bottle_counts_its_upright_footprint() -> None:
    from scipy.spatial.transform import Rotation

    from policies.expert.google_scripts import footprint_extent, rule_half_diagonal

    standing = Rotation.from_quat([0.5, 0.5, 0.5, 0.5])  # SimplerEnv's bottle: its long (y) axis up
    size = _MN_SIZES["blue_plastic_bottle"]
    assert rule_half_diagonal(standing, size) == pytest.approx(np.hypot(0.06, 0.06) / 2, abs=1e-6)
    assert footprint_extent(standing, size, np.array([1.0, 0.0])) == pytest.approx(0.03, abs=1e-6)
    flat = Rotation.identity()
    assert footprint_extent(flat, size, np.array([0.0, 1.0])) == pytest.approx(0.1015, abs=1e-6)


def test_wrist_relief_turns_about_the_wrist_axis_by_at_most_the_cap() -> None:
    from scipy.spatial.transform import Rotation

    from policies.expert.google_scripts import WRIST_EASY_RAD, WRIST_RELIEF_MAX_RAD, wrist_relief

    hand = Rotation.from_euler("xyz", [2.9, 0.3, 0.4])
    assert (wrist_relief(hand, WRIST_EASY_RAD - 0.1, -1.08) * hand.inv()).magnitude() < 1e-9
    turned = wrist_relief(hand, 1.79, -1.08)
    turn = turned * hand.inv()
    assert turn.magnitude() == pytest.approx(min((1.79 - WRIST_EASY_RAD) / 1.4, WRIST_RELIEF_MAX_RAD))
    # About the wrist joint's axis: the hand's closing axis (y) turned by -joint_gripper about its
    # approach axis (measured on ManiSkill3's googlerobot: (-0.883, 0.47, 0) in the hand at -1.08).
    axis = hand.apply([-np.sin(1.08), np.cos(1.08), 0.0])
    np.testing.assert_allclose(turn.as_rotvec() / turn.magnitude(), -axis, atol=1e-9)
    assert (wrist_relief(hand, 3.0, -1.08) * hand.inv()).magnitude() == pytest.approx(WRIST_RELIEF_MAX_RAD)


@pytest.mark.slow
@pytest.mark.parametrize("episode", [0, 7])
def test_expert_moves_near(scenes, episode: int) -> None:
    """Episode 0's far-row carry once drove the wrist into its limit (the IK failed on every step);
    episode 7's bottle was put down off the table's edge."""
    info = _expert_episode(scenes("move_near"), "move_near", episode)
    assert info["success"]


# --- open drawer ------------------------------------------------------------------------------------
def test_open_drawer_expert_tilts_in_place_then_hooks_behind_the_plate() -> None:
    from scipy.spatial.transform import Rotation

    from policies.expert.google_scripts import (
        HOOK_TILT_RAD,
        HOOK_Z,
        PLATE_TOP,
        PLATE_X,
        PUSH_CLOSING,
        GoogleRobotScript,
        turn_about_wrist,
    )

    script = GoogleRobotScript("open_drawer_middle", 0, ())
    hand = Rotation.from_euler("xyz", [2.9, 0.3, 0.4])
    robot = np.zeros(16, dtype=np.float32)
    robot[:3], robot[3:7], robot[14] = [0.2, 0.0, 1.0], _quat_wxyz(hand), -1.08
    cabinet = [-0.295, 0.0, 0.017, 1.0, 0.0, 0.0, 0.0]
    obs = {"robot_obs": robot, "scene_obs": np.array([*cabinet, 0.0, 0.0, 0.0], dtype=np.float32)}
    first = script.act(obs)
    # Half-closed fingers (fully closed ones press on each other and turn the hand) ...
    assert first[6] == pytest.approx(PUSH_CLOSING)
    # ... and the tilt first, in place, about the wrist's axis (forward: it bends the wrist back).
    np.testing.assert_allclose(first[:3], 0.0, atol=1e-6)
    goal = script.goal[1]
    expected = turn_about_wrist(hand, -1.08, -HOOK_TILT_RAD)
    assert (goal * expected.inv()).magnitude() < 1e-6
    assert goal.apply([0, 0, 1])[0] < hand.apply([0, 0, 1])[0] - 0.3  # the approach leans into the cabinet
    # The hook: the TCP over the plate's middle, 5 cm below its top edge (the tilted rear finger
    # about 3 cm higher, behind the plate and above the inner front wall's top at z 0.03).
    assert -0.07 < HOOK_Z <= PLATE_TOP - 0.05
    hook = script.phases[3].target(parse_state(obs))[0]
    np.testing.assert_allclose(hook, [-0.295 + PLATE_X, 0.0, 0.017 + 0.423 + HOOK_Z], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("task,episode", [("open_drawer_top", 0), ("open_drawer_bottom", 8)])
def test_expert_opens_the_drawer(scenes, task: str, episode: int) -> None:
    info = _expert_episode(scenes(task), task, episode)
    assert info["success"] and info["drawer_q"] >= 0.15, info["drawer_q"]


def test_apple_expert_hooks_with_half_closed_fingers_then_grips_the_apple() -> None:
    from policies.expert.google_scripts import PUSH_CLOSING, GoogleRobotScript

    script = GoogleRobotScript("place_apple_in_top_drawer", 0, ("baked_apple_v2",))
    robot = np.zeros(16, dtype=np.float32)
    robot[:3], robot[3:7], robot[14] = [0.2, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], -1.08
    apple, cabinet = [-0.08, -0.02, 0.92, 1.0, 0.0, 0.0, 0.0], [-0.295, 0.0, 0.017, 1.0, 0.0, 0.0, 0.0]
    obs = {"robot_obs": robot, "scene_obs": np.array([*apple, *cabinet, 0.0, 0.0, 0.0], dtype=np.float32)}
    assert script.act(obs)[6] == pytest.approx(PUSH_CLOSING)  # the hook: half closed
    assert script.partial_phases == set(range(5))
    # The apple's grasp (the phase after the approach) closes the fingers fully, and the plan ends
    # by letting the apple go over the drawer's uncovered floor.
    closing = [i for i, p in enumerate(script.phases) if p.closed and i not in script.partial_phases]
    assert closing and closing[0] > max(script.partial_phases)
    assert not script.phases[-2].closed and not script.phases[-3].closed


@pytest.mark.slow
def test_expert_puts_the_apple_in_the_drawer(scenes) -> None:
    info = _expert_episode(scenes("place_apple_in_top_drawer"), "place_apple_in_top_drawer", 0)
    assert info["success"] and info["subtask"] == 1
