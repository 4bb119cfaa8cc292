"""Success-rate regression tests against stored baselines, for pytest and CI.

A *baseline* is a JSON file with the success counts of one evaluation (see :class:`Baseline` for the
format). A regression check compares the counts of a new evaluation with it, metric by metric, with a
one-sided exact test for a drop and a Holm-Bonferroni correction, so that it fails on a real drop but
not on sampling noise. Use it inside your own pytest tests::

    from bench.regression import assert_no_regression, evaluate_for_regression

    def test_my_policy_did_not_regress():
        counts = evaluate_for_regression("mypkg.policy:MyPolicy", scene="D", chains=50, seed=0)
        assert_no_regression(counts, "results/baselines/my_policy_D.json")

    def test_stored_run_did_not_regress():  # a folder written by python -m bench.run
        assert_no_regression("runs/my_policy_D", "results/baselines/my_policy_D.json")

Command line::

    python -m bench.regression refresh --policy expert --scene D --chains 30 \\
        --out results/baselines/expert_calvin_D.json       # run the policy, write the baseline
    python -m bench.regression refresh --from-run RUN_DIR --out FILE   # baseline of a stored run
    python -m bench.regression check RUN_DIR --baseline FILE           # exit 1 on a drop, else 0

Exit codes: 0 no regression (or baseline written), 1 a significant drop, 2 bad input.

Metrics: ``in_a_row_i`` (chains with at least ``i`` consecutive successes out of all chains, CALVIN's
"i tasks in a row", ``i = 1..5``) and ``task:NAME`` (successes out of attempts of one task), the latter
only where both sides have at least ``min_task_trials`` attempts (fewer attempts carry too little
evidence to test and would only add to the multiple-comparison burden).

The statistical test (per metric)
---------------------------------
* **Two-sample, not one-sample.** The baseline is itself a finite sample. Testing the current count
  against the baseline's rate taken as exact (a binomial test) ignores that noise and flakes; a 30/30
  baseline would turn a single failure into p = 0. The counts of both sides form a 2x2 table.
* **Exact, not asymptotic.** Runs hold tens of chains and rates sit near 100 %, exactly where
  z / chi-square approximations are wrong. We use Boschloo's exact unconditional test
  (:func:`scipy.stats.boschloo_exact`): it takes Fisher's exact p-value as its statistic and maximises
  the tail probability over the unknown common success rate, so its false-alarm rate never exceeds
  ``alpha``, and it is uniformly more powerful than Fisher's exact test, which conditions on both
  margins and is conservative at small counts (28/30 vs 24/30: p = 0.083 against Fisher's 0.127).
  Barnard's test is not uniformly more powerful than Fisher's. Boschloo's cost grows with
  ``n_baseline * n_current``; above :data:`BOSCHLOO_MAX_CELLS` Fisher's test is used, where the two
  agree closely (900/1000 vs 870/1000: 0.0192 vs 0.0210). The ``test`` column names the one used.
* **One-sided.** Only a drop fails: H0 "current rate >= baseline rate" against H1 "current rate is
  lower". Improvements never fail.
* **Holm-Bonferroni** over all tested metrics: the chance that *any* metric raises a false alarm stays
  below ``alpha`` under any dependence between metrics (the in-a-row metrics are nested and the
  per-task ones share chains), and Holm is uniformly more powerful than plain Bonferroni.
* **Edge cases.** A metric with no trials on a side (0/0) is not tested; a 0 % baseline cannot drop
  (p = 1); 100 % on both sides gives p = 1. A check in which no metric could be tested fails: it
  verified nothing.

Power: with 30 chains on each side and a 30/30 baseline, ``alpha = 0.01`` and 5 chain metrics, the
smallest Holm threshold is 0.002, so a drop to 22/30 or below on one metric is flagged, 23/30 is
not; from a 28/30 baseline even 20/30 (p = 0.007) is not. Use more chains to detect smaller drops. Seeded runs are deterministic, so the same code and
settings reproduce the baseline exactly; the test guards against changes that merely reshuffle
the randomness (another seed, physics or scheduling differences).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.regression.compare import (
    MetricResult,
    RegressionReport,
    compare,
    drop_pvalue,
    holm_adjust,
)
from bench.regression.counts import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_TASK_TRIALS,
    FORMAT,
    FORMAT_VERSION,
    HORIZON,
    Baseline,
    BaselineError,
    Counts,
    SettingMismatch,
    chain_selection,
)
from bench.suites import scoring_of

# ----------------------------------------------------------------------------- running and asserting


def evaluate_for_regression(
    policy_spec: Any,
    suite: str = "calvin",
    scene: str = "D",
    chains: int | Sequence[int] = 30,
    seed: int = 0,
    workers: int = 1,
    *,
    max_steps: int = 360,
    **engine_kwargs: Any,
) -> Counts:
    """Evaluate a policy on official chains and return its :class:`Counts` (with the setting).

    Args:
        policy_spec: A spec for :func:`policies.registry.make_policy` (``"expert"``,
            ``"package.module:Class"``) or a :class:`policies.base.Policy` instance.
        chains: The first ``N`` official chains, or a list of official chain ids.
        engine_kwargs: Passed to :func:`bench.calvin_eval.evaluate_chains` (e.g. ``make_env``).
    """
    from bench.calvin_eval import evaluate_chains
    from bench.suites.calvin import SCENES, load_calvin_chains
    from policies.registry import make_policy

    if scoring_of(suite) != "chains":
        raise ValueError(f"evaluate_for_regression plays chains of 5 instructions; suite {suite!r} has none")
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r} for suite {suite}; valid: {', '.join(SCENES)}")
    pool = load_calvin_chains(None, 0)
    ids = list(range(chains)) if isinstance(chains, int) else [int(i) for i in chains]
    if not ids or any(not 0 <= i < len(pool) for i in ids):
        raise ValueError(
            f"chains must select 1..{len(pool)} official chains (ids 0..{len(pool) - 1}), got {chains!r}"
        )
    if isinstance(policy_spec, str):
        policy, name, owned = make_policy(policy_spec), policy_spec, True
    else:
        policy, owned = policy_spec, False
        name = f"{type(policy).__module__}:{type(policy).__qualname__}"
    try:
        records = evaluate_chains(
            policy,
            [pool[i] for i in ids],
            scene=scene,
            seed=seed,
            workers=workers,
            max_steps=max_steps,
            policy_name=name,
            **engine_kwargs,
        )
    finally:
        if owned:
            policy.close()
    return Counts.from_records(
        records,
        suite=suite,
        scene=scene,
        policy=name,
        seed=seed,
        max_steps=max_steps,
        chains=chain_selection("official", ids),
    )


def _load_current(run_or_counts: Any) -> Counts:
    if isinstance(run_or_counts, Counts):
        return run_or_counts
    if isinstance(run_or_counts, Baseline):
        return run_or_counts.counts
    if isinstance(run_or_counts, (str, Path)):
        return Counts.from_run_dir(run_or_counts)
    if isinstance(run_or_counts, Sequence):
        return Counts.from_records(run_or_counts)
    raise TypeError(f"expected Counts, a run folder or episode records, got {type(run_or_counts).__name__}")


def assert_no_regression(
    run_or_counts: Counts | str | Path | Sequence[Mapping[str, Any]],
    baseline_path: str | Path | Baseline,
    alpha: float = DEFAULT_ALPHA,
    **compare_kwargs: Any,
) -> RegressionReport:
    """Fail (``AssertionError`` with the report table) if the run dropped significantly below the
    baseline; return the report otherwise. Call it inside a pytest test.

    ``run_or_counts``: :class:`Counts` (e.g. from :func:`evaluate_for_regression`), a run folder of
    ``python -m bench.run``, or a list of episode records. ``compare_kwargs`` go to :func:`compare`.
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
        "refresh", help="run a policy (or read a run) and write a baseline", formatter_class=fmt
    )
    ref.add_argument("--out", required=True, help="baseline file to write (JSON)")
    ref.add_argument("--policy", help="policy spec (registered name, NAME:ARG or package.module:Class)")
    ref.add_argument("--from-run", help="take the counts of this bench.run folder instead of running")
    ref.add_argument("--suite", default="calvin", help="benchmark suite")
    ref.add_argument("--scene", default="D", help="scene")
    ref.add_argument("--chains", type=int, default=30, help="evaluate the first N official chains")
    ref.add_argument("--chain-ids", help="comma-separated official chain ids instead of the first N")
    ref.add_argument("--seed", type=int, default=0, help="run seed")
    ref.add_argument("--workers", type=int, default=1, help="parallel env worker processes")
    ref.add_argument("--max-steps", type=int, default=360, help="step budget of each subtask")
    chk = sub.add_parser("check", help="compare a bench.run folder with a baseline", formatter_class=fmt)
    chk.add_argument("run_dir", help="folder written by python -m bench.run")
    chk.add_argument("--baseline", required=True, help="baseline file")
    chk.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="family-wise false-alarm rate")
    chk.add_argument(
        "--min-task-trials", type=int, default=DEFAULT_MIN_TASK_TRIALS, help="test tasks with >= N trials"
    )
    return parser


