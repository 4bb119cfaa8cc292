"""The SimplerEnv-style suite: episodes per task and variant, scored per task, group and overall.

Units are episodes (key: ``task/variant/episode``); the protocol is :mod:`bench.simpler.evaluate`. ``--real-results FILE`` prints MMRV and Pearson r against
the real-world table over the SimplerEnv runs next to the run folder (see ``python -m bench.simreal``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.engine import Player, is_error
from bench.rundir import RunFolderError, is_int, is_rate, require
from bench.stats import proportion
from bench.suites import CommonOptions, LeaderboardTable, Suite, UsageError, option
from envs.simpler.real_variants import REAL_VARIANTS
from envs.simpler.tasks import GROUPS, TASKS
from envs.simpler.variants import VARIANTS

#: Every variant name, the Panda scenes' first: a shared name (lighting_darker, ...) means the same kind of
#: change and counts in the aggregate alike (tests/test_simpler_real_variants.py checks it).
ALL_VARIANTS = {**REAL_VARIANTS, **VARIANTS}
VARIANT_ORDER = [*VARIANTS, *(v for v in REAL_VARIANTS if v not in VARIANTS)]

if TYPE_CHECKING:
    from bench.regression.counts import Counts


@dataclass
class SimplerOptions:
    mode: str = option("visual_matching", "visual_matching or variant_aggregation")
    tasks: str | None = option(None, "comma-separated tasks, groups or families (default: all 15 tasks)")
    variants: str | None = option(
        None, "comma-separated subset of the mode's variants (default: all of them)"
    )
    episodes_per_variant: int | None = option(
        None, "episodes per task and variant (default: the reference's: 25 per can orientation, ...)"
    )
    image_size: int = option(224, "camera image size (pixels, square)")
    wrist_camera: bool = option(False, "also render a wrist camera (rgb_gripper)")
    official: bool = option(
        False, "run ManiSkill3's own ports of the Bridge tasks (downloaded assets; see envs.simpler.official)"
    )
    embodiment: str = option(
        "panda",
        "panda: our offline primitive scenes on a Panda (not SimplerEnv-comparable); simpler: "
        "SimplerEnv's own robots, scanned objects and real overlays (Bridge on the WidowX, the RT-1 tasks on "
        "the Google robot)",
    )
    real_results: str | None = option(
        None, "CSV of real-world success rates: print MMRV and Pearson r afterwards"
    )


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def resolve(opts: SimplerOptions) -> tuple[list[str], list[str]]:
    """(task names, variant names) of a run; raises :class:`UsageError` naming the valid choices."""
    from envs.simpler import check_mode, select_tasks

    try:
        mode_variants = check_mode(opts.mode)
        if opts.embodiment == "simpler" and not opts.tasks:
            from envs.simpler.real_env import real_tasks

            tasks = list(real_tasks())
        else:
            tasks = [t.name for t in select_tasks(_split(opts.tasks))]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if opts.embodiment == "simpler" and opts.mode == "variant_aggregation":
        mode_variants = real_mode_variants(tasks)
    variants = list(mode_variants)
    chosen = _split(opts.variants)
    if chosen:
        bad = [v for v in chosen if v not in mode_variants]
        if bad:
            raise UsageError(f"variant(s) {bad} not in mode {opts.mode}; valid: {', '.join(mode_variants)}")
        variants = [v for v in mode_variants if v in chosen]
    return tasks, variants


def real_mode_variants(tasks: Sequence[str]) -> tuple[str, ...]:
    """SimplerEnv's variant-aggregation variants of ``tasks`` on its own embodiment (their union, in order)."""
    from envs.simpler.real_variants import task_variants

    out: list[str] = []
    for task in tasks:
        try:
            out += [v for v in task_variants(task) if v not in out]
        except ValueError as exc:
            raise UsageError(f"--embodiment simpler --mode variant_aggregation: {exc}") from None
    return tuple(out)


