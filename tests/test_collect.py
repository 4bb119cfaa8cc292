"""Expert data collection end to end: content, determinism, resume after kill -9, replay, errors;
noise injection (TargetDrift) and DAgger roll-outs (--policy, --beta)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policies.base import Policy
from tests.calvin_checkout import calvin_checkout
from trainer.collect import CollectArgs, collect, main, plan_slot
from trainer.data.stats import read_stats
from trainer.data.store import EpisodeStore
from trainer.recorder import TargetDrift, absolute_from_relative, policy_turns

CALVIN_ROOT, NO_CALVIN = calvin_checkout()
SMALL = ["--static-size", "32", "--gripper-size", "16", "--chain-pool", "200", "--quiet"]
SCALE = np.array([0.02] * 3 + [0.05] * 3)
OBS_KEYS = ("rgb_static", "rgb_gripper", "robot_obs", "scene_obs")


class HoldPolicy(Policy):
    """Holds the target still and keeps the gripper as last commanded: what it executes is known."""

    needs_images = False

    def reset(self, instruction, *, slot=0, seed=None, info=None) -> None:
        self.resets = getattr(self, "resets", 0) + 1

    def act(self, obs, *, slot=0) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, 0, 1.0 if obs["robot_obs"][14] > 0 else -1.0], dtype=np.float32)


class SizedHoldPolicy(HoldPolicy):
    camera_sizes = {"rgb_static": (64, 64), "rgb_gripper": (16, 16)}


def set_up_like_the_recorder(env, info: dict) -> dict:
    """Reset ``env`` as the recorder did for a stored episode and let the expert play the chain's
    earlier tasks; returns the observation at the start of the recorded task."""
    from policies.expert import ExpertPolicy

    obs, _ = env.reset(seed=info["env_seed"], options={"state": info["chain_state"]})
    expert = ExpertPolicy()
    for task in info["chain_tasks"][: info["position"]]:
        env.begin_subtask(task)
        expert.reset("", info={"task": task, "scene": "D", "target_pose": env.target_pose().tolist()})
        for _ in range(360):
            obs, _, done, _, _ = env.step(expert.act(obs))
            if done:
                break
    env.begin_subtask(info["task"])
    return obs


def wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def labels_from(targets: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The labels the recorder must store: the expert's action relative to the env's target before the step."""
    from envs.calvin.env import relative_action

    return np.stack(
        [np.clip(relative_action(b[:6], a[:6], a[6]), -1, 1) for b, a in zip(targets, actions, strict=True)]
    )


def replay_expert(data: dict, info: dict) -> np.ndarray:
    """A fresh expert fed the stored observations from the stored start target: its actions."""
    from policies.expert import ExpertPolicy

    expert = ExpertPolicy()
    reset = {"task": info["task"], "scene": info["scene"], "target_pose": info["start_target"]}
    expert.reset(info["instruction"], info=reset)
    return np.stack([expert.act({k: data[k][t] for k in OBS_KEYS}) for t in range(len(data["actions"]))])


def args(out: Path, **kw) -> CollectArgs:
    base = dict(
        out=str(out),
        scenes=["A", "D"],
        episodes=3,
        workers=1,
        static_size=32,
        gripper_size=16,
        chain_pool=200,
        quiet=True,
        tasks=["open_drawer", "turn_on_led", "place_in_slider"],
    )
    base.update(kw)
    return CollectArgs(**base)


