"""The real-world suite: an operator-in-the-loop session on your own robot (see :mod:`bench.real`).

Units are trials (key: ``task/trial``) played one at a time in this process: the operator at the
robot prepares each scene and judges each trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.engine import Player
from bench.suites import CommonOptions, Suite, UsageError, option


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
        from bench.real import ConsoleOperator, load_object

        if self.what == "--operator" and self.spec == "console":
            return ConsoleOperator()
        return load_object(self.spec, self.what)()


class RealSuite(Suite):
    name = "real"
    description = "operator-in-the-loop trials on your own robot, behind a Gymnasium adapter"
    options = RealOptions
    unit_noun = "trial"
    scoring = "trials"
    parallel = False

    def check(self, opts: RealOptions, common: CommonOptions) -> None:
        from bench.real import load_object

        if opts.env is None or opts.tasks is None:
            raise UsageError("suite real needs --env package.module:factory and --tasks FILE.json")
        if opts.trials < 1 or opts.max_steps < 1:
            raise UsageError(f"--trials and --max-steps must be >= 1, got {opts.trials} and {opts.max_steps}")
        if common.record:
            raise UsageError(
                "suite real records no videos (the robot's adapter has no render): drop --record"
            )
        try:
            load_object(opts.env, "--env")
            if opts.operator != "console":
                load_object(opts.operator, "--operator")
        except ValueError as exc:
            raise UsageError(str(exc)) from None

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
