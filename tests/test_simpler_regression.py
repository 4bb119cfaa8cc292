"""bench.regression on the SimplerEnv-style suite: the expert holds its committed baseline, a broken
policy fails it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import video
from bench.merge import main as merge_main
from bench.regression import Baseline, assert_no_regression
from bench.session import main as run_main
from policies.expert import ExpertPolicy
from tests.simpler_assets import require_vulkan

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "expert_simpler_vm.json"
TASKS = "put_carrot_on_plate,open_drawer_top"


class GripperNeverCloses(ExpertPolicy):
    """The expert with a broken gripper channel: a real drop that the regression must catch."""

    def act(self, obs, *, slot: int = 0) -> np.ndarray:
        action = super().act(obs, slot=slot)
        action[6] = 1.0 if action[6] < 0 else -1.0  # open where it should close, and back
        return action


@pytest.fixture(scope="module", autouse=True)
def vulkan() -> None:
    require_vulkan()


def _run(policy: str, out: Path) -> Path:
    from bench.run import main

    argv = ["--suite", "simpler", "--policy", policy, "--tasks", TASKS, "--episodes-per-variant", "10"]
    assert main([*argv, "--seed", "1", "--out", str(out), "--quiet"]) == 0
    return out


def test_committed_baseline_is_a_simpler_expert_run() -> None:
    baseline = Baseline.load(BASELINE)
    assert baseline.counts.setting["suite"] == "simpler"
    assert baseline.counts.in_a_row == ()
    for task in TASKS.split(","):
        k, n = baseline.counts.per_task[task]
        assert n >= 10 and k >= 0.9 * n


@pytest.mark.slow  # 40 SimplerEnv episodes with the camera: about a minute
def test_expert_passes_and_broken_gripper_fails(tmp_path) -> None:
    report = assert_no_regression(_run("expert", tmp_path / "expert"), BASELINE, min_task_trials=10)
    assert {r.metric for r in report.results if r.tested} == {f"task:{t}" for t in TASKS.split(",")}
    broken = _run("tests.test_simpler_regression:GripperNeverCloses", tmp_path / "broken")
    with pytest.raises(AssertionError, match="task:put_carrot_on_plate"):
        assert_no_regression(broken, BASELINE, min_task_trials=10)


# --- the suite through bench.run's shared features ----------------------------------------------


def _outcomes(folder):
    lines = [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]
    return sorted((r["task"], r["episode"], r["success"], r["steps"], r["seed"]) for r in lines)


@pytest.mark.slow  # about 40 s of CPU: three SimplerEnv runs
def test_simpler_videos_shards_and_merge(tmp_path):
    base = ["--suite", "simpler", "--policy", "expert", "--tasks", "close_drawer_middle"]
    base += ["--episodes-per-variant", "2", "--quiet", "--image-size", "64"]
    assert run_main([*base, "--out", str(tmp_path / "all")]) == 0
    for i in range(2):
        assert run_main([*base, "--shard", f"{i}/2", "--record", "1", "--out", str(tmp_path / f"s{i}")]) == 0
    records = [json.loads(x) for x in (tmp_path / "s1" / "episodes.jsonl").read_text().splitlines()]
    name = f"close_drawer_middle_base_001{video.video_suffix()}"
    assert [r["episode"] for r in records] == [1] and records[0]["video"] == name
    assert (tmp_path / "s1" / "videos" / name).stat().st_size > 0
    assert merge_main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    assert _outcomes(tmp_path / "m") == _outcomes(tmp_path / "all")
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert merged["suite"] == "simpler" and merged["n_episodes"] == 2 and merged["merged_shards"] == 2
