"""The suite's sanity levels through `bench.run`: the expert near the ceiling, `random` near zero.

A high random score would mean the oracle gives successes away; a low expert score that the
oracle or the physics is wrong. Full figures (100 chains) are in the issue notes; these are short.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.run import main


def _run(tmp_path: Path, policy: str, chains: int, workers: int = 1) -> dict:
    out = tmp_path / policy
    code = main(
        [
            "--policy",
            policy,
            "--suite",
            "calvin",
            "--scene",
            "D",
            "--chains",
            str(chains),
            "--workers",
            str(workers),
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return json.loads((out / "summary.json").read_text())


def test_expert_solves_most_chains(tmp_path: Path):
    summary = _run(tmp_path, "expert", 12)
    assert summary["avg_len"] >= 4.4, summary["success_rates"]
    assert summary["per_task"]["open_drawer"]["successes"] >= 1


def test_random_stays_near_zero(tmp_path: Path):
    summary = _run(tmp_path, "random", 6)
    assert summary["avg_len"] <= 0.34, summary["per_task"]
