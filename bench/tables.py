"""The leaderboard tables of the built-in suites and the formatting they share (each suite declares
its table in :meth:`bench.suites.Suite.leaderboard_table`). CALVIN: one row per run, best average
length first, with the published numbers (``shared/reference/calvin.md``) as rows of ``source``
``published``; SimplerEnv: one row per task group and policy, both modes side by side, a table per
robot family; real world: success over operator-judged trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.results import RunFormatError
from bench.simreal import FAMILY_TITLES, group_order, load_simpler_run, simpler_labels, simpler_rows
from bench.suites import LeaderboardTable
from envs.simpler import FAMILIES, GROUPS, TASKS

PUBLISHED = "published"

#: Published CALVIN results: (method, training split, success 1..5 in a row, average length),
#: evaluated on scene D with CALVIN's 1000 chains (``shared/reference/calvin.md``).
CALVIN_PUBLISHED: tuple[tuple[str, str, tuple[float, ...], float], ...] = (
    ("MCIL", "ABC->D", (0.304, 0.013, 0.002, 0.0, 0.0), 0.31),
    ("RT-1", "ABC->D", (0.533, 0.222, 0.094, 0.038, 0.013), 0.90),
    ("HULC", "ABC->D", (0.418, 0.165, 0.057, 0.019, 0.011), 0.67),
    ("GR-1", "ABC->D", (0.854, 0.712, 0.596, 0.497, 0.401), 3.06),
    ("RoboVLMs KosMos P.H.", "ABC->D", (0.980, 0.936, 0.854, 0.778, 0.704), 4.25),
    ("RoboVLMs KosMos P.H.", "ABCD->D", (0.967, 0.930, 0.899, 0.865, 0.826), 4.49),
)

CALVIN_COLUMNS = [
    "policy",
    "split",
    "scene",
    "env",
    "n_chains",
    *[f"sr{i}{part}" for i in range(1, 6) for part in ("", "_low", "_high")],
    "avg_len",
    "avg_len_low",
    "avg_len_high",
    "source",
    "run",
    "n_errors",
    "shard",
    "missing_chains",
    "backbone",
    "structure",
    "head",
    "seed",
    "chains_source",
    "first_task",
    "max_steps",
    "version",
    "git_commit",
]


# --- formatting ----------------------------------------------------------------------------------


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_interval(
    value: float, low: float | None, high: float | None, digits: int = 3, ci_digits: int | None = None
) -> str:
    """``0.900 [0.60, 0.98]``; just the value when the bounds are missing; ``-`` when it is."""
    if is_missing(value):
        return "-"
    text = f"{value:.{digits}f}"
    if is_missing(low) or is_missing(high):
        return text
    ci_digits = max(digits - 1, 1) if ci_digits is None else ci_digits
    return f"{text} [{low:.{ci_digits}f}, {high:.{ci_digits}f}]"


def interval_cells(table: pd.DataFrame, value: str, low: str, high: str, **digits: int) -> list[str]:
    """:func:`fmt_interval` of every row's ``value`` between ``low`` and ``high`` columns."""
    return [fmt_interval(*v, **digits) for v in zip(table[value], table[low], table[high], strict=True)]


