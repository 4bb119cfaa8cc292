"""Recording one episode of a collection plan (:mod:`trainer.collect`): the expert, optionally with a
drift of the executed target (noise injection) or a policy that drives while the expert labels
(DAgger), in one simulator per scene (our table or CALVIN's own env, ``--env``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from trainer.collect import CollectArgs, Plan


class TargetDrift:
    """Noise injection for recovery data (DART-style, correlated): an AR(1) drift of the executed
    target pose away from the expert's, ``e[t+1] = corr * e[t] + sqrt(1 - corr**2) * std * xi``,
    so that its stationary standard deviation is ``std`` metres in position and the same in
    relative-action units in orientation (``std / 0.02 * 0.05`` rad). The gripper is never
    perturbed. Recording the expert's clean action from the drifted state shows the policy how to
    get back on the path, which clean demonstrations never do.
    """

    def __init__(self, std: float, corr: float, seed: tuple[int, ...]) -> None:
        from envs.calvin.env import ORN_SCALE, POS_SCALE

        self.scale = np.array([std] * 3 + [std / POS_SCALE * ORN_SCALE] * 3)
        self.corr = corr
        self.offset = np.zeros(6)
        self.rng = np.random.default_rng(list(seed))

    def perturb(self, action: np.ndarray) -> np.ndarray:
        if not self.scale.any():
            return action
        xi = self.rng.standard_normal(6)
        self.offset = self.corr * self.offset + np.sqrt(1.0 - self.corr**2) * self.scale * xi
        out = np.array(action, dtype=np.float32, copy=True)
        out[:6] += self.offset
        return out


def _derive_seed(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] & 0x7FFFFFFF)


def policy_turns(seed: int, slot: int, beta: float, steps: int) -> np.ndarray:
    """Which steps of slot ``slot``'s recorded task execute the policy's action (True, probability
    ``1 - beta``) rather than the expert's: a pure function of ``(seed, slot)``, whatever the workers."""
    return np.random.default_rng([seed, 5, slot]).random(steps) >= beta


