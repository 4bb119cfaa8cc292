"""Seeded augmentation of training samples: images, actions and language.

Every function takes an explicit ``numpy.random.Generator`` so that a sample's augmentation is a
pure function of (dataset seed, epoch, sample index), whatever worker process builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Which augmentations run, and how strong (all off: ``AugmentConfig.off()``)."""

    shift: bool = True
    """random shift: pad each image by ``shift_pad`` px (edge replicate) and crop back at random"""
    shift_pad: dict[str, int] = field(default_factory=lambda: {"rgb_static": 10, "rgb_gripper": 4})
    """padding per camera (RoboVLMs' CALVIN values); cameras not listed get 4"""
    color_jitter: bool = True
    """random brightness / contrast / saturation (one draw per sample, the same for all its frames)"""
    brightness: float = 0.2
    """brightness factor drawn from [1 - b, 1 + b]"""
    contrast: float = 0.2
    """contrast factor drawn from [1 - c, 1 + c]"""
    saturation: float = 0.2
    """saturation factor drawn from [1 - s, 1 + s]"""
    action_noise: float = 0.0
    """std of Gaussian noise added to the normalised arm actions (gripper untouched); 0 = off"""
    language: bool = True
    """replace the instruction by another training phrasing of the same task (and drop words)"""
    paraphrases: bool = True
    """draw from the task's paraphrases too (envs.calvin.paraphrases), not only its recorded phrasings"""
    word_dropout: float = 0.1
    """probability that each instruction word becomes the tokenizer's unknown token (which so gets trained)"""

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(shift=False, color_jitter=False, action_noise=0.0, language=False)


def random_shift(images: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """Shift a (T, 3, H, W) sequence by the same random offset in [-pad, pad] (edge padding)."""
    if pad <= 0:
        return images
    _, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    dy, dx = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
    return padded[:, :, dy : dy + h, dx : dx + w]


def color_jitter(images: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation jitter of (T, 3, H, W) float images in [0, 1].

    The three steps (x*b; contrast around each frame's mean; blend with the luma grey) are affine in
    x, so they are applied as one 3x3 colour matrix plus a per-frame offset: one pass over the pixels.
    """
    b, c, s = (float(rng.uniform(1 - v, 1 + v)) for v in (cfg.brightness, cfg.contrast, cfg.saturation))
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)
    matrix = c * b * (s * torch.eye(3, dtype=images.dtype) + (1 - s) * luma.expand(3, 3))
    offset = (1 - c) * b * images.mean(dim=(1, 2, 3))
    out = torch.einsum("ij,tjhw->tihw", matrix, images) + offset[:, None, None, None]
    return out.clamp_(0.0, 1.0)


def augment_images(
    images: dict[str, torch.Tensor], cfg: AugmentConfig, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    out = {}
    for key, seq in images.items():
        if cfg.shift:
            seq = random_shift(seq, cfg.shift_pad.get(key, 4), rng)
        if cfg.color_jitter:
            seq = color_jitter(seq, cfg, rng)
        out[key] = seq
    return out


def augment_actions(
    actions: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, binary_dims: Sequence[int] = (6,)
) -> np.ndarray:
    """Add Gaussian noise to normalised arm actions, clipped to [-1, 1]; binary dims untouched."""
    if cfg.action_noise <= 0:
        return actions
    noisy = actions + rng.normal(0.0, cfg.action_noise, size=actions.shape).astype(actions.dtype)
    noisy = np.clip(noisy, -1.0, 1.0)
    for d in binary_dims:
        noisy[..., d] = actions[..., d]
    return noisy


def language_choices(task: str | None, paraphrases: bool = True) -> tuple[tuple[str, ...], ...]:
    """What language augmentation draws from for ``task``: the recorded training phrasings, then
    (with ``paraphrases``) one group per paraphrase template; () for a task the suite does not know."""
    from envs.calvin.language import TRAIN_INSTRUCTIONS

    recorded = TRAIN_INSTRUCTIONS.get(task or "")
    if not recorded:
        return ()
    if not paraphrases:
        return (recorded,)
    from envs.calvin.paraphrases import paraphrase_groups

    return (recorded, *paraphrase_groups(task))


def drop_words(instruction: str, rate: float, rng: np.random.Generator) -> str:
    """Each word replaced by the unknown token with probability ``rate`` (word dropout)."""
    if rate <= 0:
        return instruction
    from trainer.tokenizer import UNK

    words = instruction.split()
    dropped = rng.random(len(words)) < rate
    return " ".join(UNK if d else w for w, d in zip(words, dropped, strict=True))


def augment_language(instruction: str, task: str | None, cfg: AugmentConfig, rng: np.random.Generator) -> str:
    """A phrasing of ``task`` drawn from :func:`language_choices` (a template group, then one of its
    sentences, so that large templates do not crowd out the rest), then word dropout. An instruction
    of a task the suite does not know keeps its words, apart from the dropout."""
    if not cfg.language:
        return instruction
    groups = language_choices(task, cfg.paraphrases)
    if groups:
        group = groups[int(rng.integers(len(groups)))]
        instruction = group[int(rng.integers(len(group)))]
    return drop_words(instruction, cfg.word_dropout, rng)
