"""Training configuration: dataclasses, JSON files with ``parent`` inheritance, ``key=value`` overrides.

A config file is a JSON object with the sections of :class:`TrainConfig` (``model``, ``data``,
``optim``, ``train``, ``eval``); ``"parent": "base.json"`` (relative to the file) is loaded first
and this file's keys are merged over it, section by section. Overrides on the command line use
dotted keys: ``train.max_steps=200 model.head=gpt optim.lr=3e-4``; values parse as JSON when they
can (numbers, booleans, lists), else as strings. An unknown key anywhere is an error that names the
key and the valid ones: the config is locked, so a typo never silently adds a setting.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.models.vla import ModelConfig


@dataclass
class DataConfig:
    """Where samples come from and how they are augmented."""

    path: str = "data/calvin_abc"
    """episode store folder (python -m trainer.collect --out ...)"""
    extra_paths: list[str] = field(default_factory=list)
    """more episode stores trained on with path (e.g. DAgger rounds): same fields and camera sizes,
    normalised with path's statistics"""
    action_key: str = "rel_actions"
    """action field predicted: rel_actions (relative, CALVIN's) or actions (absolute)"""
    augment: bool = True
    """image shift + colour jitter + language (other phrasings, paraphrases, word dropout)"""
    action_noise: float = 0.0
    """std of noise on normalised arm actions (0 = off)"""
    num_workers: int = 2
    """DataLoader worker processes"""
    val_fraction: float = 0.0
    """fraction of episodes held out for a validation loss (0 = none)"""
    paraphrases: bool = True
    """language augmentation also draws the task's paraphrases (envs.calvin.paraphrases); eval phrasings never"""
    word_dropout: float = 0.1
    """probability that each instruction word is replaced by <unk> while training (trains its embedding)"""


@dataclass
class OptimConfig:
    """AdamW and the learning-rate schedule."""

    lr: float = 1e-3
    """peak learning rate"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas"""
    schedule: str = "cosine"
    """constant, cosine or step (each after a linear warmup)"""
    warmup_steps: int = 50
    """linear warmup from 0 to lr"""
    step_size: int = 1000
    """step schedule: multiply by gamma every step_size optimiser steps"""
    gamma: float = 0.5
    """step schedule: decay factor"""
    min_lr_ratio: float = 0.05
    """cosine schedule: final lr as a fraction of lr"""
    grad_clip: float = 1.0
    """gradient clipping by global norm (0 = off)"""


@dataclass
class TrainLoopConfig:
    """The loop: batch, steps, precision, logging, checkpoints."""

    out: str = "runs/train"
    """checkpoint folder"""
    batch_size: int = 8
    """samples per optimiser micro-step (per process under DDP)"""
    grad_accum: int = 1
    """micro-steps per optimiser step"""
    max_steps: int = 1000
    """optimiser steps"""
    max_minutes: float = 0.0
    """stop after this wall time (0 = no limit); a checkpoint is written at the stop"""
    precision: str = "fp32"
    """fp32, bf16 (autocast on CPU or CUDA) or fp16 (CUDA, with a grad scaler)"""
    history_weighting: str = "uniform"
    """per-step weights of the history loss: uniform or linear"""
    seed: int = 0
    """seed of initialisation, shuffling and augmentation"""
    log_every: int = 10
    """optimiser steps between logged scalars"""
    save_every: int = 200
    """optimiser steps between checkpoints (latest/)"""
    val_every: int = 500
    """optimiser steps between validation losses (with data.val_fraction > 0)"""
    val_samples: int = 512
    """held-out frames scored per validation (spread evenly over the held-out episodes)"""
    device: str = "auto"
    """auto (cuda if available), cpu or cuda"""
    compile: bool = False
    """torch.compile the model"""
    init: str | None = None
    """checkpoint folder whose weights (and tokenizer) a new run starts from, with a fresh optimiser;
    its architecture (model.*) must match"""


@dataclass
class EvalConfig:
    """Periodic rollout evaluation through the harness; the best checkpoint by success is kept."""

    every: int = 0
    """optimiser steps between rollouts (0 = off)"""
    chains: int = 5
    """official chains per rollout"""
    scene: str = "D"
    """scene of the rollouts"""
    max_steps: int = 360
    """step budget per subtask"""
    exec_mode: str = "first"
    """how predicted chunks are executed: first, chunk:K or ensemble"""


