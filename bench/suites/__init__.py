"""The Suite protocol and the registry of suites.

A suite is one module declaring a :class:`Suite` subclass: its options (a dataclass, so ``python -m
bench.run --suite X --help`` shows X's own), its units with stable keys, how to play one (a
:class:`bench.engine.Player`), how to summarise and print the records, and how its stored runs are
read (summary checks, columns, regression counts, leaderboard table, figures). Run folders, resume,
shards, workers, Ray, fail-fast, videos and provenance live once in :mod:`bench.session`. A new suite
is one module plus one line in :data:`SUITES` (or a :func:`register_suite` call).
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.engine import Player
from bench.rundir import require

if TYPE_CHECKING:
    from bench.regression.counts import Counts


class UsageError(ValueError):
    """Bad input: reported on one line with exit code 2, before anything is written."""


def option(default: Any = MISSING, help: str = "", **argparse_kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option (``help`` and argparse keywords)."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass
class CommonOptions:
    """Options of every suite."""

    policy: str | None = option(
        None,
        "policy spec: a registered name (random, expert), NAME:ARG (vla:DIR, remote:ws://...), "
        "or package.module:Class",
    )
    label: str | None = option(
        None, "name of the policy in summary.json and leaderboards (default: the --policy string)"
    )
    out: str | None = option(None, "output folder: new or empty (a folder holding anything else is refused)")
    resume: str | None = option(
        None,
        "continue the interrupted run in this folder; its config.json gives the other options "
        "(only --workers, --ray, --quiet, --record and --fail-fast may be given)",
    )
    suite: str = option("calvin", "benchmark suite")
    shard: str | None = option(
        None,
        "i/n: play only the units at positions p with p %% n == i; merge shards with python -m bench.merge",
    )
    workers: int = option(
        1, "parallel env worker processes (1 runs in-process); the policy stays in this one"
    )
    ray: str | None = option(
        None,
        "play the units on Ray actors (one per cluster CPU, each with its own policy): --ray alone starts "
        "a local Ray instance, --ray ADDRESS joins that cluster (auto, ray://host:10001); see bench.ray_backend",
        nargs="?",
        const="local",
        metavar="ADDRESS",
    )
    seed: int = option(0, "run seed: env and policy seeds derive from it and each unit's key")
    record: int = option(0, "record videos of the first N units into OUT/videos")
    quiet: bool = option(False, "no progress bar and no tables")
    fail_fast: bool = option(False, "stop the run at the first unit that ends in an error (policy or worker)")


#: Options that ``--resume`` takes from the command line; the others come from the run's config.json.
RESUMABLE = ("workers", "ray", "quiet", "record", "fail_fast")


@dataclass(frozen=True)
class LeaderboardTable:
    """A suite's section of ``bench.leaderboard``: ``build(rows, include_published)`` turns
    its rows of :func:`bench.results.runs_table` into its table (``leaderboard_<suite>.csv``, best first),
    ``markdown(table)`` into the section's text.
    """

    title: str
    build: Callable[[Any, bool], Any]
    markdown: Callable[[Any], str]


class Suite(ABC):
    """One benchmark suite. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    #: One line for ``--help``.
    description: ClassVar[str]
    #: The suite's own options (a dataclass of :func:`option` fields).
    options: ClassVar[type]
    #: What a unit is called in messages and summary keys (``chain`` -> ``n_chains``).
    unit_noun: ClassVar[str] = "unit"
    #: Whether units may run in worker processes and on Ray (False: one env, in this process).
    parallel: ClassVar[bool] = True

    def check(self, opts: Any, common: CommonOptions) -> None:  # noqa: B027 - optional hook
        """Reject bad option values with :class:`UsageError`."""

    @abstractmethod
    def plan(self, opts: Any, common: CommonOptions) -> list[Any]:
        """Every unit of the run, in order (before sharding); raises :class:`UsageError`."""

    @abstractmethod
    def unit_key(self, unit: Any) -> str:
        """The unit's stable key (what resume and merge match records by)."""

    @abstractmethod
    def record_key(self, record: Mapping[str, Any]) -> str:
        """The key of the unit a record belongs to; ``KeyError`` when the record lacks it."""

    def needed_conventions(self, opts: Any, common: CommonOptions, policy: Any) -> dict[str, str]:
        """What needs which action convention (``{"task X": "delta_pose/..."}``)."""
        return {}

    def check_policy(self, opts: Any, common: CommonOptions, policy: Any) -> None:
        """Refuse a policy whose declared action conventions miss one the run needs, naming both."""
        declared = getattr(policy, "action_conventions", None)
        if declared is None:
            return
        for what, needed in self.needed_conventions(opts, common, policy).items():
            if needed not in declared:
                raise UsageError(
                    f"policy {common.policy!r} acts in {', '.join(declared) or 'no convention'}, but {what} of "
                    f"suite {self.name} needs {needed}"
                )

    def record_mismatch(self, record: Mapping[str, Any], unit: Any, common: CommonOptions) -> str | None:
        """Why a resumed record does not belong to this run's ``unit`` (None when it does)."""
        return None

    def finish(self, opts: Any, out: Path) -> None:  # noqa: B027 - optional hook
        """Run after ``summary.json`` is written."""

    @abstractmethod
    def player(self, opts: Any, common: CommonOptions, policy: Any, video_dir: Path | None) -> Player:
        """The picklable :class:`bench.engine.Player` for this run and policy."""

    @abstractmethod
    def summarize(self, opts: Any, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The suite's part of ``summary.json`` from the records (in unit order)."""

    @abstractmethod
    def headline(self, summary: Mapping[str, Any]) -> str:
        """One line with the run's main figure, e.g. ``avg_len 3.1 over 100 chains``."""

    def unit_steps(self, record: Mapping[str, Any]) -> int:
        steps = record.get("steps", 0)
        return int(sum(steps)) if isinstance(steps, list) else int(steps)

    def print_tables(self, summary: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Print the summary's tables (not with ``--quiet``)."""

    def shard_key_fields(self) -> tuple[str, ...]:
        """Options that must agree between merged shards (all of the suite's)."""
        return tuple(f.name for f in dataclasses.fields(self.options))

    # --- stored runs: bench.results, bench.regression, bench.leaderboard, bench.figures

    def validate_summary(self, summary: Mapping[str, Any], path: Path) -> None:  # noqa: B027 - optional hook
        """Raise :class:`bench.rundir.RunFolderError` (:func:`bench.rundir.require`)
        naming ``path`` and the key when the suite's part of a stored ``summary.json`` is malformed.
        """

    def read_details(self, run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Entries :func:`bench.results.load_run` adds to a loaded run (a ``warnings`` list
        joins the run's).
        """
        return {}

    def run_columns(self, run: Mapping[str, Any], ci_method: str) -> dict[str, Any]:
        """The suite's columns in :func:`bench.results.runs_table`."""
        return {}

    def regression_counts(self, summary: Mapping[str, Any]) -> Counts:
        """What ``bench.regression`` compares: the success counts of a checked summary."""
        raise UsageError(f"suite {self.name} declares no regression counts (Suite.regression_counts)")

    def leaderboard_table(self) -> LeaderboardTable | None:
        """The suite's section of ``bench.leaderboard``; None: its runs are left out with a warning."""
        return None

    def figures(self, runs: Sequence[Mapping[str, Any]], out: Path, **options: Any) -> list[Path] | None:
        """Draw the figures of loaded whole runs into ``out`` (``options``: ``formats``, ``log``
        and ``bench.figures``'); None: the suite has no figures.
        """
        return None


#: Suite name -> "module:Class". Modules are imported only when their suite is used.
SUITES: dict[str, str] = {
    "calvin": "bench.suites.calvin:CalvinSuite",
    "simpler": "bench.suites.simpler:SimplerSuite",
    "real": "bench.suites.real:RealSuite",
}


def register_suite(name: str, target: str) -> None:
    """Register a suite class given as ``"package.module:Class"``."""
    if name in SUITES and SUITES[name] != target:
        raise ValueError(f"suite {name!r} is already registered ({SUITES[name]})")
    SUITES[name] = target


def suite_names() -> list[str]:
    return list(SUITES)


def load_object(spec: str, what: str) -> Any:
    """What a ``package.module:name`` spec names; :class:`UsageError` naming ``what`` otherwise."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise UsageError(f"{what} must look like package.module:name, got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{what} {spec!r} cannot be loaded: {exc}") from None


def suite_class(name: str) -> type[Suite]:
    """The class of suite ``name``; :class:`UsageError` listing the valid names."""
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; valid: {', '.join(SUITES)}")
    return load_object(SUITES[name], f"suite {name}")


def get_suite(name: str, **kwargs: Any) -> Suite:
    return suite_class(name)(**kwargs)


def find_suite(name: Any) -> Suite | None:
    """An instance of the registered suite ``name``; None for any other name."""
    return get_suite(name) if isinstance(name, str) and name in SUITES else None


def check_summary(summary: Mapping[str, Any], path: Path) -> Suite | None:
    """Check a stored ``summary.json`` (``suite`` and ``policy`` strings, then its suite's
    checks) and return its suite (None when unregistered).
    """
    for key in ("suite", "policy"):
        require(summary, key, path, lambda v: isinstance(v, str) and bool(v), "a non-empty string")
    suite = find_suite(summary["suite"])
    if suite is not None:
        suite.validate_summary(summary, path)
    return suite
