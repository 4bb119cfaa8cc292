"""Normalisation statistics of an episode store, kept next to the data in ``stats.json``.

``compute_dataset_stats(store)`` gives, for each of the action fields ``rel_actions`` / ``actions``
and the state fields ``robot_obs`` / ``scene_obs`` that the store holds, per-dim ``q01``, ``q99``
(``np.quantile`` at 0.01 / 0.99, linear interpolation), ``mean``, ``std`` (population, ddof=0),
``min``, ``max`` and the count ``n``; action fields also carry ``binary_dims`` and report
``q01 = -1``, ``q99 = 1`` on those (gripper) dims. Top-level ``n_frames`` and ``n_episodes`` record
what the statistics were computed on.

Memory stays bounded on large stores: moments, min and max are accumulated over chunks of
``chunk_size`` frames (Chan's parallel mean/variance merge in float64); exact quantiles gather one
group of dims at a time into a float64 buffer of at most ``max_buffer_bytes`` (at least one dim).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.rundir import write_text_atomic
from trainer.data.preprocess import GRIPPER_DIMS, ActionQuantiles
from trainer.data.store import DatasetError, EpisodeStore

STATS_FILE = "stats.json"
ACTION_FIELDS: tuple[str, ...] = ("rel_actions", "actions")
OBS_FIELDS: tuple[str, ...] = ("robot_obs", "scene_obs")
PER_DIM_KEYS: tuple[str, ...] = ("q01", "q99", "mean", "std", "min", "max")
FIELD_KEYS: tuple[str, ...] = (*PER_DIM_KEYS, "n")
CHUNK_SIZE = 65536
MAX_BUFFER_BYTES = 64 * 2**20


def _array_stats(
    arr: Any, what: str, chunk_size: int = CHUNK_SIZE, max_buffer_bytes: int = MAX_BUFFER_BYTES
) -> dict[str, Any]:
    """Per-dim stats of a (N, D) array or memmap, read ``chunk_size`` rows at a time."""
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (N, D), got shape {tuple(arr.shape)}")
    n, d = int(arr.shape[0]), int(arr.shape[1])
    if n == 0:
        raise ValueError(f"{what}: no rows to compute statistics on")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    count = 0
    mean = np.zeros(d)
    m2 = np.zeros(d)
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    for s in range(0, n, chunk_size):
        c = np.asarray(arr[s : s + chunk_size], dtype=np.float64)
        finite = np.isfinite(c)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=0)).tolist()
            raise ValueError(f"{what}: non-finite values in dim(s) {bad} (first bad chunk at row {s})")
        k = c.shape[0]
        c_mean = c.mean(axis=0)
        c_m2 = ((c - c_mean) ** 2).sum(axis=0)
        delta = c_mean - mean
        total = count + k
        mean = mean + delta * (k / total)
        m2 = m2 + c_m2 + delta**2 * (count * k / total)
        count = total
        lo = np.minimum(lo, c.min(axis=0))
        hi = np.maximum(hi, c.max(axis=0))
    q01 = np.empty(d)
    q99 = np.empty(d)
    group = max(1, min(d, int(max_buffer_bytes) // (8 * n)))
    for g0 in range(0, d, group):
        g1 = min(d, g0 + group)
        buf = np.empty((g1 - g0, n))  # one contiguous row per dim
        for s in range(0, n, chunk_size):
            buf[:, s : s + chunk_size] = np.asarray(arr[s : s + chunk_size, g0:g1], dtype=np.float64).T
        for j in range(g1 - g0):
            q01[g0 + j], q99[g0 + j] = np.quantile(buf[j], [0.01, 0.99], overwrite_input=True)
        del buf
    return {
        "q01": q01,
        "q99": q99,
        "mean": mean,
        "std": np.sqrt(np.maximum(m2 / count, 0.0)),
        "min": lo,
        "max": hi,
        "n": count,
    }


def _apply_binary(stats: dict[str, Any], binary_dims: Sequence[int], what: str) -> dict[str, Any]:
    d = stats["q01"].shape[0]
    dims = []
    for b in binary_dims:
        if not -d <= b < d:
            raise ValueError(f"{what}: binary dim {b} is out of range for {d} dims")
        dims.append(int(b) % d)
    stats["q01"][dims] = -1.0
    stats["q99"][dims] = 1.0
    stats["binary_dims"] = sorted(set(dims))
    return stats


def compute_action_stats(
    actions: np.ndarray, binary_dims: Sequence[int] = GRIPPER_DIMS, chunk_size: int = CHUNK_SIZE
) -> dict[str, Any]:
    """Per-dim ``q01``, ``q99``, ``mean``, ``std``, ``min``, ``max`` (float64 arrays) and ``n`` of (N, D) actions.

    Binary (gripper) dims report ``q01 = -1`` and ``q99 = 1`` so normalisation leaves them binary;
    their mean/std/min/max are the real ones. ``binary_dims`` is recorded in the result.
    ValueError on an empty or non-2-D array or non-finite values.
    """
    arr = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
    return _apply_binary(_array_stats(arr, "actions", chunk_size), binary_dims, "actions")


def _store_field(store: EpisodeStore, name: str) -> np.ndarray:
    arr = store.fields[name]
    if arr.ndim != 2:
        raise DatasetError(
            f"{store.root}: field '{name}' must be a vector per frame, got shape {arr.shape[1:]}"
        )
    return arr


def compute_dataset_stats(
    store: EpisodeStore,
    binary_dims: Sequence[int] = GRIPPER_DIMS,
    chunk_size: int = CHUNK_SIZE,
    max_buffer_bytes: int = MAX_BUFFER_BYTES,
) -> dict[str, Any]:
    """Statistics of every action field (``rel_actions``, ``actions``) and state field (``robot_obs``,
    ``scene_obs``) the store holds, plus ``n_frames`` and ``n_episodes``; see the module docstring.

    DatasetError when the store has no frames or a field holds non-finite values.
    """
    if store.n_frames == 0:
        raise DatasetError(f"{store.root}: the dataset holds no frames to compute statistics on")
    out: dict[str, Any] = {"n_frames": int(store.n_frames), "n_episodes": len(store)}
    for name in (*ACTION_FIELDS, *OBS_FIELDS):
        if name not in store.fields:
            continue
        arr = _store_field(store, name)
        what = f"{store.root}: field '{name}'"
        try:
            stats = _array_stats(arr, what, chunk_size, max_buffer_bytes)
            if name in ACTION_FIELDS:
                stats = _apply_binary(stats, binary_dims, what)
        except DatasetError:
            raise
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        out[name] = stats
    return out


def _json_safe(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v, f"{key}.{k}" if key else str(k)) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist(), key)
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, key) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(float(obj)):
            raise ValueError(f"stats: key '{key}' holds a non-finite value {obj!r}, which JSON cannot store")
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise ValueError(f"stats: key '{key}' holds a {type(obj).__name__}, which JSON cannot store")


def write_stats(store_root: str | os.PathLike, stats: Mapping[str, Any]) -> Path:
    """Write ``stats`` to ``<store_root>/stats.json`` atomically (temp file + os.replace); returns the path."""
    root = Path(store_root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder does not exist")
    text = json.dumps(_json_safe(stats, ""), indent=2, sort_keys=True, allow_nan=False)
    return write_text_atomic(root / STATS_FILE, text + "\n")


def read_stats(store_root: str | os.PathLike) -> dict[str, Any]:
    """Read ``<store_root>/stats.json``; per-dim lists of the known fields come back as float64 arrays.

    DatasetError naming the file (and the key) when the file, ``n_frames``, ``n_episodes`` or a
    per-field key is missing, or per-dim lists of one field differ in length.
    """
    path = Path(store_root) / STATS_FILE
    if not path.exists():
        raise DatasetError(f"{path}: file is missing (write it with trainer.data.stats.write_stats)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    for key in ("n_frames", "n_episodes"):
        if key not in raw:
            raise DatasetError(f"{path}: key '{key}' is missing")
    out = dict(raw)
    for name in (*ACTION_FIELDS, *OBS_FIELDS):
        if name not in raw:
            continue
        entry = raw[name]
        if not isinstance(entry, dict):
            raise DatasetError(f"{path}: key '{name}' must be an object, got {type(entry).__name__}")
        for key in FIELD_KEYS:
            if key not in entry:
                raise DatasetError(f"{path}: key '{name}.{key}' is missing")
        conv = dict(entry)
        dims = None
        for key in PER_DIM_KEYS:
            try:
                arr = np.asarray(entry[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise DatasetError(f"{path}: key '{name}.{key}' must be a list of numbers") from None
            if arr.ndim != 1 or (dims is not None and arr.shape[0] != dims):
                raise DatasetError(
                    f"{path}: key '{name}.{key}' must be a list of {dims if dims is not None else 'D'} numbers, "
                    f"got shape {arr.shape}"
                )
            dims = arr.shape[0]
            conv[key] = arr
        out[name] = conv
    return out


def quantiles_from_stats(stats: Mapping[str, Any], field: str = "rel_actions") -> ActionQuantiles:
    """The :class:`ActionQuantiles` of ``field`` in a stats dict (as from :func:`read_stats`).

    DatasetError naming the field (and key) when it is missing or its quantiles are not 7 numbers.
    """
    if field not in stats:
        present = sorted(k for k, v in stats.items() if isinstance(v, Mapping))
        raise DatasetError(f"stats: field '{field}' is missing (fields present: {present})")
    try:
        return ActionQuantiles.from_dict(stats[field])
    except DatasetError:
        raise
    except ValueError as exc:
        raise DatasetError(f"stats: field '{field}': {exc}") from None


__all__ = [
    "ACTION_FIELDS",
    "OBS_FIELDS",
    "STATS_FILE",
    "compute_action_stats",
    "compute_dataset_stats",
    "quantiles_from_stats",
    "read_stats",
    "write_stats",
]
