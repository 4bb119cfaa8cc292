"""LLaVA (``LlavaForConditionalGeneration``): a CLIP vision tower whose patch features, projected by an
MLP, replace image tokens in a Llama language model.

Each ``<image>`` placeholder of our layout is expanded into exactly as many image tokens as the vision
tower yields per image: ``(image_size // patch_size) ** 2`` patches, plus the CLS token when
``vision_feature_select_strategy == "full"`` (``"default"``, LLaVA's own choice, drops CLS).
transformers 5 does not expand for you: the model only scatters the features into the image-token
positions and fails when their numbers differ. The image's output is the hidden state at its last
patch token (see :func:`~trainer.models.backbones.base.expand_placeholders`).

Note: LLaVA reads the vision features at ``vision_feature_layer`` (-2 by default, as in LLaVA-1.5), so
the tower's last layer and its ``post_layernorm`` get no gradient; use ``find_unused_parameters`` under
DDP, or ``overrides={"feature_layer": -1}`` to use every layer but ``post_layernorm``.
"""

from __future__ import annotations

from typing import Any

from trainer.models.backbones.base import (
    BackboneSpec,
    PatchTokenBackbone,
)

#: Size presets: (text layers, width, heads, ffn, vision layers, vision width, patch, feature layer/strategy).
PRESETS = {
    "tiny": dict(
        text_layers=2,
        text_dim=64,
        text_heads=4,
        text_ffn=128,
        vision_layers=2,
        vision_dim=64,
        vision_heads=4,
        vision_ffn=128,
        patch=16,
        feature_layer=-2,
        feature_select="default",
    ),
    "small": dict(
        text_layers=4,
        text_dim=256,
        text_heads=4,
        text_ffn=1024,
        vision_layers=4,
        vision_dim=256,
        vision_heads=4,
        vision_ffn=1024,
        patch=16,
        feature_layer=-2,
        feature_select="default",
    ),
}


def image_token_count(config: Any) -> int:
    """How many image tokens the vision tower of a ``LlavaConfig`` yields per image."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    return patches + (1 if config.vision_feature_select_strategy == "full" else 0)


class LlavaBackbone(PatchTokenBackbone):
    name = "llava"

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__(spec, tokenizer)
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

        if spec.pretrained:
            self.model = self.from_pretrained(LlavaForConditionalGeneration, spec.pretrained)
        else:
            if spec.size == "full":
                config = LlavaConfig(
                    text_config={
                        "model_type": "llama",
                        "vocab_size": self.vocab_size,
                        "pad_token_id": self.pad_token_id,
                    },
                    image_token_id=self.image_token_id,
                )
            else:
                p = {**PRESETS[spec.size], **(spec.overrides or {})}
                vision = CLIPVisionConfig(
                    hidden_size=p["vision_dim"],
                    intermediate_size=p["vision_ffn"],
                    num_hidden_layers=p["vision_layers"],
                    num_attention_heads=p["vision_heads"],
                    image_size=spec.image_size,
                    patch_size=p["patch"],
                )
                text = LlamaConfig(
                    vocab_size=self.vocab_size,
                    hidden_size=p["text_dim"],
                    num_hidden_layers=p["text_layers"],
                    num_attention_heads=p["text_heads"],
                    num_key_value_heads=p["text_heads"],
                    intermediate_size=p["text_ffn"],
                    max_position_embeddings=1024,
                    pad_token_id=self.pad_token_id,
                )
                config = LlavaConfig(
                    vision_config=vision,
                    text_config=text,
                    image_token_id=self.image_token_id,
                    vision_feature_layer=p["feature_layer"],
                    vision_feature_select_strategy=p["feature_select"],
                )
                config.image_seq_length = image_token_count(config)
            self.model = LlavaForConditionalGeneration(config)
        config = self.model.config
        if config.text_config.vocab_size < self.vocab_size:
            raise ValueError(
                f"llava: the model's vocabulary ({config.text_config.vocab_size}) is smaller than "
                f"the tokenizer's ({self.vocab_size})"
            )
        self._image_size = config.vision_config.image_size
        self.model_image_token_id = config.image_token_id  # what a placeholder expands into
        self.tokens_per_image = image_token_count(config)
        if spec.gradient_checkpointing:
            self.enable_gradient_checkpointing()
