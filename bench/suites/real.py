"""The real-world suite: an operator-in-the-loop session on your own robot.

    python -m bench.run --suite real --env mypkg.robot:make_env --tasks tasks.json --policy SPEC \\
        --trials 10 --out runs/real/SPEC

``--env`` names a factory of a Gymnasium env for the robot (the *adapter*): its observations are what
the policy reads and its actions the policy's 7-D ones. ``--tasks`` is a JSON list of ``{"task",
"instruction"}``. Per task and trial (a unit, key ``task/trial``) the operator resets the scene (shown
the instruction), the harness calls ``env.reset(seed=, options={"task", "instruction"})``, runs the
policy until the env ends the episode or ``--max-steps``, and the operator judges success. Trials run
one at a time in this process; the summary holds per-task successes, rates and Wilson 95 % intervals.
The operator is ``console`` (prompts on the terminal) or ``package.module:Class`` with the methods of
:class:`Operator`; :class:`OracleOperator` over :class:`envs.calvin.sim_robot.SimRobot` stands in for a person
and a robot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import rundir
from bench.engine import BasePlayer, Job, Player, UnitGenerator, env_call, play_unit
from bench.rundir import is_int, require
from bench.stats import per_task_table, wilson_interval
from bench.suites import CommonOptions, LeaderboardTable, Suite, UsageError, load_object, option

if TYPE_CHECKING:
    from bench.regression.counts import Counts
    from policies.base import Policy


class Operator:
    """The person at the robot. Override :meth:`prepare` and :meth:`judge` (both may block)."""

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        """Reset the scene for this trial; return when ready."""

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        """Did the robot do it? ``info`` is the env's last step info."""
        raise NotImplementedError(f"{type(self).__name__} must judge each trial (Operator.judge)")


class ConsoleOperator(Operator):
    """Prompts on the terminal."""

    def __init__(self, ask: Callable[[str], str] = input) -> None:
        self.ask = ask

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        self.ask(f"\n[{task} trial {trial + 1}] reset the scene for: '{instruction}', then press Enter ")

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        while True:
            answer = self.ask(f"did the robot '{instruction}'? [y/n] ").strip().lower()
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")


class OracleOperator(Operator):
    """A scripted operator for the simulator standing in for a robot: judges by ``info['success']``."""

    def __init__(self) -> None:
        self.prepared: list[tuple[str, int]] = []

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        self.prepared.append((task, trial))

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        return bool(info.get("success", False))


def read_tasks(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    try:
        tasks = rundir.read_json(path)
    except rundir.RunFolderError as exc:
        raise ValueError(f"cannot read the task list: {exc}") from None
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"{path}: expected a non-empty JSON list of {{'task', 'instruction'}} objects")
    for i, t in enumerate(tasks):
        if not (
            isinstance(t, dict) and isinstance(t.get("task"), str) and isinstance(t.get("instruction"), str)
        ):
            raise ValueError(f"{path}: entry {i} needs string keys 'task' and 'instruction', got {t!r}")
    return tasks


@dataclass(frozen=True)
class TrialUnit:
    task: str
    instruction: str
    trial: int


def trial_units(tasks: Sequence[dict[str, str]], trials: int) -> list[TrialUnit]:
    return [TrialUnit(t["task"], t["instruction"], trial) for t in tasks for trial in range(trials)]


def trial_seed(seed: int, unit: TrialUnit) -> int:
    words = [seed, unit.trial, *unit.task.encode()]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class TrialPlayer(BasePlayer):
    """The :class:`bench.engine.Player` of real trials: the operator prepares the scene and judges."""

    make_env: Callable[[], Any]
    make_operator: Callable[[], Operator]
    max_steps: int
    seed: int

    def open(self) -> tuple[Any, Operator]:
        return self.make_env(), self.make_operator()

    def new_record(self, job: Job) -> dict:
        unit = job.unit
        return {
            "task": unit.task,
            "instruction": unit.instruction,
            "trial": unit.trial,
            "success": False,
            "steps": 0,
            "stop_reason": "max_steps",
        }

    def play(self, session: tuple[Any, Operator], job: Job, rec: dict) -> UnitGenerator:
        env, operator = session
        unit, seed = job.unit, trial_seed(self.seed, job.unit)
        env_call("operator.prepare", operator.prepare, unit.task, unit.instruction, unit.trial)
        options = {"task": unit.task, "instruction": unit.instruction}
        obs, info = env_call("env.reset", env.reset, seed=seed, options=options)
        reset: dict | None = {
            "instruction": unit.instruction,
            "seed": seed,
            "info": {"suite": "real", "task": unit.task},
        }
        while rec["steps"] < self.max_steps:
            action = yield obs, reset
            reset = None
            obs, _, terminated, truncated, info = env_call("env.step", env.step, action)
            rec["steps"] += 1
            if terminated or truncated:
                rec["stop_reason"] = "terminated" if terminated else "truncated"
                break
        judged = env_call("operator.judge", operator.judge, unit.task, unit.instruction, unit.trial, info)
        rec["success"] = bool(judged)


def evaluate_real(
    env: Any,
    policy: Policy,
    tasks: Sequence[dict[str, str]],
    operator: Operator,
    *,
    trials: int,
    max_steps: int,
    seed: int,
) -> list[dict]:
    """Every (task, trial) of a session in this process, without a run folder."""
    player = TrialPlayer(lambda: env, lambda: operator, max_steps, seed)
    session = player.open()
    units = trial_units(tasks, trials)
    return [play_unit(policy, player, session, Job(p, unit)) for p, unit in enumerate(units)]


def summarize_real(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-task successes, trials, rates and Wilson 95 % intervals, and the overall rate."""
    k, n = sum(bool(r["success"]) for r in records), len(records)
    return {
        "n_trials": n,
        "success_rate": k / n if n else 0.0,
        "success_rate_ci": list(wilson_interval(k, n)),
        "per_task": per_task_table((r["task"], r["success"]) for r in records),
    }


# --- the suite -----------------------------------------------------------------------------------


@dataclass
class RealOptions:
    env: str | None = option(None, "package.module:factory returning the robot's Gymnasium env (required)")
    tasks: str | None = option(None, "JSON file: a list of {task, instruction} (required)")
    trials: int = option(10, "trials per task")
    max_steps: int = option(360, "step budget per trial")
    operator: str = option("console", "console, or package.module:Class (a bench.suites.real.Operator)")


@dataclass(frozen=True)
class _Factory:
    """Picklable ``() -> object`` from a ``package.module:name`` spec (``console``: the terminal)."""

    spec: str
    what: str

    def __call__(self) -> Any:
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
        try:
            return trial_units(read_tasks(opts.tasks), opts.trials)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def unit_key(self, unit: Any) -> str:
        return f"{unit.task}/{unit.trial}"

    def record_key(self, record: Mapping[str, Any]) -> str:
        return f"{record['task']}/{int(record['trial'])}"

    def player(self, opts: RealOptions, common: CommonOptions, policy: Any, video_dir: Path | None) -> Player:
        env, operator = _Factory(opts.env, "--env"), _Factory(opts.operator, "--operator")
        return TrialPlayer(env, operator, opts.max_steps, common.seed)

    def summarize(self, opts: RealOptions, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
