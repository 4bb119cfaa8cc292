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
import datetime as _dt
import json
import math
import operator
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy.stats import boschloo_exact, fisher_exact

#: Subtasks per CALVIN chain: the ``in_a_row`` metrics are ``1..HORIZON``.
HORIZON = 5
#: ``"format"`` value of a baseline file, and its current ``"format_version"``.
FORMAT = "robovlm-bench/regression-baseline"
FORMAT_VERSION = 1
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_TASK_TRIALS = 10
#: Boschloo's test is used while ``n_baseline * n_current`` stays at most this (300 x 300: ~0.35 s).
BOSCHLOO_MAX_CELLS = 300 * 300
#: Settings that must agree between a baseline and a current run: rates depend on them.
MUST_MATCH = ("suite", "scene", "max_steps")
#: Settings whose difference is reported but allowed (another seed or chain sample, another policy).
MAY_DIFFER = ("policy", "seed", "chains")


class BaselineError(ValueError):
    """A baseline or run file is missing, unreadable or malformed; the message names file and key."""


class SettingMismatch(ValueError):
    """Baseline and current run differ in a setting that changes success rates (see MUST_MATCH)."""


# ----------------------------------------------------------------------------- counts


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what}: counts must be integers, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what}: counts must be integers, got {value!r}") from None


def _check_count(k: Any, n: Any, what: str) -> tuple[int, int]:
    k, n = _as_int(k, what), _as_int(n, what)
    if not 0 <= k <= n:
        raise ValueError(f"{what}: need 0 <= successes <= trials, got {k}/{n}")
    return k, n


@dataclass(frozen=True)
class Counts:
    """Success counts of one evaluation.

    Attributes:
        n_chains: Number of chains evaluated.
        in_a_row: ``in_a_row[i - 1]`` = number of chains with at least ``i`` consecutive successes.
        per_task: ``{task: (successes, trials)}``.
        n_errors: Chains stopped by an error (env or policy raised); they count as failures.
        setting: What produced the counts: ``suite``, ``scene``, ``policy``, ``seed``, ``max_steps``,
            ``chains`` (``{"source": "official", "first": N}`` or ``{"source": ..., "ids": [...]}``).
            Missing keys are not compared.
    """

    n_chains: int
    in_a_row: tuple[int, ...]
    per_task: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    n_errors: int = 0
    setting: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = _as_int(self.n_chains, "n_chains")
        if n < 0:
            raise ValueError(f"n_chains must be >= 0, got {n}")
        rows = tuple(self.in_a_row)
        if len(rows) != HORIZON:
            raise ValueError(f"in_a_row must hold {HORIZON} counts (chains with >= 1..{HORIZON}), got {rows}")
        for i, k in enumerate(rows, 1):
            _check_count(k, n, f"in_a_row[{i - 1}] (chains with >= {i} in a row)")
        if any(a < b for a, b in zip(rows, rows[1:], strict=False)):
            raise ValueError(f"in_a_row must not increase (>= i+1 in a row implies >= i), got {rows}")
        tasks = {}
        for task, kn in self.per_task.items():
            pair = tuple(kn)
            if len(pair) != 2:
                raise ValueError(f"per_task[{task!r}] must be (successes, trials), got {kn!r}")
            tasks[str(task)] = _check_count(*pair, f"per_task[{task!r}]")
        object.__setattr__(self, "n_chains", int(n))
        object.__setattr__(self, "in_a_row", tuple(int(k) for k in rows))
        object.__setattr__(self, "per_task", dict(sorted(tasks.items())))
        object.__setattr__(self, "setting", dict(self.setting))

    @property
    def avg_len(self) -> float | None:
        """CALVIN's average length (mean consecutive successes per chain); None without chains."""
        return sum(self.in_a_row) / self.n_chains if self.n_chains else None

    def metrics(self, min_task_trials: int = 0) -> dict[str, tuple[int, int]]:
        """``{metric: (successes, trials)}``: ``in_a_row_1..5`` then ``task:NAME`` in name order."""
        out = {f"in_a_row_{i}": (k, self.n_chains) for i, k in enumerate(self.in_a_row, 1)}
        out.update({f"task:{t}": kn for t, kn in self.per_task.items() if kn[1] >= min_task_trials})
        return out

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], **setting: Any) -> Counts:
        """Counts of episode records (``bench.calvin_eval.evaluate_chains`` / ``episodes.jsonl`` lines:
        keys ``tasks``, ``completed``, ``steps``, ``stop_reason``)."""
        from bench.stats import chain_trials

        records = list(records)
        completed = [int(r["completed"]) for r in records]
        per_task: dict[str, list[int]] = {}
        for r in records:
            for task, ok in chain_trials(r["tasks"], r["completed"], len(r["steps"])):
                entry = per_task.setdefault(task, [0, 0])
                entry[0] += ok
                entry[1] += 1
        return cls(
            n_chains=len(records),
            in_a_row=tuple(sum(c >= i for c in completed) for i in range(1, HORIZON + 1)),
            per_task={t: (k, n) for t, (k, n) in per_task.items()},
            n_errors=sum(str(r.get("stop_reason", "")).startswith("error:") for r in records),
            setting=setting,
        )

    @classmethod
    def from_run_dir(cls, path: str | Path) -> Counts:
        """Counts of a folder written by ``python -m bench.run``: ``summary.json`` (required: it marks
        a finished run and gives the settings) and ``episodes.jsonl`` (the exact per-chain results;
        without it the counts are rebuilt from the summary's rates and per-task table)."""
        run_dir = Path(path)
        if not run_dir.is_dir():
            raise BaselineError(f"{run_dir}: not a run folder (no such directory)")
        summary_path = run_dir / "summary.json"
        if not summary_path.exists():
            raise BaselineError(
                f"{summary_path}: missing; the run did not finish (resume it with python -m bench.run --resume)"
            )
        summary = _read_json(summary_path)
        if not isinstance(summary, dict):
            raise BaselineError(f"{summary_path}: must hold a JSON object, got {type(summary).__name__}")
        episodes_path = run_dir / "episodes.jsonl"
        setting = _summary_setting(summary)
        if not episodes_path.exists():
            return _counts_from_summary(summary, summary_path, setting)
        records = _read_jsonl(episodes_path)
        records.sort(key=lambda r: (r.get("position", r.get("chain", 0)), r.get("chain", 0)))
        ids = [r.get("chain") for r in records]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise BaselineError(f"{episodes_path}: chain(s) {dup[:10]} appear more than once")
        n = _get(summary, "n_chains", summary_path, int)
        if n != len(records):
            raise BaselineError(
                f"{summary_path}: key 'n_chains' says {n} chains but {episodes_path.name} holds {len(records)}"
            )
        try:
            setting["chains"] = chain_selection(setting.pop("_source"), ids)
            return cls.from_records(records, **setting)
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(
                f"{episodes_path}: malformed episode record: {type(exc).__name__}: {exc}"
            ) from None


