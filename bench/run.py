"""Evaluate a policy on a benchmark suite: ``python -m bench.run --policy SPEC --out DIR``.

Example::

    python -m bench.run --policy random --chains 20 --workers 4 --out runs/random_D

writes ``DIR/config.json`` (arguments and versions), ``DIR/episodes.jsonl`` (one line per chain, as
chains finish), ``DIR/summary.json`` (success 1..5 in a row with Wilson 95 % intervals, average length,
per-task table) and, with ``--record N``, ``DIR/videos/chain_XXXX.mp4`` (``.gif`` without ffmpeg).
Exit codes: 0 done, 1 the run failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from envs import CALVIN_SCENES

#: Suite name -> the scenes it offers (a registry: add a suite here and a branch in ``run``).
SUITES: dict[str, tuple[str, ...]] = {"calvin": CALVIN_SCENES}
OFFICIAL_CHAINS = 1000


def _arg(default: Any = MISSING, help: str = "", **argparse_kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass
class Args:
    policy: str = _arg(
        help="policy spec: a registered name (random, expert), NAME:ARG, or package.module:Class"
    )
    out: str = _arg(help="output folder (created if missing; must not hold an episodes.jsonl yet)")
    suite: str = _arg("calvin", "benchmark suite", choices=tuple(SUITES))
    scene: str = _arg("D", "scene to evaluate on (calvin: A, B, C, D)")
    chains: int = _arg(100, "evaluate the first N chains")
    chain_ids: str | None = _arg(
        None, "comma-separated chain ids to evaluate instead of the first N (e.g. 3,7,9)"
    )
    generated_seed: int | None = _arg(None, "use generate_chains(seed=S) instead of CALVIN's official chains")
    workers: int = _arg(1, "parallel environment worker processes (1 runs in-process)")
    seed: int = _arg(0, "run seed: env and policy seeds are derived from (seed, chain, subtask)")
    max_steps: int = _arg(360, "step budget of each subtask")
    record: int = _arg(0, "record videos of the first N chains into OUT/videos")
    static_size: int = _arg(200, "static camera image size (pixels)")
    gripper_size: int = _arg(84, "gripper camera image size (pixels)")
    quiet: bool = _arg(False, "no progress bar and no tables")


class UsageError(ValueError):
    """Bad input: reported on one line with exit code 2."""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(Args):
        kwargs = dict(f.metadata)
        flag = "--" + f.name.replace("_", "-")
        if f.default is MISSING:
            parser.add_argument(flag, dest=f.name, required=True, **kwargs)
        elif isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, action="store_true", **kwargs)
        else:
            kind = int if f.type in ("int", "int | None") else str
            parser.add_argument(flag, dest=f.name, default=f.default, type=kind, **kwargs)
    return Args(**vars(parser.parse_args(argv)))


def check_args(args: Args) -> None:
    """Reject bad values before anything expensive happens."""
    scenes = SUITES[args.suite]
    if args.scene not in scenes:
        raise UsageError(f"unknown scene {args.scene!r} for suite {args.suite}; valid: {', '.join(scenes)}")
    for name in ("chains", "workers", "max_steps", "static_size", "gripper_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.record < 0:
        raise UsageError(f"--record must be >= 0, got {args.record}")


def parse_chain_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--chain-ids must be comma-separated integers, got {text!r}") from None
    if not ids:
        raise UsageError("--chain-ids is empty")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UsageError(f"--chain-ids repeats {duplicates}")
    return ids


def load_calvin_chains(generated_seed: int | None, n: int) -> list:
    """The pool of chains: CALVIN's official 1000, or ``n`` generated with ``generated_seed``."""
    from envs.calvin import chains

    if generated_seed is None:
        return chains.official_chains()
    return chains.generate_chains(n=n, seed=generated_seed)


def calvin_instructions() -> Callable[[str], str]:
    """CALVIN's evaluation phrasing per task (``envs.calvin.language.eval_instruction``)."""
    try:
        from envs.calvin.language import eval_instruction
    except ImportError as exc:
        raise RuntimeError(f"the CALVIN suite is incomplete: {exc}") from None
    return eval_instruction


def select_chains(args: Args, load_chains: Callable[[int | None, int], list]) -> list:
    pool_size = OFFICIAL_CHAINS if args.generated_seed is None else max(OFFICIAL_CHAINS, args.chains)
    pool = load_chains(args.generated_seed, pool_size)
    source = "official" if args.generated_seed is None else f"generated with seed {args.generated_seed}"
    if args.chain_ids is None:
        if args.chains > len(pool):
            raise UsageError(f"--chains {args.chains} exceeds the {len(pool)} {source} chains")
        return pool[: args.chains]
    ids = parse_chain_ids(args.chain_ids)
    bad = [i for i in ids if not 0 <= i < len(pool)]
    if bad:
        raise UsageError(f"chain id(s) {bad} out of range: the {source} chains are 0..{len(pool) - 1}")
    return [pool[i] for i in ids]


