"""The real-world suite: an operator-in-the-loop session on your own robot (see :mod:`bench.real`).

Units are trials (key: ``task/trial``) played one at a time in this process: the operator at the
robot prepares each scene and judges each trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.engine import Player
from bench.rundir import is_int, require
from bench.suites import CommonOptions, LeaderboardTable, Suite, UsageError, load_object, option

if TYPE_CHECKING:
    from bench.regression.counts import Counts


@dataclass
class RealOptions:
    env: str | None = option(None, "package.module:factory returning the robot's Gymnasium env (required)")
    tasks: str | None = option(None, "JSON file: a list of {task, instruction} (required)")
    trials: int = option(10, "trials per task")
    max_steps: int = option(360, "step budget per trial")
    operator: str = option("console", "console, or package.module:Class (a bench.real.Operator)")


@dataclass(frozen=True)
class _Factory:
    """Picklable ``() -> object`` from a ``package.module:name`` spec."""

    spec: str
    what: str

    def __call__(self) -> Any:
        from bench.real import ConsoleOperator

        if self.what == "--operator" and self.spec == "console":
            return ConsoleOperator()
        return load_object(self.spec, self.what)()


class RealSuite(Suite):
    name = "real"
    description = "operator-in-the-loop trials on your own robot, behind a Gymnasium adapter"
    options = RealOptions
    unit_noun = "trial"
    parallel = False

    def check(self, opts: RealOptions, common: CommonOptions) -> None:
        if opts.env is None or opts.tasks is None:
            raise UsageError("suite real needs --env package.module:factory and --tasks FILE.json")
        if opts.trials < 1 or opts.max_steps < 1:
            raise UsageError(f"--trials and --max-steps must be >= 1, got {opts.trials} and {opts.max_steps}")
        if common.record:
            raise UsageError(
                "suite real records no videos (the robot's adapter has no render): drop --record"
            )
        load_object(opts.env, "--env")
        if opts.operator != "console":
            load_object(opts.operator, "--operator")

    def plan(self, opts: RealOptions, common: CommonOptions) -> list[Any]:
        from bench.real import read_tasks, trial_units

        try:
            return trial_units(read_tasks(opts.tasks), opts.trials)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def unit_key(self, unit: Any) -> str:
        return f"{unit.task}/{unit.trial}"

    def record_key(self, record: Mapping[str, Any]) -> str:
        return f"{record['task']}/{int(record['trial'])}"

    def player(self, opts: RealOptions, common: CommonOptions, policy: Any, video_dir: Path | None) -> Player:
        from bench.real import TrialPlayer

        return TrialPlayer(
            _Factory(opts.env, "--env"), _Factory(opts.operator, "--operator"), opts.max_steps, common.seed
        )

    def summarize(self, opts: RealOptions, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from bench.real import summarize_real

        return summarize_real(records)

    def headline(self, summary: Mapping[str, Any]) -> str:
        return f"success {summary['success_rate']:.3f} over {summary['n_trials']} trials"

    def validate_summary(self, summary: Mapping[str, Any], path: Path) -> None:
        require(summary, "n_trials", path, lambda v: is_int(v) and v >= 0, "an integer >= 0")
        require(summary, "per_task", path, lambda v: isinstance(v, dict), "a mapping task -> counts")

    def run_columns(self, run: Mapping[str, Any], ci_method: str) -> dict[str, Any]:
        summary = run["summary"]
        low, high = (summary.get("success_rate_ci") or [None, None])[:2]
        return {
            "n_trials": summary["n_trials"],
            "success_rate": summary.get("success_rate"),
            "success_rate_low": low,
            "success_rate_high": high,
        }

    def regression_counts(self, summary: Mapping[str, Any]) -> Counts:
        from bench.regression.counts import Counts, run_setting

        per_task = {t: (e["successes"], e["trials"]) for t, e in summary["per_task"].items()}
        return Counts(
            summary["n_trials"], (), per_task, int(summary.get("n_errors", 0)), run_setting(summary)
        )

    def leaderboard_table(self) -> LeaderboardTable:
        from bench.tables import REAL_TABLE

        return REAL_TABLE
