"""The Ray backend (``bench.run --ray``) against a local Ray instance started once for the module.

Outcomes must equal a ``--workers 1`` run with the same seed. The fake env and policy are imported
as ``tests.test_harness`` so that Ray actors (whose sys.path holds the working directory) can
unpickle them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import run, rundir, session
from tests.test_harness import FakeChain, FakeEnvFactory, fake_chains, instruction_for, strip

ray = pytest.importorskip("ray")

COMMON = ["--scene", "D", "--seed", "3", "--quiet"]
SEEDED = "tests.test_harness:SeededPolicy"  # importable inside the actors, unlike test-registered names


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield
    ray.shutdown()


def records(folder: Path) -> dict[int, dict]:
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len({r["chain"] for r in recs}) == len(recs), "a chain is recorded twice"
    return {r["chain"]: strip([r])[0] for r in recs}


def fake_cli(argv, chains, **kwargs):
    kwargs = {"make_env": FakeEnvFactory(), "instruction_for": instruction_for, **kwargs}
    return run.main(argv, load_chains=lambda seed, n: chains, **kwargs)


def test_ray_option_parsing_and_usage_errors(tmp_path, capsys, monkeypatch):
    assert session.parse(["--policy", "expert", "--ray"])[1].ray == "local"
    assert session.parse(["--ray", "--quiet"])[1].ray == "local"
    assert session.parse(["--ray", "ray://head:10001"])[1].ray == "ray://head:10001"
    assert session.parse([])[1].ray is None
    argv = ["--policy", SEEDED, "--chains", "2", *COMMON, "--ray", "--out", str(tmp_path / "o")]
    assert fake_cli([*argv, "--workers", "2"], fake_chains(2)) == 2
    err = capsys.readouterr().err
    assert "bench.run: error: --ray runs one Ray actor per CPU" in err and "--workers 2" in err
    assert "Traceback" not in err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    assert fake_cli(argv, fake_chains(2)) == 2
    err = capsys.readouterr().err
    assert "bench.run: error: --ray needs the ray package" in err and "pip install" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "episodes.jsonl").exists()


def test_expert_on_ray_equals_workers_1(local_ray, tmp_path):
    common = [*COMMON, "--policy", "expert", "--chains", "4"]
    assert run.main([*common, "--out", str(tmp_path / "w1")]) == 0
    assert run.main([*common, "--ray", "--out", str(tmp_path / "ray")]) == 0
    local, remote = records(tmp_path / "w1"), records(tmp_path / "ray")
    assert remote == local and sorted(remote) == [0, 1, 2, 3]
    assert all(sum(r["steps"]) > 0 for r in remote.values())
    config = json.loads((tmp_path / "ray" / "config.json").read_text())
    assert config["ray"] == "local"
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("w1", "ray")]
    assert summaries[0]["success_rates"] == summaries[1]["success_rates"]
    assert summaries[0]["per_task"] == summaries[1]["per_task"]


def test_dead_actor_fails_only_its_chain_and_resume_on_ray(local_ray, tmp_path):
    chains = fake_chains(6)
    args = ["--policy", SEEDED, "--chains", "6", "--max-steps", "8", *COMMON]
    assert fake_cli([*args, "--out", str(tmp_path / "w1")], chains) == 0
    local = records(tmp_path / "w1")
    assert len({r["completed"] for r in local.values()}) > 1, "outcomes should vary"
    # kill the env of the chain that gets furthest at the first step of its last attempted subtask
    victim = max(local.values(), key=lambda r: (r["completed"], -r["chain"]))
    k = min(victim["completed"], 4)
    assert k >= 1
    doomed = list(chains)
    state = {**victim["state"], "die_at": sum(victim["steps"][:k]) + 1}
    doomed[victim["chain"]] = FakeChain(victim["chain"], state, chains[victim["chain"]].tasks)
    assert fake_cli([*args, "--ray", "--out", str(tmp_path / "ray")], doomed) == 0
    remote = records(tmp_path / "ray")
    dead = remote.pop(victim["chain"])
    assert dead["stop_reason"].startswith("error:worker died: Ray actor died: ")
    assert dead["completed"] == k and dead["steps"] == [*victim["steps"][:k], 0]
    assert remote == {c: r for c, r in local.items() if c != victim["chain"]}
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["n_errors"] == 1 and summary["n_chains"] == 6

    # --resume with --ray continues a run that a local backend started; the outcome is the same
    folder = tmp_path / "resumed"
    folder.mkdir()
    shutil.copy(tmp_path / "w1" / "config.json", folder)
    shutil.copy(tmp_path / "w1" / rundir.MARKER_FILE, folder)
    lines = (tmp_path / "w1" / "episodes.jsonl").read_text().splitlines(keepends=True)
    (folder / "episodes.jsonl").write_text("".join(lines[:2]))
    assert fake_cli(["--resume", str(folder), "--ray", "--quiet"], chains) == 0
    assert records(folder) == local
    assert json.loads((folder / "summary.json").read_text())["resumed_chains"] == 2


def test_fail_fast_and_env_failure_on_ray(local_ray, tmp_path, capsys):
    out = tmp_path / "ff"
    argv = ["--policy", "tests.policy_fixtures:RaisingPolicy", "--chains", "4", "--max-steps", "8"]
    assert fake_cli([*argv, *COMMON, "--ray", "--fail-fast", "--out", str(out)], fake_chains(4)) == 1
    err = capsys.readouterr().err
    assert "deliberate failure" in err and f"--resume {out}" in err
    assert 1 <= len(records(out)) < 4 and not (out / "summary.json").exists()

    from tests.test_harness import BrokenEnvFactory

    broken = tmp_path / "broken"
    argv = ["--policy", SEEDED, "--chains", "2", *COMMON, "--ray", "--out", str(broken)]
    assert fake_cli(argv, fake_chains(2), make_env=BrokenEnvFactory()) == 1
    err = capsys.readouterr().err
    assert "could not build its env or policy" in err and "OSError: no display" in err
    assert not (broken / "episodes.jsonl").exists(), "an empty episodes.jsonl would block a rerun"


def test_any_suite_runs_on_ray(local_ray, tmp_path):
    from bench.suites import SUITES, register_suite

    register_suite("toy", "tests.toy_suite:ToySuite")
    try:
        base = ["--suite", "toy", "--policy", SEEDED, "--count", "4", "--quiet", "--record", "1"]
        assert run.main([*base, "--out", str(tmp_path / "w1")]) == 0
        assert run.main([*base, "--ray", "--out", str(tmp_path / "ray")]) == 0
    finally:
        SUITES.pop("toy")

    def games(folder):
        recs = [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]
        return sorted((r["game"], r["success"], r["steps"], r.get("video")) for r in recs)

    assert games(tmp_path / "ray") == games(tmp_path / "w1")
    assert (tmp_path / "ray" / "videos").is_dir() and len(list((tmp_path / "ray" / "videos").iterdir())) == 1
