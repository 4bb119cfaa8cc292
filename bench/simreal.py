"""SimplerEnv-style runs and their agreement with real-world results (``shared/reference/simpler.md``):
SimplerEnv's metrics (:func:`mmrv`, :func:`pearson_r`: one rate per policy, sim first, real second),
the real-world results CSV (:func:`load_real_results`), a run's per-group or per-task rates
(:func:`simpler_rows`) and the pairing of runs with real policies (:func:`match_policy`,
:func:`sim_real_pairs`, :func:`agreement`). ``python -m bench.simreal`` is :mod:`bench.simreal_cli`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import rundir
from bench.results import RunFormatError, load_run
from bench.rundir import SUMMARY_FILE
from bench.stats import wilson_interval
from bench.suites.simpler import SimplerSuite
from envs.simpler import GROUPS, TASKS

FAMILY_TITLES = {"google_robot": "Google robot", "bridge": "WidowX (Bridge)"}
#: Names a real-results CSV may use in its ``task`` column: every group, then every task.
REAL_TASK_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*GROUPS, *TASKS]))
REAL_COLUMNS = ("policy", "task", "success", "partial")
#: The real-world numbers SimplerEnv compares against (RT-1, RT-1-X, RT-2-X, Octo).
REFERENCE_CSV = Path(__file__).resolve().parent.parent / "results" / "real" / "simpler_reference.csv"


class RealResultsError(ValueError):
    """A real-world results CSV is malformed; the message names the file, line and column."""


# --- metrics ---------------------------------------------------------------------------------------


def _pair(sim: Sequence[float], real: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s, r = np.asarray(sim, dtype=float), np.asarray(real, dtype=float)
    if s.ndim != 1 or s.shape != r.shape:
        raise ValueError(f"sim and real need the same 1-D shape, got {s.shape} and {r.shape}")
    if s.size == 0:
        raise ValueError("need at least one policy")
    return s, r


def mmrv(sim: Sequence[float], real: Sequence[float]) -> float:
    """Mean maximum rank violation (lower is better; 0 when sim orders the policies as real does).

    ``MMRV = (1/N) sum_i max_j |R_i - R_j| * 1[(S_i > S_j) != (R_i > R_j)]``: weighted by the *real*
    gap, so not symmetric. Ties count as "not greater" on each side, as in SimplerEnv's implementation.
    """
    s, r = _pair(sim, real)
    violated = (s[:, None] > s[None, :]) != (r[:, None] > r[None, :])
    gaps = np.abs(r[:, None] - r[None, :]) * violated
    return float(gaps.max(axis=1).mean())


def pearson_r(sim: Sequence[float], real: Sequence[float]) -> float:
    """Pearson r as SimplerEnv computes it (``+ 1e-8`` in the denominator), exactly 1 when the
    centred vectors are equal (two constant vectors included).
    """
    s, r = _pair(sim, real)
    s, r = s - s.mean(), r - r.mean()
    if np.array_equal(s, r):
        return 1.0
    return float(np.sum(s * r) / (np.sqrt(np.sum(s**2) * np.sum(r**2)) + 1e-8))


# --- real-world results CSV ------------------------------------------------------------------------


def _rate_cell(text: str, where: str, column: str, required: bool) -> float | None:
    text = text.strip()
    if not text:
        if required:
            raise RealResultsError(
                f"{where}: column {column!r}: expected a rate in [0, 1], got an empty cell"
            )
        return None
    try:
        value = float(text)
    except ValueError:
        raise RealResultsError(
            f"{where}: column {column!r}: expected a rate in [0, 1], got {text!r}"
        ) from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        hint = f" (a percentage? write {value / 100:g})" if 1 < value <= 100 else ""
        raise RealResultsError(f"{where}: column {column!r}: expected a rate in [0, 1], got {text!r}{hint}")
    return value


def load_real_results(path: str | Path) -> pd.DataFrame:
    """A real-world results CSV: header ``policy,task,success,partial`` (any order), one row
    per policy and task; ``task`` a SimplerEnv group or task, ``success`` a rate, ``partial`` a rate or empty
    (NaN). :class:`RealResultsError` names the file, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise RealResultsError(f"{path}: cannot read the real-world results ({reason})") from None
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        raise RealResultsError(f"{path}: empty file (expected the header {','.join(REAL_COLUMNS)})")
    header = [h.strip() for h in header]
    if sorted(header) != sorted(REAL_COLUMNS):
        raise RealResultsError(
            f"{path}:1: expected the header columns {','.join(REAL_COLUMNS)}, got {','.join(header)}"
        )
    index = {name: header.index(name) for name in REAL_COLUMNS}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        where = f"{path}:{line}"
        if len(cells) != len(header):
            raise RealResultsError(f"{where}: expected {len(header)} columns, got {len(cells)}")
        policy, task = cells[index["policy"]].strip(), cells[index["task"]].strip()
        if not policy:
            raise RealResultsError(f"{where}: column 'policy': expected a policy name, got an empty cell")
        if task not in REAL_TASK_NAMES:
            raise RealResultsError(
                f"{where}: column 'task': unknown task {task!r}; valid names: {', '.join(REAL_TASK_NAMES)}"
            )
        if (policy, task) in seen:
            raise RealResultsError(
                f"{where}: policy {policy!r}, task {task!r} already given on line {seen[policy, task]}"
            )
        seen[policy, task] = line
        success = _rate_cell(cells[index["success"]], where, "success", required=True)
        partial = _rate_cell(cells[index["partial"]], where, "partial", required=False)
        rows.append({"policy": policy, "task": task, "success": success, "partial": partial})
    if not rows:
        raise RealResultsError(f"{path}: no rows after the header")
    frame = pd.DataFrame(rows, columns=list(REAL_COLUMNS))
    frame["partial"] = frame["partial"].astype(float)
    return frame


