"""``python -m bench.simreal``: how well SimplerEnv-style runs agree with real-world results.

    python -m bench.simreal --runs runs/simpler [DIR ...] [--real-results FILE] [--name DIR=POLICY ...] \\
        [--mode visual_matching|variant_aggregation] [--json OUT.json]

Each run (or each SimplerEnv-style run below a folder) is matched to a policy of the real-world table
(:func:`bench.simreal.match_policy`: ``--name``, the folder's name, its summary's policy). Per task group
the matched runs' rates and the real ones give SimplerEnv's MMRV and Pearson r (on partial success too
where both sides have it); ``overall`` is their mean over the groups; groups with fewer than two matched
policies are listed as skipped. Exit codes: 0 compared, 1 bad input, 2 nothing to compare.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import rundir
from bench.results import RunFormatError, find_runs
from bench.rundir import SUMMARY_FILE
from bench.simreal import (
    REFERENCE_CSV,
    RealResultsError,
    agreement,
    group_order,
    load_real_results,
    load_simpler_run,
    match_policy,
    run_suite,
    sim_real_pairs,
)
from bench.suites.simpler import SimplerSuite
from envs.simpler import MODES


class SimRealError(ValueError):
    """Bad input to the command (runs, names, modes); the message says what to change."""


def parse_names(items: Sequence[str]) -> dict[str, str]:
    """``["DIR=POLICY", ...]`` -> ``{DIR: POLICY}``."""
    names = {}
    for item in items:
        key, sep, policy = item.partition("=")
        if not sep or not key.strip() or not policy.strip():
            raise SimRealError(f"--name {item!r}: expected DIR=POLICY, e.g. runs/octo=Octo-base")
        names[key.strip()] = policy.strip()
    return names


def collect_runs(dirs: Sequence[str | Path], log=print) -> list[dict[str, Any]]:
    """The SimplerEnv-style runs of ``dirs``: a run folder given directly must be one; below
    another folder, runs of other suites are left out with a note.
    """
    runs, seen = [], set()
    for item in dirs:
        path = Path(item)
        if not path.exists():
            raise SimRealError(f"{path}: no such folder")
        direct = (path / SUMMARY_FILE).is_file() or path.name == SUMMARY_FILE
        found = [path] if direct else find_runs(path)
        if not found:
            raise SimRealError(f"{path}: no run folders (folders with {SUMMARY_FILE}) in it")
        others = 0
        for folder in found:
            if not direct and run_suite(folder) not in (SimplerSuite.name, None):
                others += 1
                continue
            run = load_simpler_run(folder)
            if run["path"].resolve() not in seen:
                seen.add(run["path"].resolve())
                runs.append(run)
        if others:
            log(f"left out {others} run(s) of other suites below {path}")
    return runs


def select_mode(runs: Sequence[dict[str, Any]], mode: str | None, log=print) -> tuple[str, list[dict]]:
    """The runs of ``mode``; without ``mode``, the runs must share one."""
    modes = {run["summary"]["mode"] for run in runs}
    if mode is None:
        if len(modes) > 1:
            listing = "; ".join(
                f"{m}: {', '.join(run['path'].name for run in runs if run['summary']['mode'] == m)}"
                for m in MODES
                if m in modes
            )
            raise SimRealError(f"the runs mix evaluation modes ({listing}); pass --mode {'|'.join(MODES)}")
        return modes.pop(), list(runs)
    kept = [run for run in runs if run["summary"]["mode"] == mode]
    if len(kept) < len(runs):
        log(f"left out {len(runs) - len(kept)} run(s) of other modes than {mode}")
    if not kept:
        raise SimRealError(f"no run in mode {mode} (the runs are {', '.join(sorted(modes))})")
    return mode, kept


def match_runs(
    runs: Sequence[dict[str, Any]], policies: Sequence[str], names: dict[str, str], real_file: str | Path
) -> tuple[dict[str, dict], list[dict[str, str]]]:
    """Real policy -> run, and the matching rows (``run, policy, matched_by``); a run matching
    nothing, a ``--name`` naming no run and two runs of one policy are errors.
    """
    folders = {run["path"].name for run in runs} | {str(run["path"].resolve()) for run in runs}
    for key in names:
        if key not in folders and str(Path(key).resolve()) not in folders:
            raise SimRealError(
                f"--name {key}={names[key]}: {key!r} is none of the runs "
                f"({', '.join(sorted(run['path'].name for run in runs))})"
            )
    matched: dict[str, dict] = {}
    rows = []
    for run in runs:
        try:
            policy, how = match_policy(run, policies, names)
        except ValueError as exc:
            raise SimRealError(f"{exc} (in {real_file})") from None
        if policy is None:
            raise SimRealError(
                f"run {run['path']} (folder {run['path'].name!r}, policy {run['summary']['policy']!r}) "
                f"matches no policy of {real_file} ({', '.join(policies)}); pass --name "
                f"{run['path'].name}=POLICY"
            )
        if policy in matched:
            raise SimRealError(
                f"runs {matched[policy]['path']} and {run['path']} both match policy {policy!r}; keep one "
                "or pass --name DIR=POLICY"
            )
        matched[policy] = run
        rows.append({"run": str(run["path"]), "policy": policy, "matched_by": how})
    return matched, rows


def compare(
    dirs: Sequence[str | Path],
    real_results: str | Path = REFERENCE_CSV,
    names: dict[str, str] | None = None,
    mode: str | None = None,
    log=print,
) -> dict[str, Any]:
    """The whole comparison as a JSON-friendly dict (what ``--json`` writes)."""
    real = load_real_results(real_results)
    runs = collect_runs(dirs, log)
    mode, runs = select_mode(runs, mode, log)
    matched, matching = match_runs(runs, list(dict.fromkeys(real["policy"])), names or {}, real_results)
    pairs = sim_real_pairs(matched, real)
    run_groups = {g for run in matched.values() for g in run["summary"]["groups"]}
    result = agreement(pairs, also=run_groups)
    return {"mode": mode, "real_results": str(real_results), "runs": matching, **result}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_report(result: dict[str, Any]) -> str:
    """The printed table: one line per group, overall, then per-task rows and the skipped groups."""
    lines = [f"sim-vs-real agreement, mode {result['mode']}, real results {result['real_results']}"]
    for row in result["runs"]:
        lines.append(f"  {row['run']} -> {row['policy']} (by {row['matched_by']})")
    header = f"{'':6} {'name':28} {'family':13} {'n':>2} {'MMRV':>6} {'Pearson r':>9}"
    lines += ["", f"{header} {'partial success:':>16} {'MMRV':>6} {'Pearson r':>9}"]

    def line(level: str, name: str, entry: dict) -> str:
        return (
            f"{level:6} {name:28} {entry.get('family', ''):13} {entry.get('n_policies', ''):>2} "
            f"{_fmt(entry['mmrv']):>6} {_fmt(entry['pearson_r']):>9} {'':16} "
            f"{_fmt(entry.get('partial_mmrv')):>6} {_fmt(entry.get('partial_pearson_r')):>9}"
        )

    for name, entry in result["groups"].items():
        lines.append(line("group", name, entry))
    overall = result["overall"]
    label = f"mean of {overall['n_groups']} group(s)"
    lines.append(line("all", label, {**overall, "family": "", "n_policies": ""}))
    for name, entry in result["tasks"].items():
        lines.append(line("task", name, entry))
    for name, reason in result["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simreal",
        description="Sim-vs-real agreement (MMRV, Pearson r) of SimplerEnv-style runs per task group.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", nargs="+", required=True, metavar="DIR", help="run folders or their roots")
    parser.add_argument("--real-results", default=str(REFERENCE_CSV), metavar="FILE", help="real-world CSV")
    parser.add_argument(
        "--name", action="append", default=[], metavar="DIR=POLICY", help="match a run to a real policy"
    )
    parser.add_argument("--mode", choices=MODES, default=None, help="evaluation mode of the runs to use")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def note(message: str) -> None:
        print(f"bench.simreal: {message}", file=sys.stderr)

    try:
        result = compare(args.runs, args.real_results, parse_names(args.name), args.mode, log=note)
    except (SimRealError, RealResultsError, RunFormatError) as exc:
        print(f"bench.simreal: error: {exc}", file=sys.stderr)
        return 1
    print(format_report(result))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_json_atomic(path, result)
        note(f"wrote {path}")
    if not result["groups"]:
        groups = ", ".join(group_order(result["skipped"])) or "none"
        note(f"no task group has 2 or more matched policies (skipped: {groups})")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
