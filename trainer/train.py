"""Train a VLA policy: ``python -m trainer.train --config trainer/configs/NAME.json [section.key=value ...]``.

The same command under ``torchrun --nproc-per-node N`` trains with DistributedDataParallel (gloo on
CPU, NCCL on CUDA) and a distributed sampler. Outputs in ``train.out``:

    latest/, best/        checkpoints (see trainer.checkpoint); best/ by rollout average length
    config.json           the resolved config
    train_log.jsonl       one line of scalars per logged step (also in tb/ for TensorBoard); with
                          data.val_fraction > 0 also val_loss lines (see trainer.validation)

``--resume OUT/latest`` continues from a checkpoint's weights, optimiser and scheduler state, with
the checkpoint's config (``--config`` and overrides may change anything but the architecture) in its
own folder; log lines written after that checkpoint are dropped. A new run refuses a ``train.out``
that already holds one, so two runs never mix in one folder. ``train.init=DIR`` starts a new run
from another checkpoint's weights and tokenizer with a fresh optimiser and schedule (the
architecture must match); ``data.extra_paths`` adds episode stores to ``data.path`` (DAgger rounds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Subset

from bench.rundir import append_jsonl, dumps, read_jsonl, write_json_atomic, write_text_atomic
from trainer.config import ConfigError, TrainConfig, load_config, resume_config

LOG_FILE = "train_log.jsonl"
RUN_FILES = ("latest", "best", LOG_FILE, "config.json")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at optimiser step ``step``: linear warmup, then the schedule."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / max(1, o.warmup_steps)
    done = step - o.warmup_steps
    if o.schedule == "constant":
        return 1.0
    if o.schedule == "step":
        return o.gamma ** (done // max(1, o.step_size))
    total = max(1, cfg.train.max_steps - o.warmup_steps)
    progress = min(1.0, done / total)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def check_stats(stats: dict[str, Any], store: Any, root: Path) -> None:
    """Statistics must describe this data: same frame count and the action field."""
    if stats.get("n_frames") != store.n_frames:
        raise ConfigError(
            f"{root / 'stats.json'}: statistics cover {stats.get('n_frames')} frames but the dataset holds "
            f"{store.n_frames}; recompute them (python -m trainer.data.stats {root})"
        )


def check_state_stats(
    stats: dict[str, Any], store: Any, key: str, root: Path, dims: list[int] | None = None
) -> int:
    """The proprioception field's width (it sets model.state_dim); its statistics must exist and match."""
    if key not in store.fields:
        raise ConfigError(f"model.state_key = {key!r}: {root} has no such field (has {sorted(store.fields)})")
    width = int(store.fields[key].shape[-1])
    if key not in stats or len(stats[key].get("mean", [])) != width:
        raise ConfigError(
            f"{root / 'stats.json'}: no mean/std of width {width} for '{key}'; "
            f"recompute them (python -m trainer.data.stats {root})"
        )
    if dims is not None and (not dims or any(not 0 <= int(i) < width for i in dims)):
        raise ConfigError(
            f"model.state_dims = {dims}: indices must lie in 0..{width - 1} ('{key}' in {root})"
        )
    return width


def check_camera_sizes(
    given: dict[str, list[int]] | None, cameras: list[str], store: Any, root: Path
) -> dict[str, list[int]]:
    """[height, width] of each camera's images in the store: what the checkpoint records."""
    sizes = {c: [int(v) for v in store.fields[c].shape[1:3]] for c in cameras}
    if given is not None and given != sizes:
        raise ConfigError(
            f"model.camera_sizes = {given}, but the images in {root} are {sizes}; training records the "
            "data's sizes (a resumed checkpoint's sizes must match its new data)"
        )
    return sizes


#: model keys that describe the data or the compute, not the weights: free to differ under train.init
NOT_ARCHITECTURE = ("camera_sizes", "gradient_checkpointing")


def check_init_architecture(cfg: TrainConfig, init: TrainConfig, folder: str) -> None:
    """``train.init``'s checkpoint must have this run's architecture: refuse naming the model keys."""
    ours, theirs = cfg.to_dict()["model"], init.to_dict()["model"]
    diffs = [
        f"model.{k}: ours {json.dumps(ours[k])}, checkpoint {json.dumps(theirs.get(k))}"
        for k in ours
        if k not in NOT_ARCHITECTURE and ours[k] != theirs.get(k)
    ]
    if diffs:
        raise ConfigError(
            f"train.init = {folder}: the checkpoint's architecture differs ({'; '.join(diffs)}); "
            "init needs the same model.* keys"
        )