def test_collection_stores_labelled_episodes(tmp_path):
    counts = collect(args(tmp_path / "d"))
    store = EpisodeStore(tmp_path / "d")
    assert counts["stored"] == len(store) == 3
    assert {ep["task"] for ep in store.episodes} == {"open_drawer", "turn_on_led", "place_in_slider"}
    from envs.calvin.language import TRAIN_INSTRUCTIONS

    for ep in store.episodes:
        assert ep["instruction"] in TRAIN_INSTRUCTIONS[ep["task"]]
        assert ep["scene"] in ("A", "D")
    assert store.fields["rgb_static"].shape[1:] == (32, 32, 3)
    assert store.fields["rgb_gripper"].shape[1:] == (16, 16, 3)
    assert store.fields["robot_obs"].shape[1:] == (15,) and store.fields["scene_obs"].shape[1:] == (24,)
    rel = np.asarray(store.fields["rel_actions"])
    assert np.all(np.abs(rel) <= 1.0 + 1e-5) and set(np.unique(rel[:, 6])) <= {-1.0, 1.0}
    place = next(i for i, ep in enumerate(store.episodes) if ep["task"] == "place_in_slider")
    assert store.episodes[place]["position"] > 0  # a block was lifted first, unrecorded
    assert store.episode(place).data["robot_obs"][0, 6] < 0.075  # ... and is in the hand at frame 0
    for i in range(len(store)):  # without noise the label is the executed change of the env's target
        data = store.episode(i).data
        np.testing.assert_allclose(
            labels_from(data["actions"][:-1], data["actions"][1:]), data["rel_actions"][1:], atol=1e-4
        )
    assert "policy_steps" not in store.episodes[0] and store.env["collector"]["policy"] == "expert"
    stats = read_stats(tmp_path / "d")
    assert stats["n_frames"] == store.n_frames and "rel_actions" in stats
    assert store.env["scenes"] == ["A", "D"] and store.env["static_size"] == 32


def test_relative_actions_replay_the_recorded_episode(tmp_path):
    """Set-up replayed by the expert, then the stored relative actions applied the way the env's
    relative mode applies them (target += action * scale) reproduce the recorded states."""
    collect(args(tmp_path / "d", episodes=2, tasks=["open_drawer", "place_in_slider"], scenes=["D"]))
    store = EpisodeStore(tmp_path / "d")
    from envs.calvin.env import CalvinEnv

    for i, info in enumerate(store.episodes):
        ep = store.episode(i)
        env = CalvinEnv(scene="D", cameras=(), action_mode="absolute")
        obs = set_up_like_the_recorder(env, info)
        scale = np.array([0.02] * 3 + [0.05] * 3)
        for t, rel in enumerate(ep.data["rel_actions"]):
            diff = obs["robot_obs"] - ep.data["robot_obs"][t]
            diff[3:6] = (diff[3:6] + np.pi) % (2 * np.pi) - np.pi  # Euler angles: +-pi are one angle
            np.testing.assert_allclose(diff, 0.0, atol=2e-3)
            target = env.target_pose() + rel[:6] * scale
            obs, _, _, _, step_info = env.step(np.concatenate([target, rel[6:]]).astype(np.float32))
        assert step_info["success"], info["task"]
        env.close()


def test_slots_do_not_depend_on_workers(tmp_path):
    collect(args(tmp_path / "one", episodes=2))
    collect(args(tmp_path / "two", episodes=2, workers=2))
    a, b = EpisodeStore(tmp_path / "one"), EpisodeStore(tmp_path / "two")
    by_slot = {ep["slot"]: i for i, ep in enumerate(b.episodes)}
    for i, ep in enumerate(a.episodes):
        other = b.episode(by_slot[ep["slot"]])
        for key in ("robot_obs", "rel_actions", "rgb_static"):
            np.testing.assert_array_equal(a.episode(i).data[key], other.data[key])


def test_plans_are_balanced_over_tasks():
    from envs.calvin.chains import TASKS, generate_chains

    chains = generate_chains(n=300, seed=1)
    a = CollectArgs(out="unused", chain_pool=300)
    tasks = [plan_slot(i, a, list(TASKS), chains).task for i in range(len(TASKS))]
    assert sorted(tasks) == sorted(TASKS)


