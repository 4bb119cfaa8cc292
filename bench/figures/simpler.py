"""SimplerEnv-style figures: per-task success bars with partial success, and simulated vs real success
with SimplerEnv's agreement metrics (MMRV, Pearson r) in the legend."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.figures.common import (
    COLUMN_WIDTH_IN,
    FORMATS,
    PALETTE,
    STYLE,
    _cycle,
    _new_figure,
    place_point_labels,
    save_figure,
)
from bench.simreal import (
    FAMILY_TITLES,
    REFERENCE_CSV,
    agreement,
    load_real_results,
    match_policy,
    mmrv,
    pearson_r,
    sim_real_pairs,
    simpler_labels,
    simpler_rows,
)
from envs.simpler import FAMILIES, MODES, TASKS

MODE_TITLES = {"visual_matching": "visual matching", "variant_aggregation": "variant aggregation"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Colours of up to 10 task groups: Okabe-Ito without its pale yellow, then grey, wine and the yellow.
GROUP_COLORS = (*(c for c in PALETTE if c != "#F0E442"), "#999999", "#882255", "#F0E442")


# --- (e) sim vs real -------------------------------------------------------------------------------


def plot_sim_vs_real(
    frame: pd.DataFrame,
    stem: str | Path,
    formats: Sequence[str] = FORMATS,
    title: str | None = None,
    policy_markers: bool = False,
) -> list[Path]:
    """Simulated vs real success (``policy, sim_rate, real_rate`` in [0, 1], optional
    ``task``), one point per policy and task, MMRV and Pearson r per task in the legend; ``title``: a legend
    title; ``policy_markers``: with several tasks, one marker per policy (own legend) instead of per task.
    """
    missing = {"policy", "sim_rate", "real_rate"} - set(frame.columns)
    if missing:
        raise ValueError(f"sim-vs-real table lacks column(s) {sorted(missing)}")
    groups = list(frame.groupby("task", sort=False)) if "task" in frame else [("all", frame)]
    policies = list(dict.fromkeys(frame["policy"]))
    by_policy = len(groups) > 1 and policy_markers
    shape = dict(zip(policies, _cycle(MARKERS, len(policies)), strict=True))
    colors = _cycle(GROUP_COLORS if by_policy else PALETTE, len(groups))
    with mpl.rc_context(STYLE):
        fig = _new_figure(3.0 + 0.17 * max(len(groups) - 1, 0) + (0.17 if title and len(groups) > 1 else 0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.7, zorder=0)
        handles = []
        for (task, group), color, marker in zip(groups, colors, _cycle(MARKERS, len(groups)), strict=True):
            sim, real = group["sim_rate"].to_numpy(float), group["real_rate"].to_numpy(float)
            metrics = f"MMRV {mmrv(sim, real):.3f}, Pearson r {pearson_r(sim, real):.2f}"
            label = metrics if len(groups) == 1 else f"{task}: {metrics}"
            if by_policy:
                for policy, s, r in zip(group["policy"], sim, real, strict=True):
                    ax.scatter(s, r, s=16, color=color, marker=shape[policy], zorder=3, linewidths=0)
                handles.append(
                    Line2D([], [], color=color, marker="o", linestyle="", markersize=4, label=label)
                )
            else:
                ax.scatter(sim, real, s=16, color=color, marker=marker, label=label, zorder=3)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        ax.set_xlabel("simulated success rate")
        ax.set_ylabel("real-world success rate")
        ax.grid(linewidth=0.4, alpha=0.5)
        if len(groups) == 1:
            ax.legend(loc="upper left", handletextpad=0.3, title=title)
            points = list(zip(frame["sim_rate"].astype(float), frame["real_rate"].astype(float), strict=True))
            place_point_labels(fig, ax, points, [str(p) for p in frame["policy"]])
        else:
            if by_policy:
                shapes = [
                    Line2D([], [], color="0.35", marker=shape[p], linestyle="", markersize=4, label=p)
                    for p in policies
                ]
                ax.legend(handles=shapes, loc="best", handletextpad=0.2, fontsize=7, borderaxespad=0.2)
                fig.legend(
                    handles=handles, loc="outside lower center", ncol=1, handletextpad=0.3, title=title
                )
            else:
                fig.legend(loc="outside lower center", ncol=1, handletextpad=0.3, title=title)
        return save_figure(fig, stem, formats)


# --- (f) SimplerEnv per-task bars ------------------------------------------------------------------


def simpler_task_frame(
    runs: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Long table ``label, mode, family, group, task, rate, low, high, partial, trials`` with one row per
    loaded SimplerEnv-style run and task (:func:`bench.simreal.simpler_rows` at task level)."""
    labels = list(labels) if labels is not None else simpler_labels(runs)
    rows = [
        {"label": label, "mode": run["summary"]["mode"], **row}
        for run, label in zip(runs, labels, strict=True)
        for row in simpler_rows(run, "task")
    ]
    columns = ["label", "mode", "family", "group", "task", "rate", "low", "high", "partial", "trials"]
    return pd.DataFrame(rows).reindex(columns=columns)