def open_extra_stores(paths: list[str], store: Any, root: Path) -> list[Any]:
    """The stores of ``data.extra_paths``: each holds the fields of ``data.path`` at its sizes."""
    from trainer.data.dataset import check_same_fields
    from trainer.data.store import EpisodeStore

    seen = {root.resolve()}
    extras = []
    for path in paths:
        if Path(path).resolve() in seen:
            raise ConfigError(f"data.extra_paths: {path} is listed twice (or is data.path)")
        seen.add(Path(path).resolve())
        extra = EpisodeStore(path)
        check_same_fields(extra, store)
        extras.append(extra)
    return extras


def split_datasets(datasets: list[Any], fraction: float, seed: int) -> tuple[Any, list[int]]:
    """(training set, held-out sample indices into the datasets' concatenation): each store holds out
    its own episodes by the seeded rule of :func:`trainer.validation.split_episodes`."""
    from trainer.validation import frame_indices, split_episodes

    train_parts, val_frames, offset = [], [], 0
    for part in datasets:
        train_eps, val_eps = split_episodes(len(part.store), fraction, seed)
        train_parts.append(Subset(part, frame_indices(part.store.episodes, train_eps)) if val_eps else part)
        val_frames += [offset + i for i in frame_indices(part.store.episodes, val_eps)]
        offset += len(part)
    return (train_parts[0] if len(train_parts) == 1 else ConcatDataset(train_parts)), val_frames