def test_resume_after_kill_continues_without_loss(tmp_path):
    out = tmp_path / "d"
    cmd = [
        sys.executable,
        "-m",
        "trainer.collect",
        "--scenes",
        "D",
        "--episodes",
        "4",
        "--out",
        str(out),
        "--tasks",
        "open_drawer",
        "turn_on_led",
        *SMALL,
    ]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parent.parent, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        meta = out / "meta.json"
        if meta.exists() and json.loads(meta.read_text())["n_episodes"] >= 1:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = EpisodeStore(out)
    assert 1 <= len(first) < 4
    kept = [ep["slot"] for ep in first.episodes]
    kept_obs = first.episode(0).data["robot_obs"].copy()
    assert subprocess.run(cmd, cwd=Path(__file__).parent.parent).returncode == 0
    store = EpisodeStore(out)
    assert len(store) == 4
    slots = [ep["slot"] for ep in store.episodes]
    assert slots[: len(kept)] == kept and len(set(slots)) == 4
    np.testing.assert_array_equal(store.episode(0).data["robot_obs"], kept_obs)


def test_bad_input(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "x"), "--scenes", "E", "--quiet"]) == 2
    assert "unknown scene(s) ['E']" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x"), "--tasks", "fly", "--quiet"]) == 2
    assert "unknown CALVIN task 'fly'; valid tasks:" in capsys.readouterr().err
    collect(args(tmp_path / "d", episodes=1, tasks=["open_drawer"]))
    assert main(["--out", str(tmp_path / "d"), "--static-size", "64", *SMALL[2:]]) == 2
    assert "static_size: ours 64, stored 32" in capsys.readouterr().err


# --------------------------------------------------------------------------- CALVIN's own env