@dataclass
class TrainConfig:
    """Everything a training run needs; dumped as config.json beside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
_SECTION_CLASSES = {
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "train": TrainLoopConfig,
    "eval": EvalConfig,
}


class ConfigError(ValueError):
    """A config file or override is wrong: the message names the file/key and the valid choices."""


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw dict of a config file with its parents merged in."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: 'parent' chain loops back to itself")
    if not path.exists():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    parent = raw.pop("parent", None)
    if parent is None:
        return raw
    return _merge(read_config_file(path.parent / parent, (*_seen, path)), raw)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type hint (bool is not an int; an int is a float)."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items()
        )
    raise TypeError(f"config field type {hint!r} has no check")


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


def field_types(section: str) -> dict[str, Any]:
    """Field name -> type hint of a config section."""
    return typing.get_type_hints(_SECTION_CLASSES[section])


def _build_section(name: str, values: Any, where: str) -> Any:
    cls = _SECTION_CLASSES[name]
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: section '{name}' must be an object, got {type(values).__name__}")
    hints = field_types(name)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {[f'{name}.{k}' for k in unknown]}; valid: {sorted(hints)}"
        )
    for key, value in values.items():
        if not _matches(value, hints[key]):
            raise ConfigError(
                f"{where}: {name}.{key} must be {_type_name(hints[key])}, "
                f"got {json.dumps(value)} ({type(value).__name__})"
            )
    return cls(**values)


def build_config(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    unknown = sorted(set(raw) - set(_SECTION_CLASSES))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {unknown}; valid: {sorted(_SECTION_CLASSES)} (and 'parent')"
        )
    cfg = TrainConfig(**{k: _build_section(k, v, where) for k, v in raw.items()})
    validate(cfg, where)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(raw))
    for text in overrides:
        keys, value = parse_override(text)
        if len(keys) < 2 or keys[0] not in _SECTION_CLASSES:
            raise ConfigError(
                f"override {text!r}: the key must start with a section: {sorted(_SECTION_CLASSES)}"
            )
        if len(keys) == 2 and isinstance(value, (int, float)):  # train.out=2024 names a folder
            hint = field_types(keys[0]).get(keys[1])
            if hint is not None and not _matches(value, hint) and _matches("", hint):
                value = text.split("=", 1)[1].strip()
        node = out.setdefault(keys[0], {})
        for k in keys[1:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Config file (with parents) + overrides -> a validated TrainConfig."""
    raw = read_config_file(path) if path else {}
    raw = apply_overrides(raw, overrides or [])
    return build_config(raw, str(path or "overrides"))


def resume_config(
    checkpoint: TrainConfig, path: str | Path | None, overrides: list[str] | None, where: str
) -> TrainConfig:
    """The config of a resumed run: the checkpoint's, with the config file's keys and the overrides
    merged over it. The architecture (the model section) stays the checkpoint's: a model key given
    with another value is an error naming it."""
    given = apply_overrides(read_config_file(path) if path else {}, overrides or [])
    return resume_config_from(checkpoint, given, where)


def resume_config_from(checkpoint: TrainConfig, given: dict[str, Any], where: str) -> TrainConfig:
    """:func:`resume_config` with the given keys as a raw config dict (file and overrides merged)."""
    ours = checkpoint.to_dict()
    model = given.get("model", {})
    diffs = [
        f"model.{k}: given {json.dumps(v)}, checkpoint {json.dumps(ours['model'][k])}"
        for k, v in (model.items() if isinstance(model, dict) else ())
        if k in ours["model"] and v != ours["model"][k]
    ]
    if diffs:
        raise ConfigError(
            f"{where}: the architecture comes from the checkpoint, and the given config differs "
            f"({'; '.join(diffs)}); drop those keys (or --config) to resume, or start a new run"
        )
    return build_config(_merge(ours, given), where)


def validate(cfg: TrainConfig, where: str = "config") -> None:
    from trainer.models.backbones import BACKBONES
    from trainer.models.heads import HEADS
    from trainer.models.vla import STRUCTURES

    checks = [
        ("model.backbone", cfg.model.backbone, tuple(BACKBONES)),
        ("model.structure", cfg.model.structure, STRUCTURES),
        ("model.head", cfg.model.head, HEADS),
        ("model.size", cfg.model.size, ("tiny", "small", "full")),
        ("optim.schedule", cfg.optim.schedule, ("constant", "cosine", "step")),
        ("train.precision", cfg.train.precision, ("fp32", "bf16", "fp16")),
        ("train.history_weighting", cfg.train.history_weighting, ("uniform", "linear")),
        ("train.device", cfg.train.device, ("auto", "cpu", "cuda")),
        ("data.action_key", cfg.data.action_key, ("rel_actions", "actions")),
    ]
    for key, value, valid in checks:
        if value not in valid:
            raise ConfigError(f"{where}: {key} = {value!r} is not valid; choose one of {list(valid)}")
    if not (cfg.eval.exec_mode in ("first", "ensemble") or cfg.eval.exec_mode.startswith("chunk:")):
        raise ConfigError(
            f"{where}: eval.exec_mode = {cfg.eval.exec_mode!r}; choose first, chunk:K or ensemble"
        )
    sizes = cfg.model.camera_sizes
    if sizes is not None:
        missing = [c for c in cfg.model.cameras if c not in sizes]
        bad = {c: v for c, v in sizes.items() if len(v) != 2 or min(v) < 1}
        if missing or bad:
            raise ConfigError(
                f"{where}: model.camera_sizes = {sizes} must give [height, width] (>= 1) for every camera "
                f"of model.cameras {cfg.model.cameras}" + (f"; missing {missing}" if missing else "")
            )
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise ConfigError(f"{where}: data.val_fraction must be in [0, 1), got {cfg.data.val_fraction}")
    if not 0.0 <= cfg.data.word_dropout < 1.0:
        raise ConfigError(f"{where}: data.word_dropout must be in [0, 1), got {cfg.data.word_dropout}")
    for key in (
        "train.batch_size",
        "train.grad_accum",
        "train.max_steps",
        "model.history_length",
        "model.action_chunk_size",
        "model.image_size",
        "train.val_every",
        "train.val_samples",
    ):
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) < 1:
            raise ConfigError(f"{where}: {key} must be >= 1")


def config_from_dict(d: dict[str, Any], where: str = "checkpoint config.json") -> TrainConfig:
    """Rebuild the config dumped beside a checkpoint (``where`` names its file in errors)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
    return build_config(d, where)
