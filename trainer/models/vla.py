"""VLA structures on top of a VLM backbone: the four of RoboVLMs.

- ``one_step_continuous``: images of the current frame + prompt + ``<act>``; the hidden state at
  ``<act>`` feeds the head, which predicts the chunk of the current step.
- ``one_step_discrete``: the same prefix, then the chunk's actions as tokens on the vocabulary's
  tail (256 bins); next-token cross-entropy; greedy decoding back to actions.
- ``interleaved_continuous``: prompt, then for every step of the history window its images and an
  ``<act>`` token, all in one sequence; each ``<act>`` hidden state predicts that step's chunk.
- ``policy_head_continuous``: every frame goes through the VLM alone (images + prompt + ``<act>``);
  the head (FC, LSTM or GPT) fuses the history of per-frame ``<act>`` features.

Batches follow :mod:`trainer.data.dataset`: ``observations.images`` (per camera (B, H, 3, h, w)),
``history_mask`` (B, H), ``actions`` (B, H, C, 7) normalised, ``action_mask`` (B, H, C),
``language_instruction`` (B strings), and with ``state_key`` set ``observations.states`` (B, H, S).

Proprioception (``state_key``: off in ``base.json``, as in RoboVLMs; on in the ``*_state`` configs)
is standardised with the training data's mean/std (buffers saved with the weights). The continuous
structures embed it with a small MLP and add it to each step's VLM feature before the head. The
discrete structure has no head, so the current step's state enters the prompt as tokens, as
pi0-FAST does it: each standardised entry divided by ``STATE_TOKEN_RANGE``, clipped to [-1, 1] and
binned like an action, one token per entry between the instruction and ``<act>``. README's sanity
ladder measures what proprioception does here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.data.preprocess import discretize_actions, undiscretize_actions
from trainer.models.backbones import BackboneSpec, build_backbone
from trainer.models.heads import build_head
from trainer.tokenizer import ACTION, IMAGE, NUM_ACTION_BINS, PROMPT, action_token_ids

STRUCTURES = ("one_step_continuous", "one_step_discrete", "interleaved_continuous", "policy_head_continuous")
GRIPPER_WEIGHT = 0.1
#: standard deviations of a state entry that span the discrete structure's 256 state bins
STATE_TOKEN_RANGE = 3.0


@dataclass
class ModelConfig:
    """The architecture of a VLA policy."""

    backbone: str = "paligemma"
    """VLM backbone: kosmos, llava, flamingo, paligemma, qwen-vl (the default: see trainer/configs/base.json)"""
    structure: str = "policy_head_continuous"
    """one_step_continuous, one_step_discrete, interleaved_continuous, policy_head_continuous"""
    head: str = "lstm"
    """action head of the continuous structures: fc, lstm, gpt"""
    size: str = "tiny"
    """backbone size preset (tiny, small, full) when not loading pretrained weights"""
    pretrained: str | None = None
    """local folder with pretrained backbone weights (from_pretrained); nothing is downloaded"""
    image_size: int = 64
    """backbone input resolution (images are resized to it)"""
    cameras: list[str] = field(default_factory=lambda: ["rgb_static", "rgb_gripper"])
    """cameras fed to the VLM, in this order"""
    history_length: int = 4
    """frames of history the model sees"""
    action_chunk_size: int = 10
    """actions predicted per step"""
    head_hidden: int = 128
    """width of the action head"""
    head_layers: int = 2
    """layers of the action head"""
    state_key: str | None = None
    """proprioception field fed to the action head (e.g. robot_obs); None = images and language only"""
    state_dim: int = 15
    """width of that field (CALVIN's robot_obs: 15); training sets it from the data"""
    state_dims: list[int] | None = None
    """indices of that field fed to the head (None = all); e.g. leave out a previous-action entry"""
    camera_sizes: dict[str, list[int]] | None = None
    """[height, width] of each camera's images in the training data: training records it from the
    store, and the VLA policy asks the env for these sizes (None in checkpoints that predate it)"""
    gradient_checkpointing: bool = False
    """recompute backbone activations in the backward pass (less memory, more time)"""
    backbone_overrides: dict[str, Any] = field(default_factory=dict)
    """extra keys of the backbone's size preset"""


def history_weights(h: int, kind: str, device: torch.device) -> torch.Tensor:
    """Per-step loss weights over the window (sum 1): uniform, or linear (recent steps weigh more)."""
    if kind == "uniform":
        w = torch.ones(h, device=device)
    elif kind == "linear":
        w = torch.arange(1, h + 1, device=device, dtype=torch.float32)
    else:
        raise ValueError(f"unknown history weighting {kind!r}; valid: uniform, linear")
    return w / w.sum()


def continuous_loss(
    pred: dict[str, torch.Tensor], actions: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE on the 6 pose dims + 0.1 x BCE on the gripper, masked, weighted per history step.

    ``pred``: arm (B, H, C, 6), gripper_logits (B, H, C); ``actions`` (B, H, C, 7); ``mask`` (B, H, C).
    """
    m = mask.to(actions.dtype)
    step_w = weights.view(1, -1, 1) * m  # (B, H, C)
    denom = step_w.sum().clamp_min(1e-8)
    mse = ((pred["arm"] - actions[..., :6]) ** 2).mean(-1)
    target = (actions[..., 6] > 0).to(actions.dtype)
    bce = F.binary_cross_entropy_with_logits(pred["gripper_logits"], target, reduction="none")
    mse_l = (mse * step_w).sum() / denom
    bce_l = (bce * step_w).sum() / denom
    loss = mse_l + GRIPPER_WEIGHT * bce_l
    return loss, {"loss_arm_mse": float(mse_l.detach()), "loss_gripper_bce": float(bce_l.detach())}


class VLAModel(nn.Module):
    """A backbone, a structure and (for the continuous structures) a head."""

    def __init__(self, cfg: ModelConfig, tokenizer: Any) -> None:
        super().__init__()
        if cfg.structure not in STRUCTURES:
            raise ValueError(f"unknown structure {cfg.structure!r}; valid: {', '.join(STRUCTURES)}")
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.backbone = build_backbone(
            BackboneSpec(
                cfg.backbone,
                cfg.size,
                cfg.pretrained,
                cfg.image_size,
                cfg.gradient_checkpointing,
                cfg.backbone_overrides or None,
            ),
            tokenizer,
        )
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE)
        self.act_id = tokenizer.convert_tokens_to_ids(ACTION)
        self.pad_id = tokenizer.pad_token_id
        if cfg.structure == "one_step_discrete":
            self.action_ids = action_token_ids(tokenizer)
            self.head = None
        else:
            self.head = build_head(
                cfg.head,
                self.backbone.hidden_size,
                cfg.action_chunk_size,
                hidden=cfg.head_hidden,
                layers=cfg.head_layers,
                max_steps=max(64, cfg.history_length),
            )
        self.state_embed: nn.Module | None = None
        if cfg.state_key:
            if cfg.state_dim < 1:
                raise ValueError(f"model.state_dim must be >= 1 with state_key {cfg.state_key!r}")
            dims = list(range(cfg.state_dim)) if cfg.state_dims is None else list(cfg.state_dims)
            if not dims or any(not 0 <= i < cfg.state_dim for i in dims):
                raise ValueError(
                    f"model.state_dims = {cfg.state_dims} must be a non-empty list of indices in "
                    f"0..{cfg.state_dim - 1} ({cfg.state_key} has {cfg.state_dim} dims)"
                )
            self._state_dims = dims
            if cfg.structure != "one_step_discrete":  # the discrete structure reads state tokens
                d = self.backbone.hidden_size
                self.state_embed = nn.Sequential(nn.Linear(len(dims), d), nn.GELU(), nn.Linear(d, d))
            self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
            self.register_buffer("state_std", torch.ones(cfg.state_dim))

    def set_state_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Standardisation of the proprioception (the training data's per-dim mean and std)."""
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        if mean_t.shape != self.state_mean.shape or std_t.shape != self.state_std.shape:
            raise ValueError(
                f"state statistics have {tuple(mean_t.shape)}/{tuple(std_t.shape)} dims, "
                f"the model expects {self.cfg.state_dim} ({self.cfg.state_key})"
            )
        self.state_mean.copy_(mean_t)
        self.state_std.copy_(std_t.clamp_min(1e-3))

    def _standard_states(self, batch: dict[str, Any], steps: int) -> torch.Tensor:
        """The last ``steps`` steps' states, standardised, the model's entries only: (B, steps, S')."""
        states = batch["observations"].get("states")
        if states is None:
            raise ValueError(f"batch lacks observations.states; the model reads {self.cfg.state_key!r}")
        states = states.to(self._device()).float()[:, -steps:]
        if states.shape[-1] != self.cfg.state_dim:
            raise ValueError(
                f"observations.states has {states.shape[-1]} dims, the model expects {self.cfg.state_dim} "
                f"({self.cfg.state_key})"
            )
        return ((states - self.state_mean) / self.state_std)[..., self._state_dims]

    def _add_state(self, feats: torch.Tensor, hmask: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """feats (B, H', D) + embedded states of the same (last H') steps, zero where padded."""
        if self.state_embed is None:
            return feats
        z = self._standard_states(batch, feats.shape[1])
        emb = self.state_embed(z.to(feats.dtype)) * hmask.unsqueeze(-1).to(feats.dtype)
        return feats + emb

    def _state_tokens(self, batch: dict[str, Any]) -> list[list[int]]:
        """The discrete structure's state tokens of the current step, one per state entry (none
        without ``state_key``)."""
        if not self.cfg.state_key:
            return [[] for _ in batch["language_instruction"]]
        z = self._standard_states(batch, 1)[:, 0] / STATE_TOKEN_RANGE
        return self._action_tokens(z).tolist()

    # --- token layout ---------------------------------------------------------------------------
    def _prompt_ids(self, instructions: Sequence[str]) -> list[list[int]]:
        texts = [PROMPT.format(instruction=t) for t in instructions]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _pad(
        self, rows: list[list[int]], masks: list[list[int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(r) for r in rows)
        dev = self._device()
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long, device=dev)
        att = torch.zeros((len(rows), length), dtype=torch.long, device=dev)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            att[i, : len(r)] = torch.tensor(masks[i] if masks else [1] * len(r), dtype=torch.long)
        return ids, att

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _stack_cameras(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, H, n_cam, 3, h, w), cameras in config order (each resized to the backbone size)."""
        missing = [c for c in self.cfg.cameras if c not in images]
        if missing:
            raise ValueError(f"batch lacks camera(s) {missing}; the model uses {self.cfg.cameras}")
        size = self.backbone.image_size
        cams = []
        for c in self.cfg.cameras:
            x = images[c]
            b, h = x.shape[:2]
            x = x.flatten(0, 1).float()
            if x.max() > 1.5:  # uint8 samples
                x = x / 255.0
            if x.shape[-2:] != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            cams.append(x.unflatten(0, (b, h)))
        return torch.stack(cams, dim=2)

    # --- features ---------------------------------------------------------------------------------
    def _frame_features(
        self, frames: torch.Tensor, prompts: list[list[int]], rows: torch.Tensor
    ) -> torch.Tensor:
        """``<act>`` hidden states of single-frame sequences: frames (N, n_cam, 3, s, s), prompts
        per sample, ``rows`` (N,) sample index of each frame -> (N, D)."""
        n_cam = frames.shape[1]
        seqs = [[self.image_id] * n_cam + prompts[int(r)] + [self.act_id] for r in rows]
        ids, att = self._pad(seqs)
        out = self.backbone(frames, ids, att)
        act_pos = (ids == self.act_id).float().argmax(dim=1)
        return out.hidden[torch.arange(len(seqs), device=ids.device), act_pos]

    def features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step features (B, H, D) and the history mask (B, H) for the continuous structures."""
        images = self._stack_cameras(batch["observations"]["images"])
        hmask = batch["history_mask"].to(images.device).bool()
        b, h = hmask.shape
        prompts = self._prompt_ids(batch["language_instruction"])
        s = self.cfg.structure
        if s == "one_step_continuous":
            feats = self._frame_features(images[:, -1], prompts, torch.arange(b))
            return feats.unsqueeze(1), hmask[:, -1:]
        if s == "policy_head_continuous":
            valid = hmask.nonzero(as_tuple=False)  # (N, 2): sample, step
            feats = torch.zeros(b, h, self.backbone.hidden_size, device=images.device, dtype=images.dtype)
            f = self._frame_features(images[valid[:, 0], valid[:, 1]], prompts, valid[:, 0])
            feats = feats.index_put((valid[:, 0], valid[:, 1]), f.to(feats.dtype))
            return feats, hmask
        if s == "interleaved_continuous":
            n_cam = images.shape[2]
            seqs, masks = [], []
            for i in range(b):
                seq, m = list(prompts[i]), [1] * len(prompts[i])
                for t in range(h):
                    seq += [self.image_id] * n_cam + [self.act_id]
                    m += [int(hmask[i, t])] * (n_cam + 1)
                seqs.append(seq)
                masks.append(m)
            ids, att = self._pad(seqs, masks)
            out = self.backbone(images.flatten(1, 2), ids, att)
            is_act = ids == self.act_id
            feats = out.hidden[is_act].view(b, h, -1)
            return feats, hmask
        raise ValueError(f"structure {s} has no continuous features")

    # --- training ---------------------------------------------------------------------------------
    def forward(
        self, batch: dict[str, Any], history_weighting: str = "uniform"
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss (so that DistributedDataParallel's forward hooks see it)."""
        return self.compute_loss(batch, history_weighting)

    def compute_loss(
        self, batch: dict[str, Any], history_weighting: str = "uniform"
    ) -> tuple[torch.Tensor, dict[str, float]]:
        dev = self._device()
        actions = batch["actions"].to(dev).float()
        amask = batch["action_mask"].to(dev).bool()
        if self.cfg.structure == "one_step_discrete":
            return self._discrete_loss(batch, actions[:, -1], amask[:, -1])
        feats, hmask = self.features(batch)
        pred = self.head(self._add_state(feats, hmask, batch), hmask)
        h = feats.shape[1]
        actions, amask = actions[:, -h:], amask[:, -h:] & hmask.unsqueeze(-1)
        return continuous_loss(pred, actions, amask, history_weights(h, history_weighting, dev))

    def _discrete_prefix(self, batch: dict[str, Any]) -> tuple[list[list[int]], torch.Tensor]:
        images = self._stack_cameras(batch["observations"]["images"])[:, -1]
        prompts = self._prompt_ids(batch["language_instruction"])
        n_cam = images.shape[1]
        states = self._state_tokens(batch)
        return [
            [self.image_id] * n_cam + p + st + [self.act_id] for p, st in zip(prompts, states, strict=True)
        ], images

    def _action_tokens(self, actions: torch.Tensor) -> torch.Tensor:
        bins = discretize_actions(actions.clamp(-1, 1)) - 10  # the seed's bins 0..255
        return bins + self.action_ids[0]

    def _discrete_loss(
        self, batch: dict[str, Any], chunk: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        prefixes, images = self._discrete_prefix(batch)
        targets = self._action_tokens(chunk).flatten(1)  # (B, C*7)
        tmask = mask.repeat_interleave(7, dim=1)
        seqs = [p + targets[i, :-1].tolist() for i, p in enumerate(prefixes)]
        ids, att = self._pad(seqs)
        out = self.backbone(images, ids, att, return_logits=True)
        n = targets.shape[1]
        starts = torch.tensor([len(p) - 1 for p in prefixes], device=ids.device)  # <act> predicts token 0
        idx = starts.unsqueeze(1) + torch.arange(n, device=ids.device)
        logits = torch.gather(out.logits, 1, idx.unsqueeze(-1).expand(-1, -1, out.logits.shape[-1]))
        tail = logits[..., self.action_ids[0] : self.action_ids[0] + NUM_ACTION_BINS]
        labels = (targets - self.action_ids[0]).masked_fill(~tmask, -100)
        loss = F.cross_entropy(tail.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        acc = ((tail.argmax(-1) == labels) & tmask).sum() / tmask.sum().clamp_min(1)
        return loss, {"loss_ce": float(loss.detach()), "token_accuracy": float(acc)}

    # --- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, batch: dict[str, Any], n_actions: int | None = None) -> torch.Tensor:
        """Normalised actions (B, n, 7) for the current step (gripper as +-1); n <= chunk size."""
        n = n_actions or self.cfg.action_chunk_size
        if self.cfg.structure == "one_step_discrete":
            return self._decode(batch, n)
        feats, hmask = self.features(batch)
        return self.predict_from_features(feats, hmask, batch, n)

    @torch.no_grad()
    def encode_frames(self, images: dict[str, torch.Tensor], instructions: Sequence[str]) -> torch.Tensor:
        """The policy-head structure's per-frame features: ``images`` per camera (N, 3, h, w), one
        instruction per frame -> (N, D), as :meth:`features` computes them for each real step. A
        frame's feature depends on that frame and its instruction only, so a policy can keep the
        features of past frames instead of sending the whole window through the VLM at every step."""
        if self.cfg.structure != "policy_head_continuous":
            raise ValueError(f"encode_frames serves policy_head_continuous, not {self.cfg.structure}")
        frames = self._stack_cameras({c: v.unsqueeze(1) for c, v in images.items()})[:, 0]
        rows = torch.arange(len(instructions))
        return self._frame_features(frames, self._prompt_ids(instructions), rows)

    @torch.no_grad()
    def predict_from_features(
        self, feats: torch.Tensor, hmask: torch.Tensor, batch: dict[str, Any], n: int
    ) -> torch.Tensor:
        """Actions (B, n, 7) from per-step features (B, H, D) (zeros where ``hmask`` is False); the
        batch supplies ``observations.states`` when the model reads proprioception."""
        pred = self.head(self._add_state(feats, hmask, batch), hmask)
        arm = pred["arm"][:, -1, :n]
        grip = torch.where(pred["gripper_logits"][:, -1, :n] > 0, 1.0, -1.0).unsqueeze(-1)
        return torch.cat([arm, grip.to(arm.dtype)], dim=-1)

    def _decode(self, batch: dict[str, Any], n: int) -> torch.Tensor:
        prefixes, images = self._discrete_prefix(batch)
        seqs = [list(p) for p in prefixes]
        lo = self.action_ids[0]
        for _ in range(n * 7):  # greedy, one token at a time over the action vocabulary
            ids, att = self._pad(seqs)
            out = self.backbone(images, ids, att, return_logits=True)
            last = att.sum(dim=1) - 1
            logits = out.logits[torch.arange(len(seqs)), last, lo : lo + NUM_ACTION_BINS]
            nxt = logits.argmax(-1) + lo
            for s, t in zip(seqs, nxt.tolist(), strict=True):
                s.append(t)
        tokens = (
            torch.tensor([s[-n * 7 :] for s in seqs], device=images.device).view(len(seqs), n, 7) - lo + 10
        )
        actions = undiscretize_actions(tokens).float()
        actions[..., 6] = torch.where(actions[..., 6] > 0, 1.0, -1.0)
        return actions
