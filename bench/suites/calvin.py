"""The CALVIN-style suite: 5-instruction chains on a scene, scored by success 1..5 in a row.

Units are chains (key: the chain id, CALVIN's own numbering); the protocol is
:mod:`bench.calvin_eval`. The env is a *backend* chosen by ``--env`` (``ours``: the PyBullet
reproduction in ``envs.calvin``; see :data:`bench.calvin_eval.ENV_BACKENDS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import rundir
from bench.calvin_eval import (
    ENV_BACKENDS,
    CalvinEnvFactory,
    ChainUnit,
    EnvFactory,
    camera_sizes,
    chain_player,
    chain_seed,
    chain_units,
)
from bench.engine import Player
from bench.rundir import is_int, is_number, is_rate, require
from bench.suites import CommonOptions, LeaderboardTable, Suite, UsageError, option
from envs.calvin.backends import check_backend

if TYPE_CHECKING:
    from bench.regression.counts import Counts

SCENES = ("A", "B", "C", "D")
OFFICIAL_CHAINS = 1000


@dataclass
class CalvinOptions:
    scene: str = option("D", f"scene to evaluate on ({', '.join(SCENES)})")
    chains: int = option(100, "evaluate the first N chains")
    chain_ids: str | None = option(
        None, "comma-separated chain ids to evaluate instead of the first N (e.g. 3,7,9)"
    )
    generated_seed: int | None = option(
        None, "use generate_chains(seed=S) instead of CALVIN's official chains"
    )
    first_task: str | None = option(
        None, "keep only the chains whose first task is this one (then the first N of them): one-task checks"
    )
    max_steps: int = option(360, "step budget of each subtask")
    env: str = option("ours", f"env backend ({', '.join(ENV_BACKENDS)})")
    static_size: int | None = option(
        None, "static camera image size (pixels; default: the policy's camera_sizes, else 200)"
    )
    gripper_size: int | None = option(
        None, "gripper camera image size (pixels; default: the policy's camera_sizes, else 84)"
    )


def load_calvin_chains(generated_seed: int | None, n: int) -> list:
    """The pool of chains: CALVIN's official 1000, or ``n`` generated with ``generated_seed``."""
    from envs.calvin import chains

    if generated_seed is None:
        return chains.official_chains()
    return chains.generate_chains(n=n, seed=generated_seed)


def calvin_instructions() -> Callable[[str], str]:
    """CALVIN's evaluation phrasing per task (``envs.calvin.language.eval_instruction``)."""
    try:
        from envs.calvin.language import eval_instruction
    except ImportError as exc:
        raise UsageError(f"the CALVIN suite is incomplete: {exc}") from None
    return eval_instruction


def parse_chain_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--chain-ids must be comma-separated integers, got {text!r}") from None
    if not ids:
        raise UsageError("--chain-ids is empty")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UsageError(f"--chain-ids repeats {duplicates}")
    return ids


def _is_cis(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 5
        and all(isinstance(ci, list) and len(ci) == 2 and all(is_number(v) for v in ci) for ci in value)
    )


def _is_per_task(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(e, dict)
        and is_int(e.get("successes"))
        and is_int(e.get("trials"))
        and 0 <= e["successes"] <= e["trials"]
        for e in value.values()
    )


