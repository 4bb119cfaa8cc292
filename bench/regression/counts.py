"""Success counts of a run and the baseline file format (see bench.regression)."""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import rundir
from bench.rundir import is_int, require

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
#: The setting's keys in a baseline file and their types (only ``suite`` is required).
SETTING_KINDS = {"suite": str, "scene": str, "max_steps": int, "policy": str, "seed": int, "chains": dict}


#: A baseline or run file is missing, unreadable or malformed; the message names the file and the key.
BaselineError = rundir.RunFolderError


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
    """Success counts of one evaluation: ``n_chains`` units (chains, or episodes and trials of
    suites without chains), ``in_a_row[i - 1]`` chains with >= ``i`` consecutive successes (empty without
    chains), ``per_task`` ``{task: (successes, trials)}``, ``n_errors`` (units stopped by an error, counted
    as failures) and ``setting`` (what produced them: ``suite``, ``scene``, ``policy``, ``seed``,
    ``max_steps``, ``chains``; missing keys are not compared).
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
        if rows and len(rows) != HORIZON:  # empty for episodic suites (SimplerEnv-style): tasks only
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
        return sum(self.in_a_row) / self.n_chains if self.n_chains and self.in_a_row else None

    def metrics(self, min_task_trials: int = 0) -> dict[str, tuple[int, int]]:
        """``{metric: (successes, trials)}``: ``in_a_row_1..5``, then ``task:NAME`` by name."""
        out = {f"in_a_row_{i}": (k, self.n_chains) for i, k in enumerate(self.in_a_row, 1)}
        out.update({f"task:{t}": kn for t, kn in self.per_task.items() if kn[1] >= min_task_trials})
        return out

    @classmethod
    def from_run_dir(cls, path: str | Path) -> Counts:
        """Counts of a finished ``bench.run`` folder: its suite's ``regression_counts`` of
        ``summary.json``, checked against ``episodes.jsonl`` (one record per unit) where there is one.
        """
        from bench.suites import check_summary

        run_dir = Path(path)
        if not run_dir.is_dir():
            raise BaselineError(f"{run_dir}: not a run folder (no such directory)")
        summary_path = run_dir / "summary.json"
        if not summary_path.exists():
            raise BaselineError(
                f"{summary_path}: missing; the run did not finish (resume it with python -m bench.run --resume)"
            )
        summary = rundir.read_json_object(summary_path)
        suite = check_summary(summary, summary_path)
        if suite is None:
            raise BaselineError(f"{summary_path}: suite {summary['suite']!r} is not a registered suite")
        episodes, count_key = run_dir / "episodes.jsonl", f"n_{suite.unit_noun}s"
        try:
            if episodes.exists() and count_key in summary:
                units = {suite.record_key(r) for r in rundir.read_jsonl(episodes)}
                if len(units) != summary[count_key]:
                    raise BaselineError(
                        f"{summary_path}: key {count_key!r} says {summary[count_key]} {suite.unit_noun}s "
                        f"but {episodes.name} holds {len(units)}"
                    )
            return suite.regression_counts(summary)
        except rundir.RunFolderError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{run_dir}: malformed run: {type(exc).__name__}: {exc}") from None


def chain_selection(source: str, ids: Sequence[int]) -> dict[str, Any]:
    """The ``chains`` setting: ``{"source", "first": N}`` for chains 0..N-1, else ``{"source", "ids"}``."""
    ids = [int(i) for i in ids]
    if ids == list(range(len(ids))):
        return {"source": source, "first": len(ids)}
    return {"source": source, "ids": ids}


def run_setting(summary: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    names = ("suite", "policy", "seed", *keys, "shard")
    return {k: summary[k] for k in names if summary.get(k) is not None}


# ----------------------------------------------------------------------------- files


_KINDS = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def _field(data: Mapping[str, Any], key: str, where: Any, kind: type, optional: bool = False) -> Any:
    """``data[key]`` checked to be of ``kind`` (``optional``: may be missing or null)."""
    check = is_int if kind is int else lambda v: isinstance(v, kind)
    return require(data, key, where, check, _KINDS[kind], optional=optional)


@dataclass(frozen=True)
class Baseline:
    """Stored success counts to compare new runs with; a JSON file (``format_version`` 1)::

        {"format": "robovlm-bench/regression-baseline", "format_version": 1,
         "suite": "calvin", "scene": "D", "max_steps": 360,   # must match (scene: SimplerEnv's mode)
         "policy": "expert", "seed": 0, "chains": {"source": "official", "first": 30},  # informational
         "n_chains": 30, "in_a_row": [30, 30, 29, 29, 28], "n_errors": 0, "avg_len": 4.867,
         "per_task": {"close_drawer": {"successes": 5, "trials": 5}, ...},
         "version": "0.1.0", "git_commit": "7a92cd1...", "created": "2025-01-01T12:00:00+00:00",
         "command": "python -m bench.regression refresh ..."}

    :meth:`load` checks ``sum(per_task successes) == sum(in_a_row)`` (each completed subtask is one
    success) to catch hand edits that break the counts.
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
        """A new baseline of ``counts``, stamped with version, git commit and time."""
        from bench.rundir import run_info

        info = run_info()
        created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        return cls(counts, info.get("version"), info.get("git_commit"), created, command)

    def to_json(self) -> dict[str, Any]:
        c, s = self.counts, self.counts.setting
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **{key: s.get(key) for key in SETTING_KINDS},
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
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        return rundir.write_json_atomic(out, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read and validate a baseline file; :class:`BaselineError` names the file and the key."""
        where = Path(path)
        if not where.exists():
            raise BaselineError(
                f"{where}: no such baseline file; create it with "
                f"python -m bench.regression refresh --policy SPEC --out {where}"
            )
        data = rundir.read_json(where)
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: a baseline must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise BaselineError(f"{where}: key 'format' must be {FORMAT!r}, got {data.get('format')!r}")
        version = _field(data, "format_version", where, int)
        if version != FORMAT_VERSION:
            raise BaselineError(
                f"{where}: key 'format_version' is {version}; this bench.regression reads version "
                f"{FORMAT_VERSION} (refresh the baseline)"
            )
        setting = {
            k: _field(data, k, where, kind, optional=k != "suite") for k, kind in SETTING_KINDS.items()
        }
        n_chains, in_a_row = _field(data, "n_chains", where, int), _field(data, "in_a_row", where, list)
        n_errors = _field(data, "n_errors", where, int, optional=True) or 0
        per_task = {}
        for task, row in _field(data, "per_task", where, dict).items():
            at = f"{where}: per_task.{task}"
            if not isinstance(row, dict):
                raise BaselineError(f"{at}: must be an object with successes and trials")
            per_task[task] = (_field(row, "successes", at, int), _field(row, "trials", at, int))
        try:
            setting = {k: v for k, v in setting.items() if v is not None}
            counts = Counts(n_chains, tuple(in_a_row), per_task, n_errors, setting)
        except ValueError as exc:
            raise BaselineError(f"{where}: {exc}") from None
        if counts.in_a_row and per_task and sum(k for k, _ in per_task.values()) != sum(counts.in_a_row):
            raise BaselineError(
                f"{where}: keys 'per_task' and 'in_a_row' disagree: the tasks' successes sum to "
                f"{sum(k for k, _ in per_task.values())}, the chains completed {sum(counts.in_a_row)} subtasks"
            )
        stamps = {
            k: _field(data, k, where, str, optional=True)
            for k in ("version", "git_commit", "created", "command")
        }
        return cls(counts, **stamps, path=where)
