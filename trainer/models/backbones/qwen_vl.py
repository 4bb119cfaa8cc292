"""Qwen2-VL (``Qwen2VLForConditionalGeneration``): merged ViT patches written into the token sequence.

Qwen2-VL's layout for one image is ``<|vision_start|> <|image_pad|> * n <|vision_end|>``, n being the
number of merged patches (``(H / patch) * (W / patch) / merge**2``), and the text positions use
multimodal RoPE (3D positions; ``mrope_section`` must sum to ``head_dim / 2``), which the model
computes from ``mm_token_type_ids`` (1 at image pads) and ``image_grid_thw``. Our tokenizer's
``<vision_start>``, ``<image>`` and ``<vision_end>`` serve as those three ids, so each ``<image>``
placeholder of our layout expands into start + n pads + end; the placeholder's output is read at
the ``<vision_end>`` slot (it has seen all the image's pads).

The pixels are patchified here in the Qwen2-VL image processor's flat layout (no processor, nothing
downloaded): per image, ``(grid_h * grid_w, C * temporal_patch * patch * patch)`` rows ordered by
``merge x merge`` blocks, the frame repeated ``temporal_patch`` times as the processor does for a
still image; ``image_grid_thw`` is ``(1, grid_h, grid_w)`` per image. Images are resized to a square
``image_size``: ``spec.image_size`` rounded to the nearest multiple of ``patch * merge`` (as the
processor's ``smart_resize`` does; 64 for the presets, 56 for the 14-pixel patches of "full"), and
CLIP-normalised like every backbone here. A ``pretrained`` folder does not store the image size:
build it with the ``image_size`` it was trained with.
"""

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

#: Size presets: text LM (width, heads, kv heads, ffn) and vision tower (width, heads, patch, merge).
PRESETS = {
    "tiny": dict(
        text_layers=2,
        text_dim=64,
        text_heads=4,
        text_kv_heads=2,
        text_ffn=128,
        vision_layers=2,
        vision_dim=64,
        vision_heads=4,
        vision_mlp_ratio=2,
        patch=8,
        merge=2,
        temporal_patch=2,
    ),
    "small": dict(
        text_layers=4,
        text_dim=256,
        text_heads=4,
        text_kv_heads=4,
        text_ffn=1024,
        vision_layers=4,
        vision_dim=256,
        vision_heads=4,
        vision_mlp_ratio=4,
        patch=8,
        merge=2,
        temporal_patch=2,
    ),
}


def mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies over (temporal, height, width) as Qwen2-VL does
    (16, 24, 24 for head_dim 128)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def patchify(
    pixels: torch.Tensor, patch: int, merge: int, temporal_patch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, C, H, W) normalised images -> (M * gh * gw, C * temporal_patch * patch**2) patches and
    ``grid_thw`` (M, 3), in the layout of ``Qwen2VLImageProcessor.patchify``."""
    m, c, h, w = pixels.shape
    if h % (patch * merge) or w % (patch * merge):
        raise ValueError(f"qwen-vl: image size {h}x{w} must be a multiple of patch * merge = {patch * merge}")
    gh, gw = h // patch, w // patch
    x = pixels.reshape(m, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # (M, gh/m, gw/m, m, m, C, p, p)
    x = x.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, temporal_patch, -1, -1)  # still image -> t frames
    flat = x.reshape(m * gh * gw, c * temporal_patch * patch * patch)
    grid = torch.tensor([[1, gh, gw]], dtype=torch.long, device=pixels.device).expand(m, 3)
    return flat, grid


class QwenVLBackbone(VLMBackbone):
    name = "qwen-vl"

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__(spec, tokenizer)
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        ids = dict(
            image_token_id=self.image_token_id,
            vision_start_token_id=tokenizer.convert_tokens_to_ids("<vision_start>"),
            vision_end_token_id=tokenizer.convert_tokens_to_ids("<vision_end>"),
        )
        if spec.pretrained:
            self.model = self.from_pretrained(Qwen2VLForConditionalGeneration, spec.pretrained)
        else:
            if spec.size == "full":
                # the class default pairs a 72B-sized text config (hidden 8192) with a vision merger
                # projecting to 3584: align the merger's output with the text width
                text = dict(
                    vocab_size=self.vocab_size,
                    pad_token_id=self.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                hidden = Qwen2VLConfig(text_config=text).text_config.hidden_size
                config = Qwen2VLConfig(text_config=text, vision_config={"hidden_size": hidden}, **ids)
            else:
                p = {**PRESETS[spec.size], **(spec.overrides or {})}
                config = Qwen2VLConfig(
                    text_config=dict(
                        vocab_size=self.vocab_size,
                        hidden_size=p["text_dim"],
                        intermediate_size=p["text_ffn"],
                        num_hidden_layers=p["text_layers"],
                        num_attention_heads=p["text_heads"],
                        num_key_value_heads=p["text_kv_heads"],
                        max_position_embeddings=1024,
                        pad_token_id=self.pad_token_id,
                        bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        rope_parameters=dict(
                            rope_type="default",
                            rope_theta=10000.0,
                            mrope_section=mrope_section(p["text_dim"] // p["text_heads"]),
                        ),
                    ),
                    vision_config=dict(
                        depth=p["vision_layers"],
                        embed_dim=p["vision_dim"],
                        hidden_size=p["text_dim"],
                        num_heads=p["vision_heads"],
                        mlp_ratio=p["vision_mlp_ratio"],
                        patch_size=p["patch"],
                        spatial_merge_size=p["merge"],
                        temporal_patch_size=p["temporal_patch"],
                    ),
                    **ids,
                )
            self.model = Qwen2VLForConditionalGeneration(config)
        vision = self.model.config.vision_config
        self.patch, self.merge, self.temporal_patch = (
            vision.patch_size,
            vision.spatial_merge_size,
            vision.temporal_patch_size,
        )
        factor = self.patch * self.merge  # like the processor's smart_resize: the nearest multiple of it
        self._image_size = max(factor, round(spec.image_size / factor) * factor)
        self.tokens_per_image = (self._image_size // self.patch) ** 2 // self.merge**2
        if spec.gradient_checkpointing:
            self.enable_gradient_checkpointing()

    @property
    def hidden_size(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def image_size(self) -> int:
        return self._image_size

    def _forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_logits: bool
    ) -> BackboneOutput:
        cfg = self.model.config
        b, n = images.shape[:2]
        replacement = (
            [cfg.vision_start_token_id]
            + [cfg.image_token_id] * self.tokens_per_image
            + [cfg.vision_end_token_id]
        )
        ids, mask, positions = expand_placeholders(
            input_ids, attention_mask, self.image_token_id, replacement
        )
        kwargs: dict[str, Any] = {}
        if n:
            pixels, grid = patchify(
                self.normalize_images(images.flatten(0, 1)), self.patch, self.merge, self.temporal_patch
            )
            kwargs.update(
                pixel_values=pixels, image_grid_thw=grid, mm_token_type_ids=(ids == cfg.image_token_id).int()
            )
        out = self.model.model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs)
        hidden = gather_positions(out.last_hidden_state, positions)
        logits = self.model.lm_head(hidden) if return_logits else None
        return BackboneOutput(hidden=hidden, logits=logits)
