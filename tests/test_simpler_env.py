"""SimplerEnv-style suite in the simulator: check_env, variants, the expert, random, the command line."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from envs.simpler import TASKS
from envs.simpler.vulkan import VulkanUnavailable
from tests.simpler_assets import require_vulkan


@pytest.fixture(scope="module", autouse=True)
def vulkan() -> None:
    require_vulkan()  # CI installs lavapipe: a missing device there is a failure, not a skip


def _env(task: str, **kwargs):
    from envs.simpler.env import SimplerEnv

    return SimplerEnv(task, **kwargs)


def test_check_env_on_every_task() -> None:
    from gymnasium.utils.env_checker import check_env

    for spec in TASKS.values():
        env = gym.make(spec.gym_id, cameras=())
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=0, options={"episode": 1})
        assert env.observation_space.contains(obs)
        assert info["instruction"] and info["task"] == spec.name
        env.close()
    env = gym.make(TASKS["put_carrot_on_plate"].gym_id, cameras=("static", "wrist"), image_size=64)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["rgb_static"].shape == (64, 64, 3) and obs["rgb_gripper"].shape == (64, 64, 3)
    env.close()


def test_same_seed_same_episode() -> None:
    env = _env("stack_green_on_yellow", cameras=())
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=3, options={"episode": 5})
        for _ in range(5):
            obs, *_ = env.step(np.array([0.05, 0.02, -0.03, 0.0, 0.0, 0.05, -1.0]))
        runs.append(obs["scene_obs"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    env.close()


def test_an_episode_does_not_depend_on_what_the_env_ran_before() -> None:
    """PhysX keeps contact caches across a plain reset: without a rebuild, move_near layout 27
    diverged from step 1 (1e-6 m) after layout 3 ran in the same env, and its outcome flipped."""
    from bench.simpler.evaluate import EpisodeKey, run_episode
    from policies.registry import make_policy

    push = np.array([0.04, -0.02, -0.05, 0.0, 0.0, 0.0, -1.0])

    def trace(env) -> np.ndarray:
        env.reset(seed=1, options={"episode": 27})
        return np.stack([env.step(push)[0]["scene_obs"] for _ in range(12)])

    fresh = _env("move_near", cameras=())
    expected = trace(fresh)
    fresh.close()
    reused = _env("move_near", cameras=())
    run_episode(reused, make_policy("expert"), EpisodeKey("move_near", "base", 3), 0)
    np.testing.assert_array_equal(trace(reused), expected)
    reused.close()


def test_variants_change_the_scene() -> None:
    env = _env("put_eggplant_in_basket", image_size=64)
    images = {}
    for variant in (
        "base",
        "lighting_brighter",
        "lighting_darker",
        "table_texture_1",
        "camera_orientation_1",
    ):
        obs, _ = env.reset(seed=0, options={"episode": 0, "variant": variant})
        images[variant] = obs["rgb_static"].astype(float)
    assert images["lighting_brighter"].mean() > images["base"].mean() + 10
    assert images["lighting_darker"].mean() < images["base"].mean() - 10
    bottom = slice(48, 64)  # the table fills the bottom of the image
    assert np.abs(images["table_texture_1"][bottom] - images["base"][bottom]).mean() > 20
    assert np.abs(images["camera_orientation_1"] - images["base"]).mean() > 5
    for variant, count in (("distractors_more", 4), ("distractors_fewer", 0), ("base", 2)):
        env.reset(seed=0, options={"episode": 0, "variant": variant})
        assert len(env.scene.distractors) == count
    with pytest.raises(ValueError, match="valid: base, lighting_brighter"):
        env.reset(options={"variant": "foggy"})
    env.close()


@pytest.mark.parametrize("family", ["google_robot", "bridge"])
def test_expert_solves_the_tasks(family: str) -> None:
    """The first and last layout of every task: each task solved at least once, >= 90 % overall."""
    from bench.simpler.evaluate import EpisodeKey, run_episode
    from policies.expert import ExpertPolicy

    expert = ExpertPolicy()
    results = {}
    for spec in [t for t in TASKS.values() if t.family == family]:
        env = _env(spec.name, cameras=())
        for episode in (0, spec.episodes - 1):
            record = run_episode(env, expert, EpisodeKey(spec.name, "base", episode), run_seed=0)
            results[(spec.name, episode)] = record["success"]
            if family == "bridge" and record["success"]:
                assert record["partial"]
        env.close()
    failed = [key for key, ok in results.items() if not ok]
    assert sum(results.values()) >= 0.9 * len(results), failed
    assert {task for task, _ in results} == {task for (task, _), ok in results.items() if ok}, failed


def test_random_fails() -> None:
    from bench.simpler.evaluate import EpisodeKey, run_episode
    from policies.registry import make_policy

    policy = make_policy("random")
    for task in ("open_drawer_top", "put_carrot_on_plate"):
        env = _env(task, cameras=())
        record = run_episode(env, policy, EpisodeKey(task, "base", 0), run_seed=0)
        assert not record["success"] and record["steps"] == TASKS[task].max_steps
        env.close()


def test_command_line_end_to_end(tmp_path, capsys) -> None:
    from bench.run import main

    out = tmp_path / "run"
    argv = [
        "--suite",
        "simpler",
        "--policy",
        "expert",
        "--mode",
        "variant_aggregation",
        "--tasks",
        "put_carrot_on_plate,close_drawer_middle",
        "--variants",
        "base,lighting_darker,camera_orientation_1",
        "--episodes-per-variant",
        "1",
        "--label",
        "scripted expert",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"] == "scripted expert"
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 6
    carrot = summary["tasks"]["put_carrot_on_plate"]
    assert set(carrot["variants"]) == {"base", "lighting_darker", "camera_orientation_1"}
    assert carrot["variants"]["camera_orientation_1"]["in_aggregate"] is False
    assert carrot["trials"] == 2  # the camera variant is reported but not aggregated
    assert carrot["aggregate_rate"] == 1.0 and carrot["partial_rate"] == 1.0
    for key in ("successes", "trials", "rate", "ci_low", "ci_high", "partial_rate"):
        assert key in carrot["variants"]["base"]
    assert summary["overall"] == 1.0 and summary["mode"] == "variant_aggregation"
    assert "per group" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["git_commit"] is not None or config["version"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "pick_cup"], "valid tasks: pick_can_horizontal"),
        (["--mode", "visual"], "valid: visual_matching, variant_aggregation"),
        (["--variants", "lighting_darker"], "not in mode visual_matching; valid: base"),
        (["--episodes-per-variant", "0"], "must be >= 1"),
    ],
)
def test_bad_input(tmp_path, capsys, args, message) -> None:
    from bench.run import main

    argv = ["--suite", "simpler", "--policy", "random", "--out", str(tmp_path / "r"), *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_vulkan_error_says_how_to_install(monkeypatch) -> None:
    import sapien

    from envs.simpler import vulkan

    def broken() -> None:
        raise RuntimeError("Failed to find a supported physical device")

    vulkan.check_vulkan.cache_clear()
    monkeypatch.setattr(sapien.render, "RenderSystem", broken)
    try:
        with pytest.raises(VulkanUnavailable, match="install_vulkan.sh"):
            vulkan.check_vulkan()
    finally:
        vulkan.check_vulkan.cache_clear()


def test_workers_give_the_same_episodes_and_resume_continues(tmp_path) -> None:
    from bench.run import main

    argv = [
        "--suite",
        "simpler",
        "--policy",
        "expert",
        "--tasks",
        "put_carrot_on_plate,stack_green_on_yellow",
    ]
    argv += ["--episodes-per-variant", "2", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert main([*argv, "--workers", "2", "--out", str(tmp_path / "two")]) == 0

    def outcomes(folder):
        lines = [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]
        return sorted(
            (r["task"], r["variant"], r["episode"], r["success"], r["steps"], r["seed"]) for r in lines
        )

    assert outcomes(tmp_path / "one") == outcomes(tmp_path / "two")
    # An interrupted run (summary missing, last line cut) resumes without repeating episodes.
    two = tmp_path / "two"
    lines = (two / "episodes.jsonl").read_text().splitlines()
    (two / "episodes.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])
    (two / "summary.json").unlink()
    assert main(["--suite", "simpler", "--resume", str(two), "--quiet"]) == 0
    assert outcomes(two) == outcomes(tmp_path / "one")
    assert json.loads((two / "summary.json").read_text())["resumed_episodes"] == 2
