"""Success-rate regression tests against stored baselines, for pytest and CI.

A *baseline* (:class:`~bench.regression.counts.Baseline`) holds the success counts of one evaluation.
A check compares a new evaluation's counts with it metric by metric: a one-sided exact test for a
drop and a Holm-Bonferroni correction, so it fails on a real drop but not on sampling noise::

    from bench.regression import assert_no_regression, evaluate_for_regression

    def test_my_policy_did_not_regress():  # any suite with regression counts; options are the suite's
        counts = evaluate_for_regression("mypkg.policy:MyPolicy", "calvin", scene="D", chains=50, seed=0)
        assert_no_regression(counts, "results/baselines/my_policy_D.json")

    def test_stored_run_did_not_regress():  # a folder written by python -m bench.run
        assert_no_regression("runs/my_policy_D", "results/baselines/my_policy_D.json")

Command line (``refresh --policy`` takes ``python -m bench.run``'s options of the suite; exit codes: 0
no regression or baseline written, 1 a significant drop, 2 bad input)::

    python -m bench.regression refresh --policy expert --scene D --chains 30 --out FILE
    python -m bench.regression refresh --from-run RUN_DIR --out FILE   # baseline of a stored run
    python -m bench.regression check RUN_DIR --baseline FILE

Metrics: ``in_a_row_i`` (chains with at least ``i`` consecutive successes, ``i = 1..5``) and
``task:NAME`` (successes out of attempts), the latter only where both sides have at least
``min_task_trials`` attempts (fewer carry too little evidence and only add to the correction).

Why this test: the baseline is itself a finite sample, so both sides form a 2x2 table (a binomial
test against the baseline's rate would turn one failure after a 30/30 baseline into p = 0). Runs hold
tens of chains with rates near 100 %, where z / chi-square approximations are wrong, so the test is
exact: Boschloo's unconditional test (:func:`scipy.stats.boschloo_exact`), whose false-alarm rate
never exceeds ``alpha`` and which is uniformly more powerful than Fisher's (28/30 vs 24/30: p = 0.083
against Fisher's 0.127); above :data:`~bench.regression.counts.BOSCHLOO_MAX_CELLS` Fisher's, where the
two agree closely. One-sided: only a drop fails. Holm over all tested metrics keeps the chance of any
false alarm below ``alpha`` under any dependence (the metrics share chains). A 0/0 side is not tested,
a 0 % baseline cannot drop, and a check that tested nothing fails. Power: 30 chains a side from a
30/30 baseline at ``alpha = 0.01`` flag a drop to 22/30, not 23/30; use more chains for smaller drops.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.regression.compare import RegressionReport, compare
from bench.regression.counts import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_TASK_TRIALS,
    Baseline,
    BaselineError,
    Counts,
    SettingMismatch,
)

# ----------------------------------------------------------------------------- running and asserting


def evaluate_for_regression(
    policy_spec: Any,
    suite: str = "calvin",
    *,
    seed: int = 0,
    workers: int = 1,
    suite_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> Counts:
    """Play a suite's units in this process (no run folder); their :class:`Counts`.

    ``policy_spec``: a :func:`policies.registry.make_policy` spec or a policy instance; ``options``: the
    suite's (CALVIN: ``scene="D"``, ``chains=30``, ``chain_ids="3,7,9"``, ``max_steps=360``);
    ``workers``: env processes; ``suite_kwargs``: the suite's constructor keywords (test doubles).
    """
    from bench.engine import Job, run_units
    from bench.session import summary_of
    from bench.suites import CommonOptions, UsageError, get_suite
    from policies.registry import make_policy

    owned = isinstance(policy_spec, str)
    name = policy_spec if owned else f"{type(policy_spec).__module__}:{type(policy_spec).__qualname__}"
    played = get_suite(suite, **(suite_kwargs or {}))
    common = CommonOptions(policy=name, suite=suite, seed=seed, workers=workers)
    try:
        opts = played.options(**options)
    except TypeError as exc:
        raise UsageError(f"suite {suite}: {exc}") from None
    played.check(opts, common)
    units = played.plan(opts, common)
    policy = make_policy(policy_spec) if owned else policy_spec
    try:
        played.check_policy(opts, common, policy)
        player = played.player(opts, common, policy, None)
        jobs = [Job(position, unit) for position, unit in enumerate(units)]
        records = run_units(policy, jobs, player, workers=workers, policy_name=name)
    finally:
        if owned:
            policy.close()
    return played.regression_counts(summary_of(played, opts, common, records, 0.0))


def _load_current(run_or_counts: Any) -> Counts:
    if isinstance(run_or_counts, Counts):
        return run_or_counts
    if isinstance(run_or_counts, Baseline):
        return run_or_counts.counts
    if isinstance(run_or_counts, (str, Path)):
        return Counts.from_run_dir(run_or_counts)
    raise TypeError(f"expected Counts, a Baseline or a run folder, got {type(run_or_counts).__name__}")


def assert_no_regression(
    run_or_counts: Counts | Baseline | str | Path,
    baseline_path: str | Path | Baseline,
    alpha: float = DEFAULT_ALPHA,
    **compare_kwargs: Any,
) -> RegressionReport:
    """The report of ``run_or_counts`` (:class:`Counts` or a ``bench.run`` folder)
    against a baseline; ``AssertionError`` with the report table on a significant drop (for pytest).
    """
    baseline = baseline_path if isinstance(baseline_path, Baseline) else Baseline.load(baseline_path)
    report = compare(_load_current(run_or_counts), baseline, alpha, **compare_kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report


# ----------------------------------------------------------------------------- command line


def _counts_table(counts: Counts) -> str:
    if not counts.in_a_row:  # an episodic suite
        done = sum(k for k, _ in counts.per_task.values())
        return f"{counts.n_chains} episodes, {done} successes, {len(counts.per_task)} tasks, errors {counts.n_errors}"
    rates = "  ".join(f"{i}:{k}/{counts.n_chains}" for i, k in enumerate(counts.in_a_row, 1))
    avg = "-" if counts.avg_len is None else f"{counts.avg_len:.3f}"
    return f"{counts.n_chains} chains, in a row {rates}, avg_len {avg}, errors {counts.n_errors}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.regression",
        description="Success-rate regression baselines and checks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    ref = sub.add_parser(
        "refresh",
        help="run a policy (or read a run) and write a baseline",
        formatter_class=fmt,
        epilog="With --policy, the other options are those of python -m bench.run for the suite "
        "(--suite, --seed, --workers and the suite's own: CALVIN's --scene, --chains, --chain-ids, "
        "--max-steps, ...); python -m bench.run --suite NAME --help lists them.",
    )
    ref.add_argument("--out", required=True, help="baseline file to write (JSON)")
    ref.add_argument("--policy", help="policy spec (registered name, NAME:ARG or package.module:Class)")
    ref.add_argument("--from-run", help="take the counts of this bench.run folder instead of running")
    chk = sub.add_parser("check", help="compare a bench.run folder with a baseline", formatter_class=fmt)
    chk.add_argument("run_dir", help="folder written by python -m bench.run")
    chk.add_argument("--baseline", required=True, help="baseline file")
    chk.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="family-wise false-alarm rate")
    chk.add_argument(
        "--min-task-trials", type=int, default=DEFAULT_MIN_TASK_TRIALS, help="test tasks with >= N trials"
    )
    return parser


def _refresh_counts(args: argparse.Namespace, run_options: list[str]) -> Counts:
    """``refresh``'s counts: of a stored run, or of the policy played with bench.run's options."""
    from bench.session import parse
    from bench.suites import UsageError

    if (args.policy is None) == (args.from_run is None):
        raise UsageError("refresh needs exactly one of --policy SPEC and --from-run RUN_DIR")
    if args.from_run is not None:
        if run_options:
            raise UsageError(f"refresh --from-run reads a finished run: drop {' '.join(run_options)}")
        return Counts.from_run_dir(args.from_run)
    suite, common, opts, _ = parse([*run_options, "--policy", args.policy])
    folder_options = [f"--{k}" for k in ("resume", "shard", "ray", "record") if getattr(common, k)]
    if folder_options:
        raise UsageError(
            f"refresh plays in this process and writes no run folder: drop {', '.join(folder_options)}"
        )
    options = dataclasses.asdict(opts)
    return evaluate_for_regression(
        args.policy, suite.name, seed=common.seed, workers=common.workers, **options
    )


def _refresh(args: argparse.Namespace, run_options: list[str], argv: Sequence[str]) -> int:
    counts = _refresh_counts(args, run_options)
    out = Path(args.out)
    previous = None
    if out.exists():
        try:
            previous = Baseline.load(out)
        except BaselineError as exc:
            print(f"bench.regression: replacing an unreadable baseline ({exc})", file=sys.stderr)
    command = "python -m bench.regression " + " ".join(shlex.quote(a) for a in argv)
    Baseline.from_counts(counts, command=command).save(out)
    print(f"baseline {out}: {_counts_table(counts)}")
    if previous is not None:
        try:
            print("the new counts checked against the old baseline:\n" + str(compare(counts, previous)))
        except SettingMismatch as exc:
            print(f"the old baseline had other settings: {exc}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command == "check":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "refresh":
            return _refresh(args, rest, argv)
        report = compare(
            Counts.from_run_dir(args.run_dir),
            Baseline.load(args.baseline),
            args.alpha,
            min_task_trials=args.min_task_trials,
        )
    except (BaselineError, SettingMismatch, ValueError) as exc:
        print(f"bench.regression: error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