def real_plan(tasks: Sequence[str], variants: Sequence[str], per_variant: int | None) -> list[Any]:
    """The episodes on SimplerEnv's embodiment: each task runs the chosen variants it has, with
    SimplerEnv's episode counts (visual matching's or variant aggregation's) unless ``per_variant``."""
    from bench.simpler.evaluate import EpisodeKey
    from envs.simpler.google_variant_layout import variant_episodes
    from envs.simpler.real_env import VARIANTS as REAL_BASE
    from envs.simpler.real_variants import task_variants

    keys = []
    for task in tasks:
        own = set(REAL_BASE) | (set(task_variants(task)) if TASKS[task].family == "google_robot" else set())
        for v in [v for v in variants if v in own]:
            n = per_variant or (TASKS[task].episodes if v == "base" else variant_episodes(task))
            keys += [EpisodeKey(task, v, i) for i in range(n)]
    return keys


EMBODIMENTS = ("panda", "simpler")


def check_simpler_embodiment(opts: SimplerOptions) -> None:
    """Refuse what SimplerEnv's own embodiments cannot run yet, and missing assets, in one line."""
    from envs.simpler.assets import SimplerAssetsMissing, require_robot
    from envs.simpler.real_env import EMBODIMENT, real_tasks

    if opts.official:
        raise UsageError("--official and --embodiment simpler are two different scene sets; pick one")
    tasks, variants = resolve(opts)
    missing = [t for t in tasks if t not in real_tasks()]
    if missing:
        raise UsageError(
            f"--embodiment simpler: {', '.join(missing)} not built on SimplerEnv's robots yet; "
            f"valid: {', '.join(real_tasks())}"
        )
    if not real_plan(tasks, variants, 1):
        raise UsageError(f"--embodiment simpler: none of the tasks {tasks} has the variant(s) {variants}")
    try:
        for robot in sorted(set(EMBODIMENT.values())):
            require_robot(robot)
    except SimplerAssetsMissing as exc:
        raise UsageError(str(exc)) from None


def _is_count(value: Any) -> bool:
    return is_int(value) and value >= 0


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RunFolderError(f"{where}: expected a mapping, got {value!r}")
    return value


def _check_cell(entry: Mapping[str, Any], where: str) -> None:
    """``trials`` and ``successes`` (0..trials) of a task or one of its variants."""
    require(entry, "trials", where, _is_count, "an integer >= 0")
    require(entry, "successes", where, lambda v: _is_count(v) and v <= entry["trials"], "0..trials")


