"""Discovery and loading of stored runs and training logs.

A *run folder* is what ``python -m bench.run --out DIR`` writes: ``summary.json`` (required here),
``config.json`` and ``episodes.jsonl`` (both optional for reading). :func:`find_runs` finds every
folder below some roots that holds a ``summary.json``; :func:`load_run` reads one into a plain dict;
:func:`runs_table` puts many into a :class:`pandas.DataFrame` with one row per run.

Training logs (read by :func:`load_train_log`, found by :func:`find_train_logs`) are TensorBoard-free:

- ``DIR/train_log.jsonl``: one JSON object per line, each with an integer ``step`` and any number of
  scalar keys (``loss``, ``lr``, ``val_loss``, ``success_rate``, ...). A line may leave out keys
  (e.g. evaluation metrics logged every N steps); non-numeric values are ignored; blank lines are
  skipped. Lines with the same ``step`` are merged (a later value wins, so a log appended to by a
  resumed training reads correctly). Example line: ``{"step": 100, "epoch": 0, "loss": 0.41, "lr": 2e-05}``.
  ``trainer.train`` writes this file.
- ``DIR/train_log.csv``: the same as a CSV file with a header row holding a ``step`` column.

Design-grid keys: a run belongs to the backbone x structure grid when its ``summary.json`` or
``config.json`` carries ``backbone`` and ``structure`` (summary wins); a ``split`` key (``"ABC->D"``)
names the training split the same way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import rundir
from bench.suites import scoring_of

SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
EPISODES_FILE = "episodes.jsonl"
TRAIN_LOG_FILES = ("train_log.jsonl", "train_log.csv")
#: Keys copied from config.json (then summary.json) into :func:`load_run`'s ``provenance``.
PROVENANCE_KEYS = (
    "version",
    "git_commit",
    "python",
    "platform",
    "machine",
    "policy_class",
    "policy_provenance",
)
#: Keys read from summary.json first, then config.json, into the run's ``meta``.
META_KEYS = ("backbone", "structure", "split", "checkpoint")
#: Folders never searched for runs.
SKIP_DIRS = frozenset({"videos", "__pycache__", ".git"})


class RunFormatError(ValueError):
    """A stored run (or training log) file is malformed; the message names the file and the key."""


# --- discovery -------------------------------------------------------------------------------------


def _as_paths(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(roots, (str, Path)):
        return [Path(roots)]
    return [Path(r) for r in roots]


def _walk_files(roots: str | Path | Iterable[str | Path], names: Sequence[str]) -> list[Path]:
    """Files named one of ``names`` below ``roots`` (missing roots are ignored), sorted, unique."""
    found: set[Path] = set()
    for root in _as_paths(roots):
        if root.is_file():
            if root.name in names:
                found.add(root.resolve())
            continue
        if not root.is_dir():
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir():
                    if entry.name not in SKIP_DIRS and not entry.name.startswith("."):
                        stack.append(entry)
                elif entry.name in names:
                    found.add(entry.resolve())
    return sorted(found)


def find_runs(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    """Run folders (folders holding ``summary.json``) at or below ``roots``, sorted.

    A root may itself be a run folder or a ``summary.json`` file; roots that do not exist are skipped.
    """
    return sorted({p.parent for p in _walk_files(roots, (SUMMARY_FILE,))})


def find_train_logs(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    """``train_log.jsonl`` / ``train_log.csv`` files at or below ``roots`` (the JSONL one wins when a
    folder holds both), sorted."""
    by_folder: dict[Path, Path] = {}
    for path in _walk_files(roots, TRAIN_LOG_FILES):
        if path.parent not in by_folder or path.suffix == ".jsonl":
            by_folder[path.parent] = path
    return sorted(by_folder.values())


# --- loading ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return rundir.read_json_object(path)
    except rundir.RunFolderError as exc:
        raise RunFormatError(str(exc)) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(summary: dict, path: Path, key: str, check: Any, what: str) -> Any:
    if key not in summary:
        raise RunFormatError(f"{path}: key {key!r} is missing (expected {what})")
    value = summary[key]
    if not check(value):
        raise RunFormatError(f"{path}: key {key!r} must be {what}, got {value!r}")
    return value


def _check_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_rates(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 5 and all(_is_number(v) and 0 <= v <= 1 for v in value)


def _check_cis(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 5
        and all(isinstance(ci, list) and len(ci) == 2 and all(_is_number(v) for v in ci) for ci in value)
    )


def _check_per_task(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for entry in value.values():
        if not isinstance(entry, dict):
            return False
        k, n = entry.get("successes"), entry.get("trials")
        if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n):
            return False
    return True


def validate_summary(summary: dict, path: Path) -> None:
    """Raise :class:`RunFormatError` naming ``path`` and the key when ``summary`` is malformed.

    Every run needs string ``suite`` and ``policy``; CALVIN-style runs also need ``n_chains`` (>= 1),
    ``success_rates`` (5 numbers in [0, 1]), ``avg_len`` (0..5) and, when present, well-formed
    ``success_rates_ci`` and ``per_task``. Runs of other suites are checked by their table builder.
    """
    _require(summary, path, "suite", lambda v: isinstance(v, str) and v, "a non-empty string")
    _require(summary, path, "policy", lambda v: isinstance(v, str) and v, "a non-empty string")
    if scoring_of(summary["suite"]) != "chains":
        return
    _require(summary, path, "n_chains", _check_count, "an integer >= 1")
    _require(summary, path, "success_rates", _check_rates, "a list of 5 numbers in [0, 1]")
    _require(summary, path, "avg_len", lambda v: _is_number(v) and 0 <= v <= 5, "a number in [0, 5]")
    if "success_rates_ci" in summary:
        _require(summary, path, "success_rates_ci", _check_cis, "a list of 5 [low, high] pairs")
    if "per_task" in summary:
        what = "a mapping task -> {successes, trials, ...} with 0 <= successes <= trials"
        _require(summary, path, "per_task", _check_per_task, what)


def load_episodes(path: str | Path) -> list[dict[str, Any]]:
    """The records of an ``episodes.jsonl`` file (one JSON object per line; blank lines skipped)."""
    try:
        return rundir.read_jsonl(path)
    except rundir.RunFolderError as exc:
        raise RunFormatError(str(exc)) from None


def completed_from_rates(success_rates: Sequence[float], n_chains: int) -> list[int]:
    """Rebuild the per-chain ``completed`` counts (sorted) from success 1..5 in a row and the number of
    chains: ``round(n * rate_i)`` chains reached at least ``i`` subtasks."""
    at_least = [n_chains] + [round(r * n_chains) for r in success_rates] + [0]
    counts = [max(at_least[i] - at_least[i + 1], 0) for i in range(len(at_least) - 1)]
    return [value for value, count in enumerate(counts) for _ in range(count)]


def _chain_completed(run_dir: Path, summary: dict) -> tuple[list[int] | None, str | None]:
    """Per-chain ``completed`` from episodes.jsonl, checked against the summary; else from the rates.

    Returns ``(completed, warning)``; ``completed`` is None for non-CALVIN runs.
    """
    if scoring_of(summary.get("suite")) != "chains":
        return None, None
    n, rates = summary["n_chains"], summary["success_rates"]
    derived = completed_from_rates(rates, n)
    episodes = run_dir / EPISODES_FILE
    if not episodes.is_file():
        return derived, None
    try:
        records = load_episodes(episodes)
        completed = [int(r["completed"]) for r in records]
    except (RunFormatError, KeyError, TypeError, ValueError) as exc:
        reason = f"key 'completed' missing in a line ({exc})" if isinstance(exc, KeyError) else str(exc)
        return derived, f"{episodes}: {reason}; using the summary's success rates"
    if len(completed) != n or not math.isclose(sum(completed) / max(len(completed), 1), summary["avg_len"]):
        return derived, (
            f"{episodes}: {len(completed)} chains do not match {run_dir / SUMMARY_FILE} "
            f"(n_chains {n}, avg_len {summary['avg_len']}); using the summary's success rates"
        )
    return completed, None


def load_run(path: str | Path) -> dict[str, Any]:
    """Load one stored run.

    Args:
        path: A run folder or its ``summary.json``.

    Returns:
        A dict with ``path`` (the folder), ``summary`` (summary.json as stored), ``config``
        (config.json, ``{}`` when absent), ``provenance`` (package version, git commit, Python,
        platform, policy class; ``None`` where unknown), ``meta`` (``backbone``, ``structure``,
        ``split``, ``checkpoint``, from summary.json then config.json), ``completed`` (CALVIN-style
        runs: consecutive successes per chain, from episodes.jsonl, or rebuilt from the success rates
        when episodes.jsonl is absent or disagrees with the summary; ``None`` for other suites) and
        ``warnings`` (list of strings).

    Raises:
        RunFormatError: (a ``ValueError``) summary.json or config.json is missing, not JSON, or lacks a
            required key; the message names the file and the key.
    """
    path = Path(path)
    run_dir = path.parent if path.name == SUMMARY_FILE else path
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file():
        raise RunFormatError(f"{summary_path}: no such file (not a run folder)")
    summary = _read_json(summary_path)
    validate_summary(summary, summary_path)
    config = _read_json(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else {}
    provenance = {key: config.get(key, summary.get(key)) for key in PROVENANCE_KEYS}
    meta = {key: summary.get(key, config.get(key)) for key in META_KEYS}
    completed, warning = _chain_completed(run_dir, summary)
    return {
        "path": run_dir,
        "summary": summary,
        "config": config,
        "provenance": provenance,
        "meta": meta,
        "completed": completed,
        "warnings": [warning] if warning else [],
    }


def is_shard(run: dict[str, Any]) -> bool:
    """Whether a loaded run is one shard of a sharded run (``--shard i/n``), not a whole run."""
    return bool(run["summary"].get("shard", run["config"].get("shard")))


# --- intervals -------------------------------------------------------------------------------------


def mean_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    method: str = "bootstrap",
    resamples: int = 10_000,
    seed: int = 0,
    bounds: tuple[float, float] = (0.0, 5.0),
) -> tuple[float, float]:
    """Confidence interval of the mean of ``values`` (e.g. CALVIN average length over chains).

    Args:
        values: One value per chain.
        confidence: Confidence level.
        method: ``"bootstrap"`` (percentile bootstrap with ``resamples`` resamples and a fixed
            ``seed``, so tables are reproducible) or ``"normal"`` (mean +- z * s / sqrt(n), sample
            standard deviation).
        bounds: The interval is clipped to these bounds (0..5 for average length).

    Returns:
        ``(low, high)``; ``(nan, nan)`` for no values.
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


