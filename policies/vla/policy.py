"""A trained VLA as a benchmark policy: history buffers, chunk execution, denormalisation.

``--policy vla:DIR[,exec=MODE][,device=DEV][,threads=N]`` with MODE one of

- ``first``: execute the first action of each predicted chunk and re-query every step (the CALVIN
  protocol of RoboVLMs);
- ``chunk:K``: execute K actions of a chunk before re-querying;
- ``ensemble``: temporal ensembling: every step is predicted, and the executed action averages the
  predictions of the last C chunks for this step with weights exp(-0.1 * age) (older weigh less).

Each slot (one per parallel env) keeps the last ``history_length`` frames, cleared at every new
instruction; all slots that need a prediction are served by one batched model call. With the
policy-head structure every frame goes through the VLM on its own, so each slot also keeps the
VLM features of its frames: a step sends only the frames not yet encoded (the new one) through the
VLM, and the head runs over the kept features (``cache_features=False`` recomputes the window).

On CPU the policy runs with ``threads`` torch threads (default 1; 0 keeps torch's own count, one
per core). The policy shares the CPU with the env workers: torch's idle threads spin and take their
cores, while the tiny models gain little from more threads (with 2 env workers on 2 cores, one
thread made ``bench.run`` several times faster: README, "Training VLA policies").

The checkpoint records the camera sizes it was trained on (``model.camera_sizes``); the policy
declares them as ``camera_sizes`` for the suite to build its cameras with, and warns once per
camera when observations arrive at other sizes (checkpoints older than that record say so).
"""

from __future__ import annotations