# --- SimplerEnv-style runs -------------------------------------------------------------------------


def run_suite(folder: Path) -> str | None:
    """The ``suite`` of a run folder's summary.json, ``None`` when it cannot be read."""
    try:
        suite = rundir.read_json_object(folder / SUMMARY_FILE).get("suite")
    except rundir.RunFolderError:
        return None
    return suite if isinstance(suite, str) else None


def load_simpler_run(path: str | Path) -> dict[str, Any]:
    """:func:`bench.results.load_run` of a SimplerEnv-style run; a :class:`~bench.results.RunFormatError`
    for a run of another suite, before that suite's checks."""
    path = Path(path)
    suite = run_suite(path.parent if path.name == SUMMARY_FILE else path)
    if suite not in (SimplerSuite.name, None):
        raise RunFormatError(
            f"{path}: suite {suite!r} is not a SimplerEnv-style run (expected suite "
            f"{SimplerSuite.name!r}, written by python -m bench.run --suite simpler)"
        )
    return load_run(path)


def _family(group: str, entry: Mapping) -> str:
    return entry.get("family") or (TASKS[GROUPS[group][0]].family if group in GROUPS else "?")


def simpler_labels(runs: Sequence[Mapping[str, Any]], scene_set: bool = False) -> list[str]:
    """Labels of SimplerEnv-style runs: the policy (``scene_set``: with the run's scenes, ``octo
    (panda)``, as Panda rows are not SimplerEnv's), plus the run folder's name when one label has two
    runs of the same mode."""
    names = [run["summary"]["policy"] for run in runs]
    if scene_set:
        names = [
            f"{n} ({run['summary'].get('embodiment', 'panda')})" for n, run in zip(names, runs, strict=True)
        ]
    keys = [(name, run["summary"]["mode"]) for name, run in zip(names, runs, strict=True)]
    count = Counter(keys)
    return [
        n if count[n, m] == 1 else f"{n} [{Path(run['path']).name}]"
        for (n, m), run in zip(keys, runs, strict=True)
    ]


def group_order(groups) -> list[str]:
    """Group (and task) names in SimplerEnv's order: groups, then tasks, then unknown names sorted."""
    known = list(REAL_TASK_NAMES)
    return sorted(groups, key=lambda g: (known.index(g) if g in known else len(known), g))


