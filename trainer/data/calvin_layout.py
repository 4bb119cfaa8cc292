"""Convert between CALVIN's on-disk dataset layout and our episode store (:mod:`trainer.data.store`).

CALVIN's layout (one folder per split, e.g. ``task_D_D/training``)::

    episode_0000000.npz ...         one file per frame: actions (7, absolute), rel_actions (7),
                                    robot_obs (15), scene_obs (24), rgb_static (200, 200, 3) uint8,
                                    rgb_gripper (84, 84, 3) uint8, and depth / tactile keys
    ep_start_end_ids.npy            (K, 2) inclusive [start, end] frame ids of contiguous recordings
    lang_annotations/auto_lang_ann.npy
                                    pickled dict: language.ann / language.task / language.emb,
                                    info.indx (inclusive (start, end) frame window per annotation)
    statistics.yaml                 normalisation statistics

:func:`import_calvin` copies such a folder into an episode store: one episode per language
annotation window (``split_by="annotation"``, the default) or per recording (``"recording"``).
Of the frame keys only the six above are imported (depth and tactile keys are skipped); vector
fields are stored as float32 (CALVIN documents them as float32, some releases hold float64), images
as uint8 at the size found. Overlapping annotation windows are copied once per annotation.

:func:`export_calvin` writes an episode store in CALVIN's layout so that tools that read CALVIN's
layout can load it. ``language.emb`` is written as zeros of shape (n, 1, 384) float32: we ship no
sentence encoder, so consumers that condition on CALVIN's precomputed embeddings must recompute
them from ``language.ann`` (the instruction strings).

Command line::

    python -m trainer.data.calvin_layout import SRC DST [--split-by annotation|recording] [--quiet]
    python -m trainer.data.calvin_layout export SRC DST [--window N] [--quiet]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter

FRAME_NAME = "episode_{:07d}.npz"
EP_IDS_NAME = "ep_start_end_ids.npy"
LANG_NAME = "lang_annotations/auto_lang_ann.npy"
STATS_NAME = "statistics.yaml"
EMB_DIM = 384  # CALVIN's sentence embeddings (paraphrase-MiniLM-L3-v2) are 384-D

VECTOR_FIELDS = {"actions": 7, "rel_actions": 7, "robot_obs": 15, "scene_obs": 24}
IMAGE_FIELDS = ("rgb_static", "rgb_gripper")
CALVIN_FIELDS = (*VECTOR_FIELDS, *IMAGE_FIELDS)
SPLITS = ("annotation", "recording")
NORMALIZE_TARGET = "calvin_models.calvin_agent.utils.transforms.NormalizeVector"


# --- reading CALVIN's layout ---------------------------------------------------------------------


def _read_ep_start_end_ids(src: Path) -> np.ndarray:
    path = src / EP_IDS_NAME
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing (CALVIN's recording boundaries, [start, end] frame ids)")
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read it as a .npy array ({exc})") from None
    if ids.ndim != 2 or ids.shape[1] != 2 or ids.dtype.kind not in "iu":
        raise DatasetError(
            f"{path}: expected an integer array of shape (K, 2), got {ids.dtype} array of shape {ids.shape}"
        )
    for i, (s, e) in enumerate(ids.tolist()):
        if s < 0 or e < s:
            raise DatasetError(
                f"{path}: recording {i} is [{s}, {e}], expected 0 <= start <= end (inclusive ids)"
            )
    return ids.astype(np.int64)


def _read_lang(src: Path) -> list[dict[str, Any]]:
    """The annotations of ``auto_lang_ann.npy`` as dicts with task, instruction, start, end."""
    path = src / LANG_NAME
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing (CALVIN's language annotations)")
    try:
        raw = np.load(path, allow_pickle=True)
        obj = raw.item() if isinstance(raw, np.ndarray) and raw.dtype == object and raw.ndim == 0 else raw
    except Exception as exc:  # unpickling can raise anything
        raise DatasetError(f"{path}: cannot read it as a pickled dict saved with np.save ({exc})") from None
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path}: expected a dict {{'language': ..., 'info': ...}}, got {type(obj).__name__}"
        )

    def get(section: str, key: str) -> list:
        sec = obj.get(section)
        if not isinstance(sec, dict):
            raise DatasetError(
                f"{path}: field '{section}' is missing or not a dict (got {type(sec).__name__})"
            )
        if key not in sec:
            raise DatasetError(f"{path}: field '{section}.{key}' is missing")
        try:
            return list(sec[key])
        except TypeError:
            raise DatasetError(
                f"{path}: field '{section}.{key}' must be a list, got {type(sec[key]).__name__}"
            ) from None

    anns, tasks, indx = get("language", "ann"), get("language", "task"), get("info", "indx")
    if not len(anns) == len(tasks) == len(indx):
        raise DatasetError(
            f"{path}: fields 'language.ann', 'language.task', 'info.indx' must have equal lengths, "
            f"got {len(anns)}, {len(tasks)}, {len(indx)}"
        )
    out = []
    for i, (ann, task, window) in enumerate(zip(anns, tasks, indx, strict=True)):
        try:
            s, e = (int(v) for v in window)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{path}: field 'info.indx[{i}]' must be a (start, end) pair, got {window!r}"
            ) from None
        if s < 0 or e < s:
            raise DatasetError(f"{path}: field 'info.indx[{i}]' is ({s}, {e}), expected 0 <= start <= end")
        if not isinstance(ann, str):
            raise DatasetError(
                f"{path}: field 'language.ann[{i}]' must be a string, got {type(ann).__name__}"
            )
        out.append({"task": None if task is None else str(task), "instruction": ann, "start": s, "end": e})
    return out


def _field_error(path: Path, name: str, what: str, expected: Any, got: Any) -> DatasetError:
    return DatasetError(f"{path}: field '{name}' has {what} {got}, expected {expected}")


class _FrameReader:
    """Loads CALVIN frame files, checking keys, shapes and dtypes against the first frame read."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self.first: Path | None = None
        self.fields: tuple[str, ...] = ()
        self.image_shapes: dict[str, tuple[int, ...]] = {}

    def path(self, frame_id: int) -> Path:
        return self.src / FRAME_NAME.format(frame_id)

    def read(self, frame_id: int) -> dict[str, np.ndarray]:
        path = self.path(frame_id)
        if not path.is_file():
            raise DatasetError(f"{path}: frame file is missing")
        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path}: cannot read the frame file ({exc})") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path}: expected an .npz archive of per-frame arrays, got a single array")
        with npz:
            present = set(npz.files)
            if self.first is None:
                self.first = path
                self.fields = tuple(k for k in CALVIN_FIELDS if k in present)
                if not self.fields:
                    raise DatasetError(
                        f"{path}: holds none of the fields {list(CALVIN_FIELDS)}; keys: {sorted(present)}"
                    )
            missing = [k for k in self.fields if k not in present]
            if missing:
                raise DatasetError(
                    f"{path}: key '{missing[0]}' is missing (expected keys {list(self.fields)}, "
                    f"as in {self.first.name}; present: {sorted(present)})"
                )
            extra = [k for k in CALVIN_FIELDS if k in present and k not in self.fields]
            if extra:
                raise DatasetError(
                    f"{self.first}: key '{extra[0]}' is missing, but {path.name} holds it; every frame must "
                    f"hold the same fields of {list(CALVIN_FIELDS)}"
                )
            try:
                arrays = {k: npz[k] for k in self.fields}
            except Exception as exc:  # zip / format errors of a damaged member
                raise DatasetError(f"{path}: cannot read the frame's arrays ({exc})") from None
        return {k: self._check(path, k, v) for k, v in arrays.items()}

    def _check(self, path: Path, name: str, arr: np.ndarray) -> np.ndarray:
        if name in VECTOR_FIELDS:
            want = (VECTOR_FIELDS[name],)
            if arr.shape != want:
                raise _field_error(path, name, "shape", want, arr.shape)
            if arr.dtype.kind != "f":
                raise _field_error(path, name, "dtype", "a floating-point dtype", arr.dtype)
            return arr.astype(np.float32, copy=False)
        if arr.dtype != np.uint8:
            raise _field_error(path, name, "dtype", "uint8", arr.dtype)
        want_shape = self.image_shapes.get(name)
        if want_shape is None:
            if arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
                raise _field_error(path, name, "shape", "(H, W, 3)", arr.shape)
            self.image_shapes[name] = arr.shape
        elif arr.shape != want_shape:
            raise _field_error(path, name, "shape", f"{want_shape} (as in {self.first.name})", arr.shape)
        return arr

    def read_range(self, start: int, end: int, progress: Any = None) -> dict[str, np.ndarray]:
        """Frames ``start..end`` (inclusive) stacked per field."""
        n = end - start + 1
        out: dict[str, np.ndarray] = {}
        for t, fid in enumerate(range(start, end + 1)):
            frame = self.read(fid)
            if not out:
                out = {k: np.empty((n, *v.shape), v.dtype) for k, v in frame.items()}
            for k, v in frame.items():
                out[k][t] = v
            if progress is not None:
                progress.update(1)
        return out