def _light(color: str, amount: float = 0.6) -> tuple[float, float, float]:
    rgb = np.array(mpl.colors.to_rgb(color))
    return tuple(rgb + (1 - rgb) * amount)


def plot_simpler_tasks(
    frame: pd.DataFrame,
    stem: str | Path,
    family: str | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Per-task success bars of :func:`simpler_task_frame` rows (``family``: only it):
    tasks as rows in SimplerEnv's order, one bar per policy, one panel per mode; partial success (Bridge)
    the lighter bar behind; whiskers: Wilson 95 % intervals where the rate is a pooled proportion.
    """
    if family is not None:
        frame = frame[frame["family"] == family]
    if frame.empty:
        raise ValueError(f"no SimplerEnv-style task rows{'' if family is None else f' for {family}'}")
    known = list(TASKS)
    tasks = sorted(set(frame["task"]), key=lambda t: (known.index(t) if t in known else len(known), t))
    group_of = dict(zip(frame["task"], frame["group"], strict=True))
    labels = list(dict.fromkeys(frame["label"]))
    modes = [m for m in MODES if m in set(frame["mode"])]
    colors = dict(zip(labels, _cycle(PALETTE, len(labels)), strict=True))
    has_partial = frame["partial"].notna().any()
    n_bars = len(labels)
    names = [textwrap.fill(t.replace("_", " "), 17) for t in tasks]
    row_h = max(0.07 + 0.052 * n_bars, 0.06 + 0.125 * max(n.count("\n") + 1 for n in names))
    legend_rows = int(np.ceil((n_bars + has_partial) / 2))
    with mpl.rc_context(STYLE):
        fig = _new_figure(0.75 + row_h * len(tasks) + 0.15 * legend_rows, COLUMN_WIDTH_IN)
        axes = fig.subplots(1, len(modes), sharey=True, squeeze=False)[0]
        height = 0.8 / n_bars
        for ax, mode in zip(axes, modes, strict=True):
            part = frame[frame["mode"] == mode].set_index(["label", "task"])
            for j, label in enumerate(labels):
                y = np.arange(len(tasks)) - 0.4 + height * (j + 0.5)
                for i, task in enumerate(tasks):
                    if (label, task) not in part.index:
                        continue
                    row = part.loc[(label, task)]
                    if has_partial and pd.notna(row["partial"]):
                        ax.barh(y[i], row["partial"], height=height, color=_light(colors[label]), linewidth=0)
                    ax.barh(y[i], row["rate"], height=height, color=colors[label], linewidth=0)
                    if pd.notna(row["low"]) and pd.notna(row["high"]):
                        ax.plot([row["low"], row["high"]], [y[i], y[i]], color="0.15", linewidth=0.5)
            for i in range(1, len(tasks)):
                if group_of[tasks[i]] != group_of[tasks[i - 1]]:
                    ax.axhline(i - 0.5, color="0.75", linewidth=0.4)
            ax.set_xlim(0, 1)
            ax.set_xticks([0, 0.5, 1], ["0", ".5", "1"])
            ax.set_ylim(len(tasks) - 0.5, -0.5)
            ax.set_title(MODE_TITLES[mode])
            ax.set_xlabel("success rate")
            ax.grid(axis="x", linewidth=0.4, alpha=0.5)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", length=0)
        axes[0].set_yticks(range(len(tasks)), names, fontsize=7)
        handles = [Patch(color=colors[label], label=label) for label in labels]
        if has_partial:
            handles.append(Patch(color=_light("0.3"), label="lighter: partial (grasped)"))
        fig.legend(handles=handles, loc="outside lower center", ncol=2, handlelength=1.0, columnspacing=1.0)
        if family is not None:
            fig.suptitle(FAMILY_TITLES.get(family, family))
        return save_figure(fig, stem, formats)


# --- (g) SimplerEnv runs vs real-world results ------------------------------------------------------


def simpler_sim_real_frame(
    runs: Sequence[Mapping[str, Any]],
    real: pd.DataFrame,
    names: Mapping[str, str] | None = None,
    log=print,
) -> pd.DataFrame:
    """``policy, task, sim_rate, real_rate`` per task group of one mode's runs matched
    to the real table's policies (:func:`bench.simreal.match_policy`); runs matching none (or a taken
    policy) are left out with a note, groups with fewer than two policies dropped.
    """
    policies = list(dict.fromkeys(real["policy"]))
    matched: dict[str, Mapping[str, Any]] = {}
    unmatched = []
    for run in runs:
        policy, _ = match_policy(run, policies, names)
        if policy is None or policy in matched:
            unmatched.append(Path(run["path"]).name)
            continue
        matched[policy] = run
    if unmatched:
        log(f"left out run(s) matching no (other) policy of the real-world results: {', '.join(unmatched)}")
    pairs = sim_real_pairs(matched, real)
    groups = agreement(pairs[pairs["level"] == "group"])["groups"]
    rows = [
        (policy, name.replace("_", " "), float(sim), float(real_rate))
        for name, entry in groups.items()
        for policy, sim, real_rate in sorted(zip(entry["policies"], entry["sim"], entry["real"], strict=True))
    ]
    return pd.DataFrame(rows, columns=["policy", "task", "sim_rate", "real_rate"])


def plot_simpler_sim_vs_real(
    frame: pd.DataFrame, stem: str | Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """:func:`plot_sim_vs_real` of :func:`simpler_sim_real_frame`: one colour per task group (with its
    MMRV and Pearson r), one marker per policy, and the mean over the groups as the legend title."""
    per_group = [
        (mmrv(g["sim_rate"], g["real_rate"]), pearson_r(g["sim_rate"], g["real_rate"]))
        for _, g in frame.groupby("task", sort=False)
    ]
    title = None
    if len(per_group) > 1:
        m, r = np.mean(per_group, axis=0)
        title = f"mean of {len(per_group)} groups: MMRV {m:.3f}, Pearson r {r:.2f}"
    return plot_sim_vs_real(frame, stem, formats, title=title, policy_markers=True)


# --- all of them -----------------------------------------------------------------------------------


def simpler_figures(
    runs: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    formats: Sequence[str] = FORMATS,
    log: Callable[[str], None] = print,
    real_results: str | Path = REFERENCE_CSV,
    names: Mapping[str, str] | None = None,
    **_: object,
) -> list[Path]:
    """``simpler_tasks_<family>`` and ``sim_vs_real_simpler_<mode>`` of loaded runs, matched to
    the policies of ``real_results`` (``names``: run folder or name -> policy); a scatter without two
    matched policies in a group is skipped with a ``log`` line.
    """
    written: list[Path] = []
    frame = simpler_task_frame(runs)
    for family in [*FAMILIES, *sorted(set(frame["family"]) - set(FAMILIES))]:
        if (frame["family"] == family).any():
            written += plot_simpler_tasks(
                frame, out / f"simpler_tasks_{family}", family=family, formats=formats
            )
    real = load_real_results(real_results)
    for mode in MODES:
        stem = f"sim_vs_real_simpler_{mode}"
        of_mode = [run for run in runs if run["summary"]["mode"] == mode]
        if not of_mode:
            continue
        pairs = simpler_sim_real_frame(of_mode, real, names, log=lambda m, s=stem: log(f"{s}: {m}"))
        if pairs.empty:
            log(f"{stem}: skipped (no task group with 2 or more runs matched to policies of {real_results})")
            continue
        written += plot_simpler_sim_vs_real(pairs, out / stem, formats=formats)
    return written