class CalvinSuite(Suite):
    name = "calvin"
    description = "5-instruction chains on a PyBullet reproduction of CALVIN's play table"
    options = CalvinOptions
    unit_noun = "chain"

    def __init__(
        self,
        *,
        load_chains: Callable[[int | None, int], list] | None = None,
        make_env: EnvFactory | None = None,
        instruction_for: Callable[[str], str] | None = None,
    ) -> None:
        """Test doubles may replace the chain source, the env factory and the instructions."""
        self.load_chains = load_chains or load_calvin_chains
        self.make_env = make_env
        self.instruction_for = instruction_for

    def check(self, opts: CalvinOptions, common: CommonOptions) -> None:
        if opts.scene not in SCENES:
            raise UsageError(f"unknown scene {opts.scene!r} for suite calvin; valid: {', '.join(SCENES)}")
        if opts.env not in ENV_BACKENDS:
            raise UsageError(f"unknown env backend {opts.env!r}; valid: {', '.join(ENV_BACKENDS)}")
        try:
            check_backend(opts.env, opts.scene)
        except Exception as exc:  # the backend's own one-line account (a missing or wrong checkout)
            raise UsageError(f"--env {opts.env}: {exc}") from None
        for name in ("chains", "max_steps", "static_size", "gripper_size"):
            value = getattr(opts, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")

    def plan(self, opts: CalvinOptions, common: CommonOptions) -> list[ChainUnit]:
        pool_size = OFFICIAL_CHAINS if opts.generated_seed is None else max(OFFICIAL_CHAINS, opts.chains)
        pool = self.load_chains(opts.generated_seed, pool_size)
        source = "official" if opts.generated_seed is None else f"generated with seed {opts.generated_seed}"
        if opts.first_task is not None:
            if opts.chain_ids is not None:
                raise UsageError("--first-task and --chain-ids both choose the chains; give one")
            firsts = sorted({c.tasks[0] for c in pool})
            if opts.first_task not in firsts:
                raise UsageError(
                    f"--first-task {opts.first_task!r}: no {source} chain starts with it; "
                    f"first tasks there: {', '.join(firsts)}"
                )
            pool = [c for c in pool if c.tasks[0] == opts.first_task]
            source += f" (first task {opts.first_task})"
        if opts.chain_ids is None:
            if opts.chains > len(pool):
                raise UsageError(f"--chains {opts.chains} exceeds the {len(pool)} {source} chains")
            chosen = pool[: opts.chains]
        else:
            ids = parse_chain_ids(opts.chain_ids)
            bad = [i for i in ids if not 0 <= i < len(pool)]
            if bad:
                raise UsageError(
                    f"chain id(s) {bad} out of range: the {source} chains are 0..{len(pool) - 1}"
                )
            chosen = [pool[i] for i in ids]
        return chain_units(chosen, self.instruction_for or calvin_instructions())

    def unit_key(self, unit: ChainUnit) -> str:
        return str(unit.index)

    def record_key(self, record: Mapping[str, Any]) -> str:
        return str(int(record["chain"]))

    def needed_conventions(self, opts: CalvinOptions, common: CommonOptions, policy: Any) -> dict[str, str]:
        mode = getattr(policy, "action_mode", "relative")
        return {f"its env with action_mode {mode!r}": f"pose/{mode}"}

    def record_mismatch(
        self, record: Mapping[str, Any], unit: ChainUnit, common: CommonOptions
    ) -> str | None:
        if record.get("env_seed") != chain_seed(common.seed, unit.index):
            return f"its env_seed {record.get('env_seed')} is not this run's {chain_seed(common.seed, unit.index)}"
        if list(record.get("tasks", [])) != list(unit.tasks):
            return f"its tasks {record.get('tasks')} are not the chain's {list(unit.tasks)}"
        return None

    def player(
        self, opts: CalvinOptions, common: CommonOptions, policy: Any, video_dir: Path | None
    ) -> Player:
        make_env = self.make_env
        if make_env is None:
            try:
                static, gripper = camera_sizes(policy, opts.static_size, opts.gripper_size)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            make_env = CalvinEnvFactory(static, gripper, opts.env)
        return chain_player(
            policy,
            make_env=make_env,
            scene=opts.scene,
            seed=common.seed,
            max_steps=opts.max_steps,
            video_dir=video_dir,
        )

    def summarize(self, opts: CalvinOptions, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from bench.stats import summarize_chains

        return {
            "scene": opts.scene,
            "env": opts.env,
            **summarize_chains(records),
            "max_steps": opts.max_steps,
            "chains_source": "official"
            if opts.generated_seed is None
            else f"generated:{opts.generated_seed}",
            "chain_ids": [r["chain"] for r in records],
            **({"first_task": opts.first_task} if opts.first_task else {}),
        }

    def headline(self, summary: Mapping[str, Any]) -> str:
        return f"avg_len {summary['avg_len']:.3f} over {summary['n_chains']} chains"

    def print_tables(self, summary: Mapping[str, Any]) -> None:
        import pandas as pd

        rates = pd.DataFrame(
            [[*summary["success_rates"], summary["avg_len"]]],
            columns=["1", "2", "3", "4", "5", "avg_len"],
            index=[summary["policy"]],
        )
        per_task = pd.DataFrame.from_dict(summary["per_task"], orient="index").sort_index()
        print(f"\ncalvin scene {summary['scene']}: {summary['n_chains']} chains, success i in a row")
        print(rates.to_string(float_format="%.3f"))
        print("\nper task")
        print(per_task.to_string(float_format="%.3f"))

    def validate_summary(self, summary: Mapping[str, Any], path: Path) -> None:
        require(summary, "n_chains", path, lambda v: is_int(v) and v >= 1, "an integer >= 1")
        rates = "a list of 5 numbers in [0, 1]"
        require(
            summary,
            "success_rates",
            path,
            lambda v: isinstance(v, list) and len(v) == 5 and all(map(is_rate, v)),
            rates,
        )
        require(summary, "avg_len", path, lambda v: is_number(v) and 0 <= v <= 5, "a number in [0, 5]")
        require(summary, "success_rates_ci", path, _is_cis, "a list of 5 [low, high] pairs", optional=True)
        per_task = "a mapping task -> {successes, trials, ...} with 0 <= successes <= trials"
        require(summary, "per_task", path, _is_per_task, per_task, optional=True)

    def read_details(self, run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
        """``completed`` per chain from episodes.jsonl, checked against the summary; else (with a
        warning when the file disagrees) rebuilt from the summary's success rates."""
        from bench.stats import completed_from_rates

        n, episodes = summary["n_chains"], run_dir / "episodes.jsonl"
        derived = completed_from_rates(summary["success_rates"], n)
        if not episodes.is_file():
            return {"completed": derived}
        try:
            completed = [int(r["completed"]) for r in rundir.read_jsonl(episodes)]
        except (rundir.RunFolderError, KeyError, TypeError, ValueError) as exc:
            reason = f"key 'completed' missing in a line ({exc})" if isinstance(exc, KeyError) else str(exc)
            return {
                "completed": derived,
                "warnings": [f"{episodes}: {reason}; using the summary's success rates"],
            }
        if len(completed) == n and math.isclose(sum(completed) / n, summary["avg_len"]):
            return {"completed": completed}
        warning = (
            f"{episodes}: {len(completed)} chains do not match {run_dir / 'summary.json'} "
            f"(n_chains {n}, avg_len {summary['avg_len']}); using the summary's success rates"
        )
        return {"completed": derived, "warnings": [warning]}

    def run_columns(self, run: Mapping[str, Any], ci_method: str) -> dict[str, Any]:
        from bench.stats import mean_interval, success_rates_ci

        summary, config = run["summary"], run["config"]
        row: dict[str, Any] = {
            "scene": summary.get("scene", config.get("scene")),
            "env": summary.get("env", config.get("env", "ours")),
            "n_chains": summary["n_chains"],
        }
        cis = summary.get("success_rates_ci") or success_rates_ci(run["completed"])
        for i, (rate, (low, high)) in enumerate(zip(summary["success_rates"], cis, strict=True), 1):
            row[f"sr{i}"], row[f"sr{i}_low"], row[f"sr{i}_high"] = rate, low, high
        row["avg_len"] = summary["avg_len"]
        row["avg_len_low"], row["avg_len_high"] = mean_interval(run["completed"], method=ci_method)
        for key in ("chains_source", "first_task", "max_steps"):
            row[key] = summary.get(key, config.get(key))
        missing = summary.get("missing_chains")
        row["missing_chains"] = len(missing) if isinstance(missing, list) else missing
        return row

    def regression_counts(self, summary: Mapping[str, Any]) -> Counts:
        """Chains with >= 1..5 in a row and per-task counts (exact: rates times chains), in its setting
        (scene and step budget must match a baseline's; chains: ``{"source", "first" or "ids"}``)."""
        from bench.regression.counts import Counts, chain_selection, run_setting

        n, setting = summary["n_chains"], run_setting(summary, "scene", "max_steps")
        if "chain_ids" in summary:
            setting["chains"] = chain_selection(
                summary.get("chains_source", "official"), summary["chain_ids"]
            )
        per_task = {t: (e["successes"], e["trials"]) for t, e in summary["per_task"].items()}
        in_a_row = tuple(round(float(r) * n) for r in summary["success_rates"])
        return Counts(n, in_a_row, per_task, int(summary.get("n_errors", 0)), setting)

    def leaderboard_table(self) -> LeaderboardTable:
        from bench.tables import CALVIN_TABLE

        return CALVIN_TABLE

    def figures(self, runs: Sequence[Mapping[str, Any]], out: Path, **options: Any) -> list[Path]:
        from bench.figures.calvin import calvin_figures

        return calvin_figures(runs, out, **options)