def chain_selection(source: str, ids: Sequence[int]) -> dict[str, Any]:
    """The ``chains`` setting: ``{"source", "first": N}`` for chains 0..N-1, else ``{"source", "ids"}``."""
    ids = [int(i) for i in ids]
    if ids == list(range(len(ids))):
        return {"source": source, "first": len(ids)}
    return {"source": source, "ids": ids}


def _summary_setting(summary: Mapping[str, Any]) -> dict[str, Any]:
    setting = {k: summary[k] for k in ("suite", "scene", "policy", "seed", "max_steps") if k in summary}
    setting["_source"] = summary.get("chains_source", "official")
    if summary.get("shard"):
        setting["shard"] = summary["shard"]
    return setting


def _counts_from_summary(summary: Mapping[str, Any], where: Path, setting: dict[str, Any]) -> Counts:
    n = _get(summary, "n_chains", where, int)
    rates = _get(summary, "success_rates", where, list)
    per_task = _get(summary, "per_task", where, dict)
    source = setting.pop("_source")
    if "chain_ids" in summary:
        setting["chains"] = chain_selection(source, summary["chain_ids"])
    try:
        return Counts(
            n_chains=n,
            in_a_row=tuple(round(float(r) * n) for r in rates),
            per_task={t: (row["successes"], row["trials"]) for t, row in per_task.items()},
            n_errors=int(summary.get("n_errors", 0)),
            setting=setting,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{where}: malformed summary: {type(exc).__name__}: {exc}") from None


# ----------------------------------------------------------------------------- files


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BaselineError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise BaselineError(f"{path}: line {lineno} is not a JSON object")
            records.append(record)
    return records


_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def _get(data: Mapping[str, Any], key: str, where: Path | str, kind: type, default: Any = ...) -> Any:
    """``data[key]`` checked to be of ``kind``; errors name the file and the key."""
    if key not in data:
        if default is not ...:
            return default
        raise BaselineError(f"{where}: missing key {key!r}")
    value = data[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if default is not ... and value is None:
        return None
    if not ok:
        raise BaselineError(f"{where}: key {key!r} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


@dataclass(frozen=True)
class Baseline:
    """Stored success counts to compare new runs with.

    File format (JSON, ``format_version`` 1)::

        {
          "format": "robovlm-bench/regression-baseline",
          "format_version": 1,
          "suite": "calvin", "scene": "D",          # must match the run checked against it
          "max_steps": 360,                          # must match (null: not compared)
          "policy": "expert",                        # policy spec (informational)
          "seed": 0,                                 # run seed (informational)
          "chains": {"source": "official", "first": 30},   # or {"source": ..., "ids": [3, 7, ...]}
          "n_chains": 30,
          "in_a_row": [30, 30, 29, 29, 28],          # chains with >= 1..5 consecutive successes
          "per_task": {"close_drawer": {"successes": 5, "trials": 5}, ...},
          "n_errors": 0,                             # chains stopped by an error
          "avg_len": 4.867,                          # informational: sum(in_a_row) / n_chains
          "version": "0.1.0", "git_commit": "7a92cd1...",  # what produced it (commit null outside git)
          "created": "2025-01-01T12:00:00+00:00",
          "command": "python -m bench.regression refresh ..."
        }

    ``sum(per_task successes) == sum(in_a_row)`` (every completed subtask is one success), which
    :meth:`load` checks to catch hand edits that break the counts.
    """

    counts: Counts
    version: str | None = None
    git_commit: str | None = None
    created: str | None = None
    command: str | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def setting(self) -> Mapping[str, Any]:
        return self.counts.setting

    @classmethod
    def from_counts(cls, counts: Counts, command: str | None = None) -> Baseline:
        """A new baseline of ``counts``, stamped with the package version, git commit and time."""
        from bench.run import run_info

        info = run_info()
        created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        return cls(counts, info.get("version"), info.get("git_commit"), created, command)

    def to_json(self) -> dict[str, Any]:
        c, s = self.counts, self.counts.setting
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "suite": s.get("suite"),
            "scene": s.get("scene"),
            "max_steps": s.get("max_steps"),
            "policy": s.get("policy"),
            "seed": s.get("seed"),
            "chains": s.get("chains"),
            "n_chains": c.n_chains,
            "in_a_row": list(c.in_a_row),
            "per_task": {t: {"successes": k, "trials": n} for t, (k, n) in c.per_task.items()},
            "n_errors": c.n_errors,
            "avg_len": None if c.avg_len is None else round(c.avg_len, 4),
            "version": self.version,
            "git_commit": self.git_commit,
            "created": self.created,
            "command": self.command,
        }

    def save(self, path: str | Path) -> Path:
        """Write the baseline as JSON (folders are created); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read and validate a baseline file; :class:`BaselineError` names the file and the key."""
        where = Path(path)
        if not where.exists():
            raise BaselineError(
                f"{where}: no such baseline file; create it with "
                f"python -m bench.regression refresh --policy SPEC --out {where}"
            )
        data = _read_json(where)
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: a baseline must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise BaselineError(f"{where}: key 'format' must be {FORMAT!r}, got {data.get('format')!r}")
        version = _get(data, "format_version", where, int)
        if version != FORMAT_VERSION:
            raise BaselineError(
                f"{where}: key 'format_version' is {version}; this bench.regression reads version "
                f"{FORMAT_VERSION} (refresh the baseline)"
            )
        setting = {
            "suite": _get(data, "suite", where, str),
            "scene": _get(data, "scene", where, str),
            "max_steps": _get(data, "max_steps", where, int, None),
            "policy": _get(data, "policy", where, str, None),
            "seed": _get(data, "seed", where, int, None),
            "chains": _get(data, "chains", where, dict, None),
        }
        n_chains = _get(data, "n_chains", where, int)
        in_a_row = _get(data, "in_a_row", where, list)
        per_task_raw = _get(data, "per_task", where, dict)
        per_task = {}
        for task, row in per_task_raw.items():
            key = f"per_task.{task}"
            if not isinstance(row, dict):
                raise BaselineError(f"{where}: key {key!r} must be an object with successes and trials")
            per_task[task] = (
                _get(row, "successes", f"{where}: {key}", int),
                _get(row, "trials", f"{where}: {key}", int),
            )
        try:
            counts = Counts(
                n_chains=n_chains,
                in_a_row=tuple(in_a_row),
                per_task=per_task,
                n_errors=_get(data, "n_errors", where, int, 0) or 0,
                setting={k: v for k, v in setting.items() if v is not None},
            )
        except ValueError as exc:
            raise BaselineError(f"{where}: {exc}") from None
        if per_task and sum(k for k, _ in per_task.values()) != sum(counts.in_a_row):
            raise BaselineError(
                f"{where}: keys 'per_task' and 'in_a_row' disagree: the tasks' successes sum to "
                f"{sum(k for k, _ in per_task.values())}, the chains completed {sum(counts.in_a_row)} subtasks"
            )
        return cls(
            counts,
            version=_get(data, "version", where, str, None),
            git_commit=_get(data, "git_commit", where, str, None),
            created=_get(data, "created", where, str, None),
            command=_get(data, "command", where, str, None),
            path=where,
        )


# ----------------------------------------------------------------------------- the test


def drop_pvalue(base_k: int, base_n: int, cur_k: int, cur_n: int, method: str = "auto") -> tuple[float, str]:
    """One-sided p-value of H1 "the current rate is lower than the baseline rate"; returns (p, test).

    ``method``: ``"boschloo"``, ``"fisher"`` or ``"auto"`` (Boschloo up to :data:`BOSCHLOO_MAX_CELLS`).
    Needs trials on both sides. A 0 % baseline cannot drop, and 100 % on both sides shows no drop:
    both give ``p = 1`` without calling SciPy.
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
    """One row of a :class:`RegressionReport`. ``p_value``/``p_adjusted``/``test`` are None when
    the metric was not tested (``verdict`` then says why)."""

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
        """Names of the metrics with a significant drop."""
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

    Args:
        current: Counts of the run under test.
        baseline: A :class:`Baseline` (e.g. ``Baseline.load(path)``) or plain :class:`Counts`.
        alpha: Family-wise false-alarm rate: with ``correction="holm"`` the chance that a run as
            good as the baseline fails the check is at most ``alpha``.
        min_task_trials: Per-task metrics are tested only with at least this many trials on both sides.
        correction: ``"holm"`` (Holm-Bonferroni) or ``"none"`` (each metric at level ``alpha``).
        method: ``"auto"``, ``"boschloo"`` or ``"fisher"`` (see :func:`drop_pvalue`).

    Raises:
        SettingMismatch: suite, scene or step budget differ between the two.
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
    rows: list[dict[str, Any]] = []
    for metric in names:
        b, c = base_metrics.get(metric, (0, 0)), cur_metrics.get(metric, (0, 0))
        row = {"metric": metric, "baseline": b, "current": c, "p_value": None, "test": None}
        if b[1] == 0 or c[1] == 0:
            row["verdict"] = "no trials on a side"
        elif metric.startswith("task:") and min(b[1], c[1]) < min_task_trials:
            row["verdict"] = f"< {min_task_trials} trials"
        else:
            row["p_value"], row["test"] = drop_pvalue(*b, *c, method=method)
        rows.append(row)
    tested = [r for r in rows if r["p_value"] is not None]
    pvals = [r["p_value"] for r in tested]
    adjusted = holm_adjust(pvals) if correction == "holm" else pvals
    for r, p_adj in zip(tested, adjusted, strict=True):
        r["p_adjusted"] = p_adj
        r["verdict"] = "DROP" if p_adj <= alpha else "ok"
    results = tuple(
        MetricResult(
            r["metric"],
            r["baseline"],
            r["current"],
            r["p_value"],
            r.get("p_adjusted"),
            r["test"],
            r["verdict"],
        )
        for r in rows
    )
    # Tested rows and chain metrics first (the table), untested task rows last (one summary line).
    order = sorted(results, key=lambda r: (not (r.tested or r.metric.startswith("in_a_row")),))
    return RegressionReport(tuple(order), alpha, correction, tuple(notes), name)


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
    from bench.run import SUITES, load_calvin_chains
    from policies.registry import make_policy

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; valid: {', '.join(SUITES)}")
    if scene not in SUITES[suite]:
        raise ValueError(f"unknown scene {scene!r} for suite {suite}; valid: {', '.join(SUITES[suite])}")
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
