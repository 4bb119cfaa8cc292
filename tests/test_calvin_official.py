"""CALVIN's own env as a backend: its symbolic start, the Gymnasium interface, chains, bad input.

The backend tests need a calvin_env checkout (``CALVIN_ENV_DIR``, or ``../shared/calvin_env``
beside the repository) and skip with the reason when there is none.
"""

from __future__ import annotations

import shutil

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.calvin.backends import make_calvin_env
from envs.calvin.chains import official_chains
from envs.calvin.official import checkout
from envs.calvin.official import reset as calvin_reset
from envs.calvin.official.checkout import DIGESTS, CalvinEnvUnavailable, check_scene
from envs.calvin.tasks import completed_tasks
from tests.calvin_checkout import calvin_checkout

ROOT, WHY_NOT = calvin_checkout()
needs_checkout = pytest.mark.skipif(ROOT is None, reason=WHY_NOT)

STATE = {
    "led": 0,
    "lightbulb": 0,
    "slider": "right",
    "drawer": "closed",
    "red_block": "slider_left",
    "blue_block": "table",
    "pink_block": "table",
    "grasped": 0,
}


# --- CALVIN's symbolic start (no checkout needed) ----------------------------------------------
def test_fnv1_is_pyhash_fnv1_32():
    # pyhash's own test vectors: b"test", u"test" (hashed as UTF-16-LE) and its README's example
    assert calvin_reset.fnv1_32(b"test") == 3698262380
    assert calvin_reset.fnv1_32("test".encode("utf-16-le")) == 3910690890
    assert calvin_reset.fnv1_32(b"hello world") == 2805756500


def test_symbolic_start_has_calvins_numbers():
    robot_obs, scene_obs = calvin_reset.calvin_start(STATE)
    assert robot_obs.shape == (15,) and robot_obs[6] == pytest.approx(0.08, abs=1e-4) and robot_obs[14] == 1
    assert scene_obs.shape == (24,) and scene_obs[:6].tolist() == [0, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(scene_obs[6:9], calvin_reset.SLIDER_SPOTS["slider_left"])
    table = sorted(tuple(scene_obs[i : i + 3]) for i in (12, 18))
    assert table == sorted(tuple(s) for s in calvin_reset.TABLE_SPOTS)
    for i in (11, 17, 23):
        assert calvin_reset.BLOCK_YAW_RANGE[0] <= scene_obs[i] <= calvin_reset.BLOCK_YAW_RANGE[1]
    on = dict(STATE, slider="left", drawer="open", lightbulb=1, led=1)
    assert calvin_reset.calvin_start(on)[1][:6].tolist() == [0.28, 0.22, 0, 0.088, 1, 1]


def test_symbolic_start_of_d_is_calvins_and_other_scenes_move_the_shelf_spots():
    d = calvin_reset.calvin_start(STATE)
    np.testing.assert_array_equal(d[1], calvin_reset.calvin_start(STATE, "D")[1])
    np.testing.assert_array_equal(calvin_reset.calvin_start(STATE, "A")[1], d[1])  # A's shelf is D's
    b = calvin_reset.calvin_start(STATE, "B")[1]
    np.testing.assert_allclose(b[6:9] - d[1][6:9], [0.18, 0, 0], atol=1e-9)  # red on slider_left
    c_left = calvin_reset.calvin_start(dict(STATE, slider="left"), "C")[1]
    assert c_left[0] == pytest.approx(0.24)  # C's slider travel


def test_symbolic_start_depends_on_the_state_only():
    a = calvin_reset.calvin_start(STATE)[1]
    reordered = dict(reversed(list(STATE.items())))  # the hash reads CALVIN's key order
    np.testing.assert_array_equal(a, calvin_reset.calvin_start(reordered)[1])
    np.testing.assert_array_equal(a, calvin_reset.calvin_start(dict(STATE, led=np.int64(0)))[1])
    b = calvin_reset.calvin_start(dict(STATE, led=1))[1]
    assert not np.array_equal(a[11::6], b[11::6])  # another state, another draw of the yaws
    seeds = {calvin_reset.state_seed(c.state) for c in official_chains()}
    assert len(seeds) == 192  # one seed per start state of CALVIN's chains


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"red_block": "drawer"},
            "places blocks on table, slider_left, slider_right only; got red_block='drawer'",
        ),
        ({"grasped": 1}, "starts with nothing grasped"),
    ],
)
def test_symbolic_start_refuses_states_calvin_cannot_build(change, message):
    with pytest.raises(ValueError, match=message):
        calvin_reset.calvin_start(dict(STATE, **change))
    with pytest.raises(ValueError, match=r"lacks \['grasped'\]"):
        calvin_reset.calvin_start({k: v for k, v in STATE.items() if k != "grasped"})


