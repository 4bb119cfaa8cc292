"""DAgger: rounds of roll-out, expert relabelling and retraining: ``python -m trainer.dagger``.

Example::

    python -m trainer.dagger --config trainer/configs/base.json --data data/calvin_abc --out runs/dagger \\
        --init runs/train/paligemma_ph_lstm/latest --rounds 3 --episodes 100 --beta 0.5 --beta-decay 0.5 \\
        train.max_steps=2000 train.max_minutes=30

Round ``r`` rolls out the previous round's checkpoint (round 0: ``--init``, or, without it, a run
trained on ``--data`` alone into ``OUT/pretrain``) with ``trainer.collect --policy vla:CKPT --beta
B``, ``B = beta * beta_decay ** r``, into ``OUT/round_r/data``: the expert labels every step while the
policy executes a fraction ``1 - B`` of them (at the checkpoint's camera sizes, with a seed derived
from ``(--seed, r)``). Then it trains into ``OUT/round_r/train`` from the previous checkpoint's
weights (``train.init``, a fresh optimiser) on ``--data``, ``--extra-data`` and every round's data
so far (``data.extra_paths``, normalised with ``--data``'s statistics). The round's policy is
``OUT/round_r/train/latest``.

``OUT/dagger.json`` (written atomically after every step) holds the settings and, per round, its
beta, the stored and failed episode counts, the fraction of the stored steps that the policy
executed and the checkpoint. Running the same command again resumes: finished steps are skipped,
an interrupted collection resumes in its store, an interrupted training resumes from its
``latest`` checkpoint (``trainer.train --resume``). Other settings are refused, naming the key;
only ``--rounds`` (raise it to add rounds), ``--workers`` and ``--quiet`` may change.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.calvin.backends import BACKENDS, check_backend
from envs.calvin.official.checkout import CalvinEnvUnavailable
from trainer.collect import _arg, dataclass_parser

FORMAT = "robovlm-bench/dagger"
VERSION = 1
STATE_FILE = "dagger.json"
#: config keys that trainer.dagger sets itself, per round
OWN_KEYS = ("data.path", "data.extra_paths", "train.out", "train.init")
#: arguments that may change when a run resumes
FREE_ARGS = ("out", "rounds", "workers", "quiet")


@dataclass
class DaggerArgs:
    out: str = _arg(
        help="DAgger folder (created, or resumed if it holds a dagger.json with the same settings)"
    )
    data: str = _arg(help="the expert's episode store (python -m trainer.collect --out ...)")
    extra_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "more relabelled stores trained on in every round (e.g. an earlier run's round_K/data); "
            "give it before the overrides",
            "nargs": "+",
        },
    )
    config: str = _arg("trainer/configs/base.json", "training config (JSON, may name a 'parent')")
    init: str | None = _arg(
        None, "round 0's policy (a checkpoint folder); without it, one is trained on --data first"
    )
    rounds: int = _arg(3, "rounds of roll-out + relabel + retrain (raise it to add rounds to a finished run)")
    episodes: int = _arg(50, "episodes stored per round (solved tasks only)")
    beta: float = _arg(0.5, "round 0's probability that a step executes the expert's action")
    beta_decay: float = _arg(0.5, "round r uses beta * beta_decay ** r")
    env: str = _arg(
        "ours",
        "play table backend of the roll-outs: ours, or calvin_env (CALVIN's own env, via CALVIN_ENV_DIR)",
        choices=BACKENDS,
    )
    scenes: list[str] = field(
        default_factory=lambda: ["A", "B", "C"],
        metadata={"help": "scenes to roll out in, round robin", "nargs": "+"},
    )
    tasks: list[str] | None = _arg(None, "roll out only these tasks (default: all 34)", nargs="+")
    workers: int = _arg(1, "parallel simulator processes of the roll-outs (1 rolls out in-process)")
    seed: int = _arg(0, "DAgger seed: round r collects with a seed derived from (seed, r)")
    noise: float = _arg(0.0, "target drift std (metres) of the roll-outs, as trainer.collect --noise")
    noise_corr: float = _arg(0.95, "per-step correlation of that drift, as trainer.collect --noise-corr")
    max_steps: int = _arg(360, "step budget of each task of the roll-outs")
    max_attempts: int = _arg(0, "attempted episodes per round, stored + failed (0 = 10 x --episodes)")
    chain_pool: int = _arg(1000, "generated chains to draw set-up sequences from")
    quiet: bool = _arg(False, "no progress bars of the roll-outs")
    overrides: list[str] = field(
        default_factory=list,
        metadata={
            "help": "training overrides section.key=value (e.g. train.max_steps=2000 train.max_minutes=30)",
            "nargs": "*",
            "positional": True,
        },
    )


def round_beta(args: DaggerArgs, r: int) -> float:
    return float(args.beta * args.beta_decay**r)


def round_seed(seed: int, r: int) -> int:
    """The collection seed of round ``r`` (31-bit, distinct per round)."""
    return int(np.random.SeedSequence([int(seed), 6, int(r)]).generate_state(1)[0] & 0x7FFFFFFF)


def _abs(path: str | Path) -> str:
    return str(Path(path).resolve())


# --------------------------------------------------------------------------- settings and state


def training_config(args: DaggerArgs) -> dict[str, Any]:
    """The raw training config (file + overrides) without the keys DAgger sets; validated."""
    from trainer.config import ConfigError, apply_overrides, build_config, read_config_file

    for text in args.overrides:
        key = text.split("=", 1)[0].strip()
        if key in OWN_KEYS:
            raise ConfigError(f"override {text!r}: trainer.dagger sets {', '.join(OWN_KEYS)} itself")
    raw = apply_overrides(read_config_file(args.config), args.overrides)
    build_config(raw, f"{args.config} + overrides")  # type-checked now, not after a roll-out
    return raw


def settings(args: DaggerArgs, raw: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the stored one (paths resolved)."""
    from trainer.config import build_config

    out = {k: v for k, v in vars(args).items() if k not in (*FREE_ARGS, "config", "overrides")}
    out.update(data=_abs(args.data), init=args.init and _abs(args.init))
    out["extra_data"] = [_abs(path) for path in args.extra_data]
    # the resolved training config, not the file and overrides that gave it
    out["train_config"] = build_config(json.loads(json.dumps(raw))).to_dict()
    for key in OWN_KEYS:  # set per round, not settings
        section, name = key.split(".")
        out["train_config"][section].pop(name)
    return json.loads(json.dumps(out))