# --- tables ----------------------------------------------------------------------------------------


def run_row(run: dict[str, Any], ci_method: str = "bootstrap") -> dict[str, Any]:
    """One flat row of :func:`runs_table` for a loaded run (see :func:`load_run`)."""
    summary, config = run["summary"], run["config"]
    row: dict[str, Any] = {
        "run": str(run["path"]),
        "suite": summary["suite"],
        "policy": summary["policy"],
        "scene": summary.get("scene", config.get("scene")),
        "env": summary.get("env", config.get("env", "ours")),
        **run["meta"],
        "n_chains": summary.get("n_chains"),
    }
    scoring = scoring_of(summary["suite"])
    if scoring == "chains":
        cis = summary.get("success_rates_ci")
        if cis is None:
            from bench.stats import success_rates_ci

            cis = success_rates_ci(run["completed"])
        for i, (rate, (low, high)) in enumerate(zip(summary["success_rates"], cis, strict=True), 1):
            row[f"sr{i}"], row[f"sr{i}_low"], row[f"sr{i}_high"] = rate, low, high
        row["avg_len"] = summary["avg_len"]
        row["avg_len_low"], row["avg_len_high"] = mean_interval(run["completed"], method=ci_method)
    if scoring == "trials":  # operator-judged trials
        row["n_trials"] = summary.get("n_trials")
        row["success_rate"] = summary.get("success_rate")
        row["success_rate_low"], row["success_rate_high"] = (summary.get("success_rate_ci") or [None, None])[
            :2
        ]
    for key in ("seed", "chains_source", "max_steps", "n_errors", "shard", "wall_time_s", "env_steps_per_s"):
        row[key] = summary.get(key, config.get(key))
    missing = summary.get("missing_chains")
    row["missing_chains"] = len(missing) if isinstance(missing, list) else missing
    row.update(run["provenance"])
    return row