import warnings
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
        cache_features: bool = True,
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
        sizes = cfg.model.camera_sizes
        self.camera_sizes: dict[str, tuple[int, int]] | None = (
            {c: (int(h), int(w)) for c, (h, w) in sizes.items()} if sizes else None
        )
        self._size_warned: set[str] = set()
        self.cache = cache_features and cfg.model.structure == "policy_head_continuous"
        self._slots: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_checkpoint(cls, folder: str, exec_mode: str | None = None, device: str = "cpu") -> VLAPolicy:
        from trainer.checkpoint import load_checkpoint

        model, cfg, tokenizer, stats = load_checkpoint(folder, device=device)
        policy = cls(model, cfg, tokenizer, stats, exec_mode or cfg.eval.exec_mode, device)
        policy.checkpoint = str(folder)
        if policy.camera_sizes is None:
            warnings.warn(
                f"VLA checkpoint {folder} does not record the camera sizes it was trained on (it predates "
                "model.camera_sizes): the cameras keep the sizes the run asks for, which may differ",
                stacklevel=2,
            )
        return policy

    def provenance(self) -> dict[str, Any]:
        """The design (backbone, structure, head: what places a run in ``bench.figures``' design grid),
        the checkpoint folder and the SHA-256 of its weights file (``model.safetensors``)."""
        import hashlib
        from pathlib import Path

        model = self.cfg.model
        info: dict[str, Any] = {
            "backbone": model.backbone,
            "structure": model.structure,
            "head": None if model.structure == "one_step_discrete" else model.head,  # discrete: no head
            "exec_mode": self.mode if self.mode == "ensemble" else f"chunk:{self.k}",
        }
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
            "frames": deque(maxlen=self.history),  # per frame {camera: image}, or [images, feature]
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
            self._check_size(cam, np.shape(obs[cam]))
            img = torch.from_numpy(np.ascontiguousarray(obs[cam])).permute(2, 0, 1).float().div_(255.0)
            frame[cam] = resize_frames(img[None], self.size)[0]  # as the training samples were resized
        return frame

    def _check_size(self, cam: str, shape: tuple[int, ...]) -> None:
        """Warn once per camera when its images differ from the size the checkpoint was trained on."""
        trained = (self.camera_sizes or {}).get(cam)
        if trained is None or cam in self._size_warned or tuple(shape[:2]) == trained:
            return
        self._size_warned.add(cam)
        warnings.warn(
            f"VLA policy: {cam} images arrive at {shape[0]}x{shape[1]}, but the checkpoint was trained "
            f"on {trained[0]}x{trained[1]} (they are resized to {self.size}x{self.size} either way)",
            stacklevel=3,
        )

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        from trainer.data.preprocess import denormalize_actions

        for obs, slot in zip(observations, slots, strict=True):
            if slot not in self._slots:
                raise RuntimeError(f"VLA policy: reset() was not called for slot {slot}")
            frame = self._frame(obs)
            self._slots[slot]["frames"].append([frame, None] if self.cache else frame)
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

    def _states(self, slots: Sequence[int]) -> torch.Tensor | None:
        """(B, H, S) proprioception, left-padded like the frames it was appended with."""
        if not self.state_key:
            return None
        states = torch.zeros(len(slots), self.history, self.cfg.model.state_dim)
        for i, s in enumerate(slots):
            kept = self._slots[s]["states"]
            for j, state in enumerate(kept):
                states[i, self.history - len(kept) + j] = torch.from_numpy(state)
        return states.to(self.device)

    def _predict_cached(self, slots: Sequence[int], n: int) -> np.ndarray:
        """Encode the frames of these slots that have no feature yet (in one VLM call), then run the
        head over each slot's kept features, left-padded as in :meth:`_predict`."""
        todo = [(s, entry) for s in slots for entry in self._slots[s]["frames"] if entry[1] is None]
        if todo:
            images = {
                c: torch.stack([entry[0][c] for _, entry in todo]).to(self.device)
                for c in self.cfg.model.cameras
            }
            feats = self.model.encode_frames(images, [self._slots[s]["instruction"] for s, _ in todo])
            for (_, entry), feat in zip(todo, feats, strict=True):
                entry[0], entry[1] = None, feat  # the images are no longer needed
        h = self.history
        dim = self.model.backbone.hidden_size
        feats = torch.zeros(len(slots), h, dim, device=self.device)
        mask = torch.zeros(len(slots), h, dtype=torch.bool, device=self.device)
        for i, s in enumerate(slots):
            kept = [entry[1] for entry in self._slots[s]["frames"]]
            feats[i, h - len(kept) :] = torch.stack(kept).to(feats.dtype)
            mask[i, h - len(kept) :] = True
        batch: dict[str, Any] = {"observations": {}}
        states = self._states(slots)
        if states is not None:
            batch["observations"]["states"] = states
        with torch.no_grad():
            return self.model.predict_from_features(feats, mask, batch, n).float().cpu().numpy()

    def _predict(self, slots: Sequence[int]) -> np.ndarray:
        n = self.chunk if self.mode == "ensemble" else self.k
        if self.cache:
            return self._predict_cached(slots, n)
        h = self.history
        images = {c: torch.zeros(len(slots), h, 3, self.size, self.size) for c in self.cfg.model.cameras}
        mask = torch.zeros(len(slots), h, dtype=torch.bool)
        for i, s in enumerate(slots):
            frames = list(self._slots[s]["frames"])
            pad = h - len(frames)
            mask[i, pad:] = True
            for j, frame in enumerate(frames):
                for c, img in frame.items():
                    images[c][i, pad + j] = img
        observations: dict[str, Any] = {"images": {c: v.to(self.device) for c, v in images.items()}}
        states = self._states(slots)
        if states is not None:
            observations["states"] = states
        batch = {
            "observations": observations,
            "history_mask": mask.to(self.device),
            "language_instruction": [self._slots[s]["instruction"] for s in slots],
        }
        with torch.no_grad():
            return self.model.predict(batch, n_actions=n).float().cpu().numpy()


DEFAULT_CPU_THREADS = 1


def make_vla(arg: str | None) -> Policy:
    """Registry factory for ``vla:DIR[,exec=MODE][,device=DEV][,threads=N]``."""
    if not arg:
        raise ValueError(
            "policy 'vla' needs a checkpoint folder: "
            "vla:DIR[,exec=first|chunk:K|ensemble][,device=cpu][,threads=N]"
        )
    folder, *opts = arg.split(",")
    options = {}
    for opt in opts:
        if "=" not in opt:
            raise ValueError(
                f"vla option {opt!r} must look like key=value (exec=..., device=..., threads=...)"
            )
        k, v = opt.split("=", 1)
        if k not in ("exec", "device", "threads"):
            raise ValueError(f"unknown vla option {k!r}; valid: exec, device, threads")
        options[k] = v
    threads = options.get("threads", str(DEFAULT_CPU_THREADS))
    if not threads.isdigit():
        raise ValueError(f"vla option threads={threads!r}: expected an integer >= 0 (0: torch's own count)")
    device = options.get("device", "cpu")
    if device == "cpu" and int(threads) > 0:
        torch.set_num_threads(int(threads))
    return VLAPolicy.from_checkpoint(folder, exec_mode=options.get("exec"), device=device)
