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
import os
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
    policy: str | None = _arg(
        None, "policy spec: a registered name (random, expert), NAME:ARG, or package.module:Class"
    )
    label: str | None = _arg(
        None, "name of the policy in summary.json and leaderboards (default: the --policy string)"
    )
    out: str | None = _arg(None, "output folder (created if missing; must not hold an episodes.jsonl yet)")
    resume: str | None = _arg(
        None,
        "continue the interrupted run in this folder; its config.json gives the other options "
        "(only --workers, --quiet and --record may change)",
    )
    shard: str | None = _arg(
        None,
        "i/n: evaluate only the chains at positions p with p %% n == i; merge shards with "
        "python -m bench.merge",
    )
    suite: str = _arg(
        "calvin",
        "benchmark suite (simpler: SimplerEnv-style tasks, see bench.simpler; real: the "
        "operator-in-the-loop protocol, see bench.real)",
        choices=(*SUITES, "real", "simpler"),
    )
    scene: str = _arg("D", "scene to evaluate on (calvin: A, B, C, D)")
    chains: int = _arg(100, "evaluate the first N chains")
    chain_ids: str | None = _arg(
        None, "comma-separated chain ids to evaluate instead of the first N (e.g. 3,7,9)"
    )
    generated_seed: int | None = _arg(None, "use generate_chains(seed=S) instead of CALVIN's official chains")
    workers: int = _arg(1, "parallel environment worker processes (1 runs in-process)")
    ray: str | None = _arg(
        None,
        "run the chains on Ray actors (one per cluster CPU; needs pip install ray): --ray alone starts a "
        "local Ray instance, --ray ADDRESS joins that cluster (auto, ray://host:10001); see bench.ray_backend",
        nargs="?",
        const="local",
        metavar="ADDRESS",
    )
    seed: int = _arg(0, "run seed: env and policy seeds are derived from (seed, chain, subtask)")
    max_steps: int = _arg(360, "step budget of each subtask")
    record: int = _arg(0, "record videos of the first N chains into OUT/videos")
    static_size: int = _arg(200, "static camera image size (pixels)")
    gripper_size: int = _arg(84, "gripper camera image size (pixels)")
    quiet: bool = _arg(False, "no progress bar and no tables")
    fail_fast: bool = _arg(False, "stop the run at the first chain that ends in an error (policy or worker)")


class UsageError(ValueError):
    """Bad input: reported on one line with exit code 2."""


class FailFast(RuntimeError):
    """--fail-fast: a chain ended in an error; the run stops (exit code 1, finished chains kept)."""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(Args):
        kwargs = dict(f.metadata)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, action="store_true", **kwargs)
        else:
            kind = int if f.type in ("int", "int | None") else str
            parser.add_argument(flag, dest=f.name, default=f.default, type=kind, **kwargs)
    return Args(**vars(parser.parse_args(argv)))