def check_out_folder(out: Path, resume: str | None) -> None:
    """A new run needs a ``train.out`` without a run in it; a resumed run continues its own folder."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if resume is None:
        raise ConfigError(
            f"train.out = {out} already holds a training run ({', '.join(found)}): continue it with "
            f"--resume {out / 'latest'}, or pick another train.out"
        )
    if Path(resume).resolve().parent != out.resolve():
        raise ConfigError(
            f"train.out = {out} holds another training run ({', '.join(found)}) than the checkpoint "
            f"{resume}: resume into {Path(resume).parent} (drop train.out) or into an empty train.out"
        )


def trim_log(path: Path, step: int) -> None:
    """Drop the log lines past ``step`` (written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    records = read_jsonl(path, truncate_cut_line=True)
    kept = [r for r in records if int(r.get("step", 0)) <= step]
    if len(kept) != len(records):
        write_text_atomic(path, "".join(dumps(r) + "\n" for r in kept))


class Logger:
    """Scalars to train_log.jsonl and TensorBoard (rank 0 only); ``purge_step`` drops TensorBoard
    events past the step a resumed run starts from."""

    def __init__(self, out: Path, enabled: bool, purge_step: int | None = None) -> None:
        self.enabled = enabled
        self.path = out / LOG_FILE
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"), purge_step=purge_step)
            except ImportError:
                self.tb = None

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        append_jsonl(self.path, {"step": step, **scalars})
        if self.tb:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()


def rollout_eval(model: Any, cfg: TrainConfig, tokenizer: Any, stats: dict) -> dict[str, Any]:
    """Average length and success rates on a few official chains through the harness."""
    from bench.calvin_eval import evaluate_chains
    from bench.stats import summarize_chains
    from envs.calvin.chains import official_chains
    from envs.calvin.language import eval_instruction
    from policies.vla import VLAPolicy

    was_training = model.training
    policy = VLAPolicy(
        model, cfg, tokenizer, stats, cfg.eval.exec_mode, device=str(next(model.parameters()).device)
    )
    try:
        records = evaluate_chains(
            policy,
            official_chains()[: cfg.eval.chains],
            scene=cfg.eval.scene,
            seed=0,
            workers=1,
            max_steps=cfg.eval.max_steps,
            instruction_for=eval_instruction,
        )
    finally:
        model.train(was_training)
    summary = summarize_chains(records)
    return {"eval_avg_len": summary["avg_len"], "eval_success_1": summary["success_rates"][0]}


def train(cfg: TrainConfig, resume: str | None = None) -> dict[str, Any]:
    """Run training; returns the final metrics (rank 0) — see the module doc for the outputs."""
    from torch.utils.data.distributed import DistributedSampler

    from trainer.checkpoint import CheckpointError, load_checkpoint, load_optim_state, save_checkpoint
    from trainer.data.augment import AugmentConfig
    from trainer.data.dataset import DemoDataset, LoaderConfig, SampleConfig, make_dataloader
    from trainer.data.stats import read_stats
    from trainer.data.store import EpisodeStore
    from trainer.models.vla import VLAModel
    from trainer.tokenizer import tokenizer_for_training
    from trainer.validation import validation_loader, validation_loss

    world, rank, local = _distributed()
    main_proc = rank == 0
    if cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.manual_seed(cfg.train.seed + rank)
    np.random.seed(cfg.train.seed + rank)
    root = Path(cfg.data.path)
    store = EpisodeStore(root)
    stats = read_stats(root)
    check_stats(stats, store, root)
    if cfg.model.state_key:
        cfg.model.state_dim = check_state_stats(stats, store, cfg.model.state_key, root, cfg.model.state_dims)
    store.require(*cfg.model.cameras)
    cfg.model.camera_sizes = check_camera_sizes(cfg.model.camera_sizes, cfg.model.cameras, store, root)
    extras = open_extra_stores(cfg.data.extra_paths, store, root)
    out = Path(cfg.train.out)
    check_out_folder(out, resume)
    init_model = None
    if cfg.train.init and not resume:
        init_model, init_cfg, tokenizer, _ = load_checkpoint(cfg.train.init)
        check_init_architecture(cfg, init_cfg, cfg.train.init)
    if world > 1:  # every rank has checked before rank 0 writes anything
        torch.distributed.barrier()
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", cfg.to_dict())
    if resume:
        _, _, tokenizer, _ = load_checkpoint(resume)
    elif init_model is None:
        tokenizer = tokenizer_for_training(
            [ep for s in (store, *extras) for ep in s.episodes],
            cfg.data.augment,
            cfg.data.paraphrases,
            cfg.model.pretrained,
        )
    augment = (
        AugmentConfig(
            action_noise=cfg.data.action_noise,
            paraphrases=cfg.data.paraphrases,
            word_dropout=cfg.data.word_dropout,
        )
        if cfg.data.augment
        else AugmentConfig.off()
    )
    dataset = DemoDataset(
        store,
        SampleConfig(
            history_length=cfg.model.history_length,
            action_chunk_size=cfg.model.action_chunk_size,
            image_keys=tuple(cfg.model.cameras),
            state_key=cfg.model.state_key,
            action_key=cfg.data.action_key,
            augment=augment,
            seed=cfg.train.seed,
            image_size=cfg.model.image_size,
        ),
    )
    # extra stores are normalised with data.path's statistics
    datasets = [dataset, *(DemoDataset(s, dataset.cfg, dataset.quantiles) for s in extras)]
    train_set, val_frames = split_datasets(datasets, cfg.data.val_fraction, cfg.train.seed)
    val_loader = None
    if val_frames and main_proc:
        plain = replace(dataset.cfg, augment=AugmentConfig.off())
        val_sets = [DemoDataset(part.store, plain, dataset.quantiles) for part in datasets]
        val_set = val_sets[0] if len(val_sets) == 1 else ConcatDataset(val_sets)
        val_loader = validation_loader(val_set, val_frames, cfg.train.val_samples, cfg.train.batch_size)
    sampler = (
        DistributedSampler(train_set, num_replicas=world, rank=rank, seed=cfg.train.seed)
        if world > 1
        else None
    )
    loader = make_dataloader(
        train_set,
        LoaderConfig(batch_size=cfg.train.batch_size, num_workers=cfg.data.num_workers),
        seed=cfg.train.seed,
        sampler=sampler,
    )

    model = VLAModel(cfg.model, tokenizer).to(device)
    if cfg.model.state_key and not resume:
        model.set_state_stats(stats[cfg.model.state_key]["mean"], stats[cfg.model.state_key]["std"])
    if init_model is not None:  # weights only (the state statistics among them): a fresh optimiser
        model.load_state_dict(init_model.state_dict())
        del init_model
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.optim.lr,
        weight_decay=cfg.optim.weight_decay,
        betas=tuple(cfg.optim.betas),
        fused=device.type == "cuda",
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.precision == "fp16" and device.type == "cuda")
    step = 0
    best = -1.0
    if resume:
        from safetensors.torch import load_model

        try:
            load_model(model, str(Path(resume) / "model.safetensors"), device=str(device))
        except RuntimeError as exc:
            raise CheckpointError(
                f"{Path(resume) / 'model.safetensors'}: the weights do not fit the model built for this "
                f"data ({str(exc).splitlines()[0]})"
            ) from None
        state = load_optim_state(resume)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        trainer_state = json.loads((Path(resume) / "trainer_state.json").read_text())
        step, best = int(trainer_state["step"]), float(trainer_state.get("best", -1.0))
        if main_proc:
            trim_log(out / LOG_FILE, step)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local] if device.type == "cuda" else None
        )
    if cfg.train.compile:
        net = torch.compile(net)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.precision)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext

    logger = Logger(out, main_proc, purge_step=step if resume else None)
    progress = None
    if main_proc:
        from tqdm import tqdm

        progress = tqdm(total=cfg.train.max_steps, initial=step, unit="step", desc="train")
    epoch = 0
    batches = iter(())
    start_time = time.time()
    last_log, samples_since = time.perf_counter(), 0
    metrics: dict[str, Any] = {}
    loss_sum = 0.0  # a run resumed at its last step trains no step

    def next_batch() -> dict[str, Any]:
        nonlocal batches, epoch
        while True:
            try:
                return next(batches)
            except StopIteration:
                epoch += 1  # the next pass draws a new order and new augmentations
                if sampler is not None:
                    sampler.set_epoch(epoch)
                for part in datasets:
                    part.set_epoch(epoch)
                batches = iter(loader)

    def save(name: str, extra: dict[str, Any]) -> None:
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
        }
        save_checkpoint(
            out / name, model, cfg, tokenizer, stats, {"step": step, "best": best, **extra}, state
        )

    net.train()
    while step < cfg.train.max_steps:
        optimizer.zero_grad(set_to_none=True)
        parts_sum: dict[str, float] = {}
        loss_sum = 0.0
        for micro in range(cfg.train.grad_accum):
            batch = next_batch()
            sync = nullcontext() if (world == 1 or micro == cfg.train.grad_accum - 1) else net.no_sync()
            with sync, autocast():
                loss, parts = net(batch, cfg.train.history_weighting)  # VLAModel.forward = compute_loss
            scaler.scale(loss / cfg.train.grad_accum).backward()
            loss_sum += float(loss.detach()) / cfg.train.grad_accum
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / cfg.train.grad_accum
            samples_since += cfg.train.batch_size * world
        scaler.unscale_(optimizer)
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or float("inf"))
        )
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        if progress:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum:.4f}")
        if step % cfg.train.log_every == 0 or step == cfg.train.max_steps:
            now = time.perf_counter()
            logger.log(
                step,
                {
                    "loss": loss_sum,
                    **parts_sum,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": grad_norm,
                    "samples_per_s": samples_since / max(1e-9, now - last_log),
                },
            )
            last_log, samples_since = now, 0
        timed_out = cfg.train.max_minutes > 0 and (time.time() - start_time) / 60 >= cfg.train.max_minutes
        if val_loader is not None and (
            step % cfg.train.val_every == 0 or step == cfg.train.max_steps or timed_out
        ):
            logger.log(step, validation_loss(model, val_loader, cfg.train.history_weighting, autocast))
        if (
            main_proc
            and cfg.eval.every
            and (step % cfg.eval.every == 0 or step == cfg.train.max_steps or timed_out)
        ):
            metrics = rollout_eval(model, cfg, tokenizer, stats)
            logger.log(step, metrics)
            if metrics["eval_avg_len"] > best:
                best = metrics["eval_avg_len"]
                save("best", metrics)
        if main_proc and (step % cfg.train.save_every == 0 or step == cfg.train.max_steps or timed_out):
            save("latest", {"loss": loss_sum, **metrics})
        if timed_out:
            break
    if progress:
        progress.close()
    logger.close()
    if main_proc and not (out / "best").exists():
        save("best", {"loss": loss_sum, "note": "no rollout evaluation: last weights"})
    if world > 1:
        torch.distributed.barrier()
    return {"step": step, "loss": loss_sum, "best_avg_len": best, **metrics}


def main(argv: list[str] | None = None) -> int:
    from bench.rundir import RunFolderError
    from trainer.checkpoint import CheckpointError
    from trainer.data.store import DatasetError

    parser = argparse.ArgumentParser(prog="python -m trainer.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON config file (may name a 'parent')")
    parser.add_argument("--resume", help="checkpoint folder (e.g. OUT/latest) to continue from")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.max_steps=100")
    args = parser.parse_args(argv)
    try:
        if args.resume:
            from trainer.checkpoint import check_checkpoint, read_checkpoint_config

            checkpoint = read_checkpoint_config(check_checkpoint(args.resume))
            cfg = resume_config(checkpoint, args.config, args.overrides, f"--resume {args.resume}")
        else:
            cfg = load_config(args.config, args.overrides)
        result = train(cfg, args.resume)
    except (ConfigError, DatasetError, CheckpointError, RunFolderError, FileNotFoundError) as exc:
        print(f"trainer.train: error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {result['step']} steps, final loss {result['loss']:.4f} -> {cfg.train.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