def runs_table(
    paths: Iterable[str | Path | dict[str, Any]], ci_method: str = "bootstrap", on_error: str = "raise"
) -> pd.DataFrame:
    """One row per run: identity (run folder, suite, policy, scene, backbone, structure, split), the
    suite's metrics (CALVIN: ``sr1``..``sr5`` with ``_low``/``_high`` Wilson bounds, ``avg_len`` with
    ``avg_len_low``/``avg_len_high``), run settings and provenance.

    Args:
        paths: Run folders (or already loaded runs from :func:`load_run`).
        ci_method: Interval of the average length: ``"bootstrap"`` or ``"normal"``.
        on_error: ``"raise"`` a :class:`RunFormatError` for a malformed run, or ``"warn"``: issue a
            :class:`UserWarning` and leave the run out. Runs whose episodes.jsonl disagrees with their
            summary also give a warning.
    """
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    rows = []
    for item in paths:
        try:
            run = item if isinstance(item, dict) else load_run(item)
        except RunFormatError as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"skipped run: {exc}", stacklevel=2)
            continue
        for message in run["warnings"]:
            warnings.warn(message, stacklevel=2)
        rows.append(run_row(run, ci_method=ci_method))
    return pd.DataFrame(rows)


# --- training logs ---------------------------------------------------------------------------------