def _counts(records: Sequence[Mapping[str, Any]], family: str) -> dict[str, Any]:
    n = len(records)
    out = {**proportion(sum(bool(r["success"]) for r in records), n), "partial_rate": None}
    if family == "bridge" and n:
        out["partial_rate"] = sum(bool(r.get("partial")) for r in records) / n
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize_episodes(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per task and variant counts with Wilson 95 % intervals, the modes' aggregates, groups, overall.

    ``aggregate_rate`` of a task is the equal-weight mean of its variants' rates over the variants
    that count (camera orientations are reported but left out, as in SimplerEnv); a group's rate is
    the mean of its tasks' aggregates; ``overall`` the mean of the groups'.
    """
    by_task: dict[str, list] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    tasks: dict[str, Any] = {}
    for name in [t for t in TASKS if t in by_task]:
        spec = TASKS[name]
        rows = by_task[name]
        variants = {}
        for v in [v for v in VARIANT_ORDER if any(r["variant"] == v for r in rows)]:
            variants[v] = {
                **_counts([r for r in rows if r["variant"] == v], spec.family),
                "in_aggregate": ALL_VARIANTS[v].in_aggregate,
            }
        counted = [c for c in variants.values() if c["in_aggregate"]]
        tasks[name] = {
            "family": spec.family,
            "group": spec.group,
            **_counts([r for r in rows if ALL_VARIANTS[r["variant"]].in_aggregate], spec.family),
            "aggregate_rate": _mean([c["rate"] for c in counted]),
            "aggregate_partial_rate": _mean([c["partial_rate"] for c in counted]),
            "variants": variants,
        }
    groups = {}
    for group, members in GROUPS.items():
        present = [tasks[t] for t in members if t in tasks]
        if not present:
            continue
        groups[group] = {
            "family": present[0]["family"],
            "tasks": [t for t in members if t in tasks],
            "rate": _mean([t["aggregate_rate"] for t in present]),
            "partial_rate": _mean([t["aggregate_partial_rate"] for t in present]),
        }
    return {
        "tasks": tasks,
        "groups": groups,
        "overall": _mean([g["rate"] for g in groups.values()]),
        "n_episodes": len(records),
        "n_errors": sum(map(is_error, records)),
    }


class SimplerSuite(Suite):
    name = "simpler"
    description = (
        "SimplerEnv-style tasks (Google robot, WidowX/Bridge) with visual-matching and variant modes"
    )
    options = SimplerOptions
    unit_noun = "episode"

    def check(self, opts: SimplerOptions, common: CommonOptions) -> None:
        tasks, _ = resolve(opts)
        if opts.episodes_per_variant is not None and opts.episodes_per_variant < 1:
            raise UsageError(f"--episodes-per-variant must be >= 1, got {opts.episodes_per_variant}")
        if opts.image_size < 16:
            raise UsageError(f"--image-size must be >= 16, got {opts.image_size}")
        if opts.embodiment not in EMBODIMENTS:
            raise UsageError(f"unknown --embodiment {opts.embodiment!r}; valid: {', '.join(EMBODIMENTS)}")
        if opts.embodiment == "simpler":
            check_simpler_embodiment(opts)
        if opts.official:
            from envs.simpler.official import OFFICIAL_IDS, OfficialAssetsMissing, require_assets

            bad = [t for t in tasks if t not in OFFICIAL_IDS]
            if bad:
                raise UsageError(f"--official: no official port of {bad}; valid: {', '.join(OFFICIAL_IDS)}")
            if opts.mode != "visual_matching":
                raise UsageError(
                    "--official runs visual matching only (the real backgrounds are composited in)"
                )
            if (common.policy or "").split(":")[0] == "expert":
                raise UsageError(
                    "--official: the scripted expert needs privileged state these tasks do not expose"
                )
            try:
                require_assets()
            except OfficialAssetsMissing as exc:
                raise UsageError(str(exc)) from None

    def plan(self, opts: SimplerOptions, common: CommonOptions) -> list[Any]:
        from bench.simpler.evaluate import plan_episodes

        tasks, variants = resolve(opts)
        if opts.embodiment == "simpler":
            return real_plan(tasks, variants, opts.episodes_per_variant)
        return plan_episodes(tasks, variants, opts.episodes_per_variant)

    def unit_key(self, unit: Any) -> str:
        return str(unit)

    def record_key(self, record: Mapping[str, Any]) -> str:
        return f"{record['task']}/{record['variant']}/{int(record['episode'])}"

    def needed_conventions(self, opts: SimplerOptions, common: CommonOptions, policy: Any) -> dict[str, str]:
        from envs.simpler.tasks import FAMILIES

        tasks, _ = resolve(opts)
        return {f"task {t}": f"delta_pose/{FAMILIES[TASKS[t].family].gripper}_gripper" for t in tasks}

    def record_mismatch(self, record: Mapping[str, Any], unit: Any, common: CommonOptions) -> str | None:
        expected = unit.seed(common.seed)
        if record.get("seed") != expected:
            return f"its seed {record.get('seed')} is not this run's {expected}"
        return None

    def player(
        self, opts: SimplerOptions, common: CommonOptions, policy: Any, video_dir: Path | None
    ) -> Player:
        from bench.simpler.evaluate import EpisodePlayer

        cameras = ("static", "wrist") if opts.wrist_camera else ("static",)
        if not getattr(policy, "needs_images", True):
            cameras = ()
        return EpisodePlayer(
            common.seed,
            cameras,
            opts.image_size,
            "official" if opts.official else opts.embodiment,
            None if video_dir is None else str(video_dir),
        )

    def summarize(self, opts: SimplerOptions, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "mode": opts.mode,
            "embodiment": "official" if opts.official else opts.embodiment,
            "episodes_per_variant": opts.episodes_per_variant,
            **summarize_episodes(records),
        }

    def headline(self, summary: Mapping[str, Any]) -> str:
        overall = summary["overall"]
        shown = "-" if overall is None else f"{overall:.3f}"
        return f"overall {shown} over {summary['n_episodes']} episodes"

    def print_tables(self, summary: Mapping[str, Any]) -> None:
        import pandas as pd

        rows = []
        for task, t in summary["tasks"].items():
            row = {"task": task, "rate": t["aggregate_rate"], "trials": t["trials"]}
            for v, c in t["variants"].items():
                row[v] = c["rate"]
            if t["aggregate_partial_rate"] is not None:
                row["partial"] = t["aggregate_partial_rate"]
            rows.append(row)
        if not rows:
            return
        print(f"\nsimpler {summary['mode']}: {summary['policy']}")
        print(pd.DataFrame(rows).set_index("task").to_string(float_format="%.3f", na_rep="-"))
        groups = pd.DataFrame.from_dict(summary["groups"], orient="index")[["family", "rate", "partial_rate"]]
        print("\nper group")
        print(groups.to_string(float_format="%.3f", na_rep="-"))

    def finish(self, opts: SimplerOptions, out: Path) -> None:
        if opts.real_results:
            from bench import simreal_cli

            simreal_cli.main(
                ["--runs", str(out.parent), "--real-results", opts.real_results, "--mode", opts.mode]
            )

    def validate_summary(self, summary: Mapping[str, Any], path: Path) -> None:
        from envs.simpler import MODES

        optional_rate = "a rate in [0, 1] or null"
        require(summary, "mode", path, lambda v: v in MODES, f"one of {', '.join(MODES)}")
        for key in ("tasks", "groups"):
            require(summary, key, path, lambda v: isinstance(v, dict) and bool(v), "a non-empty mapping")
        for task, entry in summary["tasks"].items():
            where = f"{path}: tasks.{task}"
            entry = _mapping(entry, where)
            require(entry, "group", where, lambda v: v in summary["groups"], "a group listed under 'groups'")
            _check_cell(entry, where)
            require(entry, "aggregate_rate", where, is_rate, "a rate in [0, 1]")
            require(entry, "partial_rate", where, lambda v: v is None or is_rate(v), optional_rate)
            for name, variant in (entry.get("variants") or {}).items():
                at = f"{where}.variants.{name}"
                _check_cell(_mapping(variant, at), at)
                require(variant, "in_aggregate", at, lambda v: isinstance(v, bool), "true or false")
        for group, entry in summary["groups"].items():
            where = f"{path}: groups.{group}"
            entry = _mapping(entry, where)
            require(entry, "rate", where, is_rate, "a rate in [0, 1]")
            require(entry, "partial_rate", where, lambda v: v is None or is_rate(v), optional_rate)

    def regression_counts(self, summary: Mapping[str, Any]) -> Counts:
        """Per task, successes over all its episodes (every variant); episodes stand in for chains and
        the mode for the scene (a visual-matching baseline is not compared with variant aggregation)."""
        from bench.regression.counts import Counts, run_setting

        per_task = {}
        for task, entry in summary["tasks"].items():
            cells = (entry.get("variants") or {task: entry}).values()
            per_task[task] = (sum(c["successes"] for c in cells), sum(c["trials"] for c in cells))
        n = sum(trials for _, trials in per_task.values())
        return Counts(
            n,
            (),
            per_task,
            int(summary.get("n_errors", 0)),
            {**run_setting(summary), "scene": summary["mode"]},
        )

    def leaderboard_table(self) -> LeaderboardTable:
        from bench.tables import SIMPLER_TABLE

        return SIMPLER_TABLE

    def figures(self, runs: Sequence[Mapping[str, Any]], out: Path, **options: Any) -> list[Path]:
        from bench.figures.simpler import simpler_figures

        return simpler_figures(runs, out, **options) if runs else []
