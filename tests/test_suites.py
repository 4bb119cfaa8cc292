"""The Suite protocol: a toy suite registered from the tests gets every feature of bench.run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import video
from bench.merge import main as merge_main
from bench.session import main as run_main
from bench.suites import SUITES, register_suite, suite_names
from policies.base import Policy

SEEDED = "tests.test_harness:SeededPolicy"


@pytest.fixture(autouse=True)
def toy():
    register_suite("toy", "tests.toy_suite:ToySuite")
    yield
    SUITES.pop("toy")


def outcomes(folder: Path) -> dict[int, tuple]:
    records = [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]
    assert len({r["game"] for r in records}) == len(records)
    return {r["game"]: (r["success"], r["steps"], r["stop_reason"]) for r in records}


def test_a_new_suite_is_one_module(tmp_path, capsys):
    base = ["--suite", "toy", "--policy", SEEDED, "--count", "6", "--seed", "4", "--quiet"]
    assert run_main([*base, "--out", str(tmp_path / "w1"), "--record", "2"]) == 0
    assert run_main([*base, "--out", str(tmp_path / "w2"), "--workers", "2"]) == 0
    assert outcomes(tmp_path / "w1") == outcomes(tmp_path / "w2")
    assert len({o[0] for o in outcomes(tmp_path / "w1").values()}) == 2, "outcomes should vary"
    videos = sorted(p.name for p in (tmp_path / "w1" / "videos").iterdir())
    assert videos == [f"game_0{video.video_suffix()}", f"game_1{video.video_suffix()}"]
    summary = json.loads((tmp_path / "w1" / "summary.json").read_text())
    assert summary["suite"] == "toy" and summary["n_games"] == 6 and summary["env_steps"] > 0
    assert "win rate" in capsys.readouterr().out
    for i in range(2):
        assert run_main([*base, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
    assert merge_main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all")]) == 0
    assert outcomes(tmp_path / "all") == outcomes(tmp_path / "w1")
    assert merge_main([str(tmp_path / "s0"), "--out", str(tmp_path / "part")]) == 2
    assert "3 of 6 games have no result" in capsys.readouterr().err
    cut = tmp_path / "w2"
    kept = (cut / "episodes.jsonl").read_text().splitlines(keepends=True)[:2]
    (cut / "episodes.jsonl").write_text("".join(kept) + '{"game": 5, "succ')
    (cut / "summary.json").unlink()
    assert run_main(["--resume", str(cut)]) == 0
    assert outcomes(cut) == outcomes(tmp_path / "w1")
    assert json.loads((cut / "summary.json").read_text())["resumed_games"] == 2


def test_toy_bad_input_is_one_line(tmp_path, capsys):
    assert "toy" in suite_names()
    assert run_main(["--suite", "toy", "--policy", SEEDED, "--count", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--count must be >= 1, got 0" in capsys.readouterr().err
    assert (
        run_main(["--suite", "toy", "--policy", SEEDED, "--chains", "3", "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert "--chains is an option of suite calvin, not toy" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_no_module_branches_on_a_suite_name():
    """Only the suite modules and the registry may compare with a suite's name."""
    import re

    root = Path(__file__).resolve().parents[1]
    names = "|".join(n for n in suite_names() if n != "toy")
    branch = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    allowed = {root / "bench" / "suites"}
    found = []
    for folder in ("bench", "policies", "trainer", "envs"):
        for path in (root / folder).rglob("*.py"):
            if any(parent in allowed for parent in path.parents):
                continue
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if branch.search(line):
                    found.append(f"{path.relative_to(root)}:{lineno}: {line.strip()}")
    assert not found, "\n".join(found)


