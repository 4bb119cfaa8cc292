"""Run folders: atomic writes, JSONL records that survive a kill, a folder lock, the marker and provenance.

Every tool that writes a folder of results (``bench.run``, ``bench.merge``, the trainer, the policies'
servers) goes through this module (standard library only, nothing else from ``bench``), so a folder is
never half written and a killed run can be read back. A *run folder* holds :data:`MARKER_FILE`, naming
the tool and the format version: a new run refuses a folder holding anything else (another tool's
``config.json`` is never overwritten), a resume one without the marker or of another version.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

#: The marker that makes a folder a run folder of ours.
MARKER_FILE = "bench_run.json"
#: Version of the run-folder layout; a resume refuses folders of another version.
FORMAT_VERSION = 1
#: The lock file taken while a process writes the folder.
LOCK_FILE = ".bench_run.lock"
CONFIG_FILE = "config.json"
EPISODES_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"


class RunFolderError(ValueError):
    """A run folder or one of its files is unusable; the message names the file and the problem."""


class RunFolderLocked(RunFolderError):
    """Another process holds the folder's lock."""


# --- writing -----------------------------------------------------------------------------------------


def plain_json(value: Any) -> Any:
    """``json`` fallback: numpy values (anything with ``tolist``) as plain values, paths as text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def dumps(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, default=plain_json)


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; a result file is as readable as any other
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    return write_text_atomic(path, dumps(obj, indent=indent) + "\n")


def append_jsonl(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record as one line (one write, flush, fsync), so a kill cuts at most it."""
    line = dumps(dict(record)) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


# --- reading -----------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no such file") from None
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed one raises :class:`RunFolderError`."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise RunFolderError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def read_json_object(path: str | Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: str | Path, *, truncate_cut_line: bool = False) -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl_numbered(path, truncate_cut_line=truncate_cut_line)]


