"""Registry of VLM backbones by name (``kosmos``, ``llava``, ``flamingo``, ``paligemma``, ``qwen-vl``)."""

from __future__ import annotations

import importlib
from typing import Any

from trainer.models.backbones.base import BackboneOutput, BackboneSpec, VLMBackbone

#: name -> "module:Class" (imported on use, so that one backbone's import cost is paid only when used)
BACKBONES = {
    "kosmos": "trainer.models.backbones.kosmos:KosmosBackbone",
    "llava": "trainer.models.backbones.llava:LlavaBackbone",
    "flamingo": "trainer.models.backbones.flamingo:FlamingoBackbone",
    "paligemma": "trainer.models.backbones.paligemma:PaliGemmaBackbone",
    "qwen-vl": "trainer.models.backbones.qwen_vl:QwenVLBackbone",
}


def build_backbone(spec: BackboneSpec, tokenizer: Any) -> VLMBackbone:
    """Build the backbone ``spec.name``; unknown names fail with the valid ones."""
    if spec.name not in BACKBONES:
        raise ValueError(f"unknown backbone {spec.name!r}; valid: {', '.join(BACKBONES)}")
    module, cls = BACKBONES[spec.name].split(":")
    return getattr(importlib.import_module(module), cls)(spec, tokenizer)


__all__ = ["BACKBONES", "BackboneOutput", "BackboneSpec", "VLMBackbone", "build_backbone"]