def _plan(src: Path, split_by: str) -> list[dict[str, Any]]:
    """The episodes to import: info dicts with ``calvin_window`` = inclusive frame ids."""
    recordings = _read_ep_start_end_ids(src)
    annotations = _read_lang(src)  # required in both modes: a CALVIN folder without it is incomplete
    names = {e.name for e in os.scandir(src) if e.name.endswith(".npz")}
    plan = []
    if split_by == "annotation":
        if not annotations:
            raise DatasetError(f"{src / LANG_NAME}: holds no annotations; use split_by='recording'")
        outside = []
        for i, a in enumerate(annotations):
            s, e = a["start"], a["end"]
            for fid in range(s, e + 1):
                if FRAME_NAME.format(fid) not in names:
                    raise DatasetError(
                        f"{src / LANG_NAME}: field 'info.indx[{i}]' ({a['task']!r}) is the window [{s}, {e}], "
                        f"but frame {fid} of it is missing: {src / FRAME_NAME.format(fid)} does not exist"
                    )
            if not any(rs <= s and e <= re for rs, re in recordings.tolist()):
                outside.append(i)
            plan.append(
                {
                    "task": a["task"],
                    "instruction": a["instruction"],
                    "source": "calvin",
                    "calvin_window": [s, e],
                }
            )
        if outside:
            warnings.warn(
                f"{src / LANG_NAME}: {len(outside)} annotation window(s) (first: info.indx[{outside[0]}]) "
                f"are not inside a single recording of {EP_IDS_NAME}",
                stacklevel=3,
            )
    else:
        for i, (s, e) in enumerate(recordings.tolist()):
            for fid in range(s, e + 1):
                if FRAME_NAME.format(fid) not in names:
                    raise DatasetError(
                        f"{src / EP_IDS_NAME}: recording {i} is [{s}, {e}], but frame {fid} of it is missing: "
                        f"{src / FRAME_NAME.format(fid)} does not exist"
                    )
            plan.append({"task": None, "instruction": None, "source": "calvin", "calvin_window": [s, e]})
        if not plan:
            raise DatasetError(f"{src / EP_IDS_NAME}: holds no recordings")
    return plan


