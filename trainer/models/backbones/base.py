"""The common interface of the VLM backbones.

A backbone takes images and a token sequence in *our* layout and returns the last hidden states at
the positions of that sequence. In our layout every image is one placeholder token ``<image>``
(:data:`trainer.tokenizer.IMAGE`) at the place where the image goes; the adapter expands each
placeholder into what its model needs (latent-query slots for Kosmos-2, patch tokens for LLaVA
and PaliGemma, vision start/pad/end tokens with a grid for Qwen2-VL, cross-attention for the
Flamingo-style Idefics) and gathers the outputs back, so the VLA structures never see a
backbone's own token layout. One placeholder per image, in order, works for one image per sample
(the one-step and policy-head structures) and for a history interleaved with action tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# CLIP's normalisation, used by all backbones' vision towers here
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class BackboneOutput:
    """``hidden``: (B, T, D) last hidden states at the input positions of our layout;
    ``logits``: (B, T, V) language-model logits at those positions (None if not asked for)."""

    hidden: torch.Tensor
    logits: torch.Tensor | None = None


@dataclass
class BackboneSpec:
    """What builds a backbone: its name, a size preset or a local pretrained folder, and options."""

    name: str
    size: str = "tiny"
    pretrained: str | None = None
    image_size: int = 64
    gradient_checkpointing: bool = False
    overrides: dict[str, Any] | None = None  # extra config keys for the preset (e.g. {"text_layers": 4})


class VLMBackbone(nn.Module):
    """Base class; subclasses set ``self.model`` (a transformers model) and implement ``_forward``."""

    name = "base"
    supports_gradient_checkpointing = True

    def __init__(self, spec: BackboneSpec, tokenizer: Any) -> None:
        super().__init__()
        self.spec = spec
        self.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
        self.pad_token_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        self.register_buffer("_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def from_pretrained(self, cls: Any, folder: str) -> Any:
        """``cls.from_pretrained(folder)`` from local files only, with its token embeddings grown to
        the tokenizer's vocabulary when that is larger: a pretrained tokenizer gets our special and
        action tokens on top of its own (trainer.tokenizer.pretrained_tokenizer)."""
        model = cls.from_pretrained(folder, local_files_only=True)
        if model.get_input_embeddings().num_embeddings < self.vocab_size:
            model.resize_token_embeddings(self.vocab_size, mean_resizing=False)
        return model

    @property
    def hidden_size(self) -> int:
        raise NotImplementedError

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    def normalize_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> resized to the tower's input size and CLIP-normalised."""
        size = self.image_size
        if images.shape[-2:] != (size, size):
            images = nn.functional.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False
            )
        return (images - self._mean.to(images.dtype)) / self._std.to(images.dtype)

    def enable_gradient_checkpointing(self) -> None:
        kwargs = {"use_reentrant": False}
        if hasattr(self.model, "activation_checkpointing_enable"):  # transformers >= 5.24
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        elif hasattr(self.model, "gradient_checkpointing_enable"):
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def forward(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        return_logits: bool = False,
    ) -> BackboneOutput:
        """``images``: (B, N, 3, H, W) in [0, 1], N = number of ``<image>`` tokens in each row of
        ``input_ids`` (B, T); ``attention_mask`` (B, T). Returns outputs at the T positions."""
        counts = (input_ids == self.image_token_id).sum(dim=1)
        if not bool((counts == images.shape[1]).all()):
            raise ValueError(
                f"{self.name}: each sequence must hold one <image> token per image: got {counts.tolist()} "
                f"placeholders for {images.shape[1]} images"
            )
        return self._forward(images, input_ids, attention_mask, return_logits)

    def _forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_logits: bool
    ) -> BackboneOutput:
        raise NotImplementedError


class PatchTokenBackbone(VLMBackbone):
    """Backbones whose model takes ``pixel_values`` and one image token per vision feature (LLaVA,
    PaliGemma): each placeholder expands into ``tokens_per_image`` copies of the model's image token.

    Subclasses set ``self.model``, ``self._image_size``, ``self.model_image_token_id`` and
    ``self.tokens_per_image`` in ``__init__``.
    """

    model_image_token_id: int
    tokens_per_image: int
    _image_size: int

    @property
    def hidden_size(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def image_size(self) -> int:
        return self._image_size

    def _forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_logits: bool
    ) -> BackboneOutput:
        ids, mask, positions = expand_placeholders(
            input_ids,
            attention_mask,
            self.image_token_id,
            [self.model_image_token_id] * self.tokens_per_image,
        )
        kwargs: dict[str, Any] = {}
        if images.shape[1]:
            # (B*N, 3, H, W) row-major: the order in which the placeholders appear in the flattened batch
            kwargs["pixel_values"] = self.normalize_images(images.flatten(0, 1))
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


def expand_placeholders(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, placeholder: int, replacement: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace each ``placeholder`` token by the token list ``replacement`` (same for every image).

    Returns the expanded ids and mask (right-padded with the original row's last pad value 0) and
    ``positions`` (B, T): where each original token went, to gather outputs back.
    """
    rows_ids, rows_mask, rows_pos = [], [], []
    for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
        new_ids: list[int] = []
        new_mask: list[int] = []
        pos: list[int] = []
        for tok, m in zip(ids, mask, strict=True):
            if tok == placeholder:
                pos.append(len(new_ids) + len(replacement) - 1)  # the image's output: its last slot
                new_ids.extend(replacement)
                new_mask.extend([m] * len(replacement))
            else:
                pos.append(len(new_ids))
                new_ids.append(tok)
                new_mask.append(m)
        rows_ids.append(new_ids)
        rows_mask.append(new_mask)
        rows_pos.append(pos)
    length = max(len(r) for r in rows_ids)
    dev = input_ids.device
    ids_t = torch.zeros((len(rows_ids), length), dtype=input_ids.dtype, device=dev)
    mask_t = torch.zeros((len(rows_ids), length), dtype=attention_mask.dtype, device=dev)
    for i, (r, m) in enumerate(zip(rows_ids, rows_mask, strict=True)):
        ids_t[i, : len(r)] = torch.tensor(r, dtype=input_ids.dtype)
        mask_t[i, : len(m)] = torch.tensor(m, dtype=attention_mask.dtype)
    return ids_t, mask_t, torch.tensor(rows_pos, device=dev)


def gather_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, T', D) outputs at expanded positions -> (B, T, D) at the original ones."""
    return torch.gather(hidden, 1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
