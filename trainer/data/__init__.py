"""Demonstration data: the episode store, preprocessing with the seed's formulas, samples, loaders.

Public API (names as in the seed specification)::

    normalize_actions, denormalize_actions     clamp to 1st/99th quantiles, map to [-1, 1] and back
    discretize_actions, undiscretize_actions   256 bins + 10, and back to bin centres
    process_history                            the seed's (history_obs, history_actions), zeros after
    EpisodeStore, EpisodeWriter, Episode       the on-disk format (trainer.data.store)
    DemoDataset, SampleConfig, make_dataloader training samples (trainer.data.dataset)
"""

from trainer.data.preprocess import (
    ActionQuantiles,
    denormalize_actions,
    discretize_actions,
    normalize_actions,
    process_history,
    undiscretize_actions,
)
from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter

__all__ = [
    "ActionQuantiles",
    "DatasetError",
    "Episode",
    "EpisodeStore",
    "EpisodeWriter",
    "denormalize_actions",
    "discretize_actions",
    "normalize_actions",
    "process_history",
    "undiscretize_actions",
]


def __getattr__(name: str):  # the torch-based dataset loads on first use
    if name in ("DemoDataset", "SampleConfig", "LoaderConfig", "make_dataloader"):
        from trainer.data import dataset

        return getattr(dataset, name)
    if name == "AugmentConfig":
        from trainer.data.augment import AugmentConfig

        return AugmentConfig
    raise AttributeError(f"module 'trainer.data' has no attribute {name!r}")