def import_calvin(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    split_by: str = "annotation",
    env: dict[str, Any] | None = None,
    progress: bool = True,
) -> EpisodeStore:
    """Copy a CALVIN-layout folder ``src`` into an episode store at ``dst``; returns the store.

    ``split_by="annotation"``: one episode per language annotation, in the order of
    ``auto_lang_ann.npy``, info ``{"task", "instruction", "source": "calvin", "calvin_window": [s, e]}``
    (inclusive CALVIN frame ids). ``"recording"``: one episode per row of ``ep_start_end_ids.npy``
    with task and instruction None (and the same ``calvin_window`` key). Both modes require
    ``ep_start_end_ids.npy`` and ``lang_annotations/auto_lang_ann.npy``; ``statistics.yaml`` is ignored.
    The folder structure and the existence of every needed frame file are checked before anything is
    written; keys, shapes and dtypes of each frame file are checked as it is read (a DatasetError then
    leaves the episodes committed so far, and a rerun after fixing the frame resumes).

    ``dst`` must be new, empty or a store written by an earlier, interrupted run of the same import
    (same ``env`` and split): its committed episodes are kept and the import continues after them.
    """
    if split_by not in SPLITS:
        raise ValueError(f"split_by must be one of {SPLITS}, got {split_by!r}")
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DatasetError(f"{src}: CALVIN dataset folder does not exist")
    env = dict(env) if env is not None else {"suite": "calvin", "source": str(src)}
    plan = _plan(src, split_by)

    writer: EpisodeWriter | None = None
    n_done = 0
    if (dst / "meta.json").exists():
        writer = EpisodeWriter(dst, env=env)
        done = [
            {k: v for k, v in rec.items() if k not in ("index", "start", "end")}
            for rec in writer.committed_infos()
        ]
        for i, info in enumerate(done):
            if i >= len(plan) or info != plan[i]:
                expected = plan[i] if i < len(plan) else "no episode"
                raise DatasetError(
                    f"{dst}: holds episodes of another import (episode {i} is {info}, this import's is "
                    f"{expected}); use another folder"
                )
        n_done = len(done)
    elif dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DatasetError(
            f"{dst}: exists and is not an empty folder or an episode store; use another folder"
        )

    reader = _FrameReader(src)
    todo = plan[n_done:]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(i["calvin_window"][1] - i["calvin_window"][0] + 1 for i in todo),
            unit="frame",
            desc=f"import {src.name}",
            file=sys.stderr,
        )
    try:
        for info in todo:
            data = reader.read_range(*info["calvin_window"], progress=bar)
            if writer is None:  # created only once the first episode has been read and checked
                writer = EpisodeWriter(dst, env=env)
            writer.add(Episode(data, dict(info)))
    finally:
        if bar is not None:
            bar.close()
    return EpisodeStore(dst)


