"""Training samples in the seed's standard format, read from an episode store.

Sample ``i`` is frame ``t`` of some episode. It holds the history window of the ``history_length``
frames ending at ``t`` (zero-padded on the oldest side near the episode start, so that frame ``t``
is always last; :func:`trainer.data.preprocess.process_history`, the seed's function, pads the other
side, and its doc says why the windows here do not) and, for every step of that window, the chunk of
the next ``action_chunk_size`` actions (zero-padded past the episode end). Masks say which entries
are real. Keys::

    observations.images.<camera>  (H, 3, h, w) float32 in [0, 1] (or uint8, see SampleConfig)
    observations.states           (H, S) float32, e.g. robot_obs
    history_mask                  (H,) bool
    actions                       (H, C, 7) float32, normalised to [-1, 1] (gripper +-1)
    action_mask                   (H, C) bool
    language_instruction          str
    task                          str
    history_length, action_chunk_size   ints

``actions[-1]`` is the chunk to predict at the current frame; the full (H, C) grid serves the
policy-head structures that predict a chunk at every step of the window (the history-weighted loss).
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from trainer.data.augment import AugmentConfig, augment_actions, augment_images, augment_language
from trainer.data.preprocess import ActionQuantiles, normalize_actions
from trainer.data.store import DatasetError, EpisodeStore


@dataclass
class SampleConfig:
    """What a training sample holds."""

    history_length: int = 16
    """frames of history (the current frame is the last)"""
    action_chunk_size: int = 10
    """actions predicted per step"""
    image_keys: tuple[str, ...] = ("rgb_static", "rgb_gripper")
    """cameras to load (() for none)"""
    state_key: str | None = "robot_obs"
    """proprioception field (None for none)"""
    action_key: str = "rel_actions"
    """action field: rel_actions (CALVIN's relative actions) or actions (absolute)"""
    normalize: bool = True
    """normalise actions with the dataset's 1st/99th quantiles (stats.json)"""
    image_dtype: str = "float32"
    """float32 in [0, 1], or uint8 (a quarter of the memory; augmentation still runs in float)"""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """augmentation (AugmentConfig.off() for evaluation)"""
    seed: int = 0
    """augmentation seed: a sample's augmentation depends on (seed, epoch, index) only"""
    image_size: int | None = None
    """resize images to this square size before augmentation (None keeps the stored size); the
    shift padding scales with it. Policies resize with the same function (resize_frames)."""


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(T, 3, H, W) float -> (T, 3, size, size), bilinear with antialiasing (train and inference alike)."""
    if frames.shape[-2:] == (size, size):
        return frames
    return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def scaled_shift_pads(augment: AugmentConfig, stored_widths: dict[str, int], size: int) -> dict[str, int]:
    """Shift padding of each camera in pixels of its images resized to ``size``: the configured
    padding is in pixels of that camera's stored images, so each camera scales by its own width."""
    return {
        cam: max(1, round(augment.shift_pad.get(cam, 4) * size / width))
        for cam, width in stored_widths.items()
    }


def check_same_fields(store: EpisodeStore, reference: EpisodeStore) -> None:
    """A store trained on together with ``reference`` (``data.extra_paths`` with ``data.path``) must
    hold the same fields with the same dtype and per-frame shape (camera sizes among them): its
    samples are batched and normalised with the reference's."""
    ours, theirs = reference.meta["fields"], store.meta["fields"]

    def show(spec: Any) -> str:
        return "absent" if spec is None else f"{spec['dtype']} {spec['shape']}"

    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            raise DatasetError(
                f"{store.root}: field '{key}' is {show(theirs.get(key))}, but data.path {reference.root} "
                f"holds {show(ours.get(key))}; stores trained on together need the same fields and camera sizes"
            )


class DemoDataset(Dataset):
    """A torch Dataset over every frame of every episode of an episode store."""

    def __init__(
        self,
        store: EpisodeStore | str,
        cfg: SampleConfig | None = None,
        quantiles: ActionQuantiles | None = None,
    ) -> None:
        self.store = store if isinstance(store, EpisodeStore) else EpisodeStore(store)
        self.cfg = cfg or SampleConfig()
        if self.cfg.image_dtype not in ("float32", "uint8"):
            raise ValueError(f"image_dtype must be 'float32' or 'uint8', got {self.cfg.image_dtype!r}")
        if self.cfg.history_length < 1 or self.cfg.action_chunk_size < 1:
            raise ValueError("history_length and action_chunk_size must be >= 1")
        needed = [*self.cfg.image_keys, self.cfg.action_key] + (
            [self.cfg.state_key] if self.cfg.state_key else []
        )
        self.store.require(*needed)
        if len(self.store) == 0:
            raise DatasetError(f"{self.store.root}: the dataset holds no episodes")
        for i, ep in enumerate(self.store.episodes):
            if not ep.get("instruction"):
                raise DatasetError(
                    f"{self.store.root / 'episodes.jsonl'}: episode {i} has no 'instruction'; "
                    "training samples need a language instruction"
                )
        self.quantiles = quantiles
        if self.cfg.normalize and quantiles is None:
            from trainer.data.stats import quantiles_from_stats, read_stats

            self.quantiles = quantiles_from_stats(read_stats(self.store.root), field=self.cfg.action_key)
        starts = np.array([ep["start"] for ep in self.store.episodes])
        ends = np.array([ep["end"] for ep in self.store.episodes])
        self._episode_of_frame = np.repeat(np.arange(len(starts)), ends - starts)
        self._starts, self._ends = starts, ends
        # Shared memory: persistent DataLoader workers hold copies of this dataset made when they
        # started, and a plain attribute set in the main process would never reach them.
        self._epoch = mp.RawValue("q", 0)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per epoch, like DistributedSampler.set_epoch);
        it reaches running DataLoader workers too."""
        self._epoch.value = int(epoch)

    def __len__(self) -> int:
        return self.store.n_frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        cfg = self.cfg
        h, c = cfg.history_length, cfg.action_chunk_size
        ep = int(self._episode_of_frame[index])
        start, end = int(self._starts[ep]), int(self._ends[ep])
        t = int(index)
        first = max(start, t - h + 1)
        pad = h - (t - first + 1)
        history_mask = np.zeros(h, dtype=bool)
        history_mask[pad:] = True
        rng = np.random.default_rng([cfg.seed, self.epoch, index])

        images = {}
        for key in cfg.image_keys:
            frames = np.asarray(self.store.fields[key][first : t + 1])  # (n, h, w, 3) uint8
            seq = np.zeros((h, *frames.shape[1:]), dtype=np.uint8)
            seq[pad:] = frames
            frames_t = torch.from_numpy(seq).permute(0, 3, 1, 2).float().div_(255.0)
            images[key] = resize_frames(frames_t, cfg.image_size) if cfg.image_size else frames_t
        augment = cfg.augment
        if cfg.image_size and images:
            stored = {k: int(self.store.fields[k].shape[2]) for k in cfg.image_keys}
            augment = replace(augment, shift_pad=scaled_shift_pads(augment, stored, cfg.image_size))
        images = augment_images(images, augment, rng) if images else images
        if cfg.image_dtype == "uint8":
            images = {k: (v * 255.0).round_().to(torch.uint8) for k, v in images.items()}

        # actions[i, j] = action at frame (first - pad + i) + j, masked outside the episode
        raw = np.asarray(self.store.fields[cfg.action_key][first : min(end, t + c)], dtype=np.float32)
        actions = np.zeros((h, c, raw.shape[-1]), dtype=np.float32)
        action_mask = np.zeros((h, c), dtype=bool)
        for i in range(pad, h):
            frame = first + (i - pad)
            n = min(c, end - frame)
            actions[i, :n] = raw[frame - first : frame - first + n]
            action_mask[i, :n] = True
        if cfg.normalize:
            actions = np.where(action_mask[..., None], normalize_actions(actions, self.quantiles), 0.0)
        actions = augment_actions(actions.astype(np.float32), cfg.augment, rng) * action_mask[..., None]

        info = self.store.episodes[ep]
        sample: dict[str, Any] = {
            "observations": {"images": images},
            "history_mask": torch.from_numpy(history_mask),
            "actions": torch.from_numpy(actions.astype(np.float32)),
            "action_mask": torch.from_numpy(action_mask),
            "language_instruction": augment_language(info["instruction"], info.get("task"), cfg.augment, rng),
            "task": info.get("task") or "",
            "history_length": h,
            "action_chunk_size": c,
        }
        if cfg.state_key:
            states = np.zeros((h, self.store.fields[cfg.state_key].shape[-1]), dtype=np.float32)
            states[pad:] = self.store.fields[cfg.state_key][first : t + 1]
            sample["observations"]["states"] = torch.from_numpy(states)
        return sample


@dataclass
class LoaderConfig:
    """DataLoader settings."""

    batch_size: int = 8
    """samples per batch"""
    num_workers: int = 2
    """worker processes decoding samples (0 = in the main process)"""
    shuffle: bool = True
    """random order each epoch"""
    prefetch_factor: int = 2
    """batches prepared ahead per worker"""
    drop_last: bool = True
    """drop the last incomplete batch"""


def make_dataloader(
    dataset: DemoDataset, cfg: LoaderConfig | None = None, *, seed: int = 0, sampler: Any = None
) -> DataLoader:
    """A DataLoader with persistent workers; shuffling is seeded (pass a DistributedSampler for DDP)."""
    cfg = cfg or LoaderConfig()
    generator = torch.Generator().manual_seed(seed)
    kwargs: dict[str, Any] = {}
    if cfg.num_workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=cfg.prefetch_factor)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=cfg.drop_last,
        generator=generator,
        **kwargs,
    )