def markdown_table(frame: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of a DataFrame (``|`` escaped)."""
    header = [str(c) for c in frame.columns]
    align = list(align) if align is not None else ["l"] * len(header)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
    ]
    for row in frame.itertuples(index=False):
        cells = ["" if is_missing(v) else str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def display_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- CALVIN ----------------------------------------------------------------------------------------


def calvin_published_rows() -> pd.DataFrame:
    """Published CALVIN numbers as leaderboard rows (``source == "published"``, no intervals)."""
    rows = [
        {"policy": method, "split": split, "scene": "D", "env": "calvin_env", "source": PUBLISHED}
        | {f"sr{i}": rate for i, rate in enumerate(rates, 1)}
        | {"avg_len": avg_len}
        for method, split, rates, avg_len in CALVIN_PUBLISHED
    ]
    return pd.DataFrame(rows)


def build_calvin(runs: pd.DataFrame, include_published: bool = True) -> pd.DataFrame:
    table = runs.copy()
    if not table.empty:
        table["run"] = table["run"].map(display_path)
        table["source"] = "run"
    parts = [table, calvin_published_rows() if include_published else pd.DataFrame()]
    parts = [p for p in parts if not p.empty]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CALVIN_COLUMNS)
    for column in CALVIN_COLUMNS:
        if column not in table.columns:
            table[column] = None
    table = table.sort_values(
        ["avg_len", "sr5", "policy", "source"], ascending=[False, False, True, True], kind="stable"
    )
    table = table.reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table[["rank", *CALVIN_COLUMNS]]


def _calvin_source(row: pd.Series) -> str:
    """The source cell: ``published``, or the run folder with notes (errors, shard, partial)."""
    if row["source"] == PUBLISHED:
        return PUBLISHED
    notes = []
    if not is_missing(row.get("n_errors")) and row["n_errors"]:
        notes.append(f"{int(row['n_errors'])} chain errors")
    if not is_missing(row.get("shard")) and row["shard"]:
        notes.append(f"shard {row['shard']}")
    if not is_missing(row.get("missing_chains")) and row["missing_chains"]:
        notes.append(f"partial: {int(row['missing_chains'])} chains missing")
    return f"`{row['run']}`" + (f" ({'; '.join(notes)})" if notes else "")


#: CALVIN's step budget per instruction; a run with another says so in its chains cell.
CALVIN_MAX_STEPS = 360


def _calvin_chains(row: pd.Series) -> str:
    """The chains cell: the count, and the set-up where it is not CALVIN's (a fixed first task, a
    step budget other than 360), so rows of other set-ups are not read as comparable."""
    if is_missing(row.get("n_chains")):
        return "-"
    notes = []
    if not is_missing(row.get("first_task")):
        notes.append(f"first task {row['first_task']}")
    if not is_missing(row.get("max_steps")) and int(row["max_steps"]) != CALVIN_MAX_STEPS:
        notes.append(f"{int(row['max_steps'])} steps")
    return str(int(row["n_chains"])) + (f" ({', '.join(notes)})" if notes else "")


def calvin_markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "#": table["rank"],
            "policy": [
                f"{p} *({PUBLISHED})*" if s == PUBLISHED else p
                for p, s in zip(table["policy"], table["source"], strict=True)
            ],
            "split": table["split"].map(lambda v: "-" if is_missing(v) else v),
            "scene": table["scene"],
            "env": table["env"].map(lambda v: "ours" if is_missing(v) else v),
            "chains": [_calvin_chains(row) for _, row in table.iterrows()],
            **{str(i): interval_cells(table, f"sr{i}", f"sr{i}_low", f"sr{i}_high") for i in range(1, 6)},
            "avg len": interval_cells(table, "avg_len", "avg_len_low", "avg_len_high", digits=2, ci_digits=2),
            "source": [_calvin_source(row) for _, row in table.iterrows()],
        }
    )
    n_runs = int((table["source"] != PUBLISHED).sum())
    intro = (
        f"{n_runs} run(s). Columns 1-5: fraction of chains that completed at least that many "
        "instructions in a row, with Wilson 95 % intervals; avg len: mean number of instructions "
        "completed per chain (0-5), with a 95 % interval of the mean over chains (zero width when "
        "every chain completed the same number); chains: how many, at CALVIN's 360 steps per instruction "
        "unless the cell names a fixed first task or another budget (such rows are not comparable with "
        "the others). Sorted by average length. Rows marked *published* are numbers reported by their authors on CALVIN scene D "
        "with 1000 chains (training split ABC->D or ABCD->D); they report no intervals. A split of "
        "`-` means the run does not record its training data. env: the play table the run used, "
        "`ours` (our PyBullet reproduction) or `calvin_env` (CALVIN's own env through `--env calvin_env`)."
    )
    align = ["r", "l", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"]
    return intro + "\n\n" + markdown_table(shown, align)


CALVIN_TABLE = LeaderboardTable("CALVIN-style long-horizon evaluation", build_calvin, calvin_markdown)


# --- real world ------------------------------------------------------------------------------------


def build_real(runs: pd.DataFrame, include_published: bool = True) -> pd.DataFrame:
    cols = ["policy", "n_trials", "success_rate", "success_rate_low", "success_rate_high", "run"]
    table = runs.reindex(columns=cols).sort_values("success_rate", ascending=False, kind="stable")
    return table.reset_index(drop=True)


def real_markdown(table: pd.DataFrame) -> str:
    frame = pd.DataFrame(
        {
            "#": range(1, len(table) + 1),
            "policy": table["policy"].astype(str),
            "trials": table["n_trials"].astype(str),
            "success": interval_cells(table, "success_rate", "success_rate_low", "success_rate_high"),
            "source": [f"`{run}`" for run in table["run"]],
        }
    )
    intro = (
        "Operator-judged trials on a real robot (python -m bench.run --suite real), with Wilson 95 % "
        "intervals; per-task counts are in each run's summary.json."
    )
    return intro + "\n\n" + markdown_table(frame, ["r", "l", "r", "r", "l"])


REAL_TABLE = LeaderboardTable("Real-world evaluation", build_real, real_markdown)


# --- SimplerEnv ------------------------------------------------------------------------------------

SIMPLER_COLUMNS = [
    "family",
    "group",
    "rank",
    "policy",
    *[f"vm_{part}" for part in ("rate", "low", "high", "partial", "trials")],
    *[f"va_{part}" for part in ("rate", "low", "high", "partial", "trials", "camera")],
    "vm_run",
    "va_run",
]
#: The ``group`` of the per-family average rows.
AVERAGE = "average"


def build_simpler(runs: pd.DataFrame, include_published: bool = True) -> pd.DataFrame:
    """One row per task group and policy: visual-matching (``vm_``) and variant-aggregation
    (``va_``) scores side by side, runs of one policy paired by label.

    ``*_rate`` is the group rate, ``*_low``/``*_high`` its Wilson interval where it is a pooled proportion
    (:func:`bench.simreal.pooled_interval`), ``*_partial`` the partial success, ``*_trials`` the counting
    trials, ``va_camera`` the camera-orientation variants' mean. Per family an ``average`` row averages the
    groups of runs covering all of them. Sorted by family, group, then rates; malformed runs warn and are
    left out. There are no published simulation numbers.
    """
    loaded = []
    for path in runs.get("run", []):
        try:
            loaded.append(load_simpler_run(path))
        except RunFormatError as exc:
            warnings.warn(f"skipped run: {exc}", stacklevel=2)

    entries: dict[tuple[str, str, str], dict[str, object]] = {}
    for run, label in zip(loaded, simpler_labels(loaded, scene_set=True), strict=True):
        prefix = "vm" if run["summary"]["mode"] == "visual_matching" else "va"
        rows = simpler_rows(run)
        for family in FAMILIES:
            members = [r for r in rows if r["family"] == family]
            needed = {g for g, tasks in GROUPS.items() if TASKS[tasks[0]].family == family}
            if members and needed <= {r["group"] for r in members}:
                means = {k: [r[k] for r in members] for k in ("rate", "partial", "camera")}
                means = {k: None if None in v else sum(v) / len(v) for k, v in means.items()}
                rows.append(
                    {"family": family, "group": AVERAGE, **means, "trials": sum(r["trials"] for r in members)}
                )
        for row in rows:
            entry = entries.setdefault(
                (label, row["family"], row["group"]),
                {"family": row["family"], "group": row["group"], "policy": label},
            )
            for part in ("rate", "low", "high", "partial", "trials"):
                entry[f"{prefix}_{part}"] = row.get(part)
            if prefix == "va":
                entry["va_camera"] = row["camera"]
            entry[f"{prefix}_run"] = display_path(str(run["path"]))
    table = pd.DataFrame(list(entries.values()))
    for column in SIMPLER_COLUMNS:
        if column not in table.columns:
            table[column] = None
    if table.empty:
        return table[SIMPLER_COLUMNS]
    families = [*FAMILIES, *sorted(set(table["family"]) - set(FAMILIES))]
    groups = group_order(set(table["group"]) - {AVERAGE}) + [AVERAGE]
    table["_f"] = table["family"].map(families.index)
    table["_g"] = table["group"].map(groups.index)
    for prefix in ("vm", "va"):
        table[f"_{prefix}"] = -pd.to_numeric(table[f"{prefix}_rate"], errors="coerce")
    table = table.sort_values(["_f", "_g", "_vm", "_va", "policy"], na_position="last", kind="stable")
    table["rank"] = table.groupby(["family", "group"]).cumcount() + 1
    return table.reset_index(drop=True)[SIMPLER_COLUMNS]


def simpler_markdown(table: pd.DataFrame) -> str:
    n_policies = table["policy"].nunique()
    intro = (
        f"{n_policies} policy(ies). Per task group: the success rate in visual matching and in variant "
        "aggregation (equal-weight mean over the base scene and its lighting, table-texture, background and "
        "distractor variants), with Wilson 95 % intervals where the rate is a pooled proportion (equal "
        "trials per task and variant); *VA camera*: mean over the two camera-orientation variants, which "
        "variant aggregation leaves out. Bridge tasks add partial success (the source object was grasped). "
        "*average*: mean of the family's group rates, for runs that cover every group. `-`: not run. "
        "Sorted by visual matching, then variant aggregation. Agreement with real-world results: "
        "`python -m bench.simreal`. The scene set follows each policy's name: *(simpler)* runs are on "
        "SimplerEnv's own robots, objects and overlays (`--embodiment simpler`); *(panda)* runs are on "
        "our offline primitive Panda scenes and are not comparable with SimplerEnv's numbers."
    )
    sections = [intro]
    for family, part in table.groupby("family", sort=False):
        bridge = part[["vm_partial", "va_partial"]].notna().any().any()
        shown = pd.DataFrame(
            {
                "group": [g if r == 1 else "" for g, r in zip(part["group"], part["rank"], strict=True)],
                "#": part["rank"],
                "policy": part["policy"],
                "visual matching": interval_cells(part, "vm_rate", "vm_low", "vm_high"),
                "variant aggregation": interval_cells(part, "va_rate", "va_low", "va_high"),
                "VA camera": part["va_camera"].map(lambda v: fmt_interval(v, None, None)),
            }
        )
        align = ["l", "r", "l", "r", "r", "r"]
        if bridge:
            shown["partial VM"] = part["vm_partial"].map(lambda v: fmt_interval(v, None, None)).to_numpy()
            shown["partial VA"] = part["va_partial"].map(lambda v: fmt_interval(v, None, None)).to_numpy()
            align += ["r", "r"]
        shown["source"] = [
            "; ".join(f"`{r}`" for r in (row["vm_run"], row["va_run"]) if not is_missing(r))
            for _, row in part.iterrows()
        ]
        align.append("l")
        title = FAMILY_TITLES.get(family, str(family))
        sections.append(f"### {title}\n\n" + markdown_table(shown, align))
    return "\n\n".join(sections)


SIMPLER_TABLE = LeaderboardTable("SimplerEnv-style evaluation", build_simpler, simpler_markdown)