# --- writing CALVIN's layout ---------------------------------------------------------------------


def _check_store_fields(store: EpisodeStore) -> None:
    store.require(*CALVIN_FIELDS)
    where = store.root / "meta.json"
    for name, size in VECTOR_FIELDS.items():
        arr = store.fields[name]
        if arr.shape[1:] != (size,):
            raise _field_error(where, name, "per-frame shape", (size,), arr.shape[1:])
        if arr.dtype.kind != "f":
            raise _field_error(where, name, "dtype", "a floating-point dtype", arr.dtype)
    for name in IMAGE_FIELDS:
        arr = store.fields[name]
        if arr.ndim != 4 or arr.shape[3] != 3:
            raise _field_error(where, name, "per-frame shape", "(H, W, 3)", arr.shape[1:])
        if arr.dtype != np.uint8:
            raise _field_error(where, name, "dtype", "uint8", arr.dtype)


def _yaml_float(x: float) -> str:
    """A float as YAML 1.1 reads it back as a float (PyYAML needs a '.' in the mantissa)."""
    x = float(x)
    if np.isnan(x):
        return ".nan"
    if np.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    s = repr(x)
    if "e" in s and "." not in s.split("e")[0]:
        mantissa, exp = s.split("e")
        s = f"{mantissa}.0e{exp}"
    return s


def _yaml_list(values: np.ndarray) -> str:
    return "[" + ", ".join(_yaml_float(v) for v in np.asarray(values).ravel()) + "]"


def _vector_stats(arr: np.ndarray, chunk: int = 1 << 16) -> dict[str, np.ndarray]:
    n = len(arr)
    total = np.zeros(arr.shape[1], np.float64)
    sq = np.zeros(arr.shape[1], np.float64)
    lo = np.full(arr.shape[1], np.inf)
    hi = np.full(arr.shape[1], -np.inf)
    for a in range(0, n, chunk):
        x = np.asarray(arr[a : a + chunk], dtype=np.float64)
        total += x.sum(0)
        sq += (x * x).sum(0)
        lo = np.minimum(lo, x.min(0))
        hi = np.maximum(hi, x.max(0))
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))
    return {"mean": mean, "std": std, "min": lo, "max": hi}


def _statistics_yaml(store: EpisodeStore) -> str:
    """CALVIN-style statistics.yaml: NormalizeVector for robot_obs / scene_obs, absolute-action bounds.

    Dimensions with a standard deviation below 1e-6 (constant in this data) get std 1.0 so that
    normalising them does not divide by zero.
    """
    lines = [
        f"# Written by robovlm-bench (trainer.data.calvin_layout.export_calvin) from {store.root}",
        f"# ({store.n_frames} frames, {len(store)} episodes). Statistics over all frames; std < 1e-6 set to 1.0.",
    ]
    for name in ("robot_obs", "scene_obs"):
        st = _vector_stats(store.fields[name])
        std = np.where(st["std"] < 1e-6, 1.0, st["std"])
        lines += [
            f"{name}:",
            f"  - _target_: {NORMALIZE_TARGET}",
            f"    mean: {_yaml_list(st['mean'])}",
            f"    std: {_yaml_list(std)}",
        ]
    act = _vector_stats(store.fields["actions"])
    lines += [f"act_min_bound: {_yaml_list(act['min'])}", f"act_max_bound: {_yaml_list(act['max'])}"]
    return "\n".join(lines) + "\n"