def test_the_factory_builds_our_table_by_name():
    env = make_calvin_env("ours", "B", cameras=())
    assert env.backend == "ours" and env.scene_name == "B"
    env.close()


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown backend 'mujoco'; valid backends: ours, calvin_env"):
        make_calvin_env("mujoco", "D")


def test_a_missing_checkout_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CALVIN_ENV_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(
        CalvinEnvUnavailable, match="git clone https://github.com/mees/calvin_env.*CALVIN_ENV_DIR"
    ) as err:
        gym.make(envs.calvin_official_env_id("D"))
    assert "\n" not in str(err.value)


def test_without_calvin_env_dir_or_package_the_line_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv("CALVIN_ENV_DIR", raising=False)
    monkeypatch.setattr(checkout, "_installed_root", lambda: None)
    with pytest.raises(
        CalvinEnvUnavailable, match="CALVIN's env not found \\(CALVIN_ENV_DIR is not set\\); git clone"
    ):
        checkout.find_checkout()


@needs_checkout
def test_an_importable_calvin_env_is_found_without_the_variable(monkeypatch):
    monkeypatch.delenv("CALVIN_ENV_DIR", raising=False)
    monkeypatch.syspath_prepend(str(ROOT))  # as an editable install puts it on the path
    assert checkout.find_checkout() == ROOT


# --- the backend ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env():
    e = make_calvin_env("calvin_env", "D", cameras=(), calvin_env_dir=str(ROOT)) if ROOT else None
    yield e
    if e is not None:
        e.close()


OFFICIAL_IDS = [envs.calvin_official_env_id("D")] + [
    pytest.param(env_id, marks=pytest.mark.slow)  # a few seconds each: the other ids run with -m slow
    for env_id in [envs.CALVIN_OFFICIAL_ENV_ID] + [envs.calvin_official_env_id(s) for s in "ABC"]
]


@needs_checkout
@pytest.mark.parametrize("env_id", OFFICIAL_IDS)
def test_check_env_on_every_id(env_id, monkeypatch):
    monkeypatch.setenv("CALVIN_ENV_DIR", str(ROOT))
    e = gym.make(env_id, static_size=32, gripper_size=16)
    assert e.unwrapped.backend == "calvin_env"
    check_env(e.unwrapped, skip_render_check=True)
    obs, _ = e.reset(seed=1)
    assert obs["robot_obs"].shape == (15,) and obs["scene_obs"].shape == (24,)
    assert obs["rgb_static"].shape == (32, 32, 3) and obs["rgb_gripper"].shape == (16, 16, 3)
    assert e.unwrapped.scene_name == (env_id.split("-")[1] if env_id.count("-") == 2 else "D")
    e.close()


@needs_checkout
def test_a_symbolic_reset_is_what_calvins_oracle_reads(env):
    env.reset(seed=0, options={"state": STATE})
    before = env.calvin_info()
    mine = env.scene_info()
    assert mine["blocks"]["red"]["contacts"] == {"slider_shelf"}
    assert "table" in mine["blocks"]["blue"]["contacts"] and "table" in mine["blocks"]["pink"]["contacts"]
    assert mine["robot"]["contacts"] == frozenset()
    after_state = dict(STATE, slider="left", drawer="open", led=1, lightbulb=1)
    obs, _ = env.reset(seed=0, options={"state": after_state})
    np.testing.assert_allclose(obs["scene_obs"][:6], [0.28, 0.22, 0, 0.088, 1, 1], atol=2e-3)
    after = env.calvin_info()
    judged = env.oracle.get_task_info(before, after)
    assert {"move_slider_left", "open_drawer", "turn_on_led", "turn_on_lightbulb"} <= judged
    assert "move_slider_right" not in judged and "turn_off_led" not in judged
    assert completed_tasks(mine, env.scene_info()) == judged  # our oracle on the converted infos agrees