def check_args(args: Args) -> None:
    """Reject bad values before anything expensive happens."""
    if args.resume is None and (args.policy is None or args.out is None):
        raise UsageError("--policy and --out are required (or --resume DIR to continue a run)")
    parse_shard(args.shard)
    scenes = SUITES[args.suite]
    if args.scene not in scenes:
        raise UsageError(f"unknown scene {args.scene!r} for suite {args.suite}; valid: {', '.join(scenes)}")
    for name in ("chains", "workers", "max_steps", "static_size", "gripper_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.record < 0:
        raise UsageError(f"--record must be >= 0, got {args.record}")
    if args.ray is not None:
        from bench.ray_backend import check_args as check_ray

        try:
            check_ray(args.workers)  # --workers > 1, or ray not installed
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {text}: need 0 <= i < n, got i={i}, n={n}")
    return i, n


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
        "machine": {
            "hostname": platform.node(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
    }


def policy_record(policy: Any) -> dict[str, Any]:
    """Class and provenance (checkpoint and its hash, where the policy has one) for config.json."""
    record: dict[str, Any] = {"policy_class": type(policy).__qualname__}
    provenance = getattr(policy, "provenance", None)
    if callable(provenance):
        try:
            record["policy_provenance"] = provenance()
        except Exception as exc:  # provenance is informational: never fail a run over it
            record["policy_provenance"] = {"error": f"{type(exc).__name__}: {exc}"}
    return record


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


def run(
    args: Args,
    out: Path,
    policy: Any,
    chains: list,
    episodes: Any,
    positions: dict[int, int],
    **engine_kwargs: Any,
) -> tuple[list[dict], float]:
    """Evaluate ``chains``, streaming episode lines into ``episodes``; return (records, wall time).

    ``positions`` maps chain id -> its place in the whole selection (stable across shards/resumes).
    """
    from tqdm import tqdm

    from bench.calvin_eval import CalvinEnvFactory, evaluate_chains

    engine_kwargs.setdefault("make_env", CalvinEnvFactory(args.static_size, args.gripper_size))
    bar = tqdm(total=len(chains), desc=f"{args.suite} {args.scene}", unit="chain", disable=args.quiet)
    done: list[int] = []

    def on_result(record: dict) -> None:
        record["position"] = positions[record["chain"]]
        episodes.write(json.dumps(record, default=_plain) + "\n")  # one write per line, then flush
        episodes.flush()
        done.append(record["completed"])
        bar.update(1)
        if args.fail_fast and record["stop_reason"].startswith("error:"):
            raise FailFast(f"chain {record['chain']}: {record['stop_reason']}")
        bar.set_postfix(avg_len=f"{sum(done) / len(done):.2f}")

    evaluate, backend = evaluate_chains, {"workers": args.workers}
    if args.ray is not None:  # Ray actors, each with its own policy built from args.policy
        from bench import ray_backend

        evaluate, backend = ray_backend.evaluate_chains, {"address": args.ray}
    start = time.perf_counter()
    try:
        records = evaluate(
            policy,
            chains,
            scene=args.scene,
            seed=args.seed,
            **backend,
            max_steps=args.max_steps,
            record=args.record,
            video_dir=out / "videos",
            policy_name=args.policy,
            on_result=on_result,
            **engine_kwargs,
        )
    finally:
        bar.close()
    return records, time.perf_counter() - start


def make_summary(args: Args, records: list[dict], wall: float) -> dict[str, Any]:
    """summary.json of a run (or a shard, or merged shards) from its episode records."""
    from bench.stats import summarize_chains

    records = sorted(records, key=lambda r: r.get("position", r["chain"]))
    summary = {
        "suite": args.suite,
        "policy": args.label or args.policy,
        "scene": args.scene,
        **summarize_chains(records),
    }
    summary.update(
        stop_reasons=dict(Counter(r["stop_reason"].split(":")[0] for r in records)),
        seed=args.seed,
        workers=args.workers,
        max_steps=args.max_steps,
        chains_source="official" if args.generated_seed is None else f"generated:{args.generated_seed}",
        chain_ids=[r["chain"] for r in records],
        shard=args.shard,
        wall_time_s=round(wall, 3),
        env_steps_per_s=round(summary["env_steps"] / wall, 2) if wall > 0 else None,
    )
    return summary


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_plain) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_records(path: Path) -> list[dict]:
    """Episode records of an interrupted run; a line cut by a kill is removed from the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    good_end = raw.rfind(b"\n") + 1  # everything after the last newline is a cut line
    records = []
    for n, line in enumerate(raw[:good_end].decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: line {n} is not valid JSON ({exc})") from None
        for key in ("chain", "completed", "tasks", "steps", "stop_reason"):
            if key not in rec:
                raise UsageError(f"{path}: line {n} lacks key {key!r}")
        records.append(rec)
    if good_end != len(raw):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records


RESUMABLE_OVERRIDES = ("workers", "ray", "quiet", "record", "fail_fast")


def resume_args(cli: Args) -> Args:
    """The interrupted run's arguments from its config.json, with this call's workers/quiet/record."""
    folder = Path(cli.resume)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise UsageError(f"--resume {folder}: no config.json there, so it is not a bench.run folder")
    if (folder / "summary.json").exists():
        raise UsageError(f"--resume {folder}: the run is complete (summary.json exists); nothing to resume")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{config_path}: not valid JSON ({exc})") from None
    names = {f.name for f in dataclasses.fields(Args)}
    values = {k: v for k, v in config.items() if k in names}
    values.update({k: getattr(cli, k) for k in RESUMABLE_OVERRIDES})
    values.update(resume=str(folder), out=str(folder))
    return Args(**values)


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _suite_of(cli: Sequence[str]) -> str | None:
    """The value of ``--suite`` in a command line (``--suite X`` or ``--suite=X``), if any."""
    for a, b in zip(cli, [*cli[1:], ""], strict=True):
        if a.startswith("--suite="):
            return a.split("=", 1)[1]
        if a == "--suite":
            return b
    return None


def main(
    argv: Sequence[str] | None = None,
    *,
    load_chains: Callable[[int | None, int], list] | None = None,
    **engine_kwargs: Any,
) -> int:
    """Command line entry. Tests may inject ``load_chains(generated_seed, n)`` and engine keywords
    of :func:`bench.calvin_eval.evaluate_chains` (``make_env``, ``instruction_for``)."""
    from policies.registry import make_policy

    cli = list(sys.argv[1:] if argv is None else argv)
    suite = _suite_of(cli)
    if suite == "real":
        from bench import real

        return real.main(cli)  # the operator-in-the-loop protocol has its own options
    if suite == "simpler":
        from bench.simpler import cli as simpler_cli

        return simpler_cli.main(cli)  # episodes per task and variant, not chains: its own options
    args = parse_args(argv)
    try:
        if args.resume is not None:
            args = resume_args(args)
        check_args(args)
        selection = select_chains(args, load_chains or load_calvin_chains)
        positions = {chain.index: p for p, chain in enumerate(selection)}
        shard = parse_shard(args.shard)
        if shard is not None:
            selection = [c for p, c in enumerate(selection) if p % shard[1] == shard[0]]
        if "instruction_for" not in engine_kwargs:
            engine_kwargs["instruction_for"] = calvin_instructions()
        if args.resume is not None:
            out = Path(args.resume)
            earlier = read_records(out / "episodes.jsonl")
        else:
            out = check_out_dir(args.out)
            earlier = []
        finished = {r["chain"] for r in earlier}
        todo = [c for c in selection if c.index not in finished]
        try:
            policy = make_policy(args.policy)
        except (ValueError, ImportError, OSError) as exc:
            raise UsageError(str(exc)) from None
        try:
            episodes = open(out / "episodes.jsonl", "a" if args.resume else "x", encoding="utf-8")  # noqa: SIM115
        except FileExistsError:
            raise UsageError(f"{str(out / 'episodes.jsonl')!r} exists: pick another --out") from None
    except (UsageError, RuntimeError) as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    if args.resume is None:
        config = {**dataclasses.asdict(args), **run_info(), **policy_record(policy)}
        config["argv"] = list(sys.argv[1:] if argv is None else argv)
        write_json_atomic(out / "config.json", config)
    elif not args.quiet:
        print(f"bench.run: resuming {out}: {len(earlier)} chains done, {len(todo)} to go", file=sys.stderr)
    try:
        with episodes:
            records, wall = run(args, out, policy, todo, episodes, positions, **engine_kwargs)
    except KeyboardInterrupt:
        print(
            f"\nbench.run: interrupted; finished chains are in {out / 'episodes.jsonl'}; "
            f"continue with: python -m bench.run --resume {out}",
            file=sys.stderr,
        )
        return 130
    except RuntimeError as exc:
        hint = f"; continue with: python -m bench.run --resume {out}" if isinstance(exc, FailFast) else ""
        print(f"bench.run: error: {exc}{hint}", file=sys.stderr)
        return 1
    finally:
        policy.close()
        if (out / "episodes.jsonl").stat().st_size == 0:  # no chain finished: leave the folder reusable
            (out / "episodes.jsonl").unlink()
    summary = make_summary(args, earlier + records, wall)
    if earlier:
        summary["resumed_chains"] = len(earlier)
    write_json_atomic(out / "summary.json", summary)
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
