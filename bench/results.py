"""Discovery and loading of stored runs and training logs.

:func:`find_runs` finds the folders holding a ``summary.json`` below some roots, :func:`load_run` reads
one (its suite checks the summary and may add details) and :func:`runs_table` makes one row per run
(the suite adds its columns). ``backbone``, ``structure``, ``head`` and ``split`` (``"ABC->D"``) in
summary.json, config.json or the policy's provenance in config.json (in that order; a VLA checkpoint
records its backbone, structure and head there) place a run in the design grid.

Training logs (``trainer.train`` writes them): ``train_log.jsonl``, one JSON object per line with an
integer ``step`` and any scalar keys (``{"step": 100, "epoch": 0, "loss": 0.41, "lr": 2e-05}``; lines
may leave keys out, non-numeric values are ignored, lines of one step merge, a later value winning),
or ``train_log.csv`` with a header holding ``step``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench import rundir
from bench.rundir import CONFIG_FILE, SUMMARY_FILE
from bench.suites import check_summary, find_suite

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
#: Keys read from summary.json first, then config.json, then config.json's policy_provenance, into the
#: run's ``meta``.
META_KEYS = ("backbone", "structure", "head", "split", "checkpoint")
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
    """Run folders (holding ``summary.json``) at or below ``roots``, sorted; a root may be a run
    folder or its summary.json, missing roots are skipped.
    """
    return sorted({p.parent for p in _walk_files(roots, (SUMMARY_FILE,))})


def find_train_logs(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    """Training logs at or below ``roots`` (the JSONL one where a folder has both), sorted."""
    by_folder: dict[Path, Path] = {}
    for path in _walk_files(roots, TRAIN_LOG_FILES):
        if path.parent not in by_folder or path.suffix == ".jsonl":
            by_folder[path.parent] = path
    return sorted(by_folder.values())


# --- loading ---------------------------------------------------------------------------------------


def load_run(path: str | Path) -> dict[str, Any]:
    """One stored run (a folder or its summary.json) as a dict: ``path``, ``summary``, ``config``
    (``{}`` when absent), ``provenance`` (:data:`PROVENANCE_KEYS`), ``meta`` (:data:`META_KEYS`),
    ``completed`` (None, or CALVIN's per-chain counts from the suite's ``read_details``), the suite's other
    details and ``warnings``. :class:`RunFormatError` names the file and the key of a malformed run.
    """
    path = Path(path)
    run_dir = path.parent if path.name == SUMMARY_FILE else path
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file():
        raise RunFormatError(f"{summary_path}: no such file (not a run folder)")
    summary = rundir.read_json_object(summary_path)
    suite = check_summary(summary, summary_path)
    config = rundir.read_json_object(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else {}
    policy = config.get("policy_provenance")
    policy = policy if isinstance(policy, dict) else {}
    run = {
        "path": run_dir,
        "summary": summary,
        "config": config,
        "provenance": {key: config.get(key, summary.get(key)) for key in PROVENANCE_KEYS},
        "meta": {key: summary.get(key, config.get(key, policy.get(key))) for key in META_KEYS},
        "completed": None,
    }
    details = suite.read_details(run_dir, summary) if suite is not None else {}
    return {**run, **details, "warnings": list(details.get("warnings", []))}


def is_shard(run: dict[str, Any]) -> bool:
    """Whether a loaded run is one shard (``--shard i/n``) of a run, not a whole run."""
    return bool(run["summary"].get("shard", run["config"].get("shard")))


# --- tables ----------------------------------------------------------------------------------------


def run_row(run: dict[str, Any], ci_method: str = "bootstrap") -> dict[str, Any]:
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
    """One row per run (folders, or runs from :func:`load_run`): identity (folder, suite, policy,
    backbone, structure, split), the suite's columns, settings and provenance. ``ci_method``: interval of
    the average length (``bootstrap`` or ``normal``); ``on_error``: ``raise`` on a malformed run, or
    ``warn`` and leave it out. Runs whose episodes.jsonl disagrees with their summary warn too.
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
    """A training log as a DataFrame, one row per ``step`` (sorted, lines of one step merged),
    numeric columns only; :class:`RunFormatError` for a line that is not an object or lacks a numeric step.
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
