"""Merge the shards of a run: ``python -m bench.merge SHARD_DIR... --out DIR``.

Run the shards anywhere (Slurm arrays, separate machines), e.g. ``python -m bench.run --policy P
--chains 1000 --shard 0/4 --out runs/p/shard0`` ... ``--shard 3/4 ...``, then ``python -m bench.merge
runs/p/shard* --out runs/p/all``. Shards of any suite merge when they share the run's settings
(policy, suite, seed, the suite's options); units go back in run order; a unit in two shards is an
error, and so is a missing one unless ``--allow-partial``. The result is a normal run folder
(``config.json`` with ``merged_from``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import rundir
from bench.rundir import EPISODES_FILE, SUMMARY_FILE
from bench.session import fill_options, load_records, summary_of
from bench.suites import CommonOptions, UsageError, get_suite


def merge(shards: Sequence[str | Path], out: str | Path, allow_partial: bool = False) -> dict[str, Any]:
    if not shards:
        raise UsageError("no shard folders given")
    folders = [Path(s) for s in shards]
    configs = [rundir.open_run_folder(f) for f in folders]
    suite = get_suite(str(configs[0].get("suite")))
    same = ("policy", "suite", "seed", *suite.shard_key_fields())
    for folder, config in zip(folders[1:], configs[1:], strict=True):
        diff = {k: (configs[0].get(k), config.get(k)) for k in same if configs[0].get(k) != config.get(k)}
        if diff:
            raise UsageError(f"{folder}: settings differ from {folders[0]}: {diff} (first vs this)")
    common = fill_options(CommonOptions, {"shard": None, "resume": None, "out": str(out)}, configs[0])
    opts = fill_options(suite.options, {}, configs[0])
    units = suite.plan(opts, common)
    keys = {suite.unit_key(u): u for u in units}
    position = {key: p for p, key in enumerate(keys)}
    records: dict[str, dict] = {}
    for folder in folders:
        for rec in load_records(suite, common, folder / EPISODES_FILE, keys, truncate=False):
            key = suite.record_key(rec)
            if key in records:
                raise UsageError(f"{suite.unit_noun} {key} appears in two shards (again in {folder})")
            records[key] = rec
    missing = [key for key in keys if key not in records]
    if missing and not allow_partial:
        raise UsageError(
            f"{len(missing)} of {len(keys)} {suite.unit_noun}s have no result (e.g. {missing[:10]}); "
            "finish the shards (python -m bench.run --resume SHARD) or pass --allow-partial"
        )
    merged = sorted(records.values(), key=lambda r: position[suite.record_key(r)])
    for rec in merged:
        rec["position"] = position[suite.record_key(rec)]
    wall = 0.0
    for folder in folders:
        if (folder / SUMMARY_FILE).exists():
            wall += float(rundir.read_json_object(folder / SUMMARY_FILE).get("wall_time_s") or 0.0)
    out = Path(out)
    with rundir.new_run_folder(out, tool="bench.merge"):
        for rec in merged:
            rundir.append_jsonl(out / EPISODES_FILE, rec)
        config = {**configs[0], "shard": None, "out": str(out), "merged_from": [str(f) for f in folders]}
        rundir.write_json_atomic(out / rundir.CONFIG_FILE, config)
        summary = summary_of(suite, opts, common, merged, wall)
        summary.update(merged_shards=len(folders), wall_time_note="sum over shards")
        summary[f"missing_{suite.unit_noun}s"] = missing
        rundir.write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", nargs="+", help="shard run folders")
    parser.add_argument("--out", required=True, help="merged run folder (new or empty)")
    parser.add_argument("--allow-partial", action="store_true", help="merge even if units are missing")
    args = parser.parse_args(argv)
    try:
        summary = merge(args.shards, args.out, args.allow_partial)
    except (UsageError, rundir.RunFolderError) as exc:
        print(f"bench.merge: error: {exc}", file=sys.stderr)
        return 2
    suite = get_suite(summary["suite"])
    print(f"merged {len(args.shards)} shards: {suite.headline(summary)} -> {Path(args.out) / SUMMARY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
