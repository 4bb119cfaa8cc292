"""Run folders: the marker, the lock, record validation on resume, options resume cannot honour,
timings, error paths of every suite, a killed worker's unit retried on resume (fake envs, seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import rundir
from bench.engine import WORKER_DIED
from bench.session import main as run_main
from tests.test_harness import FakeChain, FakeEnvFactory, fake_chains, instruction_for

SEEDED = "tests.test_harness:SeededPolicy"


def cli(argv, chains=None, **kwargs):
    chains = chains if chains is not None else fake_chains(200)
    kwargs = {"make_env": FakeEnvFactory(), "instruction_for": instruction_for, **kwargs}
    return run_main(argv, load_chains=lambda seed, n: chains, **kwargs)


def lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def interrupted(tmp_path: Path, n_done: int = 2, chains: int = 6) -> Path:
    """A finished run cut back to ``n_done`` records and no summary: an interrupted one."""
    out = tmp_path / "run"
    assert (
        cli(["--policy", SEEDED, "--chains", str(chains), "--max-steps", "8", "--quiet", "--out", str(out)])
        == 0
    )
    kept = (out / "episodes.jsonl").read_text().splitlines(keepends=True)[:n_done]
    (out / "episodes.jsonl").write_text("".join(kept))
    (out / "summary.json").unlink()
    return out


# ----------------------------------------------------------------------------- rundir


def test_atomic_json_and_jsonl_with_a_cut_last_line(tmp_path):
    path = tmp_path / "x.json"
    rundir.write_json_atomic(path, {"a": np.float32(1.5), "b": np.arange(3), "c": np.int64(2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"], "no temp file left behind"
    log = tmp_path / "e.jsonl"
    for i in range(3):
        rundir.append_jsonl(log, {"i": i, "v": np.float64(i / 2)})
    with open(log, "a") as f:
        f.write('{"i": 3, "v"')  # cut by a kill
    assert [r["i"] for r in rundir.read_jsonl(log)] == [0, 1, 2]
    assert log.read_text().endswith('"v"'), "reading alone changes nothing"
    assert [r["i"] for r in rundir.read_jsonl(log, truncate_cut_line=True)] == [0, 1, 2]
    assert log.read_text().endswith("}\n")
    with open(log, "a") as f:
        f.write('{"i": 3}')  # complete but unterminated: kept, and given its newline
    assert [r["i"] for r in rundir.read_jsonl(log, truncate_cut_line=True)] == [0, 1, 2, 3]
    rundir.append_jsonl(log, {"i": 4})
    assert [r["i"] for r in rundir.read_jsonl(log)] == [0, 1, 2, 3, 4]
    log.write_text('{"i": 0}\n[1, 2]\n')
    with pytest.raises(rundir.RunFolderError, match=r"e.jsonl: line 2 is not a JSON object \(got list\)"):
        rundir.read_jsonl(log)
    log.write_text('{"i": 0}\n\n{oops}\n{"i": 2}\n')
    with pytest.raises(rundir.RunFolderError, match=r"e.jsonl: line 3 is not valid JSON"):
        rundir.read_jsonl(log)


def test_lock_names_the_folder_and_the_pid(tmp_path):
    holding = rundir.locked(tmp_path)
    holding.__enter__()
    try:
        with pytest.raises(rundir.RunFolderLocked, match=r"is locked by another process \(pid \d+\)"):
            rundir.locked(tmp_path).__enter__()
    finally:
        holding.__exit__(None, None, None)
    with rundir.locked(tmp_path):  # released with the block
        pass


def test_provenance_and_older_folders(tmp_path, capsys):
    info = rundir.run_info()
    assert info["version"] and info["python"] and info["machine"]["cpus"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    with pytest.raises(rundir.RunFolderError, match="written by an older bench.run or by another tool"):
        rundir.open_run_folder(old)
    assert run_main(["--resume", str(old)]) == 2
    assert "cannot be resumed; start a new run" in one_line_error(capsys)
    new = rundir.create_run_folder(tmp_path / "new")
    (new / rundir.MARKER_FILE).write_text('{"tool": "bench.run", "format_version": 99}')
    with pytest.raises(rundir.RunFolderError, match="run-folder format 99, this version reads format 1"):
        rundir.open_run_folder(new)


# ----------------------------------------------------------------------------- the marker and the lock


def test_out_into_another_tools_folder_is_refused_and_untouched(tmp_path, capsys):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model": "kosmos"}')
    before = sorted((p.name, p.stat().st_mtime_ns) for p in checkpoint.iterdir())
    assert cli(["--policy", SEEDED, "--chains", "1", "--out", str(checkpoint)]) == 2
    assert "is not empty and not a run folder (holds config.json)" in one_line_error(capsys)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in checkpoint.iterdir()) == before
    done = tmp_path / "done"
    assert cli(["--policy", SEEDED, "--chains", "1", "--max-steps", "2", "--quiet", "--out", str(done)]) == 0
    summary = (done / "summary.json").read_text()
    capsys.readouterr()
    assert cli(["--policy", SEEDED, "--chains", "1", "--out", str(done)]) == 2
    assert f"continue it with --resume {done}" in one_line_error(capsys)
    assert (done / "summary.json").read_text() == summary
    config = json.loads((done / "config.json").read_text())
    assert config["suite"] == "calvin" and config["policy_class"] == "SeededPolicy" and "git_commit" in config
    assert json.loads((done / rundir.MARKER_FILE).read_text())["format_version"] == rundir.FORMAT_VERSION


def test_a_locked_folder_cannot_be_resumed_twice(tmp_path, capsys):
    out = interrupted(tmp_path)
    with rundir.locked(out):
        assert cli(["--resume", str(out), "--quiet"]) == 2
        assert f"{out} is locked by another process" in one_line_error(capsys)
    assert len(lines(out)) == 2
    assert cli(["--resume", str(out), "--quiet"]) == 0
    assert len(lines(out)) == 6


# ----------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda recs: [*recs, recs[0]], "line 3 repeats chain 0 (first at line 1)"),
        (lambda recs: [*recs, {**recs[0], "chain": 99}], "line 3: chain 99 is not one of this run's units"),
        (
            lambda recs: [{**recs[0], "env_seed": 1}, recs[1]],
            "line 1: chain 0 does not fit this run: its env_seed",
        ),
        (lambda recs: [{"completed": 1}, recs[1]], "line 1 lacks the unit key of suite calvin"),
    ],
)
def test_resume_validates_every_record(tmp_path, capsys, edit, message):
    out = interrupted(tmp_path)
    records = edit(lines(out))
    (out / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    before = (out / "episodes.jsonl").read_text()
    assert cli(["--resume", str(out), "--quiet"]) == 2
    assert message in one_line_error(capsys)
    assert (out / "episodes.jsonl").read_text() == before and not (out / "summary.json").exists()


def test_resume_refuses_options_it_cannot_honour(tmp_path, capsys):
    out = interrupted(tmp_path)
    argv = ["--resume", str(out), "--policy", "random", "--chains", "20", "--scene", "A"]
    assert cli(argv) == 2
    err = one_line_error(capsys)
    assert "takes --chains, --policy, --scene from its config.json and cannot change them" in err
    assert cli(["--resume", str(out), "--quiet", "--workers", "2", "--fail-fast"]) == 0  # these may change


def test_a_resumed_summary_sums_per_unit_timings(tmp_path):
    out = interrupted(tmp_path, n_done=3)
    assert cli(["--resume", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = lines(out)
    unit_time = sum(r["wall_time_s"] for r in records)
    assert summary["unit_time_s"] == pytest.approx(unit_time, abs=1e-3)
    assert summary["env_steps"] == sum(sum(r["steps"]) for r in records)
    assert summary["env_steps_per_s"] == pytest.approx(summary["env_steps"] / unit_time, rel=1e-3)
    assert summary["resumed_chains"] == 3 and summary["n_chains"] == 6


def test_a_killed_workers_unit_is_played_again_on_resume(tmp_path, capsys):
    flag = tmp_path / "die-once"
    flag.write_text("")
    chains = fake_chains(4)
    chains[2] = FakeChain(2, {**chains[2].state, "die_once_at": (2, str(flag))}, chains[2].tasks)
    out = tmp_path / "run"
    argv = ["--policy", SEEDED, "--chains", "4", "--max-steps", "8", "--workers", "2", "--quiet"]
    assert cli([*argv, "--out", str(out)], chains) == 0
    assert f"1 chain(s) lost their worker; python -m bench.run --resume {out} plays them again" in (
        capsys.readouterr().err
    )
    died = [r for r in lines(out) if r["chain"] == 2]
    assert len(died) == 1 and died[0]["stop_reason"].startswith(WORKER_DIED)
    assert cli(["--resume", str(out), "--quiet"], chains) == 0
    again = [r for r in lines(out) if r["chain"] == 2]
    assert len(again) == 2 and again[1]["attempt"] == 2 and not again[1]["stop_reason"].startswith("error")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_chains"] == 4 and summary["retried_units"] == 1 and summary["n_errors"] == 0
    assert cli(["--resume", str(out)], chains) == 2
    assert "the run is complete" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the policy's errors


def test_policy_errors_fail_units_or_say_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "reset"
    argv = ["--chains", "2", "--max-steps", "4", "--quiet"]
    assert cli([*argv, "--policy", "tests.policy_fixtures:ResetRaisingPolicy", "--out", str(out)]) == 0
    reasons = [r["stop_reason"] for r in lines(out)]
    assert (
        reasons
        == ["error:policy 'tests.policy_fixtures:ResetRaisingPolicy' reset raised ValueError: cannot reset"]
        * 2
    )
    assert json.loads((out / "summary.json").read_text())["n_errors"] == 2
    capsys.readouterr()
    out = tmp_path / "close"
    assert cli([*argv, "--policy", "tests.policy_fixtures:CloseRaisingPolicy", "--out", str(out)]) == 0
    assert "close() raised OSError: the server is gone" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["n_chains"] == 2
    assert (
        cli([*argv, "--policy", "tests.policy_fixtures:InitRaisingPolicy", "--out", str(tmp_path / "i")]) == 2
    )
    err = one_line_error(capsys)
    assert "policy tests.policy_fixtures:InitRaisingPolicy() raised ZeroDivisionError" in err
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("")
    (tmp_path / "brokenpkg" / "mod.py").write_text("def oops(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli([*argv, "--policy", "brokenpkg.mod:Policy", "--out", str(tmp_path / "s")]) == 2
    err = one_line_error(capsys)
    assert "policy module 'brokenpkg.mod' cannot be imported: SyntaxError" in err
    assert not (tmp_path / "i").exists() or not any((tmp_path / "i").iterdir())


# ----------------------------------------------------------------------------- SimplerEnv without an env


def simpler_folder(tmp_path: Path) -> Path:
    """An interrupted SimplerEnv run whose every episode is recorded (resume builds no env)."""
    from bench.simpler.evaluate import plan_episodes

    out = rundir.create_run_folder(tmp_path / "simpler")
    config = {"suite": "simpler", "policy": "random", "out": str(out), "seed": 0, "mode": "visual_matching"}
    config.update(tasks="put_carrot_on_plate", episodes_per_variant=2)
    rundir.write_json_atomic(out / "config.json", config)
    for key in plan_episodes(["put_carrot_on_plate"], ["base"], 2):
        record = {"task": key.task, "variant": key.variant, "episode": key.episode, "family": "bridge"}
        record.update(
            success=key.episode == 0, partial=False, steps=5, stop_reason="step_limit", seed=key.seed(0)
        )
        rundir.append_jsonl(out / "episodes.jsonl", record)
    return out


def test_simpler_resume_and_its_error_paths(tmp_path, capsys):
    out = simpler_folder(tmp_path)
    assert run_main(["--resume", str(out), "--quiet"]) == 0  # was: KeyError: 'simpler'
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suite"] == "simpler" and summary["n_episodes"] == 2 and summary["resumed_episodes"] == 2
    capsys.readouterr()
    assert run_main(["--resume", str(out)]) == 2
    assert "the run is complete" in one_line_error(capsys)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    base = ["--suite", "simpler", "--policy", "random", "--tasks", "put_carrot_on_plate"]
    assert run_main([*base, "--out", str(blocker / "sub")]) == 2
    assert "cannot be created or written" in one_line_error(capsys)
    assert run_main([*base, "--out", str(tmp_path / "x"), "--scene", "D"]) == 2
    assert "--scene is an option of suite calvin, not simpler" in one_line_error(capsys)
    (out / "summary.json").unlink()
    with open(out / "episodes.jsonl", "a") as f:
        f.write("not json\n")
    assert run_main(["--resume", str(out)]) == 2
    assert "episodes.jsonl: line 3 is not valid JSON" in one_line_error(capsys)
    (out / "config.json").write_text("{broken")
    assert run_main(["--resume", str(out)]) == 2
    assert "config.json: not valid JSON (line 1" in one_line_error(capsys)


def test_a_policy_in_another_action_convention_is_refused(tmp_path, capsys):
    spec = "tests.policy_fixtures:CalvinRelativePolicy"
    argv = [
        "--suite",
        "simpler",
        "--policy",
        spec,
        "--tasks",
        "put_carrot_on_plate",
        "--out",
        str(tmp_path / "s"),
    ]
    assert run_main(argv) == 2
    err = one_line_error(capsys)
    assert f"policy {spec!r} acts in pose/relative, but task put_carrot_on_plate of suite simpler" in err
    assert "needs delta_pose/absolute_gripper" in err and not any((tmp_path / "s").glob("*"))
    out = tmp_path / "c"
    assert cli(["--policy", spec, "--chains", "1", "--max-steps", "2", "--quiet", "--out", str(out)]) == 0


def test_each_suite_has_its_own_help(capsys):
    for suite, own, foreign in (
        ("simpler", "--episodes-per-variant", "--scene"),
        ("calvin", "--scene", "--mode"),
    ):
        with pytest.raises(SystemExit) as exc:
            run_main(["--suite", suite, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert own in text and foreign not in text and f"options of suite {suite}" in text
        assert "suites: calvin, simpler, real" in text


if sys.platform != "linux":  # flock and forkserver are what these tests rely on
    pytestmark = pytest.mark.skip(reason="Linux only")