def read_jsonl_numbered(
    path: str | Path, *, truncate_cut_line: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of a JSONL file (blank lines skipped).

    A last line without its newline is what a kill leaves: dropped when it does not parse, kept when it
    does; with ``truncate_cut_line`` the file is repaired so that appending can go on. Any other bad line
    raises :class:`RunFolderError` with the file and line number.
    """
    path = Path(path)
    raw = _read_bytes(path)
    good_end = raw.rfind(b"\n") + 1
    lines = raw[:good_end].split(b"\n")[:-1] if good_end else []
    records = [(n, _parse_line(path, n, line)) for n, line in enumerate(lines, 1) if line.strip()]
    tail, last = raw[good_end:], None
    if tail.strip():
        with contextlib.suppress(RunFolderError):
            last = _parse_line(path, len(lines) + 1, tail)
            records.append((len(lines) + 1, last))
    if tail and truncate_cut_line:
        with open(path, "r+b") as handle:
            if last is None:
                handle.truncate(good_end)
            else:
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
    return records


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_rate(value: Any) -> bool:
    return is_number(value) and 0 <= value <= 1


def require(
    data: Mapping[str, Any],
    key: str,
    where: Any,
    check: Callable[[Any], bool],
    what: str,
    *,
    optional: bool = False,
) -> Any:
    """``data[key]`` when ``check`` accepts it, else :class:`RunFolderError` naming ``where``, the
    key, what was expected and what was found (``optional``: missing or null gives ``None``).
    """
    value = data.get(key)
    if value is None and optional:
        return None
    if key not in data:
        raise RunFolderError(f"{where}: key {key!r} is missing (expected {what})")
    if not check(value):
        raise RunFolderError(f"{where}: key {key!r} must be {what}, got {value!r}")
    return value


def _parse_line(path: Path, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise RunFolderError(f"{path}: line {lineno} is not valid JSON ({reason})") from None
    if not isinstance(record, dict):
        raise RunFolderError(f"{path}: line {lineno} is not a JSON object (got {type(record).__name__})")
    return record


# --- the lock ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``folder`` for the block; a second holder is refused at once
    with :class:`RunFolderLocked` naming the pid. The lock goes with the process: a kill leaves none.
    """
    folder = Path(folder)
    lock_path = folder / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunFolderError(f"{folder}: cannot create the lock file ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunFolderLocked(
                f"{folder} is locked by another process (pid {holder}): it is being written; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)  # closing releases the flock


# --- the marker, creating and opening ------------------------------------------------------------------


def is_run_folder(folder: str | Path) -> bool:
    return (Path(folder) / MARKER_FILE).is_file()


def check_new_run_folder(folder: str | Path) -> Path:
    """Check, writing nothing but the folder itself, that ``folder`` can become a new
    run folder: not already a run folder (resume it), empty, and writable.
    """
    folder = Path(folder)
    if is_run_folder(folder):
        raise RunFolderError(
            f"{folder} already holds a run ({MARKER_FILE} exists): continue it with --resume {folder}, "
            "or pick another --out"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        present = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise RunFolderError(
            f"output folder {str(folder)!r} cannot be created or written: {exc.strerror or exc}"
        ) from None
    if present:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise RunFolderError(
            f"output folder {str(folder)!r} is not empty and not a run folder (holds {shown}); "
            "nothing there is overwritten: pick a new or empty folder"
        )
    return folder


def create_run_folder(folder: str | Path, *, tool: str = "bench.run") -> Path:
    folder = check_new_run_folder(folder)
    write_json_atomic(folder / MARKER_FILE, {"tool": tool, "format_version": FORMAT_VERSION})
    return folder


@contextlib.contextmanager
def new_run_folder(folder: str | Path, *, tool: str = "bench.run") -> Iterator[Path]:
    create_run_folder(folder, tool=tool)
    with locked(folder) as held:
        yield held


def open_run_folder(folder: str | Path) -> dict[str, Any]:
    """Check that ``folder`` is a run folder of this format; its ``config.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such folder")
    marker_path = folder / MARKER_FILE
    if not marker_path.is_file():
        if (folder / CONFIG_FILE).is_file():
            raise RunFolderError(
                f"{folder} has no {MARKER_FILE}: it was written by an older bench.run or by another tool, "
                "and cannot be resumed; start a new run"
            )
        raise RunFolderError(f"{folder} is not a run folder (no {MARKER_FILE})")
    marker = read_json_object(marker_path)
    version = marker.get("format_version")
    if version != FORMAT_VERSION:
        raise RunFolderError(
            f"{marker_path}: run-folder format {version!r}, this version reads format {FORMAT_VERSION}; "
            "start a new run"
        )
    return read_json_object(folder / CONFIG_FILE)


# --- provenance --------------------------------------------------------------------------------------


def git_commit(repo: str | Path | None = None) -> str | None:
    where = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("robovlm-bench")
    except metadata.PackageNotFoundError:
        from bench import __version__

        return __version__


def run_info() -> dict[str, Any]:
    return {
        "version": package_version(),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": {
            "hostname": platform.node(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
    }


def policy_record(policy: Any) -> dict[str, Any]:
    """The policy's class and provenance (checkpoint and hash, where it has one)."""
    record: dict[str, Any] = {"policy_class": type(policy).__qualname__}
    provenance = getattr(policy, "provenance", None)
    if callable(provenance):
        try:
            record["policy_provenance"] = provenance()
        except Exception as exc:  # provenance is informational: never fail a run over it
            record["policy_provenance"] = {"error": f"{type(exc).__name__}: {exc}"}
    return record


def write_config(folder: str | Path, config: Mapping[str, Any], policy: Any = None) -> dict[str, Any]:
    """Write ``config.json``: the run's options, :func:`run_info` and the policy's record."""
    full = {**config, **run_info(), **(policy_record(policy) if policy is not None else {})}
    write_json_atomic(Path(folder) / CONFIG_FILE, full)
    return full