def load_train_log(path: str | Path) -> pd.DataFrame:
    """A training log (``train_log.jsonl`` or ``train_log.csv``, see the module docstring) as a
    DataFrame with one row per ``step`` (sorted; lines of the same step merged, a later value winning,
    as after a resumed training), with only numeric columns (missing entries are NaN).

    Raises:
        RunFormatError: a line is not a JSON object, or ``step`` is missing or not a number.
    """
    path = Path(path)
    if path.suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise RunFormatError(f"{path}: cannot be read as CSV ({exc})") from None
        if "step" not in frame.columns:
            raise RunFormatError(f"{path}: column 'step' is missing")
    else:
        rows = []
        try:
            numbered = rundir.read_jsonl_numbered(path)
        except rundir.RunFolderError as exc:
            raise RunFormatError(str(exc)) from None
        for lineno, record in numbered:
            if not _is_number(record.get("step")):
                raise RunFormatError(f"{path}: line {lineno}: key 'step' is missing or not a number")
            rows.append({k: v for k, v in record.items() if _is_number(v) or isinstance(v, bool)})
        frame = pd.DataFrame(rows)
    frame = frame.apply(pd.to_numeric, errors="coerce")
    frame = frame.dropna(axis=1, how="all")
    if "step" not in frame.columns:
        return pd.DataFrame({"step": []})
    if frame["step"].isna().any():
        raise RunFormatError(f"{path}: column 'step' has non-numeric entries")
    # Lines of one step (training scalars and evaluation metrics, or a step logged again after a resume)
    # merge into one row; for a key logged twice the later line wins.
    return frame.groupby("step", sort=True).last().reset_index()