def check_out_dir(path: str) -> Path:
    """Create the output folder if missing; refuse unwritable folders and earlier runs."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(
            f"output folder {str(out)!r} cannot be created or written: {exc.strerror or exc}"
        ) from None
    if (out / "episodes.jsonl").exists():
        raise UsageError(
            f"{str(out / 'episodes.jsonl')!r} exists: a run already wrote there; pick another --out"
        )
    return out


def run_info() -> dict[str, Any]:
    """Package version, git commit (when in a checkout), Python and platform."""
    from importlib import metadata

    import bench

    try:
        version = metadata.version("robovlm-bench")
    except metadata.PackageNotFoundError:
        version = bench.__version__
    commit = None
    try:
        repo = Path(__file__).resolve().parents[1]
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
        commit = done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "version": version,
        "git_commit": commit,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def print_tables(summary: dict[str, Any]) -> None:
    import pandas as pd

    rates = pd.DataFrame(
        [[*summary["success_rates"], summary["avg_len"]]],
        columns=["1", "2", "3", "4", "5", "avg_len"],
        index=[summary["policy"]],
    )
    per_task = pd.DataFrame.from_dict(summary["per_task"], orient="index").sort_index()
    print(f"\n{summary['suite']} scene {summary['scene']}: {summary['n_chains']} chains, success i in a row")
    print(rates.to_string(float_format="%.3f"))
    print("\nper task")
    print(per_task.to_string(float_format="%.3f"))


def run(args: Args, out: Path, policy: Any, chains: list, episodes: Any, **engine_kwargs: Any) -> dict:
    """Evaluate, streaming episode lines into ``episodes``; return the summary."""
    from tqdm import tqdm

    from bench.calvin_eval import CalvinEnvFactory, evaluate_chains
    from bench.stats import summarize_chains

    engine_kwargs.setdefault("make_env", CalvinEnvFactory(args.static_size, args.gripper_size))
    bar = tqdm(total=len(chains), desc=f"{args.suite} {args.scene}", unit="chain", disable=args.quiet)
    done: list[int] = []

    def on_result(record: dict) -> None:
        episodes.write(json.dumps(record, default=_plain) + "\n")
        episodes.flush()
        done.append(record["completed"])
        bar.update(1)
        bar.set_postfix(avg_len=f"{sum(done) / len(done):.2f}")

    start = time.perf_counter()
    try:
        records = evaluate_chains(
            policy,
            chains,
            scene=args.scene,
            seed=args.seed,
            workers=args.workers,
            max_steps=args.max_steps,
            record=args.record,
            video_dir=out / "videos",
            policy_name=args.policy,
            on_result=on_result,
            **engine_kwargs,
        )
    finally:
        bar.close()
    wall = time.perf_counter() - start
    summary = {"suite": args.suite, "policy": args.policy, "scene": args.scene, **summarize_chains(records)}
    summary.update(
        stop_reasons=dict(Counter(r["stop_reason"].split(":")[0] for r in records)),
        seed=args.seed,
        workers=args.workers,
        max_steps=args.max_steps,
        chains_source="official" if args.generated_seed is None else f"generated:{args.generated_seed}",
        wall_time_s=round(wall, 3),
        env_steps_per_s=round(summary["env_steps"] / wall, 2) if wall > 0 else None,
    )
    return summary


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def main(
    argv: Sequence[str] | None = None,
    *,
    load_chains: Callable[[int | None, int], list] | None = None,
    **engine_kwargs: Any,
) -> int:
    """Command line entry. Tests may inject ``load_chains(generated_seed, n)`` and engine keywords
    of :func:`bench.calvin_eval.evaluate_chains` (``make_env``, ``instruction_for``)."""
    from policies.registry import make_policy

    args = parse_args(argv)
    try:
        check_args(args)
        chains = select_chains(args, load_chains or load_calvin_chains)
        if "instruction_for" not in engine_kwargs:
            engine_kwargs["instruction_for"] = calvin_instructions()
        out = check_out_dir(args.out)
        try:
            policy = make_policy(args.policy)
        except (ValueError, ImportError, OSError) as exc:
            raise UsageError(str(exc)) from None
        try:
            episodes = open(out / "episodes.jsonl", "x", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        except FileExistsError:
            raise UsageError(f"{str(out / 'episodes.jsonl')!r} exists: pick another --out") from None
    except (UsageError, RuntimeError) as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    config = {**dataclasses.asdict(args), **run_info(), "policy_class": type(policy).__qualname__}
    config["argv"] = list(sys.argv[1:] if argv is None else argv)
    (out / "config.json").write_text(json.dumps(config, indent=2, default=_plain) + "\n", encoding="utf-8")
    try:
        with episodes:
            summary = run(args, out, policy, chains, episodes, **engine_kwargs)
    except KeyboardInterrupt:
        print(f"\nbench.run: interrupted; finished chains are in {out / 'episodes.jsonl'}", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 1
    finally:
        policy.close()
        if (out / "episodes.jsonl").stat().st_size == 0:  # no chain finished: leave the folder reusable
            (out / "episodes.jsonl").unlink()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_plain) + "\n", encoding="utf-8")
    if not args.quiet:
        print_tables(summary)
    print(f"avg_len {summary['avg_len']:.3f} over {summary['n_chains']} chains -> {out / 'summary.json'}")
    if summary["n_errors"]:
        print(
            f"bench.run: warning: {summary['n_errors']} chain(s) stopped with an error; "
            f"see stop_reason in {out / 'episodes.jsonl'}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
