"""The episode store: robovlm-bench's on-disk format for demonstrations.

Layout of a dataset folder (format ``robovlm-bench/episodes``, version 1)::

    meta.json         format, version, env metadata (suite, scene(s), env kwargs), fields with dtype
                      and per-frame shape, committed n_frames / n_episodes
    episodes.jsonl    one line per committed episode: index, start, end (exclusive frame ids),
                      task, instruction, scene, seed, symbolic start state, ...
    data/<field>.bin  raw little-endian arrays, frame-major, one file per field
    stats.json        normalisation statistics (written by :func:`trainer.data.stats.write_stats`)

Why this format: training reads random windows (16 frames of history, 10 actions ahead) from
random episodes. Raw frame-major arrays opened with ``np.memmap`` give any window with one slice per
field and no decompression or per-file open, which is what the loader benchmark
(``python -m trainer.data.bench``) measures against per-episode and per-frame ``.npz`` files.
Appends are cheap, and a commit protocol makes collection resumable: an episode's bytes are
appended to every field file, then its line to ``episodes.jsonl``, then ``meta.json`` is replaced
atomically with the new counts. On reopening, anything past the committed counts (an interrupted
episode) is truncated away.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.rundir import (
    RunFolderError,
    append_jsonl,
    read_json,
    read_jsonl_numbered,
    write_json_atomic,
    write_text_atomic,
)

FORMAT = "robovlm-bench/episodes"
VERSION = 1


class DatasetError(ValueError):
    """A dataset folder is missing something or holds something of the wrong shape or type."""


@dataclass
class Episode:
    """One demonstration: per-frame arrays (same length T) and its metadata."""

    data: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0


def _field_specs(sample: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {
        k: {"dtype": np.asarray(v).dtype.str, "shape": list(np.asarray(v).shape[1:])}
        for k, v in sample.items()
    }


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise DatasetError(f"{path}: file is missing")
    try:
        return read_json(path)
    except RunFolderError as exc:
        raise DatasetError(str(exc)) from None


def _frame_bytes(spec: Mapping[str, Any]) -> int:
    return int(np.dtype(spec["dtype"]).itemsize * np.prod(spec["shape"], dtype=np.int64))


def _differences(ours: Mapping[str, Any], stored: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: ours X, stored Y`` for every (dotted) key whose values differ."""
    out = []
    for key in sorted(set(ours) | set(stored), key=str):
        a, b = ours.get(key, "(absent)"), stored.get(key, "(absent)")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: ours {json.dumps(a)}, stored {json.dumps(b)}")
    return out


