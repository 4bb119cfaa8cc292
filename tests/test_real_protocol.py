"""The real-world protocol over the simulator standing in for a robot, with a scripted operator."""

from __future__ import annotations

import json

import pytest

from bench.run import main as run_main
from bench.suites.real import ConsoleOperator, OracleOperator, evaluate_real, summarize_real
from envs.calvin.sim_robot import SimRobot
from policies.expert import ExpertPolicy

TASKS = [
    {"task": "open_drawer", "instruction": "pull the handle to open the drawer"},
    {"task": "turn_on_led", "instruction": "press the button to turn on the green light"},
]


def test_session_over_the_simulator_with_a_scripted_operator():
    operator = OracleOperator()
    robot = SimRobot(action_mode=ExpertPolicy.action_mode)  # the adapter speaks the policy's action form
    records = evaluate_real(robot, ExpertPolicy(), TASKS, operator, trials=2, max_steps=200, seed=0)
    assert [(r["task"], r["trial"]) for r in records] == [
        ("open_drawer", 0),
        ("open_drawer", 1),
        ("turn_on_led", 0),
        ("turn_on_led", 1),
    ]
    assert operator.prepared == [(r["task"], r["trial"]) for r in records]
    assert all(r["success"] and r["stop_reason"] == "terminated" for r in records)
    summary = summarize_real(records)
    assert summary["success_rate"] == 1.0 and summary["per_task"]["open_drawer"]["trials"] == 2
    assert 0.3 < summary["per_task"]["open_drawer"]["ci_low"] < 0.4  # Wilson for 2/2


def test_cli_resume_and_errors(tmp_path, capsys):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps(TASKS))
    out = tmp_path / "real"
    base = [
        "--suite",
        "real",
        "--env",
        "envs.calvin.sim_robot:make_sim_robot",
        "--tasks",
        str(tasks),
        "--policy",
        "random",
        "--operator",
        "bench.suites.real:OracleOperator",
        "--trials",
        "1",
        "--max-steps",
        "5",
        "--out",
        str(out),
    ]
    assert run_main(base) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suite"] == "real" and summary["n_trials"] == 2 and summary["success_rate"] == 0.0
    assert run_main(base) == 2
    assert f"continue it with --resume {out}" in capsys.readouterr().err
    # an interrupted session (summary missing, one trial left) resumes; its options stay
    lines = (out / "episodes.jsonl").read_text().splitlines(keepends=True)
    (out / "episodes.jsonl").write_text(lines[0])
    (out / "summary.json").unlink()
    assert run_main(["--resume", str(out), "--trials", "2"]) == 2
    assert "takes --trials from its config.json" in capsys.readouterr().err
    assert run_main(["--resume", str(out), "--quiet"]) == 0
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 2 and len({(json.loads(x)["task"], json.loads(x)["trial"]) for x in lines}) == 2
    assert json.loads((out / "summary.json").read_text())["resumed_trials"] == 1
    tasks.write_text(json.dumps([{"task": "x"}]))
    assert run_main([*base[:-1], str(tmp_path / "o2")]) == 2
    assert "entry 0 needs string keys 'task' and 'instruction'" in capsys.readouterr().err


def test_console_operator_prompts():
    answers = iter(["", "maybe", "y"])
    asked = []
    op = ConsoleOperator(ask=lambda q: asked.append(q) or next(answers))
    op.prepare("open_drawer", "open it", 0)
    assert op.judge("open_drawer", "open it", 0, {}) is True
    assert "reset the scene for: 'open it'" in asked[0] and len(asked) == 3


def test_a_crashing_policy_fails_the_trial_only():
    from tests.policy_fixtures import RaisingPolicy

    records = evaluate_real(
        SimRobot(), RaisingPolicy(), TASKS[:1], OracleOperator(), trials=2, max_steps=5, seed=0
    )
    assert [r["success"] for r in records] == [False, False]
    assert records[0]["stop_reason"].startswith("error:policy 'policy' raised RuntimeError: deliberate")
    with pytest.raises(ValueError, match="no official chain starts with task"):
        SimRobot().reset(options={"task": "stack_block"})


def test_real_sessions_land_in_the_leaderboard(tmp_path):
    from bench.leaderboard import main as leaderboard_main

    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps(TASKS[:1]))
    out = tmp_path / "runs" / "real_random"
    assert (
        run_main(
            [
                "--suite",
                "real",
                "--env",
                "envs.calvin.sim_robot:make_sim_robot",
                "--tasks",
                str(tasks),
                "--policy",
                "random",
                "--operator",
                "bench.suites.real:OracleOperator",
                "--trials",
                "2",
                "--max-steps",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert leaderboard_main([str(tmp_path / "runs"), "--out", str(tmp_path / "lb"), "--quiet"]) == 0
    text = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "Real-world evaluation" in text and "| 1 | random | 2 | 0.000 [0.00, 0.66] |" in text
