"""A trained VLA as a benchmark policy: history buffers, chunk execution, denormalisation.

``--policy vla:DIR[,exec=MODE][,device=DEV]`` with MODE one of

- ``first``: execute the first action of each predicted chunk and re-query every step (the CALVIN
  protocol of RoboVLMs);
- ``chunk:K``: execute K actions of a chunk before re-querying;
- ``ensemble``: temporal ensembling: every step is predicted, and the executed action averages the
  predictions of the last C chunks for this step with weights exp(-0.1 * age) (older weigh less).

Each slot (one per parallel env) keeps the last ``history_length`` frames, cleared at every new
instruction; all slots that need a prediction are served by one batched model call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from policies.base import Observation, Policy
from trainer.data.dataset import resize_frames

ENSEMBLE_DECAY = 0.1


def parse_exec_mode(mode: str, chunk: int) -> tuple[str, int]:
    if mode == "first":
        return "chunk", 1
    if mode == "ensemble":
        return "ensemble", chunk
    if mode.startswith("chunk:"):
        try:
            k = int(mode.split(":", 1)[1])
        except ValueError:
            k = 0
        if not 1 <= k <= chunk:
            raise ValueError(
                f"exec mode {mode!r}: K must be an integer in 1..{chunk} (the model's chunk size)"
            )
        return "chunk", k
    raise ValueError(f"unknown exec mode {mode!r}; valid: first, chunk:K, ensemble")


class VLAPolicy(Policy):
    """Runs a :class:`trainer.models.vla.VLAModel` through the common policy interface."""

    needs_images = True

    def __init__(
        self,
        model: Any,
        cfg: Any,
        tokenizer: Any,
        stats: Mapping[str, Any],
        exec_mode: str = "first",
        device: str = "cpu",
    ) -> None:
        from trainer.data.preprocess import ActionQuantiles

        self.model = model.to(device).eval()
        self.cfg = cfg
        self.device = device
        self.history = cfg.model.history_length
        self.chunk = cfg.model.action_chunk_size
        self.mode, self.k = parse_exec_mode(exec_mode, self.chunk)
        key = cfg.data.action_key
        if key not in stats:
            raise ValueError(
                f"the checkpoint's stats.json has no statistics for '{key}' (has {sorted(stats)})"
            )
        self.quantiles = ActionQuantiles(np.asarray(stats[key]["q01"]), np.asarray(stats[key]["q99"]))
        self.action_mode = "relative" if key == "rel_actions" else "absolute"
        self.size = model.backbone.image_size
        self.state_key = cfg.model.state_key
        self.checkpoint: str | None = None  # set by from_checkpoint, reported by provenance()
        self._slots: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_checkpoint(cls, folder: str, exec_mode: str | None = None, device: str = "cpu") -> VLAPolicy:
        from trainer.checkpoint import load_checkpoint

        model, cfg, tokenizer, stats = load_checkpoint(folder, device=device)
        policy = cls(model, cfg, tokenizer, stats, exec_mode or cfg.eval.exec_mode, device)
        policy.checkpoint = str(folder)
        return policy

    def provenance(self) -> dict[str, Any]:
        """The checkpoint folder and the SHA-256 of its weights file (``model.safetensors``)."""
        import hashlib
        from pathlib import Path

        info: dict[str, Any] = {"exec_mode": self.mode if self.mode == "ensemble" else f"chunk:{self.k}"}
        if self.checkpoint:
            weights = Path(self.checkpoint) / "model.safetensors"
            info["checkpoint"] = str(Path(self.checkpoint).resolve())
            if weights.exists():
                info["checkpoint_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        return info

    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self._slots[slot] = {
            "instruction": instruction,
            "frames": deque(maxlen=self.history),
            "states": deque(maxlen=self.history),
            "queue": deque(),
            "chunks": deque(maxlen=self.chunk),
            "t": 0,
        }

    def _frame(self, obs: Observation) -> dict[str, torch.Tensor]:
        frame = {}
        for cam in self.cfg.model.cameras:
            if cam not in obs:
                raise ValueError(f"VLA policy: observation lacks camera {cam!r} (has {sorted(obs)})")
            img = torch.from_numpy(np.ascontiguousarray(obs[cam])).permute(2, 0, 1).float().div_(255.0)
            frame[cam] = resize_frames(img[None], self.size)[0]  # as the training samples were resized
        return frame

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        from trainer.data.preprocess import denormalize_actions

        for obs, slot in zip(observations, slots, strict=True):
            if slot not in self._slots:
                raise RuntimeError(f"VLA policy: reset() was not called for slot {slot}")
            self._slots[slot]["frames"].append(self._frame(obs))
            if self.state_key:
                if self.state_key not in obs:
                    raise ValueError(
                        f"VLA policy: observation lacks {self.state_key!r}, which the model reads (has {sorted(obs)})"
                    )
                self._slots[slot]["states"].append(np.asarray(obs[self.state_key], dtype=np.float32))
        need = [s for s in slots if self.mode == "ensemble" or not self._slots[s]["queue"]]
        if need:
            predicted = self._predict(need)  # (len(need), n, 7) normalised
            for s, chunk in zip(need, predicted, strict=True):
                state = self._slots[s]
                if self.mode == "ensemble":
                    state["chunks"].append((state["t"], chunk))
                else:
                    state["queue"].extend(chunk[: self.k])
        out = []
        for s in slots:
            state = self._slots[s]
            action = self._ensemble(state) if self.mode == "ensemble" else state["queue"].popleft()
            state["t"] += 1
            out.append(action)
        actions = denormalize_actions(np.stack(out).astype(np.float32), self.quantiles)
        return np.asarray(actions, dtype=np.float32)

    def _ensemble(self, state: dict[str, Any]) -> np.ndarray:
        t = state["t"]
        preds, weights = [], []
        for start, chunk in state["chunks"]:
            age = t - start
            if 0 <= age < len(chunk):
                preds.append(chunk[age])
                weights.append(np.exp(-ENSEMBLE_DECAY * age))
        w = np.asarray(weights) / np.sum(weights)
        action = (np.stack(preds) * w[:, None]).sum(0)
        action[6] = 1.0 if action[6] > 0 else -1.0
        return action

    def _predict(self, slots: Sequence[int]) -> np.ndarray:
        h = self.history
        images = {c: torch.zeros(len(slots), h, 3, self.size, self.size) for c in self.cfg.model.cameras}
        mask = torch.zeros(len(slots), h, dtype=torch.bool)
        states = torch.zeros(len(slots), h, self.cfg.model.state_dim) if self.state_key else None
        for i, s in enumerate(slots):
            frames = list(self._slots[s]["frames"])
            pad = h - len(frames)
            mask[i, pad:] = True
            for j, frame in enumerate(frames):
                for c, img in frame.items():
                    images[c][i, pad + j] = img
            if states is not None:  # appended with the frames, so padded the same way
                for j, state in enumerate(self._slots[s]["states"]):
                    states[i, pad + j] = torch.from_numpy(state)
        observations: dict[str, Any] = {"images": {c: v.to(self.device) for c, v in images.items()}}
        if states is not None:
            observations["states"] = states.to(self.device)
        batch = {
            "observations": observations,
            "history_mask": mask.to(self.device),
            "language_instruction": [self._slots[s]["instruction"] for s in slots],
        }
        n = self.chunk if self.mode == "ensemble" else self.k
        with torch.no_grad():
            return self.model.predict(batch, n_actions=n).float().cpu().numpy()


def make_vla(arg: str | None) -> Policy:
    """Registry factory for ``vla:DIR[,exec=MODE][,device=DEV]``."""
    if not arg:
        raise ValueError(
            "policy 'vla' needs a checkpoint folder: vla:DIR[,exec=first|chunk:K|ensemble][,device=cpu]"
        )
    folder, *opts = arg.split(",")
    options = {}
    for opt in opts:
        if "=" not in opt:
            raise ValueError(f"vla option {opt!r} must look like key=value (exec=..., device=...)")
        k, v = opt.split("=", 1)
        if k not in ("exec", "device"):
            raise ValueError(f"unknown vla option {k!r}; valid: exec, device")
        options[k] = v
    return VLAPolicy.from_checkpoint(
        folder, exec_mode=options.get("exec"), device=options.get("device", "cpu")
    )
