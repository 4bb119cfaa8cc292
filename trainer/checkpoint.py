"""Checkpoints: safetensors weights + config + normalisation statistics + tokenizer (+ optimiser state).

A checkpoint folder::

    model.safetensors   the VLA model's weights
    config.json         the full TrainConfig (rebuilds the architecture)
    stats.json          the training data's normalisation statistics (actions are denormalised with them)
    tokenizer.json ...  the tokenizer (saved with save_pretrained)
    trainer_state.json  step, metrics, time
    optim.pt            optimiser, scheduler and grad-scaler state for --resume (tensors and plain
                        containers only: loaded with torch.load(weights_only=True), which never
                        unpickles arbitrary objects)

Folders are written under a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from trainer.config import ConfigError, TrainConfig, config_from_dict

REQUIRED = ("model.safetensors", "config.json", "stats.json", "tokenizer.json")


class CheckpointError(ValueError):
    """A checkpoint folder is missing a file or holds a corrupt one (the message names it)."""


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    tokenizer: Any,
    stats: dict[str, Any],
    state: dict[str, Any],
    optim_state: dict[str, Any] | None = None,
) -> Path:
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    (tmp / "stats.json").write_text(json.dumps(_jsonable(stats), indent=2))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "trainer_state.json").write_text(json.dumps(_jsonable(state), indent=2))
    if optim_state is not None:
        torch.save(optim_state, tmp / "optim.pt")
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


def check_checkpoint(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: checkpoint folder does not exist")
    missing = [f for f in REQUIRED if not (folder / f).exists()]
    if missing:
        raise CheckpointError(
            f"{folder}: checkpoint file(s) {missing} are missing (a checkpoint holds {list(REQUIRED)})"
        )
    return folder


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt JSON ({exc})") from None


def read_checkpoint_config(folder: str | Path) -> TrainConfig:
    """The checkpoint's ``config.json``, type-checked and validated (errors name the file and key)."""
    path = Path(folder) / "config.json"
    try:
        return config_from_dict(_read_json(path), str(path))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None


def load_checkpoint(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, TrainConfig, Any, dict]:
    """Rebuild the model from a checkpoint: (model in eval mode, config, tokenizer, stats)."""
    from trainer.models.vla import VLAModel
    from trainer.tokenizer import load_tokenizer

    folder = check_checkpoint(folder)
    cfg = read_checkpoint_config(folder)
    stats = _read_json(folder / "stats.json")
    try:
        tokenizer = load_tokenizer(folder)
    except Exception as exc:  # tokenizers raises its own exception types on corrupt files
        raise CheckpointError(f"{folder / 'tokenizer.json'}: cannot be loaded ({exc})") from None
    model = VLAModel(cfg.model, tokenizer)
    try:
        missing, unexpected = load_model(
            model, str(folder / "model.safetensors"), strict=False, device=str(device)
        )
    except Exception as exc:
        raise CheckpointError(f"{folder / 'model.safetensors'}: cannot be read ({exc})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{folder / 'model.safetensors'}: weights do not match the architecture in config.json "
            f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})"
        )
    model.to(device).eval()
    return model, cfg, tokenizer, stats


def load_optim_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "optim.pt"
    if not path.exists():
        raise CheckpointError(
            f"{path}: missing, so training cannot resume from {folder} (weights-only checkpoint)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read safely ({exc})") from None
