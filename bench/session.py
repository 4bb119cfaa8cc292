"""One run of any suite, from the command line to ``summary.json``: what ``bench.run`` does.

Parse the common options and the suite's, check them, plan the units (and the shard), open the run
folder (new and empty, or ``--resume DIR`` with its records validated), build the policy, write
``config.json`` with provenance, play the units (worker processes or Ray), append each record to
``episodes.jsonl`` as it finishes, close the policy and write ``summary.json``, the folder locked
throughout. Exit codes: 0 done, 1 the run failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import rundir
from bench.engine import WORKER_DIED, Job, is_error, run_units
from bench.rundir import EPISODES_FILE, SUMMARY_FILE
from bench.suites import RESUMABLE, CommonOptions, Suite, UsageError, suite_class, suite_names


class FailFast(RuntimeError):
    """--fail-fast: a unit ended in an error; the run stops (exit code 1, finished units kept)."""


# ----------------------------------------------------------------------------- options


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_fields(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        kwargs = dict(f.metadata)
        shown = "" if f.default is None or isinstance(f.default, bool) else f" (default: {f.default})"
        kwargs["help"] = kwargs.get("help", "") + shown
        if f.name == "suite":
            kwargs["choices"] = suite_names()
        if isinstance(f.default, bool):
            group.add_argument(_flag(f.name), dest=f.name, action="store_true", **kwargs)
        else:
            kind = float if "float" in str(f.type) else int if "int" in str(f.type) else str
            group.add_argument(_flag(f.name), dest=f.name, type=kind, **kwargs)


def build_parser(suite: type[Suite]) -> argparse.ArgumentParser:
    """``bench.run``'s parser for ``suite``: common options, then the suite's; options not
    given are absent from the namespace (so a resume can tell what was given).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=f"Evaluate a policy on a benchmark suite. This is suite {suite.name!r}: {suite.description}",
        epilog=f"suites: {', '.join(suite_names())}; python -m bench.run --suite NAME --help shows its options",
        argument_default=argparse.SUPPRESS,
    )
    _add_fields(parser, CommonOptions, "options of every suite")
    _add_fields(parser, suite.options, f"options of suite {suite.name}")
    return parser


