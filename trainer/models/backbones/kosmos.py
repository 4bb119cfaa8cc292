"""Kosmos-2 (``Kosmos2ForConditionalGeneration``): image latents written into text positions."""

from __future__ import annotations

from typing import Any

import torch

from trainer.models.backbones.base import (
    BackboneOutput,
    BackboneSpec,
    VLMBackbone,
    expand_placeholders,
    gather_positions,
)

#: Size presets: (text layers, width, heads, ffn, vision layers, vision width, latent queries).
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
        latents=8,
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
        latents=32,
    ),
}


class KosmosBackbone(VLMBackbone):
    name = "kosmos"

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__(spec, tokenizer)
        from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

        if spec.pretrained:
            self.model = self.from_pretrained(Kosmos2ForConditionalGeneration, spec.pretrained)
            self._image_size = self.model.config.vision_config.image_size
        else:
            if spec.size == "full":
                config = Kosmos2Config(text_config={"vocab_size": self.vocab_size})
            else:
                p = {**PRESETS[spec.size], **(spec.overrides or {})}
                config = Kosmos2Config(
                    text_config=dict(
                        vocab_size=self.vocab_size,
                        embed_dim=p["text_dim"],
                        layers=p["text_layers"],
                        attention_heads=p["text_heads"],
                        ffn_dim=p["text_ffn"],
                        max_position_embeddings=512,
                        pad_token_id=self.pad_token_id,
                    ),
                    vision_config=dict(
                        hidden_size=p["vision_dim"],
                        intermediate_size=p["vision_ffn"],
                        num_hidden_layers=p["vision_layers"],
                        num_attention_heads=p["vision_heads"],
                        image_size=spec.image_size,
                        patch_size=p["patch"],
                    ),
                    latent_query_num=p["latents"],
                )
            self.model = Kosmos2ForConditionalGeneration(config)
            self._image_size = config.vision_config.image_size
        self.latents = self.model.config.latent_query_num
        if spec.gradient_checkpointing:
            self.enable_gradient_checkpointing()

    @property
    def hidden_size(self) -> int:
        return self.model.config.text_config.embed_dim

    @property
    def image_size(self) -> int:
        return self._image_size

    def _forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_logits: bool
    ) -> BackboneOutput:
        b, n = images.shape[:2]
        ids, mask, positions = expand_placeholders(
            input_ids, attention_mask, self.image_token_id, [self.image_token_id] * self.latents
        )
        kwargs: dict[str, Any] = {}
        if n:
            pixels = self.normalize_images(images.flatten(0, 1))
            embeds = self.model.get_image_features(pixels).pooler_output  # (B*N, latents, D)
            kwargs["image_embeds"] = embeds.reshape(b, n * self.latents, -1)
            kwargs["image_embeds_position_mask"] = ids == self.image_token_id
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            output_hidden_states=True,
            use_cache=False,
            logits_to_keep=0 if return_logits else 1,
            **kwargs,
        )
        hidden = gather_positions(out.hidden_states[-1], positions)
        logits = gather_positions(out.logits, positions) if return_logits else None
        return BackboneOutput(hidden=hidden, logits=logits)
