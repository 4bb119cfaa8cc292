"""Visual matching as SimplerEnv does it: the real camera image behind the rendered robot and objects.

Every pixel whose segmentation id is not one of the kept ids (robot links, task objects) shows the
real image instead of the render ("green screen").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_overlay(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The overlay image as an (h, w, 3) uint8 array resized to ``size`` (w, h)."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if rgb.size != tuple(size):
            rgb = rgb.resize(tuple(size), Image.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).copy()


def composite(
    rgb: torch.Tensor, segmentation: torch.Tensor, keep_ids: torch.Tensor, overlay: np.ndarray
) -> torch.Tensor:
    """(n, h, w, 3) renders with background pixels replaced by ``overlay`` (h, w, 3).

    A lookup table over segmentation ids in NumPy: about 2 ms at 224 x 224, where ``torch.isin``
    and ``torch.where`` took 65 ms on this machine's shared cores.
    """
    seg = segmentation[..., 0].cpu().numpy()
    ids = keep_ids.cpu().numpy()
    table = np.zeros(max(int(seg.max()), int(ids.max(initial=0))) + 1, dtype=bool)
    table[ids] = True
    keep = table[seg][..., None]
    out = np.where(keep, rgb.cpu().numpy(), overlay[None])
    return torch.from_numpy(out).to(rgb.device)