def absolute_from_relative(action: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The absolute action (target pose + gripper sign) that does what the env's relative mode does
    with ``action`` from the target pose ``target``: pos + rel * 0.02 m, Euler + rel * 0.05 rad
    (wrapped), the arm part clipped to [-1, 1] as the env clips it."""
    from envs.calvin.env import ORN_SCALE, POS_SCALE

    rel = np.clip(np.asarray(action, dtype=np.float64)[:6], -1.0, 1.0)
    target = np.asarray(target, dtype=np.float64)
    out = np.empty(7, dtype=np.float64)
    out[:3] = target[:3] + rel[:3] * POS_SCALE
    out[3:6] = (target[3:6] + rel[3:6] * ORN_SCALE + np.pi) % (2 * np.pi) - np.pi
    out[6] = 1.0 if float(action[6]) > 0 else -1.0
    return out


def check_policy_cameras(policy: Any, args: CollectArgs) -> None:
    """A policy that declares its training camera sizes must get them: refuse other sizes."""
    given = {
        "rgb_static": ("--static-size", args.static_size),
        "rgb_gripper": ("--gripper-size", args.gripper_size),
    }
    for camera, trained in sorted((getattr(policy, "camera_sizes", None) or {}).items()):
        if camera in given and tuple(trained) != (given[camera][1],) * 2:
            flag, size = given[camera]
            raise ValueError(
                f"--policy {args.policy} was trained on {camera} images of {trained[0]}x{trained[1]}, "
                f"but {flag} is {size}: collect at the policy's sizes"
            )


def make_collect_policy(args: CollectArgs) -> Any:
    """The acting policy of ``--policy`` (None for the expert alone), its cameras checked."""
    if args.policy == "expert":
        return None
    from policies.registry import make_policy

    policy = make_policy(args.policy)
    try:
        check_policy_cameras(policy, args)
    except ValueError:
        policy.close()
        raise
    return policy


def store_fields(args: CollectArgs) -> dict[str, tuple[tuple[int, ...], str]]:
    """The observation fields every store holds, with their per-frame shapes and dtypes."""
    return {
        "rgb_static": ((args.static_size, args.static_size, 3), "uint8"),
        "rgb_gripper": ((args.gripper_size, args.gripper_size, 3), "uint8"),
        "robot_obs": ((15,), "float32"),
        "scene_obs": ((24,), "float32"),
    }


def field_mismatches(obs: dict[str, Any], args: CollectArgs) -> list[str]:
    """How an observation with both cameras differs from :func:`store_fields` (empty: it does not)."""
    expected = store_fields(args)
    out = [f"no {key}" for key in expected if key not in obs]
    out += [f"an extra field {key}" for key in obs if key not in expected]
    for key, (shape, dtype) in expected.items():
        if key in obs:
            got = np.asarray(obs[key])
            if got.shape != shape or got.dtype != np.dtype(dtype):
                out.append(f"{key} {got.shape} {got.dtype} (expected {shape} {dtype})")
    return out


def make_env(args: CollectArgs, scene: str) -> Any:
    """The ``--env`` backend's play table of ``scene`` with absolute actions (what the expert sends)."""
    from envs.calvin.backends import make_calvin_env

    return make_calvin_env(
        args.env,
        scene,
        static_size=args.static_size,
        gripper_size=args.gripper_size,
        action_mode="absolute",
    )


def check_store_fields(args: CollectArgs) -> None:
    """Refuse (one line) a backend whose observations are not the store's fields, before recording:
    stores from either env hold the same keys, shapes and dtypes. Our table defines those fields,
    so only another backend is built and reset to check them."""
    if args.env == "ours":
        return
    env = make_env(args, args.scenes[0])
    try:
        obs, _ = env.reset(seed=0)
        bad = field_mismatches(obs, args)
    finally:
        env.close()
    if bad:
        raise ValueError(
            f"--env {args.env} cannot give the store's fields: its observation has {'; '.join(bad)}"
        )


class Recorder:
    """Owns one env per scene, the expert and the acting policy; records the episode of a plan."""

    def __init__(self, args: CollectArgs, policy: Any = None) -> None:
        from policies.expert import ExpertPolicy

        self.args = args
        self.envs: dict[str, Any] = {}
        self.expert = ExpertPolicy()
        # each worker process builds its own policy; the in-process recorder borrows the caller's
        self._owns_policy = policy is None
        self.policy = policy if policy is not None else make_collect_policy(args)

    def _env(self, scene: str) -> Any:
        if scene not in self.envs:
            self.envs[scene] = make_env(self.args, scene)
        return self.envs[scene]

    def _policy_target(self, proposal: Any, before: np.ndarray) -> np.ndarray:
        from policies.base import check_action

        action = check_action(proposal, source=f"--policy {self.args.policy}")
        if getattr(self.policy, "action_mode", "relative") == "absolute":
            return action
        return absolute_from_relative(action, before)

    def record(self, plan: Plan) -> dict[str, Any]:
        """Returns ``{"ok": True, "data": {...}, "info": {...}}`` or ``{"ok": False, "reason": ...}``."""
        from envs.calvin.env import relative_action

        env = self._env(plan.scene)
        env.set_cameras(())
        obs, _ = env.reset(seed=plan.env_seed, options={"state": plan.chain_state})
        for k, task in enumerate(plan.chain_tasks[: plan.position]):
            ok, obs, _ = self._run(env, task, plan.scene, obs)
            if not ok:
                return {"ok": False, "reason": f"set-up task {k} ({task}) failed"}
        env.set_cameras(("static", "gripper"))
        obs = env.observe()
        frames: dict[str, list[np.ndarray]] = {k: [] for k in (*obs, "actions", "rel_actions")}

        def keep(o: dict, action: np.ndarray, rel: np.ndarray) -> None:
            for key, value in o.items():
                frames[key].append(value)
            frames["actions"].append(np.asarray(action, dtype=np.float32))
            frames["rel_actions"].append(rel)

        env.begin_subtask(plan.task)
        target = env.target_pose().tolist()  # the expert starts from the env's target, not the measured pose
        reset_info = {"task": plan.task, "scene": plan.scene, "target_pose": target}
        self.expert.reset(plan.instruction, info=reset_info)
        turns = np.zeros(self.args.max_steps, dtype=bool)
        if self.policy is not None:  # reset as the harness does (bench.calvin_eval.ChainPlayer.play)
            self.policy.reset(
                plan.instruction,
                slot=0,
                seed=_derive_seed(self.args.seed, 4, plan.slot),
                info={"suite": "calvin", **reset_info},
            )
            turns = policy_turns(self.args.seed, plan.slot, self.args.beta, self.args.max_steps)
        drift = TargetDrift(self.args.noise, self.args.noise_corr, seed=(self.args.seed, 3, plan.slot))
        for step in range(self.args.max_steps):
            action = self.expert.act(obs)
            before = env.target_pose()
            current = obs
            executed = action
            if self.policy is not None:
                proposal = self.policy.act(obs, slot=0)  # every step: its history is the closed loop's
                if turns[step]:
                    executed = self._policy_target(proposal, before)
            obs, _, _, _, info = env.step(drift.perturb(executed))
            # The label is the expert's clean action from the target the env actually holds: with a
            # drift or a policy in control it includes the correction back to the expert's path.
            # Otherwise the expert starts from the env's target, so relative actions stay within
            # [-1, 1] and the clip only guards the store's range.
            rel = np.clip(relative_action(before, action[:6], action[6]), -1.0, 1.0)
            keep(current, action, rel)
            if info["success"]:
                data = {k: np.stack(v) for k, v in frames.items()}
                info_out = {
                    "task": plan.task,
                    "instruction": plan.instruction,
                    "scene": plan.scene,
                    "slot": plan.slot,
                    "env_seed": plan.env_seed,
                    "chain_index": plan.chain_index,
                    "chain_state": plan.chain_state,
                    "chain_tasks": list(plan.chain_tasks),
                    "position": plan.position,
                }
                if self.policy is not None:
                    n = int(turns[: step + 1].sum())
                    info_out.update(policy_steps=n, policy_fraction=n / (step + 1), start_target=target)
                return {"ok": True, "data": data, "info": info_out}
        reason = f"{plan.task} not solved in {self.args.max_steps} steps"
        if self.policy is not None:
            reason += f" (the policy executed {int(turns.sum())} of them)"
        return {"ok": False, "reason": reason}

    def _run(self, env: Any, task: str, scene: str, obs: dict) -> tuple[bool, dict, int]:
        env.begin_subtask(task)
        self.expert.reset("", info={"task": task, "scene": scene, "target_pose": env.target_pose().tolist()})
        for step in range(self.args.max_steps):
            obs, _, _, _, info = env.step(self.expert.act(obs))
            if info["success"]:
                return True, obs, step + 1
        return False, obs, self.args.max_steps

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        if self.policy is not None and self._owns_policy:
            self.policy.close()


def record_worker(args: CollectArgs, jobs: Any, results: Any) -> None:
    recorder = Recorder(args)
    try:
        for plan in iter(jobs.get, None):
            try:
                results.put((plan.slot, recorder.record(plan)))
            except Exception as exc:  # a crash in one episode fails that slot only
                results.put((plan.slot, {"ok": False, "reason": f"error: {type(exc).__name__}: {exc}"}))
    finally:
        recorder.close()
