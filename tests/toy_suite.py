"""A toy suite: the proof that a new suite is one module (registered from the tests).

Units are numbered counting games: the env's state is a counter that the policy's first action
value moves; the unit succeeds when the counter passes a seeded target within ``--budget`` steps.
Declaring its summary checks, columns, regression counts and leaderboard table here gives it
``bench.regression`` and ``bench.leaderboard`` too.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine import BasePlayer, Job, env_call
from bench.rundir import is_int, require
from bench.suites import CommonOptions, LeaderboardTable, Suite, UsageError, option
from bench.video import VideoRecorder


@dataclass
class ToyOptions:
    count: int = option(6, "number of games")
    budget: int = option(12, "steps per game")


class CounterEnv:
    def reset(self, seed: int) -> dict:
        self.rng = np.random.default_rng(seed)
        self.value, self.target = 0.0, float(self.rng.uniform(0.5, 3.0))
        return {"robot_obs": np.full(15, self.value, np.float32)}

    def step(self, action: np.ndarray) -> tuple[dict, bool]:
        self.value += float(action[0]) + float(self.rng.normal(0, 0.1))
        return {"robot_obs": np.full(15, self.value, np.float32)}, self.value > self.target

    def render(self) -> np.ndarray:
        return np.full((16, 16, 3), int(abs(self.value) * 40) % 255, np.uint8)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ToyPlayer(BasePlayer):
    seed: int
    budget: int
    video_dir: str | None = None

    def open(self) -> CounterEnv:
        return CounterEnv()

    def new_record(self, job: Job) -> dict:
        return {"game": job.unit, "success": False, "steps": 0, "stop_reason": "budget"}

    def play(self, env: CounterEnv, job: Job, rec: dict):
        seed = zlib.crc32(f"{self.seed}/{job.unit}".encode())
        with VideoRecorder(env, self.video_dir if job.record else None, f"game_{job.unit}", rec) as video:
            obs = env.reset(seed)
            reset = {"instruction": "count up", "seed": seed, "info": {"game": job.unit}}
            while rec["steps"] < self.budget:
                video.add("count up")
                action = yield obs, reset
                reset = None
                obs, done = env_call("env.step", env.step, action)
                rec["steps"] += 1
                if done:
                    rec["success"], rec["stop_reason"] = True, "success"
                    break


def toy_table(rows: Any, include_published: bool) -> Any:
    """The leaderboard: one row per run, best win rate first."""
    columns = ["policy", "n_games", "win_rate", "run"]
    return rows.reindex(columns=columns).sort_values("win_rate", ascending=False).reset_index(drop=True)


def toy_markdown(table: Any) -> str:
    from bench.tables import markdown_table

    shown = table.assign(win_rate=table["win_rate"].map("{:.3f}".format))[["policy", "n_games", "win_rate"]]
    return "Counting games won.\n\n" + markdown_table(shown, ["l", "r", "r"])


class ToySuite(Suite):
    name = "toy"
    description = "counting games (a test suite)"
    options = ToyOptions
    unit_noun = "game"

    def check(self, opts: ToyOptions, common: CommonOptions) -> None:
        if opts.count < 1:
            raise UsageError(f"--count must be >= 1, got {opts.count}")

    def plan(self, opts: ToyOptions, common: CommonOptions) -> list[int]:
        return list(range(opts.count))

    def unit_key(self, unit: int) -> str:
        return str(unit)

    def record_key(self, record: Mapping[str, Any]) -> str:
        return str(int(record["game"]))

    def player(
        self, opts: ToyOptions, common: CommonOptions, policy: Any, video_dir: Path | None
    ) -> ToyPlayer:
        return ToyPlayer(common.seed, opts.budget, None if video_dir is None else str(video_dir))

    def summarize(self, opts: ToyOptions, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        wins = sum(r["success"] for r in records)
        return {"n_games": len(records), "wins": wins, "win_rate": wins / len(records) if records else None}

    def headline(self, summary: Mapping[str, Any]) -> str:
        return f"win rate {summary['win_rate']:.3f} over {summary['n_games']} games"

    def validate_summary(self, summary: Mapping[str, Any], path: Path) -> None:
        n = require(summary, "n_games", path, lambda v: is_int(v) and v >= 1, "an integer >= 1")
        require(summary, "wins", path, lambda v: is_int(v) and 0 <= v <= n, f"an integer in 0..{n}")

    def run_columns(self, run: Mapping[str, Any], ci_method: str) -> dict[str, Any]:
        return {"n_games": run["summary"]["n_games"], "win_rate": run["summary"]["win_rate"]}

    def regression_counts(self, summary: Mapping[str, Any]) -> Any:
        from bench.regression.counts import Counts, run_setting

        games = (summary["wins"], summary["n_games"])
        return Counts(
            summary["n_games"], (), {"count_up": games}, summary.get("n_errors", 0), run_setting(summary)
        )

    def leaderboard_table(self) -> LeaderboardTable:
        return LeaderboardTable("Toy counting games", toy_table, toy_markdown)