def _differences(ours: Any, stored: Any, prefix: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(stored, dict):
        out = []
        for key in sorted(set(ours) | set(stored)):
            out += _differences(ours.get(key, "(absent)"), stored.get(key, "(absent)"), f"{prefix}{key}.")
        return out
    return [] if ours == stored else [f"{prefix[:-1]}: ours {json.dumps(ours)}, stored {json.dumps(stored)}"]


def open_state(out: Path, ours: dict[str, Any]) -> dict[str, Any]:
    """The run's state: a new one for a new (or empty) folder, the stored one to resume (same settings)."""
    from bench.rundir import LOCK_FILE, RunFolderError, read_json_object

    path = out / STATE_FILE
    if not path.exists():
        present = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE) if out.is_dir() else []
        if present:
            raise RunFolderError(
                f"{out}: holds {', '.join(present[:5])} but no {STATE_FILE}: not a DAgger folder, and "
                "nothing there is overwritten; pick a new or empty --out"
            )
        return {"format": FORMAT, "version": VERSION, "settings": ours, "pretrain": None, "rounds": []}
    state = read_json_object(path)
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise RunFolderError(
            f"{path}: format {state.get('format')!r} version {state.get('version')!r}, "
            f"expected {FORMAT!r} version {VERSION}"
        )
    state.setdefault("settings", {}).setdefault("extra_data", [])  # runs started before --extra-data
    state["settings"].setdefault("env", "ours")  # and before --env
    diffs = _differences(ours, state["settings"])
    if diffs:
        raise RunFolderError(
            f"{path}: the run was started with other settings ({'; '.join(diffs)}); use the same settings "
            "to resume (only --rounds, --workers and --quiet may change), or another --out"
        )
    return state


# --------------------------------------------------------------------------- steps


