"""Discovery and loading of stored runs and training logs.

A *run folder* is what ``python -m bench.run --out DIR`` writes: ``summary.json`` (required here),
``config.json`` and ``episodes.jsonl`` (optional for reading). :func:`find_runs` finds every folder
below some roots that holds a ``summary.json``; :func:`load_run` reads one into a plain dict (its
suite checks its summary and may add details); :func:`runs_table` puts many into a
:class:`pandas.DataFrame` with one row per run (the suite adds its columns).

Training logs (:func:`load_train_log`, found by :func:`find_train_logs`) are TensorBoard-free:

- ``DIR/train_log.jsonl``: one JSON object per line, each with an integer ``step`` and any number of
  scalar keys (``loss``, ``lr``, ``val_loss``, ...); a line may leave keys out, non-numeric values are
  ignored, and lines of the same ``step`` merge (a later value wins, as after a resumed training).
  Example line: ``{"step": 100, "epoch": 0, "loss": 0.41, "lr": 2e-05}``. ``trainer.train`` writes it.
- ``DIR/train_log.csv``: the same as a CSV file with a header row holding a ``step`` column.

Design-grid keys: ``backbone``, ``structure`` and ``split`` (``"ABC->D"``) in ``summary.json`` or
``config.json`` (summary wins) place a run in the backbone x structure grid.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench import rundir
from bench.suites import check_summary, find_suite

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


#: A stored run (or training log) file is missing or malformed; the message names the file and the key.
RunFormatError = rundir.RunFolderError


# --- discovery -------------------------------------------------------------------------------------


def _walk_files(roots: str | Path | Iterable[str | Path], names: Sequence[str]) -> list[Path]:
    """Files named one of ``names`` below ``roots`` (missing roots are ignored), sorted, unique."""
    found: set[Path] = set()
    for root in map(Path, [roots] if isinstance(roots, (str, Path)) else roots):
        if root.is_file() and root.name in names:
            found.add(root.resolve())
        for folder, subfolders, files in os.walk(root, followlinks=True):
            subfolders[:] = [d for d in subfolders if d not in SKIP_DIRS and not d.startswith(".")]
            found.update((Path(folder) / f).resolve() for f in files if f in names)
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


def load_run(path: str | Path) -> dict[str, Any]:
    """Load one stored run.

    Args:
        path: A run folder or its ``summary.json``.

    Returns:
        A dict with ``path`` (the folder), ``summary`` (summary.json as stored), ``config``
        (config.json, ``{}`` when absent), ``provenance`` (package version, git commit, Python,
        platform, policy class; ``None`` where unknown), ``meta`` (``backbone``, ``structure``,
        ``split``, ``checkpoint``, from summary.json then config.json), ``completed`` (None, or
        what the suite's :meth:`~bench.suites.Suite.read_details` gives: CALVIN's consecutive
        successes per chain), the suite's other details and ``warnings`` (list of strings).

    Raises:
        RunFormatError: (a ``ValueError``) summary.json or config.json is missing, not JSON, or lacks a
            required key (its suite says which); the message names the file and the key.
    """
    path = Path(path)
    run_dir = path.parent if path.name == SUMMARY_FILE else path
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file():
        raise RunFormatError(f"{summary_path}: no such file (not a run folder)")
    summary = rundir.read_json_object(summary_path)
    suite = check_summary(summary, summary_path)
    config = rundir.read_json_object(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else {}
    run = {
        "path": run_dir,
        "summary": summary,
        "config": config,
        "provenance": {key: config.get(key, summary.get(key)) for key in PROVENANCE_KEYS},
        "meta": {key: summary.get(key, config.get(key)) for key in META_KEYS},
        "completed": None,
    }
    details = suite.read_details(run_dir, summary) if suite is not None else {}
    return {**run, **details, "warnings": list(details.get("warnings", []))}


def is_shard(run: dict[str, Any]) -> bool:
    """Whether a loaded run is one shard of a sharded run (``--shard i/n``), not a whole run."""
    return bool(run["summary"].get("shard", run["config"].get("shard")))


# --- tables ----------------------------------------------------------------------------------------


def run_row(run: dict[str, Any], ci_method: str = "bootstrap") -> dict[str, Any]:
    """One flat row of :func:`runs_table` for a loaded run (see :func:`load_run`)."""
    summary, config = run["summary"], run["config"]
    suite = find_suite(summary["suite"])
    row: dict[str, Any] = {"run": str(run["path"]), "suite": summary["suite"], "policy": summary["policy"]}
    row.update(run["meta"])
    row.update(suite.run_columns(run, ci_method) if suite is not None else {})
    for key in ("seed", "n_errors", "shard", "wall_time_s", "env_steps_per_s"):
        row[key] = summary.get(key, config.get(key))
    row.update(run["provenance"])
    return row


def runs_table(
    paths: Iterable[str | Path | dict[str, Any]], ci_method: str = "bootstrap", on_error: str = "raise"
) -> pd.DataFrame:
    """One row per run: identity (run folder, suite, policy, backbone, structure, split), the suite's
    columns (CALVIN: scene, ``sr1``..``sr5`` with ``_low``/``_high`` Wilson bounds, ``avg_len`` with
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
        for lineno, record in rundir.read_jsonl_numbered(path):
            if not rundir.is_number(record.get("step")):
                raise RunFormatError(f"{path}: line {lineno}: key 'step' is missing or not a number")
            rows.append({k: v for k, v in record.items() if rundir.is_number(v) or isinstance(v, bool)})
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