def _refresh(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if (args.policy is None) == (args.from_run is None):
        raise BaselineError("refresh needs exactly one of --policy SPEC and --from-run RUN_DIR")
    if args.from_run is not None:
        counts = Counts.from_run_dir(args.from_run)
    else:
        if args.chain_ids:
            try:
                chains: int | list[int] = [int(p) for p in args.chain_ids.split(",") if p.strip()]
            except ValueError:
                raise BaselineError(
                    f"--chain-ids must be comma-separated integers, got {args.chain_ids!r}"
                ) from None
        else:
            chains = args.chains
        counts = evaluate_for_regression(
            args.policy, args.suite, args.scene, chains, args.seed, args.workers, max_steps=args.max_steps
        )
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
    """Command line entry; returns the exit code (0 ok, 1 regression, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "refresh":
            return _refresh(args, argv)
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

__all__ = [
    "Baseline",
    "BaselineError",
    "Counts",
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_TASK_TRIALS",
    "FORMAT",
    "FORMAT_VERSION",
    "HORIZON",
    "MetricResult",
    "RegressionReport",
    "SettingMismatch",
    "assert_no_regression",
    "chain_selection",
    "compare",
    "drop_pvalue",
    "evaluate_for_regression",
    "holm_adjust",
    "main",
]
