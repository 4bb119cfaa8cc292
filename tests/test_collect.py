"""Expert data collection end to end: content, determinism, resume after kill -9, replay, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from trainer.collect import CollectArgs, collect, main, plan_slot
from trainer.data.stats import read_stats
from trainer.data.store import EpisodeStore

SMALL = ["--static-size", "32", "--gripper-size", "16", "--chain-pool", "200", "--quiet"]


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
    stats = read_stats(tmp_path / "d")
    assert stats["n_frames"] == store.n_frames and "rel_actions" in stats
    assert store.env["scenes"] == ["A", "D"] and store.env["static_size"] == 32


def test_relative_actions_replay_the_recorded_episode(tmp_path):
    """Set-up replayed by the expert, then the stored relative actions applied the way the env's
    relative mode applies them (target += action * scale) reproduce the recorded states."""
    collect(args(tmp_path / "d", episodes=2, tasks=["open_drawer", "place_in_slider"], scenes=["D"]))
    store = EpisodeStore(tmp_path / "d")
    from envs.calvin.env import CalvinEnv
    from policies.expert import ExpertPolicy

    for i, info in enumerate(store.episodes):
        ep = store.episode(i)
        env = CalvinEnv(scene="D", cameras=(), action_mode="absolute")
        expert = ExpertPolicy()
        obs, _ = env.reset(seed=info["env_seed"], options={"state": info["chain_state"]})
        for task in info["chain_tasks"][: info["position"]]:
            env.begin_subtask(task)
            expert.reset("", info={"task": task, "scene": "D", "target_pose": env.target_pose().tolist()})
            for _ in range(360):
                obs, _, done, _, _ = env.step(expert.act(obs))
                if done:
                    break
        env.begin_subtask(info["task"])
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
