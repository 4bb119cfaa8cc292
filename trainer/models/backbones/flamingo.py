"""Flamingo (``IdeficsForVisionText2Text``): a cross-attention LM reading perceiver-resampled image latents.

Idefics is the transformers port of Flamingo: a CLIP-style vision tower, a perceiver resampler that
compresses each image to a fixed number of latents, and gated cross-attention blocks (every layer or
every ``cross_interval`` layers) through which text positions attend to those latents. Images do not
take up positions of the token sequence, so each ``<image>`` placeholder of our layout stays ONE
token (an ordinary embedding; Idefics has no image token id of its own) and marks *where* the image
sits for ``image_attention_mask`` (B, T, N):

* ``image_attention="all"`` (default): a position attends to every image whose placeholder is at or
  before it. This suits our layouts (two cameras side by side, a history of frames interleaved
  with actions): the tokens after a ``<static> <gripper>`` pair see both cameras.
* ``image_attention="last"``: a position attends only to the most recent image at or before it
  (OpenFlamingo's ``only_attend_immediate_media``, the Idefics processor's rule).

Positions before the first image attend to no image; Idefics then gates their cross-attention
output to zero. The placeholder itself sees its own image, so its output carries the image.
Choose the rule with ``BackboneSpec(overrides={"image_attention": "last"})``.

Gotchas handled here: ``IdeficsConfig`` freezes the text and vision layers by default
(``freeze_text_layers``/``freeze_vision_layers``, applied in ``__init__``) and zero-initialises the
tanh gates (``alpha_initializer="zeros"``), so a from-scratch model would neither train its towers
nor use its images. The presets unfreeze everything and open the gates (``alpha_initializer="ones"``);
freezing is the trainer's choice, so every parameter is made trainable after loading, also for
``pretrained`` folders. "full" keeps the class default zero gates (Flamingo's choice for a
pretrained LM): its images are ignored until the gates have been trained.
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.models.backbones.base import BackboneOutput, BackboneSpec, VLMBackbone

#: Size presets: text LM, vision tower, perceiver resampler and cross-attention interval.
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
        resampler_depth=1,
        resampler_heads=2,
        resampler_head_dim=16,
        cross_interval=1,
        alpha_init="ones",
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
        resampler_depth=2,
        resampler_heads=4,
        resampler_head_dim=64,
        cross_interval=2,
        alpha_init="ones",
    ),
}

IMAGE_ATTENTION = ("all", "last")


class FlamingoBackbone(VLMBackbone):
    name = "flamingo"

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__(spec, tokenizer)
        from transformers import IdeficsConfig, IdeficsForVisionText2Text

        overrides = dict(spec.overrides or {})
        self.image_attention = overrides.pop("image_attention", "all")
        if self.image_attention not in IMAGE_ATTENTION:
            raise ValueError(
                f"flamingo: image_attention must be one of {IMAGE_ATTENTION}, got {self.image_attention!r}"
            )
        if spec.pretrained:
            self.model = self.from_pretrained(IdeficsForVisionText2Text, spec.pretrained)
        else:
            if spec.size == "full":
                config = IdeficsConfig(
                    vocab_size=self.vocab_size,
                    pad_token_id=self.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    freeze_text_layers=False,
                    freeze_vision_layers=False,
                )
            else:
                p = {**PRESETS[spec.size], **overrides}
                config = IdeficsConfig(
                    vocab_size=self.vocab_size,
                    hidden_size=p["text_dim"],
                    intermediate_size=p["text_ffn"],
                    num_hidden_layers=p["text_layers"],
                    num_attention_heads=p["text_heads"],
                    max_position_embeddings=512,
                    pad_token_id=self.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    cross_layer_interval=p["cross_interval"],
                    alpha_initializer=p["alpha_init"],
                    freeze_text_layers=False,
                    freeze_vision_layers=False,
                    use_resampler=True,
                    vision_config=dict(
                        embed_dim=p["vision_dim"],
                        intermediate_size=p["vision_ffn"],
                        num_hidden_layers=p["vision_layers"],
                        num_attention_heads=p["vision_heads"],
                        image_size=spec.image_size,
                        patch_size=p["patch"],
                    ),
                    perceiver_config=dict(
                        use_resampler=True,
                        resampler_n_latents=p["latents"],
                        resampler_depth=p["resampler_depth"],
                        resampler_n_heads=p["resampler_heads"],
                        resampler_head_dim=p["resampler_head_dim"],
                    ),
                )
            self.model = IdeficsForVisionText2Text(config)
        self.model.requires_grad_(True)  # undo Idefics's config-driven freezing: the trainer decides
        self._image_size = self.model.config.vision_config.image_size
        if spec.gradient_checkpointing:
            self.enable_gradient_checkpointing()

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def image_size(self) -> int:
        return self._image_size

    def image_attention_mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, n: int
    ) -> torch.Tensor:
        """(B, T, N) long: 1 where position t may attend to image k (see the module docstring)."""
        seen = (input_ids == self.image_token_id).long().cumsum(dim=1)  # images at or before t
        k = torch.arange(n, device=input_ids.device).view(1, 1, n)
        allowed = k < seen.unsqueeze(-1) if self.image_attention == "all" else k == (seen.unsqueeze(-1) - 1)
        return (allowed & attention_mask.bool().unsqueeze(-1)).long()

    def _forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_logits: bool
    ) -> BackboneOutput:
        b, n = images.shape[:2]
        kwargs: dict[str, Any] = {}
        if n:
            kwargs["pixel_values"] = self.normalize_images(images.flatten(0, 1)).unflatten(0, (b, n))
            kwargs["image_attention_mask"] = self.image_attention_mask(input_ids, attention_mask, n)
        else:  # Idefics always wants image states: one zero vector that no position attends to
            dim = self.model.config.vision_config.embed_dim
            kwargs["image_encoder_embeddings"] = images.new_zeros((b, 1, dim), dtype=self.model.dtype)
            kwargs["image_attention_mask"] = torch.zeros_like(input_ids).unsqueeze(-1)
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        hidden = out.last_hidden_state  # no expansion: our T positions are the model's
        logits = self.model.lm_head(hidden) if return_logits else None
        return BackboneOutput(hidden=hidden, logits=logits)
