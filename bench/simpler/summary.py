"""summary.json of a SimplerEnv-style run from its episode records (no simulator needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench.engine import is_error
from bench.stats import proportion
from envs.simpler.tasks import GROUPS, TASKS
from envs.simpler.variants import VARIANTS


def _counts(records: Sequence[Mapping[str, Any]], family: str) -> dict[str, Any]:
    n = len(records)
    out = {**proportion(sum(bool(r["success"]) for r in records), n), "partial_rate": None}
    if family == "bridge" and n:
        out["partial_rate"] = sum(bool(r.get("partial")) for r in records) / n
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per task and variant counts with Wilson 95 % intervals, the modes' aggregates, groups, overall.

    ``aggregate_rate`` of a task is the equal-weight mean of its variants' rates over the variants
    that count (camera orientations are reported but left out, as in SimplerEnv); a group's rate is
    the mean of its tasks' aggregates; ``overall`` the mean of the groups'.
    """
    by_task: dict[str, list] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    tasks: dict[str, Any] = {}
    for name in [t for t in TASKS if t in by_task]:
        spec = TASKS[name]
        rows = by_task[name]
        variants = {}
        for v in [v for v in VARIANTS if any(r["variant"] == v for r in rows)]:
            variants[v] = {
                **_counts([r for r in rows if r["variant"] == v], spec.family),
                "in_aggregate": VARIANTS[v].in_aggregate,
            }
        counted = [c for c in variants.values() if c["in_aggregate"]]
        tasks[name] = {
            "family": spec.family,
            "group": spec.group,
            **_counts([r for r in rows if VARIANTS[r["variant"]].in_aggregate], spec.family),
            "aggregate_rate": _mean([c["rate"] for c in counted]),
            "aggregate_partial_rate": _mean([c["partial_rate"] for c in counted]),
            "variants": variants,
        }
    groups = {}
    for group, members in GROUPS.items():
        present = [tasks[t] for t in members if t in tasks]
        if not present:
            continue
        groups[group] = {
            "family": present[0]["family"],
            "tasks": [t for t in members if t in tasks],
            "rate": _mean([t["aggregate_rate"] for t in present]),
            "partial_rate": _mean([t["aggregate_partial_rate"] for t in present]),
        }
    return {
        "tasks": tasks,
        "groups": groups,
        "overall": _mean([g["rate"] for g in groups.values()]),
        "n_episodes": len(records),
        "n_errors": sum(map(is_error, records)),
    }
