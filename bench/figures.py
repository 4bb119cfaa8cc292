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
  ``policy, sim_rate, real_rate`` and optionally ``task``).

Figures whose inputs are absent are skipped with a one-line message. Uses matplotlib's object API
(:class:`matplotlib.figure.Figure`), never pyplot, so it does not touch the global backend.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.results import find_runs, find_train_logs, is_shard, load_run, load_train_log, run_row
from bench.simreal import mmrv, pearson_r

COLUMN_WIDTH_IN = 3.3
FORMATS = ("pdf", "png")
#: Okabe-Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.borderaxespad": 0.3,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}
#: Heatmap cells without trials.
NO_DATA_COLOR = "#e6e6e6"


def _new_figure(height: float, width: float = COLUMN_WIDTH_IN) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format; return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, format=fmt)
        paths.append(path)
    return paths


def _text_color(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def run_labels(runs: pd.DataFrame) -> list[str]:
    """Short, unique legend labels: the policy, plus split and scene when runs differ in them, plus
    the run folder's name when still ambiguous."""
    labels = runs["policy"].astype(str).tolist()
    extras = []
    for column in ("split", "scene"):
        if column in runs and runs[column].nunique(dropna=False) > 1:
            extras.append(runs[column].map(lambda v: "" if v is None or v != v else str(v)).tolist())
    if extras:
        labels = [
            f"{label} ({', '.join(e for e in parts if e)})" if any(parts) else label
            for label, *parts in zip(labels, *extras, strict=True)
        ]
    if len(set(labels)) < len(labels) and "run" in runs:
        names = [Path(str(p)).name for p in runs["run"]]
        labels = [f"{label} [{name}]" for label, name in zip(labels, names, strict=True)]
    return labels


# --- (a) success vs instructions in a row ----------------------------------------------------------


def plot_success_curve(
    runs: pd.DataFrame,
    stem: str | Path,
    published: pd.DataFrame | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Success vs number of instructions in a row (1..5), one line per run with its Wilson band.

    Args:
        runs: Rows of :func:`bench.results.runs_table` of CALVIN-style runs (``sr1..sr5`` and their
            ``_low`` / ``_high`` bounds, ``policy``; ``scene`` / ``split`` / ``run`` label duplicates).
        stem: Output path without extension.
        published: Optional rows with ``policy`` and ``sr1..sr5`` drawn as grey dashed lines without
            bands (e.g. :func:`bench.leaderboard.calvin_published_rows`).
    """
    x = np.arange(1, 6)
    with mpl.rc_context(STYLE):
        n_lines = len(runs) + (0 if published is None else len(published))
        labels = [
            label if n is None or n != n else f"{label}, n={int(n)}"
            for label, n in zip(run_labels(runs), runs.get("n_chains", [None] * len(runs)), strict=True)
        ]
        if published is not None:
            labels += [f"{row['policy']}, {row.get('split', '')} (pub.)" for _, row in published.iterrows()]
        outside = n_lines > 4
        ncol = 2 if max(map(len, labels), default=0) <= 24 else 1
        fig = _new_figure(2.3 + (0.16 * math.ceil(n_lines / ncol) + 0.1 if outside else 0))
        ax = fig.add_subplot()
        for (_, row), label, color in zip(
            runs.iterrows(), labels[: len(runs)], _cycle(PALETTE, len(runs)), strict=True
        ):
            rates = np.array([row[f"sr{i}"] for i in x], dtype=float)
            low = np.array([row[f"sr{i}_low"] for i in x], dtype=float)
            high = np.array([row[f"sr{i}_high"] for i in x], dtype=float)
            ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
            ax.plot(x, rates, marker="o", color=color, label=label, clip_on=False)
        if published is not None:
            # Grey level and dash pattern staggered so that the first 9 published curves all differ.
            greys = [("0.3", "0.5", "0.68")[i % 3] for i in range(len(published))]
            styles = [("--", ":", "-.")[(i + i // 3) % 3] for i in range(len(published))]
            for (_, row), label, color, style in zip(
                published.iterrows(), labels[len(runs) :], greys, styles, strict=True
            ):
                rates = [row[f"sr{i}"] for i in x]
                ax.plot(x, rates, linestyle=style, color=color, linewidth=1.0, label=label)
        ax.set_xticks(x)
        ax.set_xlim(0.8, 5.2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("instructions completed in a row")
        ax.set_ylabel("success rate")
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        if outside:
            fig.legend(loc="outside lower center", ncol=ncol, handlelength=1.4, columnspacing=1.0)
        else:
            ax.legend(loc="best")
        return save_figure(fig, stem, formats)


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to at most ``width`` characters."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (width - 1 - head) :]


def _cycle(values: Sequence, n: int) -> list:
    return [values[i % len(values)] for i in range(n)]


# --- (b) per-task heatmap --------------------------------------------------------------------------


def calvin_task_order() -> list[str]:
    """The 34 CALVIN tasks grouped by category (``envs.calvin.chains.TASKS``)."""
    try:
        from envs.calvin.chains import TASKS
    except ImportError:  # pragma: no cover - the suite is part of the package
        return []
    return list(TASKS)


def per_task_frame(runs: Sequence[Mapping], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table ``label, task, successes, trials, rate`` from loaded runs' ``per_task`` summaries."""
    rows = []
    for i, run in enumerate(runs):
        label = labels[i] if labels is not None else run["summary"]["policy"]
        for task, entry in run["summary"].get("per_task", {}).items():
            k, n = entry["successes"], entry["trials"]
            rows.append(
                {"label": label, "task": task, "successes": k, "trials": n, "rate": k / n if n else None}
            )
    return pd.DataFrame(rows, columns=["label", "task", "successes", "trials", "rate"])


def plot_task_heatmap(
    per_task: pd.DataFrame,
    stem: str | Path,
    tasks: Sequence[str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Per-task success: tasks as rows (34 CALVIN tasks by default, grouped by category), runs as
    columns, colour = success rate, text = ``successes/trials`` (rate in % with many columns); grey
    cells: no trials.

    Args:
        per_task: Long table from :func:`per_task_frame` (``label, task, successes, trials``).
        tasks: Row order; default: CALVIN's 34 tasks, then any other task present.
    """
    order = list(tasks) if tasks is not None else calvin_task_order()
    order += sorted(set(per_task["task"]) - set(order))
    labels = list(dict.fromkeys(per_task["label"]))
    k = per_task.pivot_table(index="task", columns="label", values="successes", aggfunc="sum")
    n = per_task.pivot_table(index="task", columns="label", values="trials", aggfunc="sum")
    k = k.reindex(index=order, columns=labels)
    n = n.reindex(index=order, columns=labels)
    rate = (k / n.where(n > 0)).to_numpy(dtype=float)
    n_cols = len(labels)
    width = max(COLUMN_WIDTH_IN, 1.75 + 0.32 * n_cols)
    rotated = n_cols > 4 or sum(map(len, labels)) > 30  # horizontal labels only while they fit
    shown = (
        [_shorten(label, 32) for label in labels]
        if rotated
        else [textwrap.fill(label, 14) for label in labels]
    )
    # Room for the column labels: their length when rotated, their number of lines otherwise.
    label_h = 0.065 * max(map(len, shown)) if rotated else 0.14 * max(s.count("\n") + 1 for s in shown)
    with mpl.rc_context(STYLE):
        fig = _new_figure(0.135 * len(order) + 1.0 + label_h, width)
        ax = fig.add_subplot()
        cmap = mpl.colormaps["viridis"].with_extremes(bad=NO_DATA_COLOR)
        image = ax.imshow(np.ma.masked_invalid(rate), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(order)), [t.replace("_", " ") for t in order])
        ax.set_xticks(range(n_cols), shown, rotation=90 if rotated else 0)
        ax.xaxis.tick_top()
        ax.tick_params(axis="x", length=0)
        ax.tick_params(axis="y", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xticks(np.arange(-0.5, n_cols), minor=True)
        ax.set_yticks(np.arange(-0.5, len(order)), minor=True)
        ax.grid(which="minor", color="white", linewidth=0.6)
        ax.tick_params(which="minor", length=0)
        as_counts = n_cols <= 4
        for i in range(len(order)):
            for j in range(n_cols):
                trials = n.iat[i, j]
                if not trials or trials != trials:
                    continue
                text = f"{int(k.iat[i, j])}/{int(trials)}" if as_counts else f"{100 * rate[i, j]:.0f}"
                color = _text_color(cmap(rate[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if as_counts else 6.5, color=color)
        bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.025, pad=0.01, aspect=30)
        bar.set_label("success rate (grey: not attempted)")
        bar.outline.set_linewidth(0.4)
        return save_figure(fig, stem, formats)


# --- (c) training curves ---------------------------------------------------------------------------

#: Columns of a training log that are not plotted as curves.
NON_CURVE_KEYS = frozenset({"step", "epoch", "time", "wall_time", "wall_time_s", "timestamp", "samples"})


def training_keys(logs: Mapping[str, pd.DataFrame], limit: int = 4) -> list[str]:
    """Scalar keys to plot by default, at most ``limit``: ``loss``, then evaluation metrics (keys
    holding ``val``, ``eval``, ``avg_len`` or ``success``), then ``lr``, then other loss parts, then the
    rest (e.g. ``grad_norm``)."""
    keys = list(dict.fromkeys(c for frame in logs.values() for c in frame.columns if c not in NON_CURVE_KEYS))

    def rank(key: str) -> int:
        if key == "loss":
            return 0
        if any(word in key for word in ("val", "eval", "avg_len", "success")):
            return 1
        if key in ("lr", "learning_rate"):
            return 2
        return 3 if "loss" in key else 4

    return sorted(keys, key=rank)[:limit]


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = values[0]
    for i, value in enumerate(values):
        acc = weight * acc + (1 - weight) * value
        out[i] = acc
    return out


def plot_training_curves(
    logs: Mapping[str, pd.DataFrame],
    stem: str | Path,
    keys: Sequence[str] | None = None,
    smooth: float = 0.0,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """One panel per scalar key (shared ``step`` axis), one line per training log.

    Args:
        logs: Label -> log from :func:`bench.results.load_train_log`.
        keys: Keys to plot (default :func:`training_keys`); keys absent from every log are dropped.
        smooth: Exponential moving average weight in [0, 1) for keys containing ``loss`` (the raw curve
            stays as a faint line); 0 plots raw values only.
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    keys = [k for k in (keys or training_keys(logs)) if any(k in frame for frame in logs.values())]
    if not keys:
        raise ValueError("no scalar key to plot in the training logs")
    with mpl.rc_context(STYLE):
        legend_h = 0.17 * math.ceil(len(logs) / 3) if len(logs) > 1 else 0
        fig = _new_figure(0.35 + 1.15 * len(keys) + legend_h)
        axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
        for ax, key in zip(axes, keys, strict=True):
            plotted = []
            for (label, frame), color in zip(logs.items(), _cycle(PALETTE, len(logs)), strict=True):
                if key not in frame:
                    continue
                data = frame[["step", key]].dropna()
                if data.empty:
                    continue
                steps, values = data["step"].to_numpy(), data[key].to_numpy(dtype=float)
                plotted.append(values)
                if smooth and "loss" in key and len(values) > 2:
                    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
                    values = _ema(values, smooth)
                ax.plot(steps, values, color=color, label=label)
            every = np.concatenate(plotted) if plotted else np.array([])
            if "loss" in key and every.size and every.min() > 0 and every.max() / every.min() > 20:
                ax.set_yscale("log")
            if key in ("lr", "learning_rate"):
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.set_ylabel(key.replace("_", " "))
            ax.grid(linewidth=0.4, alpha=0.5)
        axes[-1].set_xlabel("step")
        axes[-1].ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        if len(logs) > 1:
            fig.legend(
                *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(logs), 3)
            )
        return save_figure(fig, stem, formats)


# --- (d) backbone x structure grid -----------------------------------------------------------------


#: Preferred row order of the grid: RoboVLMs' four VLA structures (names compared case- and
#: separator-insensitively); other structures follow alphabetically.
STRUCTURE_ORDER = (
    "one_step_continuous",
    "one_step_discrete",
    "interleaved_continuous",
    "policy_head_continuous",
)


def _structure_key(name: str) -> tuple[int, str]:
    norm = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return (STRUCTURE_ORDER.index(norm) if norm in STRUCTURE_ORDER else len(STRUCTURE_ORDER), norm)


def design_grid(runs: pd.DataFrame, value: str = "avg_len") -> pd.DataFrame:
    """Structure (rows) x backbone (columns) table of ``value``; runs sharing a cell are pooled,
    weighted by their number of chains; missing combinations are NaN."""
    data = runs.dropna(subset=["backbone", "structure", value]).copy()
    weights = data["n_chains"].fillna(1).astype(float) if "n_chains" in data else pd.Series(1.0, data.index)
    data["_w"], data["_wv"] = weights, weights * data[value].astype(float)
    sums = data.groupby(["structure", "backbone"])[["_w", "_wv"]].sum()
    grid = (sums["_wv"] / sums["_w"]).unstack("backbone")
    rows = sorted(grid.index, key=_structure_key)
    return grid.reindex(index=rows, columns=sorted(grid.columns, key=str))


def plot_design_grid(
    runs: pd.DataFrame,
    stem: str | Path,
    value: str = "avg_len",
    vmax: float = 5.0,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Heatmap of ``value`` (CALVIN average length by default, colour scale 0..``vmax``) over VLA
    structures (rows) x backbones (columns), cells annotated; missing combinations are grey."""
    grid = design_grid(runs, value)
    if grid.empty:
        raise ValueError("no run records both 'backbone' and 'structure'")
    n_rows, n_cols = grid.shape
    with mpl.rc_context(STYLE):
        fig = _new_figure(0.75 + 0.36 * n_rows, max(COLUMN_WIDTH_IN, 1.6 + 0.42 * n_cols))
        ax = fig.add_subplot()
        cmap = mpl.colormaps["viridis"].with_extremes(bad=NO_DATA_COLOR)
        values = grid.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
        columns = [str(c) for c in grid.columns]
        if n_cols > 4 or max(map(len, columns)) > 8:
            ax.set_xticks(range(n_cols), columns, rotation=40, ha="left", rotation_mode="anchor")
        else:
            ax.set_xticks(range(n_cols), columns)
        ax.set_yticks(range(n_rows), [textwrap.fill(str(r).replace("_", " "), 13) for r in grid.index])
        ax.tick_params(length=0)
        ax.xaxis.tick_top()
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i in range(n_rows):
            for j in range(n_cols):
                v = values[i, j]
                text, color = ("-", "0.4") if math.isnan(v) else (f"{v:.2f}", _text_color(cmap(v / vmax)))
                ax.text(j, i, text, ha="center", va="center", color=color)
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03, aspect=15)
        bar.set_label("average length" if value == "avg_len" else value.replace("_", " "))
        bar.outline.set_linewidth(0.4)
        return save_figure(fig, stem, formats)


# --- (e) sim vs real -------------------------------------------------------------------------------


def plot_sim_vs_real(frame: pd.DataFrame, stem: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Simulated vs real success, one point per policy (and task), with MMRV and Pearson r in the
    legend (per task when ``frame`` has a ``task`` column, computed over that task's policies).

    Args:
        frame: Columns ``policy``, ``sim_rate``, ``real_rate`` (in [0, 1]); optional ``task``.
    """
    missing = {"policy", "sim_rate", "real_rate"} - set(frame.columns)
    if missing:
        raise ValueError(f"sim-vs-real table lacks column(s) {sorted(missing)}")
    groups = list(frame.groupby("task", sort=False)) if "task" in frame else [("all", frame)]
    markers = ("o", "s", "^", "D", "v", "P", "X")
    with mpl.rc_context(STYLE):
        fig = _new_figure(3.0 + 0.17 * max(len(groups) - 1, 0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.7, zorder=0)
        for (task, group), color, marker in zip(
            groups, _cycle(PALETTE, len(groups)), _cycle(markers, len(groups)), strict=True
        ):
            sim, real = group["sim_rate"].to_numpy(float), group["real_rate"].to_numpy(float)
            metrics = f"MMRV {mmrv(sim, real):.3f}, Pearson r {pearson_r(sim, real):.2f}"
            label = metrics if len(groups) == 1 else f"{task}: {metrics}"
            ax.scatter(sim, real, s=16, color=color, marker=marker, label=label, zorder=3)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        ax.set_xlabel("simulated success rate")
        ax.set_ylabel("real-world success rate")
        ax.grid(linewidth=0.4, alpha=0.5)
        if len(groups) == 1:
            ax.legend(loc="upper left", handletextpad=0.3)
            points = list(zip(frame["sim_rate"].astype(float), frame["real_rate"].astype(float), strict=True))
            place_point_labels(fig, ax, points, [str(p) for p in frame["policy"]])
        else:
            fig.legend(loc="outside lower center", ncol=1, handletextpad=0.3)
        return save_figure(fig, stem, formats)


#: Candidate label offsets (points) and alignments around a scatter point, in order of preference.
_LABEL_SPOTS = (
    ((4, 2), "left", "bottom"),
    ((4, -2), "left", "top"),
    ((-4, 2), "right", "bottom"),
    ((-4, -2), "right", "top"),
    ((0, 5), "center", "bottom"),
    ((0, -5), "center", "top"),
)


def place_point_labels(
    fig: Figure, ax, points: Sequence[tuple[float, float]], names: Sequence[str], fontsize: float = 7
) -> None:
    """Label scatter points, choosing for each label the first spot around its point that stays inside
    the axes and overlaps no earlier label, no other point and no legend (else the least overlapping)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    inside = ax.get_window_extent(renderer)
    taken: list[Bbox] = []
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    pad = 3 * fig.dpi / 72
    dots = [ax.transData.transform(p) for p in points]
    marks = [Bbox.from_extents(x - pad, y - pad, x + pad, y + pad) for x, y in dots]

    def overlap(a: Bbox, b: Bbox) -> float:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return max(w, 0) * max(h, 0)

    for index, (point, name) in enumerate(zip(points, names, strict=True)):
        best = None
        for offset, ha, va in _LABEL_SPOTS:
            text = ax.annotate(
                name, point, xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=fontsize
            )
            text.set_in_layout(False)
            box = text.get_window_extent(renderer)
            others = taken + [m for i, m in enumerate(marks) if i != index]
            outside = box.width * box.height - overlap(box, inside)
            cost = outside * 10 + sum(overlap(box, other) for other in others)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[2])


# --- command line ----------------------------------------------------------------------------------


def short_names(paths: Sequence[Path]) -> list[str]:
    """The shortest trailing part of each path (``a/b`` rather than ``b``) that tells them apart."""
    parts = [Path(p).parts for p in paths]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def make_figures(
    roots: Iterable[str | Path],
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    published: bool = False,
    simreal: str | Path | None = None,
    smooth: float = 0.0,
    log=print,
) -> list[Path]:
    """Build every figure whose inputs exist below ``roots`` into ``out``; say in one line (via
    ``log``) why each other figure is skipped. Returns the written paths."""
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
    calvin = [run for run in loaded if run["summary"]["suite"] == "calvin" and not is_shard(run)]
    others = sorted({run["summary"]["suite"] for run in loaded} - {"calvin"})
    if others:
        log(f"no figures for suite(s) {', '.join(others)} yet; their runs are left out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pd.DataFrame([run_row(run) for run in calvin])

    if calvin:
        pub = None
        if published:
            from bench.leaderboard import calvin_published_rows

            pub = calvin_published_rows()
        written += plot_success_curve(table, out / "success_in_a_row", published=pub, formats=formats)
        per_task = per_task_frame(calvin, run_labels(table))
        if per_task.empty:
            log("task_success_heatmap: skipped (no per_task table in the CALVIN-style runs)")
        else:
            written += plot_task_heatmap(per_task, out / "task_success_heatmap", formats=formats)
        design = table.dropna(subset=["backbone", "structure"]) if "backbone" in table else table.iloc[0:0]
        if design.empty:
            log("design_grid_avg_len: skipped (no run records 'backbone' and 'structure')")
        else:
            groups = list(design.groupby(["split", "scene"], dropna=False))
            for (split, scene), group in groups:
                suffix = "" if len(groups) == 1 else "_" + _slug(f"{'' if split != split else split}_{scene}")
                written += plot_design_grid(group, out / f"design_grid_avg_len{suffix}", formats=formats)
    else:
        log("success_in_a_row, task_success_heatmap, design_grid_avg_len: skipped (no CALVIN-style runs)")

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
            log=lambda message: print(f"bench.figures: {message}", file=sys.stderr),
        )
    except (ValueError, OSError) as exc:
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