def test_calvin_cameras_follow_the_policy_and_backends_are_choices(tmp_path, capsys):
    from bench.calvin_eval import camera_sizes

    class Trained:
        camera_sizes = {"rgb_static": (128, 128), "rgb_gripper": (64, 64)}

    assert camera_sizes(object()) == (200, 84)
    assert camera_sizes(Trained()) == (128, 64)
    assert capsys.readouterr().err == ""
    assert camera_sizes(Trained(), static=200) == (200, 64)
    assert "rgb_static at 200x200, but the policy was trained on 128x128" in capsys.readouterr().err
    assert run_main(["--policy", SEEDED, "--env", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown env backend 'nope'; valid: ours" in capsys.readouterr().err


class CountUp(Policy):
    """Always moves the toy counter up: wins every game."""

    needs_images = False

    def reset(self, instruction, *, slot=0, seed=None, info=None):
        pass

    def act_batch(self, observations, slots):
        return np.tile(np.array([0.5, 0, 0, 0, 0, 0, 1], np.float32), (len(slots), 1))


def test_a_new_suite_gets_regression_and_a_leaderboard_from_its_module(tmp_path, capsys):
    """The toy suite declares its counts and its table in tests/toy_suite.py and nothing else changes."""
    from bench import leaderboard, regression

    games = ["--suite", "toy", "--count", "20", "--seed", "4", "--quiet"]
    good, noisy = tmp_path / "runs" / "count_up", tmp_path / "runs" / "seeded"
    assert run_main([*games, "--policy", "tests.test_suites:CountUp", "--out", str(good)]) == 0
    assert run_main([*games, "--policy", SEEDED, "--out", str(noisy)]) == 0
    baseline = tmp_path / "toy.json"
    assert regression.main(["refresh", "--from-run", str(good), "--out", str(baseline)]) == 0
    stored = regression.Baseline.load(baseline).counts
    assert stored.per_task == {"count_up": (20, 20)} and stored.setting["suite"] == "toy"
    played = tmp_path / "played.json"
    argv = ["refresh", "--policy", "tests.test_suites:CountUp", *games[:-1], "--out", str(played)]
    assert regression.main(argv) == 0
    assert regression.Baseline.load(played).counts == stored  # playing the policy gives the run's counts
    assert regression.main(["check", str(good), "--baseline", str(baseline)]) == 0
    capsys.readouterr()
    assert regression.main(["check", str(noisy), "--baseline", str(baseline)]) == 1
    assert "FAILED: significant drop in task:count_up" in capsys.readouterr().out
    assert (
        regression.main(
            ["refresh", "--policy", SEEDED, "--suite", "toy", "--scene", "A", "--out", str(played)]
        )
        == 2
    )
    assert "--scene is an option of suite calvin, not toy" in capsys.readouterr().err

    out = tmp_path / "lb"
    assert leaderboard.main([str(tmp_path / "runs"), "--out", str(out), "--quiet"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert "## Toy counting games" in markdown and "| tests.test_suites:CountUp | 20 | 1.000 |" in markdown
    table = pd.read_csv(out / "leaderboard_toy.csv")
    assert list(table["policy"]) == ["tests.test_suites:CountUp", SEEDED]
    assert table["win_rate"].iloc[1] < 0.8


def absolute_sim_robot():
    """The simulator behind the robot adapter, taking the expert's absolute target poses."""
    from envs.calvin.sim_robot import SimRobot

    return SimRobot(action_mode="absolute")


def test_real_sessions_get_regression_and_a_leaderboard(tmp_path, capsys):
    """The real suite declares its counts and table too (the simulator and a scripted operator stand in)."""
    from bench import leaderboard, regression

    tasks = tmp_path / "tasks.json"
    tasks.write_text(
        json.dumps([{"task": "open_drawer", "instruction": "pull the handle to open the drawer"}])
    )
    base = [
        "--suite",
        "real",
        "--env",
        "tests.test_suites:absolute_sim_robot",
        "--tasks",
        str(tasks),
        "--quiet",
    ]
    base += ["--operator", "bench.suites.real:OracleOperator", "--trials", "10", "--max-steps", "200"]
    expert, random = tmp_path / "runs" / "expert", tmp_path / "runs" / "random"
    assert run_main([*base, "--policy", "expert", "--out", str(expert)]) == 0
    assert run_main([*base, "--policy", "random", "--out", str(random)]) == 0
    baseline = tmp_path / "real.json"
    assert regression.main(["refresh", "--from-run", str(expert), "--out", str(baseline)]) == 0
    assert regression.Baseline.load(baseline).counts.per_task == {"open_drawer": (10, 10)}
    capsys.readouterr()
    assert regression.main(["check", str(random), "--baseline", str(baseline)]) == 1
    assert "FAILED: significant drop in task:open_drawer" in capsys.readouterr().out
    out = tmp_path / "lb"
    assert leaderboard.main([str(tmp_path / "runs"), "--out", str(out), "--quiet"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert "## Real-world evaluation" in markdown and "| 1 | expert | 10 | 1.000 [" in markdown
    assert list(pd.read_csv(out / "leaderboard_real.csv")["policy"]) == ["expert", "random"]
