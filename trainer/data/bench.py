"""Loader benchmark: ``python -m trainer.data.bench DIR`` prints figures (medians of repeats).

1. Raw random-window reads (16 frames of both cameras, robot_obs and the 10-action chunks) from
   the same episodes stored three ways: our episode store (memory-mapped field files), one
   ``.npz`` per episode, and CALVIN's one ``.npz`` per frame. This is the measurement behind the
   store's format choice.
2. Training samples per second of :class:`trainer.data.dataset.DemoDataset` (with augmentation)
   through a DataLoader with 0 and 2 worker processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainer.data.store import DatasetError, EpisodeStore

HISTORY, CHUNK = 16, 10
KEYS = ("rgb_static", "rgb_gripper", "robot_obs", "rel_actions")


def _windows(store: EpisodeStore, n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """(episode, first frame, last frame) of ``n`` random windows, relative to the episode."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        e = int(rng.integers(len(store)))
        length = store.episodes[e]["end"] - store.episodes[e]["start"]
        t = int(rng.integers(length))
        out.append((e, max(0, t - HISTORY + 1), min(length, t + CHUNK)))
    return out


def _rate(fn: Callable[[tuple[int, int, int]], object], windows: list, repeats: int = 3) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for w in windows:
            fn(w)
        rates.append(len(windows) / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_formats(store: EpisodeStore, n_windows: int = 200) -> dict[str, float]:
    """Windows per second read from the store, per-episode npz and CALVIN's per-frame npz."""
    from trainer.data.calvin_layout import export_calvin

    windows = _windows(store, n_windows)
    results: dict[str, float] = {}

    def from_store(w: tuple[int, int, int]) -> None:
        e, a, b = w
        s = store.episodes[e]["start"]
        for k in KEYS:
            np.array(store.fields[k][s + a : s + b])

    results["episode store (memmap)"] = _rate(from_store, windows)
    with tempfile.TemporaryDirectory() as tmp:
        per_episode = Path(tmp) / "per_episode"
        per_episode.mkdir()
        for i in range(len(store)):
            np.savez(per_episode / f"{i:06d}.npz", **{k: store.episode(i).data[k] for k in KEYS})

        def from_episode_npz(w: tuple[int, int, int]) -> None:
            e, a, b = w
            with np.load(per_episode / f"{e:06d}.npz") as f:
                for k in KEYS:
                    f[k][a:b]

        results["one .npz per episode"] = _rate(from_episode_npz, windows)
        calvin = Path(tmp) / "calvin"
        export_calvin(store, calvin, progress=False)

        def from_frame_npz(w: tuple[int, int, int]) -> None:
            e, a, b = w
            s = store.episodes[e]["start"]
            for frame in range(s + a, s + b):
                with np.load(calvin / f"episode_{frame:07d}.npz") as f:
                    for k in KEYS:
                        f[k]

        results["CALVIN: one .npz per frame"] = _rate(from_frame_npz, windows, repeats=1)
    return results


def bench_dataset(root: str, batches: int = 20, batch_size: int = 8) -> dict[int, float]:
    """Samples per second of DemoDataset through a DataLoader, by number of worker processes."""
    from trainer.data.dataset import DemoDataset, LoaderConfig, make_dataloader

    dataset = DemoDataset(root)
    out = {}
    for workers in (0, 2):
        loader = make_dataloader(dataset, LoaderConfig(batch_size=batch_size, num_workers=workers), seed=0)
        it = iter(loader)
        next(it)  # start-up (worker processes) is not counted
        start = time.perf_counter()
        n = 0
        for _ in range(batches):
            try:
                next(it)
            except StopIteration:
                it = iter(loader)
                next(it)
            n += batch_size
        out[workers] = n / (time.perf_counter() - start)
        del it, loader
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.data.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("root", help="an episode store folder (e.g. made by python -m trainer.collect)")
    parser.add_argument("--windows", type=int, default=200, help="random windows per format")
    parser.add_argument("--batches", type=int, default=20, help="DataLoader batches per setting")
    args = parser.parse_args(argv)
    try:
        store = EpisodeStore(args.root)
    except DatasetError as exc:
        print(f"trainer.data.bench: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.root}: {len(store)} episodes, {store.n_frames} frames")
    print(f"random windows ({HISTORY} frames + {CHUNK}-action chunks of {', '.join(KEYS)}), windows/s:")
    formats = bench_formats(store, args.windows)
    base = formats["episode store (memmap)"]
    for name, rate in formats.items():
        print(f"  {name:28s} {rate:9.1f}   ({rate / base:.2f}x the store)")
    print("DemoDataset samples/s (16-frame history, both cameras, augmentation on), batch 8:")
    for workers, rate in bench_dataset(args.root, args.batches).items():
        print(f"  num_workers={workers}: {rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
