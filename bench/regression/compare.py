"""The statistical comparison of current counts with a baseline (see bench.regression)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import boschloo_exact, fisher_exact

from bench.regression.counts import (
    BOSCHLOO_MAX_CELLS,
    DEFAULT_ALPHA,
    DEFAULT_MIN_TASK_TRIALS,
    MAY_DIFFER,
    MUST_MATCH,
    Baseline,
    Counts,
    SettingMismatch,
    _check_count,
)

# ----------------------------------------------------------------------------- the test


def drop_pvalue(base_k: int, base_n: int, cur_k: int, cur_n: int, method: str = "auto") -> tuple[float, str]:
    """One-sided p-value of "the current rate is lower than the baseline's", and the test used
    (``method`` ``auto``: Boschloo up to :data:`BOSCHLOO_MAX_CELLS`, else Fisher). A 0 % baseline and 100 %
    on both sides give ``p = 1`` without SciPy.
    """
    base_k, base_n = _check_count(base_k, base_n, "baseline")
    cur_k, cur_n = _check_count(cur_k, cur_n, "current")
    if base_n == 0 or cur_n == 0:
        raise ValueError(f"no trials to compare: baseline {base_k}/{base_n}, current {cur_k}/{cur_n}")
    if method not in ("auto", "boschloo", "fisher"):
        raise ValueError(f"method must be auto, boschloo or fisher, got {method!r}")
    if method == "auto":
        method = "boschloo" if base_n * cur_n <= BOSCHLOO_MAX_CELLS else "fisher"
    if base_k == 0 or (base_k == base_n and cur_k == cur_n):
        return 1.0, method
    # Columns are the two samples; "greater": the baseline's success probability is the larger.
    table = [[base_k, cur_k], [base_n - base_k, cur_n - cur_k]]
    if method == "boschloo":
        p = boschloo_exact(table, alternative="greater").pvalue
    else:
        p = fisher_exact(table, alternative="greater")[1]
    p = float(p)
    if math.isnan(p):  # not expected after the checks above; never let NaN pass silently
        raise ArithmeticError(
            f"{method} test gave NaN for baseline {base_k}/{base_n}, current {cur_k}/{cur_n}"
        )
    return min(max(p, 0.0), 1.0), method


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (reject where adjusted p <= alpha), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class MetricResult:
    """One row of a :class:`RegressionReport`; ``p_value``, ``p_adjusted`` and ``test`` are None
    when the metric was not tested (``verdict`` says why).
    """

    metric: str
    baseline: tuple[int, int]
    current: tuple[int, int]
    p_value: float | None
    p_adjusted: float | None
    test: str | None
    verdict: str

    @property
    def regressed(self) -> bool:
        return self.verdict == "DROP"

    @property
    def tested(self) -> bool:
        return self.p_value is not None


def _frac(kn: tuple[int, int]) -> str:
    k, n = kn
    return f"{k}/{n} ({100 * k / n:.1f}%)" if n else f"{k}/{n} (-)"


def _rate(kn: tuple[int, int]) -> float:
    return kn[0] / kn[1]


def _p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.4f}" if p >= 1e-3 else f"{p:.2e}")


@dataclass(frozen=True)
class RegressionReport:
    """Result of :func:`compare`: ``passed``, the metric rows, and ``str(report)`` as a table."""

    results: tuple[MetricResult, ...]
    alpha: float
    correction: str
    notes: tuple[str, ...] = ()
    baseline_name: str = "baseline"

    @property
    def tested(self) -> list[MetricResult]:
        return [r for r in self.results if r.tested]

    @property
    def regressions(self) -> list[str]:
        return [r.metric for r in self.results if r.regressed]

    @property
    def passed(self) -> bool:
        """No significant drop, and at least one metric was tested."""
        return bool(self.tested) and not self.regressions

    def __getitem__(self, metric: str) -> MetricResult:
        for r in self.results:
            if r.metric == metric:
                return r
        raise KeyError(metric)

    def __str__(self) -> str:
        shown = [r for r in self.results if r.tested or r.metric.startswith("in_a_row")]
        hidden = [r for r in self.results if r not in shown]
        if not self.tested:
            status = "FAILED: no metric had trials on both sides, nothing was tested"
        elif self.regressions:
            status = f"FAILED: significant drop in {', '.join(self.regressions)}"
        else:
            status = "PASSED: no significant drop"
        corr = "Holm-corrected" if self.correction == "holm" else "uncorrected"
        lines = [
            f"regression check against {self.baseline_name}: {status}",
            f"(one-sided exact test for a drop per metric, {corr} over {len(self.tested)} tested "
            f"metrics, alpha={self.alpha:g})",
        ]
        rows = [("metric", "baseline", "current", "p", "p_adj", "test", "verdict")]
        rows += [
            (
                r.metric,
                _frac(r.baseline),
                _frac(r.current),
                _p(r.p_value),
                _p(r.p_adjusted),
                r.test or "-",
                r.verdict,
            )
            for r in shown
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        for reason in dict.fromkeys(r.verdict for r in hidden):
            group = [r for r in hidden if r.verdict == reason]
            lower = [
                r for r in group if r.baseline[1] and r.current[1] and _rate(r.current) < _rate(r.baseline)
            ]
            text = f"not tested ({reason}): {len(group)} task(s)"
            if lower:
                text += "; lower than the baseline: " + ", ".join(
                    f"{r.metric.removeprefix('task:')} {r.baseline[0]}/{r.baseline[1]}->{r.current[0]}/{r.current[1]}"
                    for r in lower
                )
            lines.append(text)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _as_counts(value: Counts | Baseline) -> Counts:
    return value.counts if isinstance(value, Baseline) else value


def _setting_notes(current: Counts, baseline: Counts) -> list[str]:
    cur, base = current.setting, baseline.setting
    for key in MUST_MATCH:
        if cur.get(key) is not None and base.get(key) is not None and cur[key] != base[key]:
            raise SettingMismatch(
                f"{key} differs: baseline {base[key]!r}, current {cur[key]!r}; rates are not comparable "
                "(refresh the baseline or rerun with the baseline's settings)"
            )
    notes = [
        f"{key} differs: baseline {base[key]!r}, current {cur[key]!r}"
        for key in MAY_DIFFER
        if cur.get(key) is not None and base.get(key) is not None and cur[key] != base[key]
    ]
    if cur.get("shard"):
        notes.append(f"the current run is shard {cur['shard']} only")
    for name, c in (("current", current), ("baseline", baseline)):
        if c.n_errors:
            notes.append(f"{name}: {c.n_errors} chain(s) stopped with an error (counted as failures)")
    return notes


def compare(
    current: Counts,
    baseline: Baseline | Counts,
    alpha: float = DEFAULT_ALPHA,
    *,
    min_task_trials: int = DEFAULT_MIN_TASK_TRIALS,
    correction: str = "holm",
    method: str = "auto",
) -> RegressionReport:
    """Test every metric of ``current`` for a significant drop below ``baseline``.

    ``alpha`` is the family-wise false-alarm rate with ``correction="holm"`` (``"none"``: each metric at
    ``alpha``); per-task metrics need ``min_task_trials`` on both sides; ``method`` as :func:`drop_pvalue`.
    Raises :class:`SettingMismatch` when suite, scene or step budget differ.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if correction not in ("holm", "none"):
        raise ValueError(f"correction must be 'holm' or 'none', got {correction!r}")
    name = str(baseline.path) if isinstance(baseline, Baseline) and baseline.path else "baseline"
    base = _as_counts(baseline)
    notes = _setting_notes(current, base)
    base_metrics, cur_metrics = base.metrics(), current.metrics()
    names = list(base_metrics) + [m for m in cur_metrics if m not in base_metrics]
    results = []
    for metric in names:
        b, c = base_metrics.get(metric, (0, 0)), cur_metrics.get(metric, (0, 0))
        p, test, verdict = None, None, ""
        if b[1] == 0 or c[1] == 0:
            verdict = "no trials on a side"
        elif metric.startswith("task:") and min(b[1], c[1]) < min_task_trials:
            verdict = f"< {min_task_trials} trials"
        else:
            p, test = drop_pvalue(*b, *c, method=method)
        results.append(MetricResult(metric, b, c, p, None, test, verdict))
    tested = [i for i, r in enumerate(results) if r.tested]
    pvals = [results[i].p_value for i in tested]
    for i, p_adj in zip(tested, holm_adjust(pvals) if correction == "holm" else pvals, strict=True):
        results[i] = dataclasses.replace(
            results[i], p_adjusted=p_adj, verdict="DROP" if p_adj <= alpha else "ok"
        )
    # Tested rows and chain metrics first (the table), untested task rows last (one summary line).
    order = sorted(results, key=lambda r: (not (r.tested or r.metric.startswith("in_a_row")),))
    return RegressionReport(tuple(order), alpha, correction, tuple(notes), name)