def export_calvin(
    store_or_path: EpisodeStore | str | os.PathLike,
    dst: str | os.PathLike,
    *,
    window: int | None = None,
    progress: bool = True,
) -> Path:
    """Write an episode store in CALVIN's layout at ``dst`` (new or empty folder); returns ``dst``.

    Frames are numbered consecutively from 0 across episodes (``episode_0000000.npz`` ...,
    uncompressed ``np.savez`` with the six CALVIN keys in the store's dtypes), ``ep_start_end_ids.npy``
    holds one inclusive [start, end] per episode, and ``lang_annotations/auto_lang_ann.npy`` one
    annotation per episode with a non-empty instruction: ``ann`` = instruction, ``task`` = task
    ("" when None), ``indx`` = the episode's inclusive [start, end] -- or, with ``window``, its last
    ``window`` frames (CALVIN's annotation windows end where the task is solved). ``emb`` is a zero
    array (n, 1, 384) float32 (we ship no sentence encoder). ``statistics.yaml`` holds CALVIN-style
    normalisation statistics. Other store fields and episode info are not exported.
    """
    store = store_or_path if isinstance(store_or_path, EpisodeStore) else EpisodeStore(store_or_path)
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be a positive int or None, got {window!r}")
    _check_store_fields(store)
    if len(store) == 0:
        raise DatasetError(f"{store.root}: the store holds no episodes")
    dst = Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DatasetError(f"{dst}: exists and is not an empty folder; export into a new or empty folder")

    anns, tasks, indx = [], [], []
    for i, ep in enumerate(store.episodes):
        instr = ep.get("instruction")
        if instr is None or instr == "":
            continue
        if not isinstance(instr, str):
            raise DatasetError(
                f"{store.root / 'episodes.jsonl'}: episode {i}: 'instruction' must be a string, got {instr!r}"
            )
        start, end = ep["start"], ep["end"] - 1
        if window is not None:
            start = max(start, end - window + 1)
        anns.append(instr)
        tasks.append("" if ep.get("task") is None else str(ep["task"]))
        indx.append((int(start), int(end)))

    dst.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=store.n_frames, unit="frame", desc=f"export {dst.name}", file=sys.stderr)
    try:
        chunk = 256
        for a in range(0, store.n_frames, chunk):
            block = {k: np.asarray(store.fields[k][a : a + chunk]) for k in CALVIN_FIELDS}
            for t in range(len(block["actions"])):
                np.savez(dst / FRAME_NAME.format(a + t), **{k: v[t] for k, v in block.items()})
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    ids = np.array([[ep["start"], ep["end"] - 1] for ep in store.episodes], dtype=np.int64)
    np.save(dst / EP_IDS_NAME, ids)
    lang = {
        "language": {"ann": anns, "task": tasks, "emb": np.zeros((len(anns), 1, EMB_DIM), np.float32)},
        "info": {"indx": indx, "episodes": []},
    }
    (dst / LANG_NAME).parent.mkdir(exist_ok=True)
    np.save(dst / LANG_NAME, lang, allow_pickle=True)
    (dst / STATS_NAME).write_text(_statistics_yaml(store))
    return dst


# --- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.data.calvin_layout",
        description="Convert between CALVIN's dataset layout and robovlm-bench's episode store.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="CALVIN-layout folder SRC -> episode store DST")
    imp.add_argument("src", help="CALVIN split folder (e.g. task_D_D/training)")
    imp.add_argument("dst", help="episode store folder to write (new, empty, or an interrupted import)")
    imp.add_argument(
        "--split-by",
        choices=SPLITS,
        default="annotation",
        help="one episode per language annotation (default) or per recording",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp = sub.add_parser("export", help="episode store SRC -> CALVIN-layout folder DST")
    exp.add_argument("src", help="episode store folder")
    exp.add_argument("dst", help="new or empty folder to write CALVIN's layout into")
    exp.add_argument(
        "--window",
        type=int,
        default=None,
        help="annotate only the last N frames of each episode (default: the whole episode)",
    )
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.command == "import":
            store = import_calvin(args.src, args.dst, split_by=args.split_by, progress=not args.quiet)
            print(f"imported {len(store)} episodes ({store.n_frames} frames) into {store.root}")
        else:
            if args.window is not None and args.window < 1:
                raise ValueError(f"--window must be a positive integer, got {args.window}")
            out = export_calvin(args.src, args.dst, window=args.window, progress=not args.quiet)
            print(f"exported {args.src} in CALVIN's layout to {out}")
    except (DatasetError, ValueError, OSError) as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