def run_training(raw: dict[str, Any], folder: Path, where: str) -> dict[str, Any]:
    """Train into ``folder``, or resume it from its ``latest`` checkpoint (trainer.train --resume).

    A run killed before its first checkpoint left only its config and log lines behind: that folder
    is moved aside (``NAME.interrupted-K``, never deleted) and the run starts again.
    """
    from trainer.checkpoint import read_checkpoint_config
    from trainer.config import build_config, resume_config_from
    from trainer.train import train

    latest = folder / "latest"
    if (latest / "trainer_state.json").exists():
        cfg = resume_config_from(read_checkpoint_config(latest), raw, where)
        return train(cfg, str(latest))
    if folder.is_dir() and any(folder.iterdir()):
        k = 1
        while folder.with_name(f"{folder.name}.interrupted-{k}").exists():
            k += 1
        aside = folder.with_name(f"{folder.name}.interrupted-{k}")
        os.replace(folder, aside)
        print(f"trainer.dagger: {folder} held no checkpoint yet; moved to {aside}", file=sys.stderr)
    return train(build_config(raw, where))


def camera_sizes(checkpoint: str | Path, data: str | Path) -> tuple[int, int]:
    """(static, gripper) sizes to roll ``checkpoint`` out at: those it was trained on, which must
    be ``data``'s (the stores are trained on together)."""
    from trainer.checkpoint import read_checkpoint_config
    from trainer.data.store import EpisodeStore

    store = EpisodeStore(data)
    recorded = read_checkpoint_config(checkpoint).model.camera_sizes or {}
    sizes = []
    for camera in ("rgb_static", "rgb_gripper"):
        stored = [int(v) for v in store.fields[camera].shape[1:3]] if camera in store.fields else None
        trained = [int(v) for v in recorded[camera]] if camera in recorded else stored
        if trained is None:
            raise ValueError(f"--data {data}: no '{camera}' images, and the checkpoint records no size")
        if stored is not None and trained != stored:
            raise ValueError(
                f"{checkpoint} was trained on {camera} images of {trained[0]}x{trained[1]}, but --data "
                f"{data} holds {stored[0]}x{stored[1]}: its roll-outs could not be trained on with --data"
            )
        if trained[0] != trained[1]:
            raise ValueError(
                f"{checkpoint}: {camera} size {trained} is not square; trainer.collect needs square"
            )
        sizes.append(trained[0])
    return sizes[0], sizes[1]


def store_summary(folder: Path) -> dict[str, Any]:
    """Stored and failed episodes of a round's store, and the fraction of stored steps the policy executed."""
    from trainer.collect import _read_failures
    from trainer.data.store import EpisodeStore

    store = EpisodeStore(folder)
    frames = sum(ep["end"] - ep["start"] for ep in store.episodes)
    policy = sum(int(ep.get("policy_steps", 0)) for ep in store.episodes)
    return {
        "stored": len(store),
        "failed": len(_read_failures(folder / "failures.jsonl")),
        "policy_fraction": policy / frames if frames else None,
        "steps": frames,
    }


def dagger(args: DaggerArgs) -> dict[str, Any]:
    """Run (or resume) DAgger; returns the state written to ``OUT/dagger.json``."""
    from bench.rundir import locked

    check_args(args)
    raw = training_config(args)
    ours = settings(args, raw)
    out = Path(args.out)
    state = open_state(out, ours)  # refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    with locked(out):
        return _dagger_locked(args, raw, out, state)


