"""Trainer benchmark: ``python -m trainer.bench [--configs ...] [--device cpu|cuda] [--batch 4]``.

For each variant (shipped config) prints training samples/s (forward, backward and AdamW step on a
fixed synthetic batch), inference milliseconds per action (one env, the current step's action),
model FLOPs per training sample counted with ``torch.utils.flop_counter.FlopCounterMode``, and,
given the device's peak (``--peak-tflops``, or known for H100/H200 bf16), the model FLOPs
utilisation. Medians over repeats; the machine is noisy.

Full-size runs: ``python -m trainer.bench --configs trainer/configs/kosmos_ph_lstm.json --size full
--device cuda --precision bf16 --batch 16 --image-size 224`` (needs a GPU; nothing is downloaded,
weights are random).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from trainer.config import load_config
from trainer.models.vla import VLAModel
from trainer.tokenizer import train_tokenizer

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def synthetic_batch(
    b: int, h: int, c: int, size: int, cameras: list[str], device: torch.device, state_dim: int = 0
) -> dict:
    g = torch.Generator().manual_seed(0)
    actions = torch.rand(b, h, c, 7, generator=g) * 2 - 1
    observations = {
        "images": {cam: torch.rand(b, h, 3, size, size, generator=g).to(device) for cam in cameras}
    }
    if state_dim:
        observations["states"] = torch.randn(b, h, state_dim, generator=g).to(device)
    return {
        "observations": observations,
        "history_mask": torch.ones(b, h, dtype=torch.bool, device=device),
        "actions": actions.to(device),
        "action_mask": torch.ones(b, h, c, dtype=torch.bool, device=device),
        "language_instruction": ["pull the handle to open the drawer"] * b,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_config(
    path: str, overrides: list[str], batch: int, device: torch.device, precision: str, repeats: int = 5
) -> dict[str, float]:
    cfg = load_config(path, overrides)
    state_dim = cfg.model.state_dim if cfg.model.state_key else 0
    model = VLAModel(cfg.model, train_tokenizer()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp else nullcontext
    data = synthetic_batch(
        batch,
        cfg.model.history_length,
        cfg.model.action_chunk_size,
        cfg.model.image_size,
        cfg.model.cameras,
        device,
        state_dim,
    )

    def train_step() -> None:
        with autocast():
            loss, _ = model.compute_loss(data)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    train_step()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        train_step()
        _sync(device)
        times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, autocast():
        loss, _ = model.compute_loss(data)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    flops_per_sample = counter.get_total_flops() / batch

    model.eval()
    one = synthetic_batch(
        1,
        cfg.model.history_length,
        cfg.model.action_chunk_size,
        cfg.model.image_size,
        cfg.model.cameras,
        device,
        state_dim,
    )
    with torch.no_grad(), autocast():
        model.predict(one, n_actions=1)
        infer = []
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            model.predict(one, n_actions=1)
            _sync(device)
            infer.append(time.perf_counter() - t)
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_samples_per_s": batch / step_s,
        "infer_ms_per_action": 1000 * statistics.median(infer),
        "gflops_per_sample": flops_per_sample / 1e9,
        "achieved_tflops": flops_per_sample * batch / step_s / 1e12,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", help="config files (default: every shipped variant)")
    parser.add_argument("--size", default=None, help="override model.size (tiny, small, full)")
    parser.add_argument("--image-size", type=int, default=None, help="override model.image_size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    configs = args.configs or sorted(
        str(p) for p in Path("trainer/configs").glob("*.json") if p.name != "base.json"
    )
    overrides = ([f"model.size={args.size}"] if args.size else []) + (
        [f"model.image_size={args.image_size}"] if args.image_size else []
    )
    peak = args.peak_tflops
    if peak is None and device.type == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    print(
        f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), batch {args.batch}, "
        f"precision {args.precision}, threads {torch.get_num_threads()}"
    )
    print(
        f"{'variant':24s} {'params M':>9s} {'train samples/s':>16s} {'infer ms/action':>16s} {'GFLOP/sample':>13s}"
        + ("  MFU" if peak else "")
    )
    for path in configs:
        r = bench_config(path, overrides, args.batch, device, args.precision)
        mfu = f"  {100 * r['achieved_tflops'] / peak:5.1f} %" if peak else ""
        print(
            f"{Path(path).stem:24s} {r['params_m']:9.2f} {r['train_samples_per_s']:16.1f} "
            f"{r['infer_ms_per_action']:16.1f} {r['gflops_per_sample']:13.3f}{mfu}"
        )


if __name__ == "__main__":
    main()
