"""Success statistics: Wilson intervals, CALVIN chain metrics and per-task tables (plain JSON values)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

#: Number of subtasks in a CALVIN chain.
CHAIN_LENGTH = 5


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` of ``successes`` out of ``trials``; ``(0, 1)``
    without trials.
    """
    successes, trials = int(successes), int(trials)
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got successes={successes}, trials={trials}")
    if trials == 0:
        return 0.0, 1.0
    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion(successes: int, trials: int, confidence: float = 0.95) -> dict[str, Any]:
    """``successes``, ``trials``, ``rate`` (None without trials) and the Wilson ``ci_low``, ``ci_high``."""
    low, high = wilson_interval(successes, trials, confidence)
    rate = successes / trials if trials else None
    return {"successes": successes, "trials": trials, "rate": rate, "ci_low": low, "ci_high": high}


def _check_completed(completed: Sequence[int], horizon: int) -> list[int]:
    values = [int(c) for c in completed]
    if not values:
        raise ValueError("no chains: chain metrics need at least one chain")
    bad = [c for c in values if not 0 <= c <= horizon]
    if bad:
        raise ValueError(f"completed counts must lie in 0..{horizon}, got {bad[:5]}")
    return values


def success_rates(completed: Sequence[int], horizon: int = CHAIN_LENGTH) -> list[float]:
    """Fraction of chains with at least ``i`` consecutive successes, ``i = 1..horizon``
    (``completed[c]``: subtasks chain ``c`` completed before its first failure); e.g.
    ``success_rates([0, 1, 5, 3]) == [0.75, 0.5, 0.5, 0.25, 0.25]``.
    """
    values = _check_completed(completed, horizon)
    return [sum(c >= i for c in values) / len(values) for i in range(1, horizon + 1)]


def success_rates_ci(
    completed: Sequence[int], horizon: int = CHAIN_LENGTH, confidence: float = 0.95
) -> list[tuple[float, float]]:
    """Wilson interval of each entry of :func:`success_rates`."""
    values = _check_completed(completed, horizon)
    return [
        wilson_interval(sum(c >= i for c in values), len(values), confidence) for i in range(1, horizon + 1)
    ]


def average_length(completed: Sequence[int], horizon: int = CHAIN_LENGTH) -> float:
    """Mean number of consecutive successes per chain (CALVIN's "average length", 0..horizon)."""
    values = _check_completed(completed, horizon)
    return sum(values) / len(values)


def completed_from_rates(success_rates: Sequence[float], n_chains: int) -> list[int]:
    """The per-chain ``completed`` counts (sorted) rebuilt from success 1..5 in a row:
    ``round(n * rate_i)`` chains reached at least ``i`` subtasks.
    """
    at_least = [n_chains] + [round(r * n_chains) for r in success_rates] + [0]
    counts = [max(at_least[i] - at_least[i + 1], 0) for i in range(len(at_least) - 1)]
    return [value for value, count in enumerate(counts) for _ in range(count)]


def mean_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    method: str = "bootstrap",
    resamples: int = 10_000,
    seed: int = 0,
    bounds: tuple[float, float] = (0.0, 5.0),
) -> tuple[float, float]:
    """Confidence interval of the mean of ``values`` (e.g. average length over chains), clipped
    to ``bounds``; ``(nan, nan)`` for no values.

    ``method``: ``"bootstrap"`` (percentile bootstrap, ``resamples`` draws with a fixed ``seed`` so tables
    are reproducible) or ``"normal"`` (mean +- z * s / sqrt(n)).
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    alpha = 1.0 - confidence
    if method == "normal":
        from scipy.stats import norm

        half = norm.ppf(1 - alpha / 2) * (data.std(ddof=1) / math.sqrt(data.size) if data.size > 1 else 0.0)
        low, high = data.mean() - half, data.mean() + half
    elif method == "bootstrap":
        # Resample the histogram of distinct values: exact for discrete data and cheap for large n.
        support, counts = np.unique(data, return_counts=True)
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(data.size, counts / data.size, size=resamples)
        means = draws @ support / data.size
        low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    else:
        raise ValueError(f"unknown interval method {method!r}: use 'bootstrap' or 'normal'")
    return float(max(low, bounds[0])), float(min(high, bounds[1]))


def chain_trials(tasks: Sequence[str], completed: int, attempted: int) -> list[tuple[str, bool]]:
    """The ``(task, success)`` trials of one chain: the first ``attempted`` tasks were tried,
    the first ``completed`` of them succeeded (a chain stops at its first failure).
    """
    if not 0 <= completed <= attempted <= len(tasks):
        raise ValueError(f"need 0 <= completed <= attempted <= {len(tasks)}, got {completed}, {attempted}")
    return [(tasks[j], j < completed) for j in range(attempted)]


def per_task_table(
    trials: Iterable[tuple[str, bool]], tasks: Iterable[str] = (), confidence: float = 0.95
) -> dict[str, dict]:
    """``{task: {successes, trials, rate, ci_low, ci_high}}`` of ``(task, success)`` trials,
    sorted by task; ``tasks`` are listed even without trials (rate ``None``).
    """
    counts: dict[str, list[int]] = {name: [0, 0] for name in tasks}
    for task, success in trials:
        entry = counts.setdefault(task, [0, 0])
        entry[0] += bool(success)
        entry[1] += 1
    return {task: proportion(*counts[task], confidence) for task in sorted(counts)}


def summarize_chains(records: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """Chain metrics of records (keys ``tasks``, ``completed``, ``steps``, ``stop_reason``):
    ``n_chains``, ``success_rates`` (1..5 in a row) and their Wilson ``success_rates_ci``, ``avg_len``,
    ``per_task``, ``n_errors`` and ``env_steps``.
    """
    completed = [r["completed"] for r in records]
    trials = [t for r in records for t in chain_trials(r["tasks"], r["completed"], len(r["steps"]))]
    return {
        "n_chains": len(records),
        "success_rates": success_rates(completed),
        "success_rates_ci": [list(ci) for ci in success_rates_ci(completed, confidence=confidence)],
        "avg_len": average_length(completed),
        "per_task": per_task_table(trials, confidence=confidence),
        "n_errors": sum(r["stop_reason"].startswith("error:") for r in records),
        "env_steps": sum(sum(r["steps"]) for r in records),
    }