def _dagger_locked(args: DaggerArgs, raw: dict[str, Any], out: Path, state: dict[str, Any]) -> dict[str, Any]:
    import torch

    from bench.rundir import write_json_atomic
    from trainer.collect import CollectArgs, collect
    from trainer.collect import check_args as check_collect_args

    def save() -> None:
        write_json_atomic(out / STATE_FILE, state)

    def config_for(folder: Path, init: str | None, extra: list[str]) -> dict[str, Any]:
        cfg = json.loads(json.dumps(raw))
        cfg.setdefault("data", {}).update(path=_abs(args.data), extra_paths=extra)
        cfg.setdefault("train", {}).update(out=str(folder), init=init)
        return cfg

    save()
    if args.init:
        policy = _abs(args.init)
    else:
        folder = out / "pretrain"
        if not (state["pretrain"] or {}).get("done"):
            print(f"trainer.dagger: training round 0's policy on {args.data} into {folder}", file=sys.stderr)
            result = run_training(config_for(folder, None, []), folder, f"{args.config} (pretrain)")
            state["pretrain"] = {"checkpoint": _abs(folder / "latest"), "step": result["step"], "done": True}
            save()
        policy = state["pretrain"]["checkpoint"]
    rounds = state["rounds"]
    for r in range(args.rounds):
        if r == len(rounds):
            rounds.append({"round": r, "beta": round_beta(args, r), "seed": round_seed(args.seed, r)})
        rec = rounds[r]
        rec["policy"] = policy
        folder = out / f"round_{r}"
        data = folder / "data"
        if not rec.get("collected"):
            static, gripper = camera_sizes(policy, args.data)
            cargs = CollectArgs(
                out=str(data),
                env=args.env,
                scenes=list(args.scenes),
                episodes=args.episodes,
                workers=args.workers,
                seed=rec["seed"],
                tasks=args.tasks,
                static_size=static,
                gripper_size=gripper,
                max_steps=args.max_steps,
                chain_pool=args.chain_pool,
                noise=args.noise,
                noise_corr=args.noise_corr,
                policy=f"vla:{policy}",
                beta=rec["beta"],
                max_attempts=args.max_attempts or 10 * args.episodes,
                quiet=args.quiet,
            )
            check_collect_args(cargs)
            print(
                f"trainer.dagger: round {r}: rolling out {policy} (beta {rec['beta']:.3g})", file=sys.stderr
            )
            threads = torch.get_num_threads()
            try:
                collect(cargs)
            finally:
                torch.set_num_threads(threads)  # the in-process VLA policy runs with one thread
            rec.update(data=_abs(data), **store_summary(data), collected=True)
            save()
        if not rec.get("trained"):
            extra = state["settings"]["extra_data"]  # resolved once, with the settings
            extra = extra + [rounds[k]["data"] for k in range(r + 1) if rounds[k]["stored"] > 0]
            train_dir = folder / "train"
            print(f"trainer.dagger: round {r}: training into {train_dir}", file=sys.stderr)
            result = run_training(
                config_for(train_dir, policy, extra), train_dir, f"{args.config} (round {r})"
            )
            rec.update(checkpoint=_abs(train_dir / "latest"), step=result["step"], trained=True)
            save()
        policy = rec["checkpoint"]
    return state


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> DaggerArgs:
    parser = dataclass_parser(DaggerArgs, "python -m trainer.dagger", __doc__.split("\n\n")[0])
    return DaggerArgs(**vars(parser.parse_args(argv)))


def check_args(args: DaggerArgs) -> None:
    for name in ("rounds", "episodes", "workers", "max_steps", "chain_pool"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("beta", "beta_decay"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    for path in args.extra_data:
        if not Path(path).is_dir():
            raise ValueError(
                f"--extra-data {path}: no such folder (a store of trainer.collect or trainer.dagger)"
            )
    if args.max_attempts < 0:
        raise ValueError(f"--max-attempts must be >= 0 (0 = 10 x --episodes), got {args.max_attempts}")
    for scene in args.scenes:
        try:
            check_backend(args.env, scene)  # a missing checkout: one line, before anything is written
        except CalvinEnvUnavailable as exc:
            raise ValueError(f"--env {args.env}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    from bench.rundir import RunFolderError
    from trainer.checkpoint import CheckpointError
    from trainer.config import ConfigError
    from trainer.data.store import DatasetError

    args = parse_args(argv)
    try:
        state = dagger(args)
    except (ValueError, ConfigError, DatasetError, CheckpointError, RunFolderError, OSError) as exc:
        print(f"trainer.dagger: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainer.dagger: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    for rec in state["rounds"][: args.rounds]:
        fraction = rec["policy_fraction"]
        print(
            f"round {rec['round']}: beta {rec['beta']:.3g}, {rec['stored']} stored / {rec['failed']} failed, "
            f"policy executed {'-' if fraction is None else f'{fraction:.1%}'} of stored steps -> {rec['checkpoint']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