def _counting_cells(task_entry: Mapping) -> list[Mapping]:
    """The variants that make up the task's aggregate rate (the task itself when it lists none)."""
    variants = task_entry.get("variants") or {}
    cells = [v for v in variants.values() if v.get("in_aggregate", True)]
    return cells or [task_entry]


def pooled_interval(task_entries: Sequence[Mapping], rate: float) -> tuple[float | None, float | None, int]:
    """Wilson 95 % interval of an equal-weight mean of rates, and its trials: given only where
    every counting cell has the same trials (then the mean is the pooled proportion), else ``None`` bounds.
    """
    cells = [c for entry in task_entries for c in _counting_cells(entry)]
    trials = [c["trials"] for c in cells]
    n, k = sum(trials), sum(c["successes"] for c in cells)
    if not cells or n == 0 or len(set(trials)) != 1 or not math.isclose(k / n, rate, abs_tol=1e-6):
        return None, None, n
    low, high = wilson_interval(k, n)
    return low, high, n


def _task_partial(entry: Mapping) -> float | None:
    """Equal-weight mean of the counting variants' partial rates (else the task's own)."""
    variants = (entry.get("variants") or {}).values()
    values = [v.get("partial_rate") for v in variants if v.get("in_aggregate", True)]
    if values and all(rundir.is_rate(v) for v in values):
        return float(np.mean(values))
    return entry.get("partial_rate")


def _camera_rate(entries: Sequence[Mapping]) -> float | None:
    """Mean success over the variants left out of the aggregate (camera orientations), per task
    then over tasks; ``None`` without any.
    """
    per_task = []
    for entry in entries:
        rates = [
            v["successes"] / v["trials"]
            for v in (entry.get("variants") or {}).values()
            if not v.get("in_aggregate", True) and v["trials"]
        ]
        if rates:
            per_task.append(float(np.mean(rates)))
    return float(np.mean(per_task)) if per_task else None


def simpler_rows(run: Mapping[str, Any], level: str = "group") -> list[dict[str, Any]]:
    """Per-group or per-task rows of a loaded run in SimplerEnv's order: ``family, group, task,
    rate`` (the mode's score), ``low, high, trials`` (:func:`pooled_interval`), ``partial`` and ``camera``
    (:func:`_camera_rate`).
    """
    if level not in ("group", "task"):
        raise ValueError(f"level must be 'group' or 'task', got {level!r}")
    summary = run["summary"]
    tasks = summary["tasks"]
    rows = []
    for group in group_order(summary["groups"]):
        entry = summary["groups"][group]
        listed = entry.get("tasks") or [t for t, e in tasks.items() if e["group"] == group]
        members = [t for t in listed if t in tasks]
        entries = [tasks[t] for t in members]
        if level == "group":
            named = [(group, entry["rate"], entry.get("partial_rate"), entries)]
        else:
            named = [
                (t, e["aggregate_rate"], _task_partial(e), [e]) for t, e in zip(members, entries, strict=True)
            ]
        for name, rate, partial, cells in named:
            low, high, n = pooled_interval(cells, rate)
            family = cells[0].get("family") if level == "task" else None
            rows.append(
                {
                    "family": family or _family(group, entry),
                    "group": group,
                    "task": name,
                    "rate": rate,
                    "partial": partial,
                    "camera": _camera_rate(cells),
                    "low": low,
                    "high": high,
                    "trials": n,
                }
            )
    return rows


# --- matching runs to real-world policies and the agreement per group -------------------------------


def normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(name).lower())