@pytest.mark.skipif(CALVIN_ROOT is None, reason=NO_CALVIN)
def test_collection_in_calvins_own_env_has_our_fields_and_refuses_the_other_backend(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("CALVIN_ENV_DIR", str(CALVIN_ROOT))
    same = dict(episodes=1, scenes=["D"], tasks=["turn_on_led"])
    collect(args(tmp_path / "ours", **same))
    counts = collect(args(tmp_path / "calvin", env="calvin_env", **same))
    ours, theirs = EpisodeStore(tmp_path / "ours"), EpisodeStore(tmp_path / "calvin")
    assert counts["stored"] == 1 and theirs.env["backend"] == "calvin_env" and "backend" not in ours.env
    assert theirs.meta["fields"] == ours.meta["fields"]  # same keys, per-frame shapes and dtypes
    for key in ("slot", "task", "chain_index", "instruction"):  # the same plan, played in CALVIN's env
        assert theirs.episodes[0][key] == ours.episodes[0][key]
    # the frames are CALVIN's: its env, reset and set up as the recorder did, plays the stored actions
    # through the same states to the task's success (its own oracle judging)
    from envs.calvin.official.env import CalvinOfficialEnv

    info, data = theirs.episodes[0], theirs.episode(0).data
    env = CalvinOfficialEnv(scene="D", cameras=(), action_mode="absolute")
    try:
        obs = set_up_like_the_recorder(env, info)
        for t, action in enumerate(data["actions"]):
            np.testing.assert_allclose(obs["robot_obs"], data["robot_obs"][t], atol=1e-4)
            np.testing.assert_allclose(obs["scene_obs"], data["scene_obs"][t], atol=1e-4)
            obs, _, _, _, step_info = env.step(action)
        assert step_info["success"]
    finally:
        env.close()
    flags = ["--out", str(tmp_path / "calvin"), "--scenes", "D", "--episodes", "2", "--tasks", "turn_on_led"]
    assert main([*flags, *SMALL]) == 2  # resuming CALVIN's store on our table is refused by key
    assert 'backend: ours "(absent)", stored "calvin_env"' in capsys.readouterr().err


def test_calvin_env_without_a_checkout_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALVIN_ENV_DIR", str(tmp_path / "nowhere"))
    assert main(["--out", str(tmp_path / "x"), "--env", "calvin_env", "--scenes", "D", *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainer.collect: error: --env calvin_env: ") and "\n" not in err
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- noise injection


def test_target_drift_is_stationary_at_its_std():
    drift = TargetDrift(0.01, 0.9, seed=(0,))
    action = np.array([0.1, 0.2, 0.3, 3.0, 0.0, 1.0, -1.0], dtype=np.float32)
    offsets = []
    for _ in range(40000):
        out = drift.perturb(action)
        assert out[6] == -1.0  # the gripper is never perturbed
        offsets.append(out[:6] - action[:6])
    offsets = np.array(offsets)[1000:]
    np.testing.assert_allclose(offsets.std(axis=0), [0.01] * 3 + [0.025] * 3, rtol=0.06)
    lag1 = [np.corrcoef(offsets[1:, k], offsets[:-1, k])[0, 1] for k in range(6)]
    np.testing.assert_allclose(lag1, 0.9, atol=0.02)
    assert TargetDrift(0.0, 0.9, seed=(0,)).perturb(action) is action  # no noise: untouched


def test_noise_drifts_the_executed_target_and_records_the_expert(tmp_path):
    """The target the env held before each step (recovered from the stored label and action) is the
    expert's previous action plus TargetDrift's offset; the same seed makes the same store."""
    kw = dict(episodes=1, tasks=["open_drawer"], scenes=["D"], noise=0.01, noise_corr=0.9, static_size=16)
    collect(args(tmp_path / "a", **kw))
    collect(args(tmp_path / "b", **kw))
    a, b = EpisodeStore(tmp_path / "a"), EpisodeStore(tmp_path / "b")
    assert a.episodes == b.episodes and a.env == b.env
    for key in a.fields:
        np.testing.assert_array_equal(a.fields[key], b.fields[key])
    assert a.env["collector"]["noise"] == {"std_m": 0.01, "corr": 0.9}

    data, info = a.episode(0).data, a.episodes[0]
    actions, rel = data["actions"], data["rel_actions"]
    drift = TargetDrift(0.01, 0.9, seed=(0, 3, info["slot"]))
    offsets = np.array([drift.perturb(np.zeros(7, np.float32))[:6] for _ in range(len(actions))])
    unclipped = np.all(np.abs(rel[1:, :6]) < 0.999, axis=1)  # there the label pins the target down
    before = actions[1:, :6] - rel[1:, :6] * SCALE
    executed_offset = before - actions[:-1, :6]
    executed_offset[:, 3:] = wrap(executed_offset[:, 3:])
    assert unclipped.sum() > len(actions) // 2
    np.testing.assert_allclose(executed_offset[unclipped], offsets[:-1][unclipped], atol=1e-4)
    assert np.abs(executed_offset[unclipped, :3]).max() > 0.005  # executed targets left the expert's
    # ... and the labels are not the executed target changes
    assert np.abs(labels_from(actions[:-1], actions[1:]) - rel[1:]).max() > 0.2


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--noise", "0.2"], "--noise is a drift std in metres, expected 0..0.05, got 0.2"),
        (["--noise", "-0.01"], "--noise is a drift std in metres, expected 0..0.05, got -0.01"),
        (["--noise-corr", "1"], "--noise-corr must be in [0, 1), got 1.0"),
        (["--beta", "1.5", "--policy", "random"], "--beta is a probability, expected 0..1, got 1.5"),
        (["--beta", "0.5"], "--beta 0.5 mixes in a --policy other than expert, but --policy is expert"),
        (["--policy", "nope"], "unknown policy 'nope'"),
        (
            ["--policy", "tests.test_collect:SizedHoldPolicy", "--static-size", "32", "--gripper-size", "16"],
            "was trained on rgb_static images of 64x64, but --static-size is 32",
        ),
    ],
)
def test_bad_noise_and_policy_values_are_one_line_errors(tmp_path, capsys, flags, message):
    assert main(["--out", str(tmp_path / "x"), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()  # refused before anything is written


# --------------------------------------------------------------------------- DAgger roll-outs


def test_absolute_from_relative_is_what_the_relative_mode_does():
    from envs.calvin.env import CalvinEnv

    rel_env = CalvinEnv(scene="D", cameras=(), action_mode="relative")
    abs_env = CalvinEnv(scene="D", cameras=(), action_mode="absolute")
    rel_env.reset(seed=3)
    abs_env.reset(seed=3)
    rng = np.random.default_rng(0)
    try:
        for _ in range(20):
            action = rng.uniform(-1.5, 1.5, size=7).astype(np.float32)  # beyond [-1, 1]: clipped alike
            abs_env.step(absolute_from_relative(action, abs_env.target_pose()))
            rel_env.step(action)
            np.testing.assert_allclose(abs_env.target_pose(), rel_env.target_pose(), atol=1e-9)
    finally:
        rel_env.close()
        abs_env.close()


@pytest.fixture(scope="module")
def hold_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("hold") / "d"
    kw = dict(scenes=["D"], episodes=2, tasks=["open_drawer", "turn_on_led"], static_size=16)
    collect(args(out, policy="tests.test_collect:HoldPolicy", beta=0.6, **kw))
    return out, kw


def test_policy_executes_its_share_while_the_expert_labels(hold_store):
    """Rebuilding the env's target from the seeded turns (the policy holds it, the expert moves it to
    its action) gives exactly the stored labels; the stored actions are the expert's."""
    store = EpisodeStore(hold_store[0])
    assert len(store) == 2
    collector = store.env["collector"]
    assert collector["policy"] == "tests.test_collect:HoldPolicy" and collector["beta"] == 0.6
    assert collector["policy_class"] == "HoldPolicy" and collector["policy_provenance"] == {}
    held_steps = 0
    for i, info in enumerate(store.episodes):
        data = store.episode(i).data
        n = len(data["actions"])
        turns = policy_turns(0, info["slot"], 0.6, n)
        assert info["policy_steps"] == turns.sum() and info["policy_fraction"] == turns.sum() / n
        assert 0 < info["policy_fraction"] < 1
        targets = [np.asarray(info["start_target"])]
        for t in range(n - 1):
            targets.append(targets[-1] if turns[t] else data["actions"][t, :6].astype(np.float64))
        np.testing.assert_allclose(
            labels_from(np.array(targets), data["actions"]), data["rel_actions"], atol=1e-4
        )
        np.testing.assert_allclose(replay_expert(data, info), data["actions"], atol=1e-6)
        held = [
            t
            for t in range(n - 1)
            if turns[t] and np.abs(targets[t + 1] - data["actions"][t, :6]).max() > 1e-3
        ]
        held_steps += len(held)
    assert held_steps > 5  # the executed target did differ from the recorded action


def test_policy_rollouts_do_not_depend_on_workers_and_refuse_another_policy(hold_store, tmp_path, capsys):
    out, kw = hold_store
    collect(args(tmp_path / "two", policy="tests.test_collect:HoldPolicy", beta=0.6, workers=2, **kw))
    a, b = EpisodeStore(out), EpisodeStore(tmp_path / "two")
    by_slot = {ep["slot"]: i for i, ep in enumerate(b.episodes)}
    assert sorted(by_slot) == sorted(ep["slot"] for ep in a.episodes)
    for i, ep in enumerate(a.episodes):
        other = b.episode(by_slot[ep["slot"]])
        assert other.info == a.episode(i).info
        for key in a.fields:
            np.testing.assert_array_equal(a.episode(i).data[key], other.data[key])
    flags = ["--scenes", "D", "--episodes", "3", "--tasks", "open_drawer", "turn_on_led", *SMALL]
    flags[flags.index("32")] = "16"
    assert main(["--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert 'collector.policy: ours "expert", stored "tests.test_collect:HoldPolicy"' in err
    assert 'collector.beta: ours "(absent)", stored 0.6' in err