@needs_checkout
@pytest.mark.parametrize("scene", ["A", "B"])
def test_blocks_are_placed_and_reported_by_colour_in_every_scene(scene):
    """Scene A lists its blocks pink, blue, red: the red block of the symbolic state still goes to the
    shelf, and scene_obs lists red, blue, pink, as on our table; in B the shelf stands 0.18 m to the
    right and the slider spots move with it (CALVIN's D-only start would put the block in the cabinet)."""
    e = make_calvin_env("calvin_env", scene, cameras=(), calvin_env_dir=str(ROOT))
    try:
        if scene == "A":
            assert [o.name for o in e.env.scene.movable_objects] == ["block_pink", "block_blue", "block_red"]
        obs, _ = e.reset(seed=0, options={"state": STATE})
        assert e.scene_info()["blocks"]["red"]["contacts"] == {"slider_shelf"}
        for k, colour in enumerate(("red", "blue", "pink")):
            uid = next(o.uid for o in e.env.scene.movable_objects if o.name == f"block_{colour}")
            pos, _ = p.getBasePositionAndOrientation(uid, physicsClientId=e.env.cid)
            np.testing.assert_allclose(obs["scene_obs"][6 + 6 * k : 9 + 6 * k], pos, atol=1e-5)
        given = obs["scene_obs"].copy()
        given[6:9] += (0.05, 0.0, 0.0)  # the red block, moved
        moved, _ = e.reset(seed=0, options={"robot_obs": obs["robot_obs"], "scene_obs": given})
        np.testing.assert_allclose(moved["scene_obs"][6:8], given[6:8], atol=5e-3)
        np.testing.assert_allclose(moved["scene_obs"][12:24], obs["scene_obs"][12:24], atol=5e-3)
    finally:
        e.close()


def _set_joint(env, joint: str, value: float) -> None:
    table = env.calvin_info()["scene_info"]["fixed_objects"]["table"]["uid"]
    index = next(d.joint_index for d in env.env.scene.doors + env.env.scene.switches if d.name == joint)
    p.resetJointState(table, index, value, physicsClientId=env.env.cid)


@needs_checkout
def test_a_chain_of_subtasks_is_judged_from_each_begin_subtask(env):
    still = np.array([0, 0, 0, 0, 0, 0, 1.0])
    env.reset(seed=0, options={"state": STATE, "task": "turn_on_lightbulb"})
    assert env.step(still)[4]["success"] is False
    _set_joint(env, "base__switch", 0.088)  # what a push of the switch does
    *_, terminated, _, info = env.step(still)
    assert terminated and info == {
        "scene": "D",
        "task": "turn_on_lightbulb",
        "success": True,
    }
    env.begin_subtask("open_drawer")  # not reset: the bulb stays on, the drawer is judged from here
    assert env.step(still)[4]["success"] is False
    _set_joint(env, "base__drawer", 0.2)
    assert env.step(still)[4]["success"] is True
    env.begin_subtask("turn_on_lightbulb")
    assert env.step(still)[4]["success"] is False  # already on when this subtask began


@needs_checkout
def test_relative_and_absolute_actions_reach_calvins_robot_as_calvin_applies_them(env):
    env.reset(seed=0, options={"state": STATE})
    start = env.target_pose()
    env.step(np.array([1.0, -0.5, 0.0, 0.0, 0.0, 2.0, 0.3]))  # no clipping: CALVIN does not clip
    np.testing.assert_allclose(env.target_pose() - start, [0.02, -0.01, 0, 0, 0, 0.1], atol=1e-12)
    assert env.observe()["robot_obs"][14] == 1.0
    env.step(np.array([0, 0, 0, 0, 0, 0, 0.0]))  # 0 closes, as CALVIN's evaluation wrapper maps it
    assert env.observe()["robot_obs"][14] == -1.0
    absolute = make_calvin_env(
        "calvin_env", "D", cameras=(), action_mode="absolute", calvin_env_dir=str(ROOT)
    )
    try:
        obs, _ = absolute.reset(seed=0, options={"state": STATE})
        goal = np.concatenate([obs["robot_obs"][:3] + [0.05, 0.0, -0.05], obs["robot_obs"][3:6], [1.0]])
        for _ in range(30):
            obs, *_ = absolute.step(goal)
        np.testing.assert_allclose(absolute.target_pose(), goal[:6])
        np.testing.assert_allclose(obs["robot_obs"][:3], goal[:3], atol=0.01)
    finally:
        absolute.close()


@needs_checkout
def test_episodes_do_not_depend_on_what_the_env_ran_before(env):
    actions = np.random.default_rng(0).uniform(-1, 1, (15, 7))

    def rollout() -> np.ndarray:
        obs, _ = env.reset(seed=0, options={"state": STATE})
        out = [np.concatenate([obs["robot_obs"], obs["scene_obs"]])]
        for a in actions:
            obs = env.step(a)[0]
            out.append(np.concatenate([obs["robot_obs"], obs["scene_obs"]]))
        return np.array(out)

    before = rollout()
    for a in actions[::-1]:
        env.step(a)
    env.step(-np.ones(7))  # ends with the gripper closed
    np.testing.assert_array_equal(before, rollout())


