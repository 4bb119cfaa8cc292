"""Paper figures from stored runs: ``python -m bench.figures [ROOTS...] --out results/figures``.

Each figure is written as PDF (TrueType fonts embedded) and PNG (300 dpi), sized for one paper column
(3.3 in wide, 8 pt text):

- ``success_in_a_row``: success vs number of instructions in a row (1..5), one line per CALVIN-style
  run with its Wilson 95 % band (``--published`` adds the published curves, dashed);
- ``task_success_heatmap``: per-task success rate, the 34 CALVIN tasks x runs, cells ``k/n``;
- ``training_curves``: scalars of every ``train_log.jsonl`` / ``train_log.csv`` below the roots
  against ``step`` (format in :mod:`bench.results`);
- ``design_grid_avg_len[_<split>_<scene>]``: average length of runs that record ``backbone`` and
  ``structure``, backbones x structures;
- ``sim_vs_real``: simulated vs real success per policy with MMRV and Pearson r
  (:func:`plot_sim_vs_real`; from the command line with ``--simreal FILE.csv`` holding columns
  ``policy, sim_rate, real_rate`` and optionally ``task``);
- ``simpler_tasks_<family>`` (``google_robot``, ``bridge``): SimplerEnv-style per-task success bars, one
  bar per policy, visual matching and variant aggregation side by side, partial success behind
  (:func:`plot_simpler_tasks`);
- ``sim_vs_real_simpler_<mode>``: SimplerEnv-style runs matched to the policies of a real-world results
  CSV (``--real-results``, default ``results/real/simpler_reference.csv``; ``--name DIR=POLICY`` as in
  ``python -m bench.simreal``), group success in sim vs real, MMRV and Pearson r per group in the legend
  (:func:`plot_simpler_sim_vs_real`).

Each suite draws its own (:meth:`bench.suites.Suite.figures`: :func:`bench.figures.calvin.calvin_figures`,
:func:`bench.figures.simpler.simpler_figures`). Figures whose inputs are absent are skipped with a
one-line message (the SimplerEnv ones are only attempted when SimplerEnv-style runs are found). Uses
matplotlib's object API (:class:`matplotlib.figure.Figure`), never pyplot, so it does not touch the
global backend. Modules: :mod:`bench.figures.common` (style, saving, labels), ``calvin``, ``simpler``,
``training``; the plotting functions are re-exported here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from bench.figures.calvin import (
    calvin_task_order,
    design_grid,
    per_task_frame,
    plot_design_grid,
    plot_success_curve,
    plot_task_heatmap,
)
from bench.figures.common import FORMATS, run_labels, short_names
from bench.figures.simpler import (
    plot_sim_vs_real,
    plot_simpler_sim_vs_real,
    plot_simpler_tasks,
    simpler_sim_real_frame,
    simpler_task_frame,
)
from bench.figures.training import plot_training_curves, training_keys
from bench.results import find_runs, find_train_logs, is_shard, load_run, load_train_log
from bench.simreal import REFERENCE_CSV
from bench.simreal_cli import parse_names
from bench.suites import find_suite, suite_names

__all__ = [
    "calvin_task_order",
    "design_grid",
    "main",
    "make_figures",
    "per_task_frame",
    "plot_design_grid",
    "plot_sim_vs_real",
    "plot_simpler_sim_vs_real",
    "plot_simpler_tasks",
    "plot_success_curve",
    "plot_task_heatmap",
    "plot_training_curves",
    "run_labels",
    "short_names",
    "simpler_sim_real_frame",
    "simpler_task_frame",
    "training_keys",
]


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
    """Build every figure whose inputs exist below ``roots`` into ``out``; say in one line (via
    ``log``) why each other figure is skipped. Returns the written paths.

    ``real_results`` (a real-world results CSV, :func:`bench.simreal.load_real_results`) and ``names``
    (run folder or its name -> real policy) match SimplerEnv-style runs to real-world policies for
    ``sim_vs_real_simpler_<mode>``; they are only read when such runs exist."""
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
    """Command line entry; returns the exit code (0 written, 1 error, 2 nothing to plot)."""
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
