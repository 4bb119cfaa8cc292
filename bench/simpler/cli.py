"""Evaluate a policy on the SimplerEnv-style suite: ``python -m bench.run --suite simpler ...``.

Example::

    python -m bench.run --suite simpler --policy expert --mode variant_aggregation \\
        --episodes-per-variant 4 --out runs/simpler_expert_va

writes ``DIR/config.json`` (arguments, versions, git commit, machine), ``DIR/episodes.jsonl`` (one
line per episode as it finishes: task, variant, layout index, success, partial, steps, why it
stopped), ``DIR/summary.json`` (per task and variant ``successes``/``trials``/``rate`` with Wilson
95 % ``ci_low``/``ci_high`` and ``partial_rate``; per task ``aggregate_rate`` over the variants that
count; per group and ``overall``) and prints a table. ``--resume DIR`` continues an interrupted run.
With ``--real-results FILE`` it then prints MMRV and Pearson r against the real-world table over the
SimplerEnv runs next to ``DIR`` (see ``python -m bench.simreal``).
Exit codes: 0 done, 1 the run failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITE = "simpler"


def _arg(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class Args:
    policy: str | None = _arg(
        None, "policy spec: random, expert, vla:DIR, remote:ws://..., or package.module:Class"
    )
    label: str | None = _arg(
        None, "name of the policy in summary.json and leaderboards (default: the --policy string)"
    )
    out: str | None = _arg(None, "output folder (created; must not hold an episodes.jsonl yet)")
    resume: str | None = _arg(
        None, "continue the interrupted run in this folder (its config.json gives the rest)"
    )
    suite: str = _arg(SUITE, "benchmark suite (this command serves 'simpler')")
    mode: str = _arg("visual_matching", "visual_matching or variant_aggregation")
    tasks: str | None = _arg(None, "comma-separated tasks, groups or families (default: all 15 tasks)")
    variants: str | None = _arg(None, "comma-separated subset of the mode's variants (default: all of them)")
    episodes_per_variant: int | None = _arg(
        None, "episodes per task and variant (default: the reference's: 25 per can orientation, ...)"
    )
    seed: int = _arg(0, "run seed: env and policy seeds derive from (seed, task, variant, episode)")
    workers: int = _arg(
        1, "parallel worker processes, each with its own env and policy (built from --policy)"
    )
    image_size: int = _arg(224, "camera image size (pixels, square)")
    wrist_camera: bool = _arg(False, "also render a wrist camera (rgb_gripper)")
    official: bool = _arg(
        False, "run ManiSkill3's own ports of the Bridge tasks (downloaded assets; see envs.simpler.official)"
    )
    real_results: str | None = _arg(
        None, "CSV of real-world success rates: print MMRV and Pearson r afterwards"
    )
    fail_fast: bool = _arg(False, "stop the run at the first episode that ends in an error")
    quiet: bool = _arg(False, "no progress bar and no tables")


class UsageError(ValueError):
    pass


def parse_args(argv: Sequence[str]) -> Args:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run --suite simpler",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, action="store_true", **f.metadata)
        else:
            kind = int if "int" in str(f.type) else str
            parser.add_argument(flag, dest=f.name, default=f.default, type=kind, **f.metadata)
    return Args(**vars(parser.parse_args(list(argv))))


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def resolve(args: Args) -> tuple[list[str], list[str]]:
    """(task names, variant names) of a run; raises :class:`UsageError` naming the valid choices."""
    from envs.simpler import check_mode, select_tasks

    if args.suite != SUITE:
        raise UsageError(f"this command serves --suite {SUITE}, got {args.suite!r}")
    try:
        mode_variants = check_mode(args.mode)
        tasks = [t.name for t in select_tasks(_split(args.tasks))]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    variants = list(mode_variants)
    chosen = _split(args.variants)
    if chosen:
        bad = [v for v in chosen if v not in mode_variants]
        if bad:
            raise UsageError(f"variant(s) {bad} not in mode {args.mode}; valid: {', '.join(mode_variants)}")
        variants = [v for v in mode_variants if v in chosen]
    if args.episodes_per_variant is not None and args.episodes_per_variant < 1:
        raise UsageError(f"--episodes-per-variant must be >= 1, got {args.episodes_per_variant}")
    if args.official:
        from envs.simpler.official import OFFICIAL_IDS, OfficialAssetsMissing, require_assets

        bad = [t for t in tasks if t not in OFFICIAL_IDS]
        if bad:
            raise UsageError(f"--official: no official port of {bad}; valid: {', '.join(OFFICIAL_IDS)}")
        if args.mode != "visual_matching":
            raise UsageError("--official runs visual matching only (the real backgrounds are composited in)")
        if (args.policy or "").split(":")[0] == "expert":
            raise UsageError(
                "--official: the scripted expert needs privileged state these tasks do not expose"
            )
        try:
            require_assets()
        except OfficialAssetsMissing as exc:
            raise UsageError(str(exc)) from None
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.image_size < 16:
        raise UsageError(f"--image-size must be >= 16, got {args.image_size}")
    return tasks, variants


def _resume_args(cli: Args) -> Args:
    folder = Path(cli.resume)
    path = folder / "config.json"
    if not path.exists():
        raise UsageError(f"--resume {folder}: no config.json there, so it is not a bench.run folder")
    if (folder / "summary.json").exists():
        raise UsageError(f"--resume {folder}: the run is complete (summary.json exists)")
    config = json.loads(path.read_text(encoding="utf-8"))
    names = {f.name for f in dataclasses.fields(Args)}
    values = {k: v for k, v in config.items() if k in names}
    values.update(
        resume=str(folder), out=str(folder), quiet=cli.quiet, fail_fast=cli.fail_fast, workers=cli.workers
    )
    return Args(**values)


def print_table(summary: dict[str, Any]) -> None:
    import pandas as pd

    rows = []
    for task, t in summary["tasks"].items():
        row = {"task": task, "rate": t["aggregate_rate"], "trials": t["trials"]}
        for v, c in t["variants"].items():
            row[v] = c["rate"]
        if t["aggregate_partial_rate"] is not None:
            row["partial"] = t["aggregate_partial_rate"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("task")
    print(f"\nsimpler {summary['mode']}: {summary['policy']}")
    print(table.to_string(float_format="%.3f", na_rep="-"))
    groups = pd.DataFrame.from_dict(summary["groups"], orient="index")[["family", "rate", "partial_rate"]]
    print("\nper group")
    print(groups.to_string(float_format="%.3f", na_rep="-"))
    print(f"\noverall {summary['overall']:.3f}")


def main(argv: Sequence[str]) -> int:
    from bench.run import check_out_dir, policy_record, run_info, write_json_atomic
    from bench.simpler.evaluate import plan_episodes
    from bench.simpler.summary import summarize
    from policies.registry import make_policy

    args = parse_args(argv)
    try:
        if args.resume:
            args = _resume_args(args)
        if not args.policy or not args.out:
            raise UsageError("--policy and --out are required (or --resume DIR)")
        tasks, variants = resolve(args)
        out = Path(args.out)
        if args.resume:
            earlier = _read_lines(out / "episodes.jsonl")
        else:
            check_out_dir(args.out)
            earlier = []
        done = {(r["task"], r["variant"], r["episode"]) for r in earlier}
        planned = plan_episodes(tasks, variants, args.episodes_per_variant)
        keys = [k for k in planned if (k.task, k.variant, k.episode) not in done]
        try:
            policy = make_policy(args.policy)
        except (ValueError, ImportError, OSError) as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 2
    if not args.resume:
        config = {**dataclasses.asdict(args), **run_info(), **policy_record(policy)}
        config.update(argv=list(argv), tasks_resolved=tasks, variants_resolved=variants)
        write_json_atomic(out / "config.json", config)
    try:
        records, wall, env_steps = _run(args, policy, keys, out)
    except KeyboardInterrupt:
        print(f"\nbench.run: interrupted; continue with: python -m bench.run --resume {out}", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 1
    finally:
        policy.close()
    summary = {
        "suite": SUITE,
        "policy": args.label or args.policy,
        "mode": args.mode,
        "episodes_per_variant": args.episodes_per_variant,
        **summarize(earlier + records),
        "stop_reasons": dict(Counter(r["stop_reason"].split(":")[0] for r in earlier + records)),
        "seed": args.seed,
        "wall_time_s": round(wall, 3),
        "env_steps_per_s": round(env_steps / wall, 2) if wall > 0 else None,
    }
    if earlier:
        summary["resumed_episodes"] = len(earlier)
    write_json_atomic(out / "summary.json", summary)
    if not args.quiet:
        print_table(summary)
    print(f"overall {summary['overall']:.3f} over {summary['n_episodes']} episodes -> {out / 'summary.json'}")
    if args.real_results:
        from bench import simreal_cli

        simreal_cli.main(
            ["--runs", str(out.parent), "--real-results", args.real_results, "--mode", args.mode]
        )
    return 0


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    good = raw.rfind(b"\n") + 1
    if good != len(raw):
        with open(path, "r+b") as f:
            f.truncate(good)
    return [json.loads(line) for line in raw[:good].decode("utf-8").splitlines() if line.strip()]


def _run(args: Args, policy: Any, keys: list, out: Path) -> tuple[list[dict], float, int]:
    from tqdm import tqdm

    from bench.simpler.evaluate import EpisodeRunner, run_parallel
    from envs.simpler.vulkan import VulkanUnavailable

    cameras = ("static", "wrist") if args.wrist_camera else ("static",)
    if not getattr(policy, "needs_images", True):
        cameras = ()
    records: list[dict] = []
    runner = EpisodeRunner(policy, args.seed, cameras, args.image_size, args.official)
    if args.workers > 1:
        stream = run_parallel(
            args.policy, keys, args.workers, args.seed, cameras, args.image_size, args.official
        )
    else:
        stream = (runner.run(key) for key in keys)
    env_steps = 0
    start = time.perf_counter()
    bar = tqdm(total=len(keys), desc="simpler", unit="episode", disable=args.quiet)
    try:
        with open(out / "episodes.jsonl", "a", encoding="utf-8") as episodes:
            for record in stream:
                env_steps += record["steps"]
                episodes.write(json.dumps(record) + "\n")
                episodes.flush()
                records.append(record)
                bar.update(1)
                bar.set_postfix(
                    task=record["task"], rate=f"{sum(r['success'] for r in records) / len(records):.2f}"
                )
                if args.fail_fast and record["stop_reason"].startswith("error"):
                    raise RuntimeError(
                        f"{record['task']} episode {record['episode']}: {record['stop_reason']}"
                    )
    except VulkanUnavailable as exc:
        raise RuntimeError(str(exc)) from None
    finally:
        bar.close()
        runner.close()
    return records, time.perf_counter() - start, env_steps
