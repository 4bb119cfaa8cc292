"""PaliGemma (``PaliGemmaForConditionalGeneration``): SigLIP patch features, linearly projected, replace
image tokens in a Gemma language model.

Each ``<image>`` placeholder of our layout is expanded into ``num_image_tokens`` =
``(image_size // patch_size) ** 2`` image tokens (SigLIP has no CLS token; transformers 5 does not
expand for you). The image's output is the hidden state at its last patch token.

Attention: PaliGemma attends bidirectionally over the image+prompt prefix when ``token_type_ids`` are
given (0 = prefix, 1 = suffix). We do not pass them: the model does not require them (neither in
training mode nor without labels), and a plain causal mask is what our structures expect (an action
token must not see the tokens after it). ``PaliGemmaConfig`` also switches the Gemma text model to
``use_bidirectional_attention=True`` when the option is unset, which makes the attention layers
non-causal whenever no explicit mask is built (SDPA's ``is_causal`` follows the layer); we build and
load the text model with ``use_bidirectional_attention=False`` and force the layers causal, so the
attention is causal with or without padding.
"""

from __future__ import annotations

from typing import Any

from trainer.models.backbones.base import (
    BackboneSpec,
    PatchTokenBackbone,
)

#: Size presets: (text layers, width, heads, kv heads, head dim, ffn, vision layers, vision width, patch).
PRESETS = {
    "tiny": dict(
        text_layers=2,
        text_dim=64,
        text_heads=4,
        text_kv_heads=1,
        text_head_dim=16,
        text_ffn=128,
        vision_layers=2,
        vision_dim=64,
        vision_heads=4,
        vision_ffn=128,
        patch=16,
    ),
    "small": dict(
        text_layers=4,
        text_dim=256,
        text_heads=4,
        text_kv_heads=1,
        text_head_dim=64,
        text_ffn=1024,
        vision_layers=4,
        vision_dim=256,
        vision_heads=4,
        vision_ffn=1024,
        patch=16,
    ),
}


class PaliGemmaBackbone(PatchTokenBackbone):
    name = "paligemma"

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__(spec, tokenizer)
        from transformers import (
            GemmaConfig,
            PaliGemmaConfig,
            PaliGemmaForConditionalGeneration,
            SiglipVisionConfig,
        )

        if spec.pretrained:
            self.model = self.from_pretrained(PaliGemmaForConditionalGeneration, spec.pretrained)
        else:
            if spec.size == "full":
                # PaliGemma-3b's defaults (a text_config dict would get GemmaConfig's 7b defaults instead,
                # whose width 3072 does not match the projector's 2048)
                config = PaliGemmaConfig(image_token_id=self.image_token_id, vocab_size=self.vocab_size)
                config.text_config.vocab_size = self.vocab_size
                config.text_config.pad_token_id = self.pad_token_id
                config.text_config.use_bidirectional_attention = False
            else:
                p = {**PRESETS[spec.size], **(spec.overrides or {})}
                vision = SiglipVisionConfig(
                    hidden_size=p["vision_dim"],
                    intermediate_size=p["vision_ffn"],
                    num_hidden_layers=p["vision_layers"],
                    num_attention_heads=p["vision_heads"],
                    image_size=spec.image_size,
                    patch_size=p["patch"],
                    vision_use_head=False,
                )
                text = GemmaConfig(
                    vocab_size=self.vocab_size,
                    hidden_size=p["text_dim"],
                    num_hidden_layers=p["text_layers"],
                    num_attention_heads=p["text_heads"],
                    num_key_value_heads=p["text_kv_heads"],
                    head_dim=p["text_head_dim"],
                    intermediate_size=p["text_ffn"],
                    max_position_embeddings=1024,
                    pad_token_id=self.pad_token_id,
                    use_bidirectional_attention=False,
                )
                # projection_dim: the projector's output width, must be the text width (default 2048)
                config = PaliGemmaConfig(
                    vision_config=vision,
                    text_config=text,
                    image_token_id=self.image_token_id,
                    vocab_size=self.vocab_size,
                    projection_dim=p["text_dim"],
                    hidden_size=p["text_dim"],
                )
            self.model = PaliGemmaForConditionalGeneration(config)
        self._force_causal()
        config = self.model.config
        if config.text_config.vocab_size < self.vocab_size:
            raise ValueError(
                f"paligemma: the model's vocabulary ({config.text_config.vocab_size}) is smaller "
                f"than the tokenizer's ({self.vocab_size})"
            )
        self._image_size = config.vision_config.image_size
        self.model_image_token_id = config.image_token_id  # what a placeholder expands into
        self.tokens_per_image = config.text_config.num_image_tokens
        if spec.gradient_checkpointing:
            self.enable_gradient_checkpointing()

    def _force_causal(self) -> None:
        """Causal attention in the text model even where the config asked for bidirectional layers."""
        self.model.config.text_config.use_bidirectional_attention = False
        for module in self.model.model.language_model.modules():
            if hasattr(module, "is_causal") and hasattr(module, "q_proj"):
                module.is_causal = True
