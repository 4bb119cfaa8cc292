"""Harness tests with a fake, seed-deterministic env and fake policies (no PyBullet needed).

The fake env and its factory live at module level so that worker processes can unpickle them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench import calvin_eval, run, video
from policies.base import Policy
from policies.registry import available_policies, register_policy


@dataclass(frozen=True)
class FakeChain:
    index: int
    state: dict
    tasks: tuple[str, ...]


class FakeEnv:
    """Success comes by chance each step, more likely with a large action[0]; the chance draws come
    from the generator seeded in reset, so an episode depends only on the seed, state and actions."""

    def __init__(self, scene, cameras, render_mode=None, action_mode="relative"):
        self.scene, self.cameras, self.render_mode = scene, tuple(cameras), render_mode
        self.task = None

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed)
        self.state = dict((options or {})["state"])
        self.task, self.t, self.level = None, 0, 0
        if self.state.get("reset_fails"):
            raise RuntimeError("cannot build this state")
        return self._obs(), {}

    def begin_subtask(self, task):
        self.task = task

    def _obs(self):
        obs = {
            "robot_obs": np.full(15, self.t, np.float32),
            "scene_obs": np.full(24, self.level, np.float32),
        }
        if "static" in self.cameras:
            obs["rgb_static"] = np.zeros((16, 16, 3), np.uint8)
        return obs

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (7,) or not np.all(np.isfinite(action)):
            raise ValueError(f"bad action {action}")
        self.t += 1
        if self.state.get("die_at") == self.t:
            os._exit(3)
        once = self.state.get("die_once_at")  # (step, flag file): dies while the file exists
        if once and once[0] == self.t and os.path.exists(once[1]):
            os.unlink(once[1])
            os._exit(3)
        if self.state.get("hang_at") == self.t:
            time.sleep(60)
        success = self.task is not None and self.rng.random() < 0.12 * (1.0 + action[0])
        if success:
            self.level += 1
            self.task = None
        return self._obs(), float(success), success, False, {"success": success}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return np.full((24, 32, 3), (40 * self.level) % 255, np.uint8)

    def close(self):
        pass


@dataclass(frozen=True)
class BrokenEnvFactory:
    def __call__(self, scene, cameras, **kwargs):
        raise OSError("no display")


@dataclass(frozen=True)
class FakeEnvFactory:
    def __call__(self, scene, cameras, **kwargs):
        return FakeEnv(scene, cameras, **kwargs)


TASKS = ("open", "lift", "push", "stack", "turn", "boom")


def fake_chains(n: int = 12, seed: int = 0) -> list[FakeChain]:
    rng = np.random.default_rng(seed)
    chains = []
    for i in range(n):
        tasks = tuple(str(t) for t in rng.choice(TASKS[:5], size=5, replace=False))
        chains.append(FakeChain(i, {"k": i % 3}, tasks))
    return chains


def instruction_for(task: str) -> str:
    return f"please {task}"


class SeededPolicy(Policy):
    """Stochastic per slot, reseeded at each reset; needs no images."""

    needs_images = False

    def __init__(self):
        self.rngs = {}

    def reset(self, instruction, *, slot=0, seed=None, info=None):
        self.rngs[slot] = np.random.default_rng(seed)

    def act_batch(self, observations, slots):
        assert len(observations) == len(slots) and len(set(slots)) == len(slots)
        return np.stack([self.rngs[s].uniform(-1, 1, 7) for s in slots]).astype(np.float32)


class BoomPolicy(SeededPolicy):
    """Raises on the observations of slots whose task is 'boom'."""

    def reset(self, instruction, *, slot=0, seed=None, info=None):
        super().reset(instruction, slot=slot, seed=seed, info=info)
        self.tasks = getattr(self, "tasks", {})
        self.tasks[slot] = info["task"]

    def act_batch(self, observations, slots):
        if any(self.tasks[s] == "boom" for s in slots):
            raise RuntimeError("kaboom")
        return super().act_batch(observations, slots)


class NaNPolicy(SeededPolicy):
    def act_batch(self, observations, slots):
        actions = super().act_batch(observations, slots)
        actions[:, 2] = np.nan
        return actions


class ImagePolicy(SeededPolicy):
    needs_images = True

    def act_batch(self, observations, slots):
        assert all("rgb_static" in o for o in observations)
        return super().act_batch(observations, slots)


for _name, _cls in [("test-seeded", SeededPolicy), ("test-nan", NaNPolicy)]:
    if _name not in available_policies():
        register_policy(_name, lambda arg, cls=_cls: cls())


def evaluate(policy, chains, **kwargs):
    kwargs = {"make_env": FakeEnvFactory(), "instruction_for": instruction_for, "max_steps": 8, **kwargs}
    return calvin_eval.evaluate_chains(policy, chains, **kwargs)


def strip(records):
    """Records without wall time, list position and video (which legitimately vary between runs)."""
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "position", "video")} for r in records]


# ----------------------------------------------------------------------------- engine


def test_seeds_are_distinct_and_stable():
    seeds = {calvin_eval.chain_seed(0, i) for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**31 for s in seeds)
    assert calvin_eval.chain_seed(0, 5) == calvin_eval.chain_seed(0, 5) != calvin_eval.chain_seed(1, 5)
    assert calvin_eval.subtask_seed(0, 5, 0) != calvin_eval.subtask_seed(0, 5, 1)


def test_chain_protocol_in_process():
    chains = fake_chains(12)
    seen = []
    records = evaluate(SeededPolicy(), chains, seed=3, on_result=seen.append)
    assert [r["chain"] for r in records] == list(range(12))
    assert len(seen) == 12
    completed = [r["completed"] for r in records]
    assert len(set(completed)) > 1, "the fake env should give varied outcomes"
    for r, c in zip(records, chains, strict=True):
        assert r["tasks"] == list(c.tasks) and r["state"] == c.state
        assert r["instructions"] == [f"please {t}" for t in c.tasks]
        assert r["env_seed"] == calvin_eval.chain_seed(3, c.index)
        if r["completed"] == 5:
            assert r["stop_reason"] == "completed" and len(r["steps"]) == 5
        else:
            assert r["stop_reason"] == f"timeout:{c.tasks[r['completed']]}"
            assert len(r["steps"]) == r["completed"] + 1 and r["steps"][-1] == 8
        assert all(1 <= s <= 8 for s in r["steps"])


def test_results_do_not_depend_on_workers(tmp_path):
    chains = fake_chains(10)
    one = evaluate(SeededPolicy(), chains, seed=7, workers=1)
    two = evaluate(SeededPolicy(), chains, seed=7, workers=2, record=3, video_dir=tmp_path)
    assert strip(one) == strip(two)
    assert len(list(tmp_path.iterdir())) == 3 and all("video" in r for r in two[:3])
    # a shuffled chain order changes the worker assignment, not the outcome of any chain
    backwards = evaluate(SeededPolicy(), chains[::-1], seed=7, workers=3)
    assert [r["chain"] for r in backwards] == list(range(9, -1, -1))
    assert strip(backwards[::-1]) == strip(one)
    other_seed = evaluate(SeededPolicy(), chains, seed=8, workers=1)
    assert strip(other_seed) != strip(one)


def test_raising_policy_fails_only_its_chains():
    chains = fake_chains(6) + [FakeChain(6, {}, ("boom", "open", "lift", "push", "stack"))]
    chains.insert(2, FakeChain(7, {}, ("open", "boom", "lift", "push", "stack")))
    records = evaluate(BoomPolicy(), chains, seed=1, workers=2, max_steps=30)
    by_chain = {r["chain"]: r for r in records}
    assert by_chain[6]["stop_reason"] == "error:policy 'policy' raised RuntimeError: kaboom"
    assert by_chain[6]["completed"] == 0 and by_chain[6]["steps"] == [0]
    if by_chain[7]["completed"] == 1:  # reached the boom task
        assert by_chain[7]["stop_reason"].startswith("error:") and "kaboom" in by_chain[7]["stop_reason"]
    clean = evaluate(SeededPolicy(), fake_chains(6), seed=1, workers=1, max_steps=30)
    assert strip(clean) == [r for r in strip(records) if r["chain"] < 6]


def test_nan_action_is_reported():
    records = evaluate(NaNPolicy(), fake_chains(2), policy_name="nanny")
    for r in records:
        assert r["completed"] == 0 and r["steps"] == [0]
        assert r["stop_reason"].startswith("error:policy 'nanny': action has NaN")
        assert "dimension(s) [2]" in r["stop_reason"]


def test_wrong_action_shape_is_reported():
    class Short(SeededPolicy):
        def act_batch(self, observations, slots):
            return super().act_batch(observations, slots)[:, :6]

    (record,) = evaluate(Short(), fake_chains(1))
    assert "shape (7,)" in record["stop_reason"] and "(6,)" in record["stop_reason"]


def test_env_errors_and_cameras():
    chains = [FakeChain(0, {"reset_fails": True}, TASKS[:5]), *fake_chains(2)[1:]]
    records = evaluate(ImagePolicy(), chains)
    assert records[0]["stop_reason"] == "error:env.reset raised RuntimeError: cannot build this state"
    assert records[0]["steps"] == []
    assert not records[1]["stop_reason"].startswith("error")


def test_env_creation_failure_stops_the_run(tmp_path, capsys):
    assert (
        cli(["--policy", "test-seeded", "--out", str(tmp_path), "--chains", "2"], make_env=BrokenEnvFactory())
        == 1
    )
    err = capsys.readouterr().err
    assert "could not create the environment" in err and "OSError: no display" in err
    assert not (tmp_path / "episodes.jsonl").exists(), "an empty episodes.jsonl would block a rerun"
    assert cli(["--policy", "test-seeded", "--out", str(tmp_path), "--chains", "2", "--quiet"]) == 0
    with pytest.raises(RuntimeError, match="no display"):
        evaluate(SeededPolicy(), fake_chains(3), workers=2, make_env=BrokenEnvFactory())


def test_dying_and_hanging_workers_are_replaced():
    chains = fake_chains(5)
    chains[1] = FakeChain(1, {"die_at": 3}, chains[1].tasks)
    chains[3] = FakeChain(3, {"hang_at": 2}, chains[3].tasks)
    records = evaluate(SeededPolicy(), chains, seed=2, workers=2, max_steps=40, worker_timeout_s=1.5)
    assert records[1]["stop_reason"] == "error:worker died: its process exited with code 3"
    assert records[1]["steps"] == [3] and records[1]["completed"] == 0
    assert records[3]["stop_reason"].startswith("error:worker died: sent nothing")
    healthy = evaluate(SeededPolicy(), [chains[i] for i in (0, 2, 4)], seed=2, max_steps=40)
    assert strip([records[i] for i in (0, 2, 4)]) == strip(healthy)


def test_videos(tmp_path):
    records = evaluate(SeededPolicy(), fake_chains(3), record=2, video_dir=tmp_path)
    suffix = video.video_suffix()
    assert records[0]["video"] == f"chain_0000{suffix}" and records[1]["video"] == f"chain_0001{suffix}"
    assert "video" not in records[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"chain_0000{suffix}", f"chain_0001{suffix}"]
    frame = video.annotate_frame(np.zeros((24, 32, 3), np.uint8), "open the drawer")
    assert frame.shape == (50, 32, 3) and frame[24:].max() > 0


# ----------------------------------------------------------------------------- command line


def cli(argv, **kwargs):
    kwargs = {"make_env": FakeEnvFactory(), "instruction_for": instruction_for, **kwargs}
    return run.main(argv, load_chains=lambda seed, n: fake_chains(200, seed or 0), **kwargs)


def test_cli_run_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--policy",
        "test-seeded",
        "--out",
        str(out),
        "--chains",
        "4",
        "--max-steps",
        "8",
        "--record",
        "1",
    ]
    assert cli(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "suite",
        "policy",
        "scene",
        "n_chains",
        "success_rates",
        "success_rates_ci",
        "avg_len",
        "per_task",
        "wall_time_s",
        "env_steps",
        "env_steps_per_s",
        "seed",
        "workers",
    ):
        assert key in summary, key
    assert summary["n_chains"] == 4 and len(summary["success_rates"]) == 5
    assert set(next(iter(summary["per_task"].values()))) == {
        "successes",
        "trials",
        "rate",
        "ci_low",
        "ci_high",
    }
    lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["chain"] for r in lines) == [0, 1, 2, 3]
    assert summary["avg_len"] == pytest.approx(sum(r["completed"] for r in lines) / 4)
    config = json.loads((out / "config.json").read_text())
    assert config["policy"] == "test-seeded" and config["chains"] == 4 and "python" in config
    assert list((out / "videos").iterdir())
    printed = capsys.readouterr().out
    assert "avg_len" in printed and "per task" in printed


def test_cli_chain_ids_and_generated(tmp_path):
    out = tmp_path / "ids"
    assert (
        cli(
            [
                "--policy",
                "test-seeded",
                "--out",
                str(out),
                "--chain-ids",
                "9,2",
                "--generated-seed",
                "4",
                "--max-steps",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["chain"] for r in lines) == [2, 9]
    assert json.loads((out / "summary.json").read_text())["policy"] == "test-seeded"
    labelled = tmp_path / "labelled"
    argv = ["--policy", "test-seeded", "--label", "seeded (v2)", "--chain-ids", "2", "--max-steps", "2"]
    assert cli([*argv, "--out", str(labelled), "--quiet"]) == 0
    assert json.loads((labelled / "summary.json").read_text())["policy"] == "seeded (v2)"
    assert {r["chain"]: r["tasks"] for r in lines}[9] == list(fake_chains(200, 4)[9].tasks)


def test_cli_first_task_keeps_the_first_chains_that_start_with_it(tmp_path):
    task = TASKS[2]
    out = tmp_path / "one_task"
    argv = ["--policy", "test-seeded", "--first-task", task, "--chains", "3", "--max-steps", "2"]
    assert cli([*argv, "--out", str(out), "--quiet"]) == 0
    lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    expected = [c.index for c in fake_chains(200) if c.tasks[0] == task][:3]
    assert len(expected) == 3 and sorted(r["chain"] for r in lines) == expected
    summary = json.loads((out / "summary.json").read_text())
    assert summary["first_task"] == task and summary["chain_ids"] == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--first-task", "fly"],
            "--first-task 'fly': no official chain starts with it; first tasks there: ",
        ),
        (
            ["--first-task", TASKS[0], "--chain-ids", "1"],
            "--first-task and --chain-ids both choose the chains",
        ),
        (
            ["--first-task", TASKS[0], "--chains", "200"],
            f"exceeds the {sum(c.tasks[0] == TASKS[0] for c in fake_chains(200))} official (first task {TASKS[0]}) chains",
        ),
        (["--policy", "no-such-policy"], "unknown policy 'no-such-policy'; valid: "),
        (["--scene", "E"], "unknown scene 'E' for suite calvin; valid: A, B, C, D"),
        (["--chain-ids", "3,200"], "chain id(s) [200] out of range: the official chains are 0..199"),
        (["--chain-ids", "3,x"], "--chain-ids must be comma-separated integers"),
        (["--chains", "201"], "--chains 201 exceeds the 200 official chains"),
        (["--workers", "0"], "--workers must be >= 1"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, extra, message):
    argv = ["--policy", "test-seeded", "--out", str(tmp_path / "o"), *extra]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if "policy" in message:
        assert "random" in err and "expert" in err
    assert not (tmp_path / "o" / "episodes.jsonl").exists()


def test_cli_unknown_suite(tmp_path, capsys):
    assert cli(["--policy", "test-seeded", "--out", str(tmp_path), "--suite", "libero"]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'libero'; valid: calvin, simpler, real" in err and len(err.splitlines()) == 1


def test_cli_refuses_previous_run(tmp_path, capsys):
    (tmp_path / "episodes.jsonl").write_text('{"chain": 0}\n')
    before = (tmp_path / "episodes.jsonl").stat()
    assert cli(["--policy", "test-seeded", "--out", str(tmp_path), "--chains", "2"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "holds episodes.jsonl" in err and "nothing there is overwritten" in err
    assert (tmp_path / "episodes.jsonl").read_text() == '{"chain": 0}\n'
    assert (tmp_path / "episodes.jsonl").stat().st_mtime_ns == before.st_mtime_ns
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "config.json").exists()


def test_cli_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert cli(["--policy", "test-seeded", "--out", str(blocker / "sub")]) == 2
    assert str(blocker / "sub") in capsys.readouterr().err


def test_cli_nan_policy_run_goes_on(tmp_path):
    assert (
        cli(["--policy", "test-nan", "--out", str(tmp_path), "--chains", "3", "--quiet", "--workers", "2"])
        == 0
    )
    lines = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all("action has NaN" in r["stop_reason"] for r in lines)
    assert json.loads((tmp_path / "summary.json").read_text())["avg_len"] == 0.0


# ----------------------------------------------------------------------------- the real env


def _available(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(
    not _available("pybullet", "envs.calvin.env", "envs.calvin.chains"), reason="no CALVIN env"
)
def test_end_to_end_random_policy(tmp_path: Path):
    """Real env, official chains: 2 chains in-process (one recorded) and in 2 worker processes."""
    extra = {} if _available("envs.calvin.language") else {"instruction_for": instruction_for}
    outs = [tmp_path / "w1", tmp_path / "w2"]
    common = ["--policy", "random", "--chains", "2", "--max-steps", "30", "--quiet"]
    assert run.main([*common, "--out", str(outs[0]), "--record", "1"], **extra) == 0
    assert run.main([*common, "--out", str(outs[1]), "--workers", "2"], **extra) == 0
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["n_chains"] == 2 and summary["env_steps"] >= 2 and summary["n_errors"] == 0
    runs = [[json.loads(x) for x in (o / "episodes.jsonl").read_text().splitlines()] for o in outs]
    runs = [sorted(r, key=lambda e: e["chain"]) for r in runs]
    assert [r["chain"] for r in runs[0]] == [0, 1]
    assert runs[0][0].pop("video") == f"chain_0000{video.video_suffix()}" and "video" not in runs[0][1]
    assert (outs[0] / "videos" / f"chain_0000{video.video_suffix()}").stat().st_size > 0
    assert strip(runs[0]) == strip(runs[1])
