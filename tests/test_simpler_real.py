"""The SimplerEnv-style tasks on SimplerEnv's own embodiments (the Bridge family on the WidowX).

The tests that build scenes need ManiSkill's robot assets (``MS_ASSET_DIR``) and SimplerEnv's data
folder (``SIMPLER_ASSET_DIR``); they skip with the reason when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from envs.simpler import TASKS, real_gym_id
from envs.simpler.assets import SimplerAssetsMissing, require_robot, require_simpler_files
from envs.simpler.reference import layout_reference, reference, scene_reference, sources, task_reference
from tests.simpler_assets import require_assets

REAL_TASKS = tuple(t for t in reference()["tasks"] if TASKS[t].family == "bridge")


BRIDGE_FILES = ("custom/info_bridge_custom_v0.json", "real_inpainting/bridge_real_eval_1.png")


@pytest.fixture(scope="module")
def assets() -> None:
    require_assets(BRIDGE_FILES, "widowx250s")


# --- the numbers file -------------------------------------------------------------------------------
def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, node


def test_every_number_names_its_source() -> None:
    values, where = dict(_leaves(reference())), dict(_leaves(sources()))
    assert values.keys() == where.keys()
    for path, source in where.items():
        # repository@commit:path or package==version:path, then what in that file
        assert isinstance(source, str) and ("@" in source or "==" in source) and ":" in source, (path, source)


def test_tasks_match_the_suite_and_simplerenv_episode_counts() -> None:
    for name in REAL_TASKS:
        spec, ref = TASKS[name], task_reference(name)
        assert spec.family == "bridge" and ref["max_steps"] == spec.max_steps
        assert len(ref["xy_configs"]) * len(ref["quat_configs"]) == spec.episodes == 24
    with pytest.raises(ValueError, match="valid: put_spoon_on_towel"):
        task_reference("no_such_task")


def test_layouts_use_simplerenv_indexing() -> None:
    # Episode i: positions (i % (n_xy * n_quat)) // n_quat, orientation i % n_quat.
    xy, quat = layout_reference("put_carrot_on_plate", 0)
    assert xy == [[-0.235, -0.075], [-0.235, 0.075]] and quat[0] == pytest.approx([0, 0, 0, 1], abs=1e-8)
    xy, quat = layout_reference("put_carrot_on_plate", 3)
    assert xy == [[-0.235, -0.075], [-0.085, -0.075]]
    assert quat[0] == pytest.approx([np.sqrt(0.5), 0, 0, -np.sqrt(0.5)])
    xy, quat = layout_reference("put_eggplant_in_basket", 23)
    assert xy[1] == [-0.125, 0.025] and quat[0] == pytest.approx(
        [np.cos(np.pi / 8), 0, 0, -np.sin(np.pi / 8)]
    )
    assert layout_reference("stack_green_on_yellow", 24) == layout_reference("stack_green_on_yellow", 0)


# --- assets missing -------------------------------------------------------------------------------
def test_missing_assets_give_one_line_naming_the_path_and_the_fetch_command(tmp_path, monkeypatch) -> None:
    import mani_skill

    monkeypatch.delenv("SIMPLER_ASSET_DIR", raising=False)
    with pytest.raises(SimplerAssetsMissing, match="SIMPLER_ASSET_DIR is not set.*ManiSkill2_real2sim"):
        require_simpler_files(["custom/info_bridge_custom_v0.json"])
    monkeypatch.setenv("SIMPLER_ASSET_DIR", str(tmp_path))
    with pytest.raises(SimplerAssetsMissing) as info:
        require_simpler_files(["custom/models/eggplant/collision.obj"])
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "custom/models/eggplant/collision.obj") in message
    monkeypatch.setattr(mani_skill, "ASSET_DIR", Path(tmp_path))
    with pytest.raises(SimplerAssetsMissing, match="download_asset widowx250s"):
        require_robot("widowx250s")
    from envs.simpler.real_env import SimplerRealEnv

    with pytest.raises(SimplerAssetsMissing, match="missing"):
        SimplerRealEnv("put_carrot_on_plate", cameras=())


def test_bad_task_and_variant() -> None:
    from envs.simpler.real_env import SimplerRealEnv, check_real_task

    with pytest.raises(ValueError, match="unknown task 'no_such_task'"):
        check_real_task("no_such_task")
    with pytest.raises(ValueError, match="SimplerEnv has no variant aggregation for it"):
        SimplerRealEnv("put_carrot_on_plate", variant="lighting_darker")


def test_expert_refuses_unknown_embodiment_and_objects() -> None:
    from policies.expert.simpler_scripts import script_for

    with pytest.raises(ValueError, match="valid: panda, widowx250s, googlerobot"):
        script_for("put_carrot_on_plate", 0, ("a", "b"), "franka")
    with pytest.raises(ValueError, match="expects objects"):
        script_for("put_carrot_on_plate", 0, ("carrot", "plate"), "widowx250s")


def test_alignment_numbers() -> None:
    from envs.simpler.alignment import compare_masks, robot_mask_in_real

    ours = np.zeros((10, 10), bool)
    ours[2:6, 2:6] = True
    real = np.roll(ours, 2, axis=1)
    n = compare_masks(ours, real)
    assert n["robot_iou"] == pytest.approx(8 / 24) and (n["centroid_dx_px"], n["centroid_dy_px"]) == (-2, 0)
    empty = np.full((10, 10, 3), 200, np.uint8)
    frame = empty.copy()
    frame[real] = 10
    frame[9, 9] = 10  # a dark spot far from our robot is not the robot
    np.testing.assert_array_equal(robot_mask_in_real(frame, empty, ours, margin=2), real)


def test_edge_offsets_find_a_known_step() -> None:
    from envs.simpler.alignment_detect import edge_offsets, smoothed_gray

    image = np.full((100, 120, 3), 50, np.uint8)
    image[40:] = 200  # a horizontal edge between rows 39 and 40
    offsets, found = edge_offsets(smoothed_gray(image), (10, 36), (110, 36), window=8)
    assert np.all((offsets >= 3) & (offsets <= 4)) and np.allclose(found[:, 1], 36 + offsets)
    tilted = np.full((100, 120, 3), 50, np.uint8)
    tilted[np.add.outer(np.arange(100), -0.5 * np.arange(120)) >= 30] = 200  # v = 30 + u / 2
    offsets, _ = edge_offsets(smoothed_gray(tilted), (20, 45), (100, 85), window=10)
    assert np.all(np.abs(offsets + 4.5) <= 1)  # the edge is 5 px above: 4.5 px against the normal
    assert np.isnan(
        edge_offsets(smoothed_gray(np.full((100, 120, 3), 90, np.uint8)), (10, 50), (110, 50))[0]
    ).all()


def test_step_line_fits_the_wall_floor_line_and_drops_outliers() -> None:
    from envs.simpler.alignment_detect import smoothed_gray, step_line

    rows = np.arange(200)[:, None]
    line = 80 + 0.1 * np.arange(300)[None, :]
    image = np.where(rows >= line, 190, 60).astype(np.uint8)[..., None].repeat(3, axis=-1)
    image[:150, 100:110] = 30  # a dark table leg ending on the floor: a step far off the line
    image[150:, 100:110] = 190
    cols, found, keep = step_line(smoothed_gray(image), (40, 190))
    assert not keep[102:108].any() and keep.mean() > 0.9
    assert np.abs(found[keep] - (80 + 0.1 * cols[keep])).max() <= 1.0


def test_projection_and_back_projection_agree() -> None:
    from envs.simpler.alignment_detect import on_plane, pose_matrix, project

    k = np.array([[425.0, 0, 320], [0, 425.0, 256], [0, 0, 1]])
    # camera 1 m above the origin looking straight down (OpenCV axes: z forward, y down)
    cam = pose_matrix([0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0])
    e = np.linalg.inv(cam)[:3]
    points = np.array([[0.0, 0.0, 0.0], [0.1, -0.2, 0.0], [-0.3, 0.05, 0.0]])
    uv = project(k, e, points)
    np.testing.assert_allclose(uv[0], [320, 256])
    np.testing.assert_allclose(np.abs(uv[1] - uv[0]), [42.5, 85.0])
    np.testing.assert_allclose(on_plane(k, e, uv, 0.0), points, atol=1e-9)


def test_object_mask_keeps_the_object_not_its_shadow() -> None:
    from envs.simpler.alignment_detect import compare_objects, object_mask

    empty = np.full((120, 160, 3), (150, 145, 140), np.uint8)
    real = empty.copy()
    yy, xx = np.mgrid[:120, :160]
    can = (np.abs(xx - 80) <= 10) & (yy >= 30) & (yy < 70)
    real[(np.abs(xx - 80) <= 12) & (yy >= 70) & (yy < 95)] = (70, 68, 66)  # its shadow, grey
    real[can] = (200, 30, 30)
    ours = np.roll(can, (3, -2), axis=(0, 1))  # our can 3 px lower, 2 px left
    found = object_mask(real, empty, ours)
    np.testing.assert_array_equal(found, can)
    n = compare_objects(ours, found, "can")
    assert (n["can_top_dx_px"], n["can_top_dy_px"], n["can_width_ratio"]) == (-2, 3, 1)
    assert n["can_iou"] == pytest.approx((19 * 37) / (2 * 21 * 40 - 19 * 37))
    with pytest.raises(ValueError, match="can: the real object is not in view"):
        compare_objects(ours, np.zeros_like(ours), "can")


def test_alignment_cli_stops_in_one_line_without_the_overlays(tmp_path, monkeypatch, capsys) -> None:
    from envs.simpler.alignment import main

    monkeypatch.setenv("SIMPLER_ASSET_DIR", str(tmp_path))
    for scene in ("google_coke_can", "google_move_near", "google_drawer"):
        with pytest.raises(SystemExit) as info:
            main(["--scenes", scene, "--out", str(tmp_path / "figures")])
        err = capsys.readouterr().err
        assert info.value.code == 1 and err.startswith(f"{scene}: missing {tmp_path}/real_inpainting/")
        assert err.count("\n") == 1
    assert not (tmp_path / "figures").exists()


@pytest.fixture(scope="module")
def google_assets() -> None:
    require_assets(["real_inpainting/open_drawer_a0.png", "custom/mk_station_recolor.urdf"], "googlerobot")


@pytest.mark.slow
def test_google_drawer_alignment_figure(google_assets, tmp_path) -> None:
    from envs.simpler.alignment import main

    numbers = main(["--scenes", "google_drawer", "--out", str(tmp_path)])["google_drawer"]
    assert Path(numbers["figure"]) == tmp_path / "simpler_alignment_google_drawer.png"
    assert Path(numbers["figure"]).stat().st_size > 100_000
    # every overlay's wall-floor line meets the floor in front of the robot (x < 0.64 m), within 1.5 m
    walls = [numbers[f"wall_x_{pose}_m"] for pose in ("a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2")]
    assert all(-1.5 < x < 0.6 for x in walls)
    # the measurement of 2026-12-01 (camera, base poses and cabinet as then): a change moves it
    assert numbers["wall_row_median_abs_px"] == pytest.approx(50.8, abs=1.0)
    assert numbers["cabinet_back_to_wall_m"] == pytest.approx(-0.112, abs=0.01)


# --- the scenes -----------------------------------------------------------------------------------
SIZE = (80, 60)


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


def test_check_env(scenes) -> None:
    from gymnasium.utils.env_checker import check_env

    env = scenes("put_spoon_on_towel")
    check_env(env, skip_render_check=True)
    made = gym.make(real_gym_id("put_spoon_on_towel"), cameras=())
    assert made.spec.max_episode_steps == 60 and "rgb_static" not in made.observation_space.spaces
    made.close()


@pytest.mark.parametrize("task", REAL_TASKS)
def test_camera_base_pose_and_overlay(scenes, task: str) -> None:
    """SimplerEnv's camera (intrinsics, pose on base_link) and robot base pose, and the green screen."""
    import torch

    from envs.simpler.bridge_scene import CAMERA

    env = scenes(task)
    obs, info = env.reset(seed=0, options={"episode": 0})
    assert obs["rgb_static"].shape == (SIZE[1], SIZE[0], 3) and info["embodiment"] == "widowx250s"
    scene = env.scene
    ref = scene_reference(task_reference(task)["scene"])
    base = scene.agent.robot.pose
    np.testing.assert_allclose(base.p[0].numpy(), ref["robot_base"]["p"], atol=1e-6)
    np.testing.assert_allclose(base.q[0].numpy(), ref["robot_base"]["q"], atol=1e-6)
    camera = scene._sensors[CAMERA]
    cam = ref["camera"]
    k = camera.camera.get_intrinsic_matrix()[0].numpy()
    expected = np.array(cam["intrinsic"], dtype=float) * [[SIZE[0] / 640], [SIZE[1] / 480], [1]]
    np.testing.assert_allclose(k, expected, rtol=1e-5)
    assert (cam["width"], cam["height"]) == (640, 480)
    assert camera.config.mount.name.endswith(cam["mount"])
    np.testing.assert_allclose(camera.config.pose.p[0].numpy(), cam["p"], atol=1e-6)
    np.testing.assert_allclose(camera.config.pose.q[0].numpy(), cam["q"], atol=1e-6)
    # Every pixel not showing the robot or a task object is the real image's pixel.
    raw = scene.get_obs()["sensor_data"][CAMERA]
    keep = torch.isin(raw["segmentation"][0, ..., 0], scene._keep_ids).numpy()
    assert 0.02 < keep.mean() < 0.6
    np.testing.assert_array_equal(obs["rgb_static"][~keep], scene._overlay_image[~keep])
    assert not np.array_equal(obs["rgb_static"][keep], scene._overlay_image[keep])


