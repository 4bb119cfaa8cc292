"""Resumable runs (kill -9, cut lines) and sharded runs merged with bench.merge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.merge import main as merge_main
from bench.run import main as run_main

ROOT = Path(__file__).parent.parent
COMMON = ["--policy", "expert", "--scene", "D", "--seed", "3", "--quiet"]


def outcomes(folder: Path) -> dict[int, tuple]:
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len({r["chain"] for r in recs}) == len(recs), "a chain is recorded twice"
    return {r["chain"]: (r["completed"], tuple(r["steps"]), r["stop_reason"]) for r in recs}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    assert run_main([*COMMON, "--chains", "6", "--out", str(out)]) == 0
    return out


def test_shards_merge_into_the_full_run(full_run, tmp_path, capsys):
    for i in range(3):
        assert (
            run_main([*COMMON, "--chains", "6", "--shard", f"{i}/3", "--out", str(tmp_path / f"s{i}")]) == 0
        )
    assert len(outcomes(tmp_path / "s1")) == 2
    assert merge_main([str(tmp_path / f"s{i}") for i in range(3)] + ["--out", str(tmp_path / "all")]) == 0
    assert outcomes(tmp_path / "all") == outcomes(full_run)
    merged = json.loads((tmp_path / "all" / "summary.json").read_text())
    full = json.loads((full_run / "summary.json").read_text())
    assert merged["success_rates"] == full["success_rates"] and merged["per_task"] == full["per_task"]
    assert [
        json.loads(x)["position"] for x in (tmp_path / "all" / "episodes.jsonl").read_text().splitlines()
    ] == list(range(6))


def test_merge_refuses_bad_shard_sets(tmp_path, capsys):
    for i in range(2):
        assert (
            run_main([*COMMON, "--chains", "4", "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
        )
    assert merge_main([str(tmp_path / "s0"), "--out", str(tmp_path / "m1")]) == 2
    assert "2 of 4 chains have no result" in capsys.readouterr().err
    assert merge_main([str(tmp_path / "s0"), "--allow-partial", "--out", str(tmp_path / "m2")]) == 0
    assert merge_main([str(tmp_path / "s0"), str(tmp_path / "s0"), "--out", str(tmp_path / "m3")]) == 2
    assert "appears in two shards" in capsys.readouterr().err
    assert (
        run_main([*COMMON, "--chains", "4", "--seed", "4", "--shard", "1/2", "--out", str(tmp_path / "x")])
        == 0
    )
    assert merge_main([str(tmp_path / "s0"), str(tmp_path / "x"), "--out", str(tmp_path / "m4")]) == 2
    assert "settings differ" in capsys.readouterr().err
    assert run_main([*COMMON, "--chains", "4", "--shard", "2/2", "--out", str(tmp_path / "bad")]) == 2
    assert "need 0 <= i < n" in capsys.readouterr().err


def test_resume_after_kill_and_a_cut_line(full_run, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bench.run", *COMMON, "--chains", "6", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    episodes = out / "episodes.jsonl"
    while time.time() < deadline:
        if episodes.exists() and episodes.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = episodes.read_text().count("\n")
    assert 2 <= done_before < 6 and not (out / "summary.json").exists()
    with open(episodes, "a") as f:
        f.write('{"chain": 5, "completed": 3, "ste')  # a line cut by the kill
    assert run_main(["--resume", str(out), "--quiet"]) == 0
    assert outcomes(out) == outcomes(full_run)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_chains"] == 6 and summary["resumed_chains"] == done_before


def test_resume_errors(full_run, tmp_path, capsys):
    assert run_main(["--resume", str(full_run)]) == 2
    assert "the run is complete" in capsys.readouterr().err
    assert run_main(["--resume", str(tmp_path)]) == 2
    assert "is not a run folder (no bench_run.json)" in capsys.readouterr().err
    assert run_main(["--scene", "D"]) == 2
    assert "--policy and --out are required" in capsys.readouterr().err


def test_fail_fast_stops_at_the_first_error(tmp_path, capsys):
    spec = "tests.policy_fixtures:RaisingPolicy"
    out = tmp_path / "ff"
    assert run_main(["--policy", spec, "--chains", "4", "--fail-fast", "--quiet", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "deliberate failure" in err and f"--resume {out}" in err
    assert len(outcomes(out)) == 1 and not (out / "summary.json").exists()
    goes_on = tmp_path / "on"
    assert run_main(["--policy", spec, "--chains", "3", "--quiet", "--out", str(goes_on)]) == 0
    assert all(r[2].startswith("error:") for r in outcomes(goes_on).values()) and len(outcomes(goes_on)) == 3