class EpisodeWriter:
    """Appends episodes to a dataset folder; reopening an existing folder resumes it.

    ``env`` is the metadata needed to rebuild the simulator that produced the data (stored in
    ``meta.json``). The fields and their per-frame shapes are fixed by the first episode (or by
    the existing folder); later episodes must match them.
    """

    def __init__(self, root: str | os.PathLike, env: Mapping[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        meta_path = self.root / "meta.json"
        if meta_path.exists():
            self.meta = _read_json(meta_path)
            _check_meta(self.meta, meta_path)
            if env is not None and dict(env) != self.meta["env"]:
                raise DatasetError(
                    f"{meta_path}: the folder holds data collected with other settings "
                    f"({'; '.join(_differences(dict(env), self.meta['env']))}); "
                    "use the same settings to resume, or another --out folder"
                )
            self._truncate_to_committed()
        else:
            self.meta = {
                "format": FORMAT,
                "version": VERSION,
                "env": dict(env or {}),
                "fields": {},
                "n_frames": 0,
                "n_episodes": 0,
            }
            for name in ("episodes.jsonl",):
                (self.root / name).write_text("")
            write_json_atomic(meta_path, self.meta)

    @property
    def n_episodes(self) -> int:
        return int(self.meta["n_episodes"])

    def committed_infos(self) -> list[dict[str, Any]]:
        return _read_episode_lines(self.root / "episodes.jsonl", self.n_episodes)

    def _truncate_to_committed(self) -> None:
        """Cut what an interrupted episode left past the committed counts; a field file shorter than
        the committed frames means the store was damaged, and appending to it would misplace data."""
        n = int(self.meta["n_frames"])
        for name, spec in self.meta["fields"].items():
            path = self.root / "data" / f"{name}.bin"
            need = n * _frame_bytes(spec)
            size = path.stat().st_size if path.exists() else 0
            if size < need:
                raise DatasetError(
                    f"{path}: holds {size} bytes, expected {need} for the {n} committed frames of "
                    f"{self.n_episodes} episodes (meta.json); the store is damaged: restore the file or "
                    "collect into another folder"
                )
            if size > need:
                with open(path, "r+b") as f:
                    f.truncate(need)
        self.committed_infos()  # the committed lines are all there and valid
        lines_path = self.root / "episodes.jsonl"
        lines = [ln for ln in lines_path.read_text().splitlines(keepends=True) if ln.strip()]
        if len(lines) != self.n_episodes:
            write_text_atomic(lines_path, "".join(lines[: self.n_episodes]))

    def add(self, episode: Episode) -> int:
        """Append and commit one episode; returns its index."""
        data = {k: np.ascontiguousarray(v) for k, v in episode.data.items()}
        lengths = {k: len(v) for k, v in data.items()}
        if not data or len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise DatasetError(f"episode fields must be non-empty and of equal length, got lengths {lengths}")
        specs = _field_specs(data)
        if not self.meta["fields"]:
            self.meta["fields"] = specs
        elif specs != self.meta["fields"]:
            raise DatasetError(f"episode fields {specs} differ from the dataset's {self.meta['fields']}")
        t = next(iter(lengths.values()))
        for name, arr in data.items():
            with open(self.root / "data" / f"{name}.bin", "ab") as f:
                f.write(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
                f.flush()
                os.fsync(f.fileno())
        start = int(self.meta["n_frames"])
        line = {"index": self.n_episodes, "start": start, "end": start + t, **episode.info}
        append_jsonl(self.root / "episodes.jsonl", line)
        self.meta["n_frames"] = start + t
        self.meta["n_episodes"] = self.n_episodes + 1
        write_json_atomic(self.root / "meta.json", self.meta)
        return line["index"]


def _check_meta(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    for key in ("format", "version", "env", "fields", "n_frames", "n_episodes"):
        if key not in meta:
            raise DatasetError(f"{path}: key '{key}' is missing")
    if meta["format"] != FORMAT:
        raise DatasetError(f"{path}: format is {meta['format']!r}, expected {FORMAT!r}")
    if meta["version"] != VERSION:
        raise DatasetError(
            f"{path}: version {meta['version']} is not supported (this reader knows {VERSION})"
        )


def _read_episode_lines(path: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` records of ``episodes.jsonl`` (those meta.json counts as committed)."""
    if not path.exists():
        raise DatasetError(f"{path}: file is missing")
    try:
        lines = read_jsonl_numbered(path)
    except RunFolderError as exc:
        raise DatasetError(str(exc)) from None
    if len(lines) < n:
        raise DatasetError(f"{path}: {len(lines)} episode lines, meta.json says {n}")
    out = []
    for lineno, rec in lines[:n]:
        for key in ("start", "end"):
            if not isinstance(rec.get(key), int) or isinstance(rec.get(key), bool):
                raise DatasetError(
                    f"{path}: line {lineno}: key '{key}' must be an integer, got {rec.get(key)!r}"
                )
        out.append(rec)
    return out


class EpisodeStore:
    """Read-only view of a dataset folder: memory-mapped fields and episode metadata."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder does not exist")
        meta_path = self.root / "meta.json"
        self.meta = _read_json(meta_path)
        _check_meta(self.meta, meta_path)
        self.n_frames = int(self.meta["n_frames"])
        self.episodes = _read_episode_lines(self.root / "episodes.jsonl", int(self.meta["n_episodes"]))
        self.fields: dict[str, np.ndarray] = {}
        for name, spec in self.meta["fields"].items():
            path = self.root / "data" / f"{name}.bin"
            if not path.exists():
                raise DatasetError(f"{path}: data file of field '{name}' is missing")
            dtype = np.dtype(spec["dtype"])
            shape = (self.n_frames, *spec["shape"])
            need = int(dtype.itemsize * np.prod(shape, dtype=np.int64))
            if path.stat().st_size < need:
                raise DatasetError(
                    f"{path}: field '{name}' holds {path.stat().st_size} bytes, expected {need} "
                    f"for {self.n_frames} frames of {spec['shape']} {dtype}"
                )
            self.fields[name] = (
                np.memmap(path, dtype=dtype, mode="r", shape=shape)
                if self.n_frames
                else np.zeros(shape, dtype)
            )
        prev_end = 0
        for i, ep in enumerate(self.episodes):
            if not (ep["start"] == prev_end and ep["end"] > ep["start"]):
                raise DatasetError(
                    f"{self.root / 'episodes.jsonl'}: episode {i} spans frames [{ep['start']}, {ep['end']}), "
                    f"expected to start at {prev_end} and be non-empty"
                )
            prev_end = ep["end"]
        if prev_end != self.n_frames:
            raise DatasetError(
                f"{self.root}: episodes cover {prev_end} frames, meta.json says {self.n_frames}"
            )

    @property
    def env(self) -> dict[str, Any]:
        return dict(self.meta["env"])

    def __len__(self) -> int:
        return len(self.episodes)

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.fields]
        if missing:
            raise DatasetError(f"{self.root}: field(s) {missing} are missing; present: {sorted(self.fields)}")

    def episode(self, i: int) -> Episode:
        ep = self.episodes[i]
        data = {k: np.asarray(v[ep["start"] : ep["end"]]) for k, v in self.fields.items()}
        info = {k: v for k, v in ep.items() if k not in ("index", "start", "end")}
        return Episode(data, info)

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)
