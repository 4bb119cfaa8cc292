"""Action heads: from per-step features (B, H, D) to an action chunk at every step.

Every head returns ``arm`` (B, H, C, 6) through tanh (normalised pose deltas in [-1, 1]) and
``gripper_logits`` (B, H, C) (open = positive). FC reads each step alone; LSTM and GPT (a small
causal transformer) fuse the history up to each step, never looking ahead.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("fc", "lstm", "gpt")


class _ChunkOut(nn.Module):
    """Linear map from a fused feature to a chunk of C actions (6 arm + 1 gripper logit each)."""

    def __init__(self, dim: int, chunk: int) -> None:
        super().__init__()
        self.chunk = chunk
        self.proj = nn.Linear(dim, chunk * 7)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.proj(x).unflatten(-1, (self.chunk, 7))
        return {"arm": torch.tanh(out[..., :6]), "gripper_logits": out[..., 6]}


class FCHead(nn.Module):
    def __init__(self, in_dim: int, chunk: int, hidden: int = 256, layers: int = 2, **_: object) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        dim = in_dim
        for _i in range(layers):
            mods += [nn.Linear(dim, hidden), nn.GELU()]
            dim = hidden
        self.mlp = nn.Sequential(*mods)
        self.out = _ChunkOut(dim, chunk)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.out(self.mlp(features))


class LSTMHead(nn.Module):
    def __init__(self, in_dim: int, chunk: int, hidden: int = 256, layers: int = 4, **_: object) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.out = _ChunkOut(hidden, chunk)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x = self.inp(features)
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)  # padded (older) steps feed zeros
        y, _ = self.lstm(x)
        return self.out(y)


class GPTHead(nn.Module):
    def __init__(
        self,
        in_dim: int,
        chunk: int,
        hidden: int = 256,
        layers: int = 2,
        heads: int = 4,
        max_steps: int = 64,
        **_: object,
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.pos = nn.Parameter(torch.zeros(1, max_steps, hidden))
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 4 * hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = _ChunkOut(hidden, chunk)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h = features.shape[1]
        if h > self.pos.shape[1]:
            raise ValueError(f"GPT head: history of {h} steps exceeds its {self.pos.shape[1]} positions")
        x = self.inp(features)
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)  # padded (older) steps are zero tokens, like the LSTM's
        x = x + self.pos[:, :h]
        causal = nn.Transformer.generate_square_subsequent_mask(h, device=x.device, dtype=x.dtype)
        return self.out(self.blocks(x, mask=causal, is_causal=True))


def build_head(name: str, in_dim: int, chunk: int, **kwargs: object) -> nn.Module:
    heads = {"fc": FCHead, "lstm": LSTMHead, "gpt": GPTHead}
    if name not in heads:
        raise ValueError(f"unknown head {name!r}; valid: {', '.join(HEADS)}")
    return heads[name](in_dim, chunk, **kwargs)
