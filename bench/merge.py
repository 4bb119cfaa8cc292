"""Merge the shards of a run: ``python -m bench.merge SHARD_DIR... --out DIR``.

Run the shards anywhere (any scheduler: Slurm arrays, separate machines), e.g.::

    python -m bench.run --policy P --chains 1000 --shard 0/4 --out runs/p/shard0
    ...
    python -m bench.run --policy P --chains 1000 --shard 3/4 --out runs/p/shard3
    python -m bench.merge runs/p/shard* --out runs/p/all

The shards must come from the same run settings (policy, suite, scene, chain selection, seed, step
budget, image sizes); their chains are put back in selection order, a chain present in two shards
is an error, and a missing chain is an error unless ``--allow-partial``. The merged folder holds a
normal ``config.json`` (with ``merged_from``), ``episodes.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.run import (
    Args,
    UsageError,
    load_calvin_chains,
    make_summary,
    read_records,
    select_chains,
    write_json_atomic,
)

#: Settings that must agree between shards (the others, e.g. workers or out, may differ).
SAME = (
    "policy",
    "suite",
    "scene",
    "chains",
    "chain_ids",
    "generated_seed",
    "seed",
    "max_steps",
    "static_size",
    "gripper_size",
)


def _load_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.exists():
        raise UsageError(f"{folder}: no config.json, so it is not a bench.run folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def merge(shards: Sequence[str | Path], out: str | Path, allow_partial: bool = False) -> dict[str, Any]:
    """Merge shard folders into ``out``; returns the merged summary."""
    if not shards:
        raise UsageError("no shard folders given")
    folders = [Path(s) for s in shards]
    configs = [_load_config(f) for f in folders]
    for folder, config in zip(folders[1:], configs[1:], strict=True):
        diff = {k: (configs[0].get(k), config.get(k)) for k in SAME if configs[0].get(k) != config.get(k)}
        if diff:
            raise UsageError(f"{folder}: settings differ from {folders[0]}: {diff} (first vs this)")
    records: dict[int, dict] = {}
    for folder in folders:
        for rec in read_records(folder / "episodes.jsonl"):
            if rec["chain"] in records:
                raise UsageError(f"chain {rec['chain']} appears in two shards (again in {folder})")
            records[rec["chain"]] = rec
    names = {f.name for f in dataclasses.fields(Args)}
    args = Args(**{k: v for k, v in configs[0].items() if k in names})
    args = dataclasses.replace(args, shard=None, resume=None, out=str(out))
    selection = select_chains(args, load_calvin_chains)
    missing = [c.index for c in selection if c.index not in records]
    extra = sorted(set(records) - {c.index for c in selection})
    if extra:
        raise UsageError(f"chains {extra[:10]} are not in the run's selection")
    if missing and not allow_partial:
        raise UsageError(
            f"{len(missing)} of {len(selection)} chains have no result (e.g. {missing[:10]}); "
            "finish the shards (python -m bench.run --resume SHARD) or pass --allow-partial"
        )
    position = {c.index: p for p, c in enumerate(selection)}
    merged = sorted(records.values(), key=lambda r: position[r["chain"]])
    for rec in merged:
        rec["position"] = position[rec["chain"]]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "episodes.jsonl").exists():
        raise UsageError(f"{out / 'episodes.jsonl'} exists: pick another --out")
    wall = 0.0
    for folder in folders:
        summary_path = folder / "summary.json"
        if summary_path.exists():
            wall += float(json.loads(summary_path.read_text()).get("wall_time_s") or 0.0)
    with open(out / "episodes.jsonl", "x", encoding="utf-8") as f:
        for rec in merged:
            f.write(json.dumps(rec) + "\n")
    config = {**configs[0], "shard": None, "out": str(out), "merged_from": [str(f) for f in folders]}
    write_json_atomic(out / "config.json", config)
    summary = make_summary(args, merged, wall)
    summary.update(merged_shards=len(folders), missing_chains=missing, wall_time_note="sum over shards")
    write_json_atomic(out / "summary.json", summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", nargs="+", help="shard run folders")
    parser.add_argument("--out", required=True, help="merged run folder")
    parser.add_argument("--allow-partial", action="store_true", help="merge even if chains are missing")
    args = parser.parse_args(argv)
    try:
        summary = merge(args.shards, args.out, args.allow_partial)
    except UsageError as exc:
        print(f"bench.merge: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"merged {len(args.shards)} shards: avg_len {summary['avg_len']:.3f} over {summary['n_chains']} chains "
        f"-> {Path(args.out) / 'summary.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