@pytest.mark.slow
@pytest.mark.parametrize("task", REAL_TASKS)
def test_expert_solves_the_first_and_last_layout(scenes, task: str) -> None:
    from policies.expert.simpler_scripts import script_for

    env = scenes(task)
    for episode in (0, TASKS[task].episodes - 1):
        obs, info = env.reset(seed=episode, options={"episode": episode})
        expert = script_for(task, episode, info["objects"], info["embodiment"])
        for _ in range(TASKS[task].max_steps):
            obs, _, _, truncated, info = env.step(expert.act(obs))
        assert truncated and info["success"] and info["partial"], (task, episode)


@pytest.mark.slow
def test_random_actions_fail(scenes) -> None:
    for task in ("put_carrot_on_plate", "put_eggplant_in_basket"):
        env = scenes(task)
        env.action_space.seed(0)
        env.reset(seed=0, options={"episode": 5})
        for _ in range(TASKS[task].max_steps):
            *_, info = env.step(env.action_space.sample())
        assert not info["success"]


# --- through the harness ----------------------------------------------------------------------------
def test_bench_run_embodiment_simpler_runs_the_widowx_scenes(assets, tmp_path) -> None:
    import json

    from bench import run

    out = tmp_path / "run"
    argv = ["--suite", "simpler", "--embodiment", "simpler", "--tasks", "put_carrot_on_plate"]
    argv += ["--policy", "random", "--episodes-per-variant", "1", "--workers", "1", "--quiet"]
    assert run.main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["embodiment"] == "simpler" and summary["n_episodes"] == 1
    assert list(summary["tasks"]) == ["put_carrot_on_plate"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "variant_aggregation"], "SimplerEnv has no variant aggregation for it"),
        (["--variants", "other"], "variant(s) ['other'] not in mode visual_matching"),
        (["--official"], "two different scene sets"),
        (["--embodiment", "ur5"], "unknown --embodiment 'ur5'; valid: panda, simpler"),
    ],
)
def test_bench_run_embodiment_simpler_refuses_in_one_line(extra, message, tmp_path, capsys) -> None:
    from bench import run

    out = tmp_path / "run"
    argv = ["--suite", "simpler", "--embodiment", "simpler", "--policy", "random", *extra]
    assert run.main([*argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