def match_policy(
    run: Mapping[str, Any], policies: Sequence[str], names: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """The real-world policy a run stands for, and how it was found: ``names`` (run folder or
    its name -> policy), the folder's name, then the summary's policy, compared by :func:`normalize_name`.
    ``(None, "")`` when nothing matches; a ``names`` entry naming an unknown policy is a ``ValueError``.
    """
    folder = Path(run["path"])
    by_norm: dict[str, str] = {}
    for policy in policies:
        by_norm.setdefault(normalize_name(policy), policy)
    for key, policy in (names or {}).items():
        if Path(key).resolve() == folder.resolve() or key == folder.name:
            if policy in policies:
                return policy, "--name"
            if normalize_name(policy) in by_norm:
                return by_norm[normalize_name(policy)], "--name"
            raise ValueError(f"--name {key}={policy}: no policy {policy!r}; known: {', '.join(policies)}")
    for candidate, how in (
        (folder.name, "folder name"),
        (run["summary"].get("policy", ""), "summary policy"),
    ):
        if normalize_name(candidate) in by_norm:
            return by_norm[normalize_name(candidate)], how
    return None, ""


def sim_real_pairs(matched: Mapping[str, Mapping[str, Any]], real: pd.DataFrame) -> pd.DataFrame:
    """Sim and real rates side by side, one row per matched policy (``matched``: policy -> run)
    and real-table name the run has (``level`` group or task).
    """
    rows = []
    for policy, run in matched.items():
        summary = run["summary"]
        groups = {r["group"]: r for r in simpler_rows(run, "group")}
        tasks = {r["task"]: r for r in simpler_rows(run, "task")}
        for item in real[real["policy"] == policy].itertuples(index=False):
            source = groups.get(item.task) or tasks.get(item.task)
            if source is None:
                continue
            rows.append(
                {
                    "level": "group" if item.task in groups else "task",
                    "name": item.task,
                    "family": source["family"],
                    "policy": policy,
                    "sim_rate": float(source["rate"]),
                    "real_rate": float(item.success),
                    "sim_partial": source["partial"],
                    "real_partial": item.partial,
                    "run": str(run["path"]),
                    "mode": summary["mode"],
                }
            )
    columns = ["level", "name", "family", "policy", "sim_rate", "real_rate", "sim_partial", "real_partial"]
    return pd.DataFrame(rows, columns=[*columns, "run", "mode"])


def agreement(pairs: pd.DataFrame, min_policies: int = 2, also: Sequence[str] = ()) -> dict[str, Any]:
    """MMRV and Pearson r per group and task of :func:`sim_real_pairs` (with ``partial_`` ones
    where both sides have partial rates); names with fewer than ``min_policies`` policies, and names of
    ``also`` without pairs, are listed under ``skipped`` with the reason; ``overall``: mean over the groups.
    """
    out: dict[str, Any] = {"groups": {}, "tasks": {}, "skipped": {}}
    for name in group_order(set(pairs["name"]) | set(also)):
        part = pairs[pairs["name"] == name]
        policies = list(part["policy"])
        if len(policies) < min_policies:
            listed = f" ({', '.join(policies)})" if policies else ""
            noun = "policy" if len(policies) == 1 else "policies"
            out["skipped"][name] = (
                f"{len(policies)} matched {noun} with sim and real numbers{listed}; needs at least {min_policies}"
            )
            continue
        sim, real = part["sim_rate"].tolist(), part["real_rate"].tolist()
        entry = {
            "family": part["family"].iloc[0],
            "n_policies": len(policies),
            "policies": policies,
            "sim": sim,
            "real": real,
            "mmrv": mmrv(sim, real),
            "pearson_r": pearson_r(sim, real),
        }
        partial = part[["sim_partial", "real_partial"]].astype(float)
        if partial.notna().all().all():
            entry["partial_mmrv"] = mmrv(partial["sim_partial"], partial["real_partial"])
            entry["partial_pearson_r"] = pearson_r(partial["sim_partial"], partial["real_partial"])
        out["groups" if part["level"].iloc[0] == "group" else "tasks"][name] = entry
    groups = out["groups"].values()
    out["overall"] = {
        "n_groups": len(groups),
        "mmrv": float(np.mean([g["mmrv"] for g in groups])) if groups else None,
        "pearson_r": float(np.mean([g["pearson_r"] for g in groups])) if groups else None,
    }
    return out


if __name__ == "__main__":
    import sys

    from bench.simreal_cli import main

    sys.exit(main())