@needs_checkout
def test_two_chains_end_to_end_through_the_harness(env):
    from bench.calvin_eval import evaluate_chains
    from policies.random_policy import RandomPolicy

    def make_env(scene, cameras, **kwargs):
        return make_calvin_env("calvin_env", scene, cameras=cameras, calvin_env_dir=str(ROOT), **kwargs)

    chains = official_chains()[:2]
    records = evaluate_chains(RandomPolicy(seed=0), chains, scene="D", max_steps=5, make_env=make_env)
    assert [r["chain"] for r in records] == [c.index for c in chains]
    for record, chain in zip(records, chains, strict=True):
        assert record["completed"] == 0 and record["steps"] == [5]
        assert record["stop_reason"] == f"timeout:{chain.tasks[0]}"


@needs_checkout
def test_bench_run_env_calvin_env_tags_its_summary_and_leaderboard_row(tmp_path, monkeypatch):
    import json

    from bench import run
    from bench.leaderboard import build_leaderboards
    from bench.results import find_runs, runs_table

    monkeypatch.setenv("CALVIN_ENV_DIR", str(ROOT))
    out = tmp_path / "runs" / "random_calvin_env"
    argv = ["--suite", "calvin", "--env", "calvin_env", "--policy", "random", "--chains", "2"]
    assert run.main([*argv, "--max-steps", "4", "--workers", "1", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "calvin_env" and summary["n_chains"] == 2
    table = build_leaderboards(runs_table(find_runs([tmp_path / "runs"])), include_published=False)["calvin"]
    assert list(table["env"]) == ["calvin_env"]


def test_bench_run_env_calvin_env_without_a_checkout_is_one_line(tmp_path, monkeypatch, capsys):
    from bench import run

    monkeypatch.delenv("CALVIN_ENV_DIR", raising=False)
    monkeypatch.setattr(checkout, "_installed_root", lambda: None)
    out = tmp_path / "run"
    code = run.main(
        [
            "--suite",
            "calvin",
            "--env",
            "calvin_env",
            "--policy",
            "random",
            "--chains",
            "1",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "git clone https://github.com/mees/calvin_env" in err
    assert "--resume" not in err  # nothing was kept, so the same command can run again
    assert not (out / "config.json").exists()


@needs_checkout
def test_camera_images_and_render(env):
    cams = make_calvin_env(
        "calvin_env", "B", static_size=48, gripper_size=24, render_mode="rgb_array", calvin_env_dir=str(ROOT)
    )
    try:
        obs, _ = cams.reset(seed=0, options={"state": STATE})
        assert obs["rgb_static"].shape == (48, 48, 3) and obs["rgb_static"].std() > 5
        assert obs["rgb_gripper"].shape == (24, 24, 3)
        assert cams.render().shape == (48, 48, 3)
        cams.set_cameras(())
        assert set(cams.step(np.zeros(7))[0]) == {"robot_obs", "scene_obs"}
        assert set(cams.observation_space.spaces) == {"robot_obs", "scene_obs"}
    finally:
        cams.close()


@needs_checkout
def test_bad_input_is_one_clear_line(env, tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown reset option\(s\) \['seed'\]; valid: state, task, robot_obs, scene_obs"
    ):
        env.reset(options={"seed": 1})
    with pytest.raises(ValueError, match="either options\\['state'\\] or robot_obs/scene_obs"):
        env.reset(options={"state": STATE, "scene_obs": np.zeros(24)})
    with pytest.raises(ValueError, match=r"options\['scene_obs'\] must have shape \(24,\), got \(6,\)"):
        env.reset(options={"scene_obs": np.zeros(6)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown task 'open_door'; valid tasks: "):
        env.begin_subtask("open_door")
    with pytest.raises(ValueError, match=r"action must have shape \(7,\), got \(6,\)"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="unknown scene 'E'; valid scenes: A, B, C, D"):
        make_calvin_env("calvin_env", "E", calvin_env_dir=str(ROOT))
    for rel in DIGESTS:  # a checkout without scene A
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    with pytest.raises(CalvinEnvUnavailable, match="lacks conf/scene/calvin_scene_A.yaml; git clone"):
        check_scene(tmp_path, "A")