def _value_of(argv: Sequence[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _foreign_options(unknown: Sequence[str], suite: str) -> str:
    """One line on unrecognised options, naming the suites they belong to."""
    owners: dict[str, list[str]] = {}
    for name in suite_names():
        for f in dataclasses.fields(suite_class(name).options):
            owners.setdefault(_flag(f.name), []).append(name)
    parts = []
    for token in unknown:
        flag = token.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        if flag in owners:
            parts.append(f"{flag} is an option of suite {', '.join(owners[flag])}, not {suite}")
        else:
            parts.append(f"unknown option {flag}")
    if not parts:
        return f"unexpected argument(s) {' '.join(unknown)}"
    return "; ".join(parts) + f" (python -m bench.run --suite {suite} --help lists its options)"


def fill_options(cls: type, given: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> Any:
    """Options dataclass ``cls`` from ``base`` (e.g. a config.json), then ``given``."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in (base or {}).items() if k in names}
    values.update({k: v for k, v in given.items() if k in names})
    return cls(**values)


def parse(argv: Sequence[str], **suite_kwargs: Any) -> tuple[Suite, CommonOptions, Any, dict]:
    """(suite, common options, suite options, the resumed run's config or ``{}``); ``--resume DIR``
    takes every option from ``DIR/config.json`` and refuses, by name, any but :data:`~bench.suites.RESUMABLE`.
    """
    argv = list(argv)
    resume = _value_of(argv, "--resume")
    config: dict[str, Any] = {}
    name = _value_of(argv, "--suite")
    if resume and "-h" not in argv and "--help" not in argv:
        try:
            config = rundir.open_run_folder(resume)
        except rundir.RunFolderError as exc:
            raise UsageError(f"--resume: {exc}") from None
        if not isinstance(config.get("suite"), str):
            raise UsageError(f"{Path(resume) / rundir.CONFIG_FILE}: key 'suite' is missing")
        if name is not None and name != config["suite"]:
            raise UsageError(f"--suite {name}: the run in {resume} is of suite {config['suite']}")
        name = config["suite"]
    cls = suite_class(name or CommonOptions.suite)
    parser = build_parser(cls)
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        raise UsageError(_foreign_options(unknown, cls.name))
    given = vars(given)
    if config:
        fixed = sorted(_flag(k) for k in given if k not in (*RESUMABLE, "resume", "suite"))
        if fixed:
            raise UsageError(
                f"--resume {resume} takes {', '.join(fixed)} from its config.json and cannot change "
                f"{'it' if len(fixed) == 1 else 'them'}; drop {'it' if len(fixed) == 1 else 'them'} "
                "(or start a new run with --out)"
            )
        given = {**given, "out": resume}
    common = fill_options(CommonOptions, given, config)
    try:
        opts = fill_options(cls.options, given, config)
    except TypeError as exc:
        raise UsageError(f"{Path(resume or '.') / rundir.CONFIG_FILE}: {exc}") from None
    return cls(**suite_kwargs), common, opts, config


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {text}: need 0 <= i < n, got i={i}, n={n}")
    return i, n


def check_common(suite: Suite, common: CommonOptions) -> None:
    if common.policy is None or common.out is None:
        raise UsageError("--policy and --out are required (or --resume DIR to continue a run)")
    parse_shard(common.shard)
    if common.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {common.workers}")
    if common.record < 0:
        raise UsageError(f"--record must be >= 0, got {common.record}")
    if not suite.parallel and (common.workers > 1 or common.ray is not None):
        raise UsageError(f"suite {suite.name} plays one unit at a time: drop --workers and --ray")
    if common.ray is not None:
        from bench.ray_backend import check_args as check_ray

        try:
            check_ray(common.workers)  # --workers > 1, or ray not installed
        except ValueError as exc:
            raise UsageError(str(exc)) from None


# ----------------------------------------------------------------------------- records


def load_records(
    suite: Suite, common: CommonOptions, path: Path, keys: Mapping[str, Any], *, truncate: bool
) -> list[dict]:
    """The records of ``path`` checked against the run's units (``keys``: key -> unit): each
    line a unit of the run, once (a dead worker's unit may follow with its retry); the last record of a
    unit is kept. Problems raise :class:`UsageError` (a line that is not JSON: ``RunFolderError``) with the line.
    """
    if not path.exists():
        return []
    kept: dict[str, tuple[int, dict]] = {}
    for lineno, record in rundir.read_jsonl_numbered(path, truncate_cut_line=truncate):
        try:
            key = suite.record_key(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"{path}: line {lineno} lacks the unit key of suite {suite.name} ({exc})"
            ) from None
        if key not in keys:
            raise UsageError(f"{path}: line {lineno}: {suite.unit_noun} {key} is not one of this run's units")
        mismatch = suite.record_mismatch(record, keys[key], common)
        if mismatch:
            raise UsageError(
                f"{path}: line {lineno}: {suite.unit_noun} {key} does not fit this run: {mismatch}"
            )
        if key in kept and not is_error(kept[key][1], WORKER_DIED):
            raise UsageError(
                f"{path}: line {lineno} repeats {suite.unit_noun} {key} (first at line {kept[key][0]})"
            )
        kept[key] = (lineno, record)
    return [record for _, record in kept.values()]


def summary_of(
    suite: Suite,
    opts: Any,
    common: CommonOptions,
    records: Sequence[Mapping[str, Any]],
    wall: float,
) -> dict[str, Any]:
    """summary.json of a run, a shard or merged shards from its records (any order)."""
    records = sorted(records, key=lambda r: r.get("position", 0))
    steps = sum(suite.unit_steps(r) for r in records)
    unit_time = sum(float(r.get("wall_time_s") or 0.0) for r in records)
    summary: dict[str, Any] = {
        "suite": suite.name,
        "policy": common.label or common.policy,
        **suite.summarize(opts, records),
    }
    summary.update(
        stop_reasons=dict(Counter(str(r.get("stop_reason", "")).split(":")[0] for r in records)),
        seed=common.seed,
        workers=common.workers,
        shard=common.shard,
        wall_time_s=round(wall, 3),
        unit_time_s=round(unit_time, 3),
        env_steps=steps,
        # summed per-unit times: the same figure for a resumed run as for one run to the end
        env_steps_per_s=round(steps / unit_time, 2) if unit_time > 0 else None,
        retried_units=sum(int(r.get("attempt", 1)) > 1 for r in records),
    )
    summary.setdefault("n_errors", sum(map(is_error, records)))
    return summary


# ----------------------------------------------------------------------------- the run


def _print_error(exc: BaseException) -> None:
    print(f"bench.run: error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, **suite_kwargs: Any) -> int:
    """``python -m bench.run``; tests may pass keywords for the suite's constructor (test doubles)."""
    from policies.registry import make_policy

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        suite, common, opts, config = parse(argv, **suite_kwargs)
        resuming = bool(config)
        check_common(suite, common)
        suite.check(opts, common)
        units = suite.plan(opts, common)
        positions = {suite.unit_key(u): p for p, u in enumerate(units)}
        shard = parse_shard(common.shard)
        if shard is not None:
            units = [u for p, u in enumerate(units) if p % shard[1] == shard[0]]
        keys = {suite.unit_key(u): u for u in units}
        out = Path(common.out)
        if resuming:
            if (out / SUMMARY_FILE).exists() and not _lost_units(suite, out / EPISODES_FILE):
                raise UsageError(
                    f"--resume {out}: the run is complete ({SUMMARY_FILE} exists); nothing to resume"
                )
        else:
            rundir.check_new_run_folder(out)
        try:
            policy = make_policy(common.policy)
        except ValueError as exc:  # the registry's own account: an unknown name, a failed import, ...
            raise UsageError(str(exc)) from None
        except Exception as exc:  # a constructor failure of a registered family: one line
            raise UsageError(f"policy {common.policy!r} cannot be built: {_reason(exc)}") from None
        try:
            suite.check_policy(opts, common, policy)
        except UsageError:
            _close(policy, common)
            raise
    except (UsageError, rundir.RunFolderError) as exc:
        _print_error(exc)
        return 2
    try:
        with rundir.locked(out) if resuming else rundir.new_run_folder(out):
            code = _run(suite, common, opts, policy, units, keys, positions, out, resuming, argv)
    except (UsageError, rundir.RunFolderError) as exc:
        _close(policy, common)
        _print_error(exc)
        code = 2
    if code != 0 and not resuming and not (out / EPISODES_FILE).exists():
        _forget(out)  # no unit finished: leave the folder as it was, so the same command can run again
    return code


def _next_step(out: Path, resuming: bool) -> str:
    if resuming or (out / EPISODES_FILE).exists():
        return (
            f"finished units are in {out / EPISODES_FILE}; continue with: python -m bench.run --resume {out}"
        )
    return "no unit finished and nothing was kept, so the same command can run again"


def _forget(out: Path) -> None:
    """Remove what a new run wrote before its first unit finished, so the same command can rerun."""
    for name in (rundir.CONFIG_FILE, rundir.MARKER_FILE, rundir.LOCK_FILE):
        (out / name).unlink(missing_ok=True)


def _lost_units(suite: Suite, path: Path) -> list[str]:
    """Keys of the units whose last record says their worker died (resume plays them again)."""
    last: dict[str, str] = {}
    try:
        for record in rundir.read_jsonl(path):
            last[suite.record_key(record)] = str(record.get("stop_reason", ""))
    except (rundir.RunFolderError, KeyError, TypeError, ValueError):
        return []  # reported with its line number when the records are loaded
    return [key for key, reason in last.items() if reason.startswith(WORKER_DIED)]


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}: {cause})"
    return text


def _close(policy: Any, common: CommonOptions) -> None:
    """``policy.close()``; a failure is reported and never loses the run's results."""
    try:
        policy.close()
    except Exception as exc:
        print(f"bench.run: warning: policy {common.policy!r} close() raised {_reason(exc)}", file=sys.stderr)


def _run(
    suite: Suite,
    common: CommonOptions,
    opts: Any,
    policy: Any,
    units: list,
    keys: dict[str, Any],
    positions: dict[str, int],
    out: Path,
    resuming: bool,
    argv: list[str],
) -> int:
    episodes = out / EPISODES_FILE
    earlier = load_records(suite, common, episodes, keys, truncate=True) if resuming else []
    done = {suite.record_key(r) for r in earlier if not is_error(r, WORKER_DIED)}
    attempts = Counter(suite.record_key(r) for r in earlier)
    todo = [u for u in units if suite.unit_key(u) not in done]
    record_keys = {suite.unit_key(u) for u in todo[: common.record]}
    videos = out / "videos" if common.record > 0 else None
    player = suite.player(opts, common, policy, videos)
    if resuming:
        if not common.quiet:
            noun = suite.unit_noun
            print(f"bench.run: resuming {out}: {len(done)} {noun}s done, {len(todo)} to go", file=sys.stderr)
    else:
        config = {**dataclasses.asdict(common), **dataclasses.asdict(opts), "argv": argv}
        rundir.write_config(out, config, policy)
    jobs = [Job(positions[suite.unit_key(u)], u, record=suite.unit_key(u) in record_keys) for u in todo]
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=suite.name, unit=suite.unit_noun, disable=common.quiet)
    new: list[dict] = []

    def on_result(record: dict) -> None:
        key = suite.record_key(record)
        record["position"] = positions[key]
        if attempts[key]:
            record["attempt"] = attempts[key] + 1
        rundir.append_jsonl(episodes, record)
        new.append(record)
        bar.update(1)
        if common.fail_fast and is_error(record):
            raise FailFast(f"{suite.unit_noun} {key}: {record['stop_reason']}")

    start = time.perf_counter()
    try:
        if common.ray is not None:
            from bench import ray_backend

            ray_backend.run_units(
                common.policy,
                jobs,
                player,
                address=common.ray,
                policy_name=common.policy,
                on_result=on_result,
            )
        else:
            run_units(
                policy, jobs, player, workers=common.workers, policy_name=common.policy, on_result=on_result
            )
    except KeyboardInterrupt:
        print(f"\nbench.run: interrupted; {_next_step(out, resuming)}", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        _print_error(f"{exc}; {_next_step(out, resuming)}")
        return 1
    finally:
        bar.close()
        _close(policy, common)
    wall = time.perf_counter() - start
    records = [r for r in earlier if suite.record_key(r) in done] + new
    summary = summary_of(suite, opts, common, records, wall)
    if resuming:
        summary[f"resumed_{suite.unit_noun}s"] = len(done)
    rundir.write_json_atomic(out / SUMMARY_FILE, summary)
    if not common.quiet:
        suite.print_tables(summary)
    print(f"{suite.headline(summary)} -> {out / SUMMARY_FILE}")
    suite.finish(opts, out)
    errors = sum(map(is_error, records))
    lost = sum(is_error(r, WORKER_DIED) for r in records)
    if lost:
        print(
            f"bench.run: warning: {lost} {suite.unit_noun}(s) lost their worker; "
            f"python -m bench.run --resume {out} plays them again",
            file=sys.stderr,
        )
    if errors:
        print(
            f"bench.run: warning: {errors} {suite.unit_noun}(s) stopped with an error; "
            f"see stop_reason in {episodes}",
            file=sys.stderr,
        )
    return 0
