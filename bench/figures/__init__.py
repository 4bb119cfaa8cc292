"""Paper figures from stored runs: ``python -m bench.figures [ROOTS...] --out results/figures``.

PDF (TrueType fonts embedded) and PNG (300 dpi), one paper column wide (3.3 in, 8 pt text). Each suite
draws its own (:meth:`bench.suites.Suite.figures`): CALVIN's ``success_in_a_row`` (``--published`` adds
the published curves), ``task_success_heatmap`` and ``design_grid_avg_len[_<split>_<scene>]`` (runs
recording ``backbone`` and ``structure``); SimplerEnv's ``simpler_tasks_<family>`` and
``sim_vs_real_simpler_<mode>`` (runs matched to the policies of ``--real-results``, ``--name DIR=POLICY``
as in ``python -m bench.simreal``). Here: ``training_curves`` of every training log below the roots
(format in :mod:`bench.results`) and ``sim_vs_real`` of ``--simreal FILE.csv`` (``policy, sim_rate,
real_rate[, task]``). A figure without inputs is skipped with a one-line message. Uses matplotlib's
object API, never pyplot, so the global backend is untouched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from bench.figures.common import FORMATS, short_names
from bench.figures.simpler import plot_sim_vs_real
from bench.figures.training import plot_training_curves
from bench.results import find_runs, find_train_logs, is_shard, load_run, load_train_log
from bench.simreal import REFERENCE_CSV
from bench.simreal_cli import parse_names
from bench.suites import find_suite, suite_names


def make_figures(
    roots: Iterable[str | Path],
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    published: bool = False,
    simreal: str | Path | None = None,
    smooth: float = 0.0,
    log=print,
    real_results: str | Path = REFERENCE_CSV,
    names: Mapping[str, str] | None = None,
) -> list[Path]:
    """Build every figure whose inputs exist below ``roots`` into ``out``, logging why any other
    is skipped; the written paths. ``real_results`` and ``names`` match SimplerEnv-style runs to real policies.
    """
    roots = list(roots)
    out = Path(out)
    written: list[Path] = []
    loaded = []
    for path in find_runs(roots):
        try:
            run = load_run(path)
        except ValueError as exc:
            log(f"skipped run: {exc}")
            continue
        loaded.append(run)
    shards = [run for run in loaded if is_shard(run)]
    if shards:
        log(f"left out {len(shards)} shard run(s); figures use merged runs (python -m bench.merge)")
    whole = [run for run in loaded if not is_shard(run)]
    options = {"formats": formats, "log": log, "published": published, "real_results": real_results}
    drawn = set()
    for name in suite_names():
        of_suite = [run for run in whole if run["summary"]["suite"] == name]
        figures = find_suite(name).figures(of_suite, out, names=names, **options)
        if figures is not None:
            drawn.add(name)
            written += figures
    others = sorted({run["summary"]["suite"] for run in whole} - drawn)
    if others:
        log(f"no figures for suite(s) {', '.join(others)} yet; their runs are left out")

    logs = {}
    paths = find_train_logs(roots)
    for path, name in zip(paths, short_names([p.parent for p in paths]), strict=True):
        try:
            logs[name] = load_train_log(path)
        except ValueError as exc:
            log(f"skipped training log: {exc}")
    logs = {label: frame for label, frame in logs.items() if len(frame)}
    if logs:
        written += plot_training_curves(logs, out / "training_curves", smooth=smooth, formats=formats)
    else:
        log("training_curves: skipped (no train_log.jsonl or train_log.csv below the roots)")

    if simreal is not None:
        written += plot_sim_vs_real(pd.read_csv(simreal), out / "sim_vs_real", formats=formats)
    else:
        log("sim_vs_real: skipped (needs --simreal FILE.csv with policy, sim_rate, real_rate)")
    return written


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from bench.leaderboard import DEFAULT_ROOTS

    parser = argparse.ArgumentParser(
        prog="python -m bench.figures",
        description="Paper figures (PDF and PNG, one column wide) from stored runs and training logs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("roots", nargs="*", default=list(DEFAULT_ROOTS), help="folders searched recursively")
    parser.add_argument("--out", default="results/figures", help="output folder")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), help="file formats to write")
    parser.add_argument("--published", action="store_true", help="add published CALVIN curves to (a)")
    parser.add_argument("--simreal", default=None, help="CSV with policy, sim_rate, real_rate[, task]")
    parser.add_argument(
        "--real-results",
        default=str(REFERENCE_CSV),
        metavar="FILE",
        help="real-world results CSV (policy,task,success,partial) for the SimplerEnv sim-vs-real scatter",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="DIR=POLICY",
        help="match a SimplerEnv-style run to a policy of --real-results (as in python -m bench.simreal)",
    )
    parser.add_argument("--smooth", type=float, default=0.0, help="EMA weight for loss curves, in [0, 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        written = make_figures(
            args.roots,
            args.out,
            formats=args.formats,
            published=args.published,
            simreal=args.simreal,
            smooth=args.smooth,
            real_results=args.real_results,
            names=parse_names(args.name),
            log=lambda message: print(f"bench.figures: {message}", file=sys.stderr),
        )
    except (ValueError, OSError) as exc:  # SimRealError (a bad --name) is a ValueError
        print(f"bench.figures: error: {exc}", file=sys.stderr)
        return 1
    if not written:
        print("bench.figures: nothing to plot", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
