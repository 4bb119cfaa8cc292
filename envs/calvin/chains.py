"""Symbolic task chains of the CALVIN long-horizon evaluation.

A *symbolic state* is a dict with the keys of :data:`STATE_DOMAINS`: ``led`` and ``lightbulb``
(0/1), ``slider`` (``"left"``/``"right"``), ``drawer`` (``"open"``/``"closed"``), the place of
each block (``red_block``, ``blue_block``, ``pink_block``: ``"table"``, ``"slider_left"``,
``"slider_right"``, ``"drawer"``, ``"grasped"``, ``"stacked_top"``, ``"stacked_bottom"``) and
whether the robot holds a block (``grasped``, 0/1).

Each of the 34 tasks has one or more rules ``(condition, effect)``. A task is possible in a state
when exactly one of its rules' conditions holds (a condition value is either the required value or
a tuple of allowed values); doing it applies that rule's effect. Only ``stack_block`` can have two
rules holding at once (a held block and two blocks on the table): that is ambiguous, so, as in
CALVIN's generator, the task is not possible there (the official chains never contain it).

A chain is 5 tasks, each possible in the state left by the previous one, from 5 different
categories. :func:`generate_chains` draws them as CALVIN does (per-state seeded rejection
sampling, then a seeded shuffle of the (state, chain) pairs); with the defaults it reproduces
CALVIN's official 1000 chains, shipped as ``data/calvin_eval_sequences.json`` and loaded by
:func:`official_chains`.

CLI: ``python -m envs.calvin.chains --n 1000 --seed 0 --out chains.json`` writes chains in the
layout of the shipped file; ``python -m envs.calvin.chains --check`` compares the generator with it.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "BLOCKS",
    "CHAIN_LENGTH",
    "STATE_DOMAINS",
    "TASKS",
    "TASK_CATEGORIES",
    "Chain",
    "apply_task",
    "chains_to_json",
    "check_task_name",
    "generate_chains",
    "initial_states",
    "is_valid_chain",
    "official_chains",
    "valid_tasks",
]

BLOCKS = ("red", "blue", "pink")
CHAIN_LENGTH = 5
N_OFFICIAL_CHAINS = 1000
OFFICIAL_FILE = "data/calvin_eval_sequences.json"

_BLOCK_PLACES = ("table", "slider_left", "slider_right", "drawer", "grasped", "stacked_top", "stacked_bottom")
STATE_DOMAINS: dict[str, tuple[Any, ...]] = {
    "led": (0, 1),
    "lightbulb": (0, 1),
    "slider": ("left", "right"),
    "drawer": ("open", "closed"),
    "red_block": _BLOCK_PLACES,
    "blue_block": _BLOCK_PLACES,
    "pink_block": _BLOCK_PLACES,
    "grasped": (0, 1),
}
_STATE_KEYS = tuple(STATE_DOMAINS)

TASK_CATEGORIES: dict[str, int] = {
    "rotate_red_block_right": 1,
    "rotate_red_block_left": 1,
    "rotate_blue_block_right": 1,
    "rotate_blue_block_left": 1,
    "rotate_pink_block_right": 1,
    "rotate_pink_block_left": 1,
    "push_red_block_right": 1,
    "push_red_block_left": 1,
    "push_blue_block_right": 1,
    "push_blue_block_left": 1,
    "push_pink_block_right": 1,
    "push_pink_block_left": 1,
    "move_slider_left": 2,
    "move_slider_right": 2,
    "open_drawer": 3,
    "close_drawer": 3,
    "lift_red_block_table": 4,
    "lift_red_block_slider": 5,
    "lift_red_block_drawer": 6,
    "lift_blue_block_table": 4,
    "lift_blue_block_slider": 5,
    "lift_blue_block_drawer": 6,
    "lift_pink_block_table": 4,
    "lift_pink_block_slider": 5,
    "lift_pink_block_drawer": 6,
    "place_in_slider": 7,
    "place_in_drawer": 7,
    "turn_on_lightbulb": 8,
    "turn_off_lightbulb": 8,
    "turn_on_led": 8,
    "turn_off_led": 8,
    "push_into_drawer": 9,
    "stack_block": 10,
    "unstack_block": 11,
}
TASKS: tuple[str, ...] = tuple(TASK_CATEGORIES)

# --- task rules -----------------------------------------------------------------------------------
CondValue = int | str | tuple[Any, ...]
Rule = tuple[Mapping[str, CondValue], Mapping[str, Any]]

_STACK_PAIRS = (
    ("red", "blue"),
    ("red", "pink"),
    ("blue", "red"),
    ("blue", "pink"),
    ("pink", "red"),
    ("pink", "blue"),
)
_IN_SLIDER = ("slider_right", "slider_left")


def _build_rules() -> dict[str, tuple[Rule, ...]]:
    """The (condition, effect) rules of every task, in CALVIN's rule-table order.

    The insertion order matters: :func:`generate_chains` draws task names from this order (it is
    the order of CALVIN's rule table, which puts stack/unstack before the lights, unlike
    :data:`TASK_CATEGORIES`).
    """
    rules: dict[str, tuple[Rule, ...]] = {}
    for verb in ("rotate", "push"):
        for color in BLOCKS:
            for side in ("right", "left"):
                key = f"{color}_block"
                rules[f"{verb}_{color}_block_{side}"] = (({key: "table", "grasped": 0}, {key: "table"}),)
    rules["move_slider_left"] = (({"slider": "right", "grasped": 0}, {"slider": "left"}),)
    rules["move_slider_right"] = (({"slider": "left", "grasped": 0}, {"slider": "right"}),)
    rules["open_drawer"] = (({"drawer": "closed", "grasped": 0}, {"drawer": "open"}),)
    rules["close_drawer"] = (({"drawer": "open", "grasped": 0}, {"drawer": "closed"}),)
    for color in BLOCKS:
        key = f"{color}_block"
        lifted = {key: "grasped", "grasped": 1}
        rules[f"lift_{color}_block_table"] = (({key: "table", "grasped": 0}, lifted),)
        rules[f"lift_{color}_block_slider"] = (
            ({key: "slider_left", "slider": "right", "grasped": 0}, lifted),
            ({key: "slider_right", "slider": "left", "grasped": 0}, lifted),
        )
        rules[f"lift_{color}_block_drawer"] = (({key: "drawer", "drawer": "open", "grasped": 0}, lifted),)
    place_slider: list[Rule] = []
    for color in BLOCKS:
        key = f"{color}_block"
        place_slider.append(
            ({key: "grasped", "slider": "right", "grasped": 1}, {key: "slider_right", "grasped": 0})
        )
        place_slider.append(
            ({key: "grasped", "slider": "left", "grasped": 1}, {key: "slider_left", "grasped": 0})
        )
    rules["place_in_slider"] = tuple(place_slider)
    rules["place_in_drawer"] = tuple(
        ({f"{c}_block": "grasped", "drawer": "open", "grasped": 1}, {f"{c}_block": "drawer", "grasped": 0})
        for c in BLOCKS
    )
    rules["stack_block"] = tuple(
        (
            {f"{top}_block": "grasped", f"{bottom}_block": "table", "grasped": 1},
            {f"{top}_block": "stacked_top", f"{bottom}_block": "stacked_bottom", "grasped": 0},
        )
        for top, bottom in _STACK_PAIRS
    )
    rules["unstack_block"] = tuple(
        (
            {f"{top}_block": "stacked_top", f"{bottom}_block": "stacked_bottom", "grasped": 0},
            {f"{top}_block": "table", f"{bottom}_block": "table"},
        )
        for top, bottom in _STACK_PAIRS
    )
    for light in ("lightbulb", "led"):
        rules[f"turn_on_{light}"] = (({light: 0, "grasped": 0}, {light: 1}),)
        rules[f"turn_off_{light}"] = (({light: 1, "grasped": 0}, {light: 0}),)
    push_into: list[Rule] = []
    for color in BLOCKS:
        others = {f"{c}_block": _IN_SLIDER for c in BLOCKS if c != color}
        cond = {f"{color}_block": "table", **others, "drawer": "open", "grasped": 0}
        push_into.append((cond, {f"{color}_block": "drawer", "grasped": 0}))
    rules["push_into_drawer"] = tuple(push_into)
    assert set(rules) == set(TASK_CATEGORIES)
    return rules


_RULES = _build_rules()
_DRAW_ORDER: tuple[str, ...] = tuple(_RULES)  # order in which generate_chains draws task names


def _holds(state: Mapping[str, Any], condition: Mapping[str, CondValue]) -> bool:
    for key, want in condition.items():
        have = state[key]
        if isinstance(want, tuple):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def _matching_effects(state: Mapping[str, Any], task: str) -> list[Mapping[str, Any]]:
    return [effect for cond, effect in _RULES[task] if _holds(state, cond)]


# --- public helpers -------------------------------------------------------------------------------
def check_task_name(name: str) -> str:
    """Return ``name`` if it is one of the 34 tasks, else raise ValueError listing the valid names."""
    if name not in TASK_CATEGORIES:
        raise ValueError(f"unknown CALVIN task {name!r}; valid tasks: {', '.join(TASKS)}")
    return name


def _check_state(state: Mapping[str, Any]) -> None:
    missing = [k for k in _STATE_KEYS if k not in state]
    extra = [k for k in state if k not in STATE_DOMAINS]
    if missing or extra:
        raise ValueError(f"bad symbolic state {dict(state)}: missing keys {missing}, unknown keys {extra}")
    for key, domain in STATE_DOMAINS.items():
        if state[key] not in domain:
            raise ValueError(f"bad symbolic state: {key}={state[key]!r}, expected one of {domain}")


def _describe_unmet(state: Mapping[str, Any], task: str) -> str:
    parts = []
    for cond, _ in _RULES[task]:
        unmet = [
            f"{k}={state[k]!r} (needs {' or '.join(map(repr, v)) if isinstance(v, tuple) else repr(v)})"
            for k, v in cond.items()
            if not _holds(state, {k: v})
        ]
        parts.append(", ".join(unmet))
    return " | ".join(parts)


def apply_task(state: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The symbolic state after doing ``task`` in ``state`` (a new dict; ``state`` is untouched).

    Raises ValueError naming the task and the unmet conditions when no rule holds, and when more
    than one holds (ambiguous, see the module docstring).
    """
    check_task_name(task)
    _check_state(state)
    effects = _matching_effects(state, task)
    if len(effects) == 1:
        return {**state, **effects[0]}
    if not effects:
        raise ValueError(
            f"task {task!r} is not possible in state {dict(state)}: unmet {_describe_unmet(state, task)}"
        )
    if len(effects) > 1:
        raise ValueError(
            f"task {task!r} is ambiguous in state {dict(state)}: {len(effects)} of its rules hold "
            "(e.g. stack_block with two blocks on the table), so it is not a valid step"
        )
    raise AssertionError("unreachable")


def valid_tasks(state: Mapping[str, Any]) -> list[str]:
    """The tasks possible in ``state``, in :data:`TASKS` order."""
    _check_state(state)
    return [t for t in TASKS if len(_matching_effects(state, t)) == 1]


def is_valid_chain(state: Mapping[str, Any], tasks: Sequence[str]) -> bool:
    """True when every task is possible in turn from ``state`` and no two share a category.

    Unknown task names and malformed states raise ValueError. The length is not checked (official
    chains have 5).
    """
    for task in tasks:
        check_task_name(task)
    _check_state(state)
    if len({TASK_CATEGORIES[t] for t in tasks}) != len(tasks):
        return False
    current: Mapping[str, Any] = state
    for task in tasks:
        effects = _matching_effects(current, task)
        if len(effects) != 1:
            return False
        current = {**current, **effects[0]}
    return True


def initial_states() -> list[dict[str, Any]]:
    """CALVIN's 192 start states, in generation order (fresh dicts on each call)."""
    return [dict(state) for state in _initial_states()]


@functools.cache
def _initial_states() -> tuple[dict[str, Any], ...]:
    domains = {
        "led": (0, 1),
        "lightbulb": (0, 1),
        "slider": ("right", "left"),
        "drawer": ("closed", "open"),
        "red_block": ("table", "slider_right", "slider_left"),
        "blue_block": ("table", "slider_right", "slider_left"),
        "pink_block": ("table", "slider_right", "slider_left"),
        "grasped": (0,),
    }
    states = []
    for values in itertools.product(*domains.values()):
        blocks = values[4:7]
        if (
            blocks.count("table") in (1, 2)
            and blocks.count("slider_right") < 2
            and blocks.count("slider_left") < 2
        ):
            states.append(dict(zip(domains, values, strict=True)))
    return tuple(states)


# --- chains ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chain:
    """One evaluation chain: its position in the list, the start state and 5 task names."""

    index: int
    state: dict
    tasks: tuple[str, ...]


class _TransitionTable:
    """All symbolic states reachable from the start states, as ids, and their transitions.

    ``next[s, j]`` is the id of the state after task ``_DRAW_ORDER[j]`` in state ``s``, or the
    sink id ``len(states)`` when the task is not possible (the sink maps to itself).
    """

    def __init__(self) -> None:
        keys: list[tuple[Any, ...]] = [tuple(st[k] for k in _STATE_KEYS) for st in _initial_states()]
        ids = {key: i for i, key in enumerate(keys)}
        rows: list[list[tuple[Any, ...] | None]] = []
        pos = 0
        while pos < len(keys):  # breadth-first over reachable states
            state = dict(zip(_STATE_KEYS, keys[pos], strict=True))
            row: list[tuple[Any, ...] | None] = []
            for task in _DRAW_ORDER:
                effects = _matching_effects(state, task)
                if len(effects) != 1:
                    row.append(None)
                    continue
                nxt = tuple({**state, **effects[0]}[k] for k in _STATE_KEYS)
                if nxt not in ids:
                    ids[nxt] = len(keys)
                    keys.append(nxt)
                row.append(nxt)
            rows.append(row)
            pos += 1
        self.sink = len(keys)
        self.ids = ids
        self.next = np.full((self.sink + 1, len(_DRAW_ORDER)), self.sink, dtype=np.int32)
        for i, row in enumerate(rows):
            for j, nxt in enumerate(row):
                if nxt is not None:
                    self.next[i, j] = ids[nxt]


@functools.cache
def _transition_table() -> _TransitionTable:
    return _TransitionTable()


# one bit per category: a draw has 5 distinct categories iff the OR of its bits equals their sum
_CATEGORY_BITS = np.array([1 << TASK_CATEGORIES[t] for t in _DRAW_ORDER], dtype=np.int64)
_MAX_DRAWS = 50_000_000


def _state_seed(seed: int, i: int) -> int:
    # seed 0 gives CALVIN's per-state seed i
    return (seed * 100003 + i) % 2**32


def _chains_for_state(state_id: int, count: int, rng: np.random.RandomState) -> list[tuple[str, ...]]:
    """Rejection-sample ``count`` chains for start state ``state_id`` exactly as CALVIN does.

    CALVIN draws ``rng.choice(task_names, size=5, replace=False)`` until it has ``count`` chains.
    Without probabilities that call is ``rng.permutation(34)[:5]`` (shuffle ``arange(34)``), so we
    shuffle rows of ``arange(34)`` in batches, consuming exactly the same random numbers, and test
    a whole batch at once; the first ``count`` accepted draws, in draw order, are CALVIN's. Drawing
    past the last accepted one does not matter: every state has its own generator.
    """
    table = _transition_table()
    n_tasks = len(_DRAW_ORDER)
    results: list[tuple[str, ...]] = []
    draws = 0
    batch = 4096  # a chain takes about 7000 draws on average; a fixed batch wastes ~5 %
    while len(results) < count:
        if draws > _MAX_DRAWS:
            raise RuntimeError(f"could not draw {count} chains for start state {state_id} in {draws} draws")
        perms = np.empty((batch, n_tasks), dtype=np.int64)
        perms[:] = np.arange(n_tasks)
        for row in perms:
            rng.shuffle(row)
        draws += batch
        idx = perms[:, :CHAIN_LENGTH]
        bits = _CATEGORY_BITS[idx]
        ok = np.bitwise_or.reduce(bits, axis=1) == bits.sum(axis=1)
        cur = np.full(batch, state_id, dtype=np.int32)
        for k in range(CHAIN_LENGTH):
            cur = table.next[cur, idx[:, k]]
        ok &= cur != table.sink
        for row in idx[ok][: count - len(results)].tolist():
            results.append(tuple(_DRAW_ORDER[j] for j in row))
    return results


def generate_chains(n: int = N_OFFICIAL_CHAINS, seed: int = 0) -> list[Chain]:
    """Draw ``n`` chains over the 192 start states.

    Each start state gets ``n / 192`` chains (sizes of ``np.array_split``), drawn with
    ``RandomState(seed * 100003 + i)`` for state ``i``; the (state, chain) pairs are then shuffled
    with ``RandomState(seed)``. ``generate_chains(1000, 0)`` equals :func:`official_chains`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    states = _initial_states()
    sizes = [len(part) for part in np.array_split(np.arange(n), len(states))]
    pairs: list[tuple[int, tuple[str, ...]]] = []
    for i, count in enumerate(sizes):
        rng = np.random.RandomState(_state_seed(seed, i))
        pairs.extend((i, tasks) for tasks in _chains_for_state(i, count, rng))
    # CALVIN shuffled the list of (state, chain) pairs with the legacy global RNG seeded 0;
    # shuffling a list of positions with the same generator gives the same permutation.
    order = list(range(len(pairs)))
    np.random.RandomState(seed).shuffle(order)
    return [Chain(k, dict(states[pairs[j][0]]), pairs[j][1]) for k, j in enumerate(order)]


@functools.cache
def _official_raw() -> tuple[tuple[tuple[tuple[str, Any], ...], tuple[str, ...]], ...]:
    text = resources.files("envs.calvin").joinpath(OFFICIAL_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return tuple((tuple(state.items()), tuple(tasks)) for state, tasks in data["sequences"])


def official_chains() -> list[Chain]:
    """CALVIN's official 1000 evaluation chains, in their order (loaded once, fresh objects per call)."""
    return [Chain(k, dict(state), tasks) for k, (state, tasks) in enumerate(_official_raw())]


def chains_to_json(chains: Iterable[Chain], **extra: Any) -> dict[str, Any]:
    """The shipped file's JSON layout: ``sequences`` ([state, tasks] pairs), ``task_counts`` and
    ``first_task_counts`` (most frequent first), ``n_distinct_initial_states``, plus ``extra``."""
    chains = list(chains)
    task_counts = Counter(t for c in chains for t in c.tasks)
    first_counts = Counter(c.tasks[0] for c in chains if c.tasks)
    distinct = {tuple(sorted(c.state.items())) for c in chains}

    def ranked(counts: Counter[str]) -> dict[str, int]:  # as in the shipped file: count down, then name
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    return {
        "sequences": [[dict(c.state), list(c.tasks)] for c in chains],
        "task_counts": ranked(task_counts),
        "first_task_counts": ranked(first_counts),
        "n_distinct_initial_states": len(distinct),
        **extra,
    }


def _compare(generated: Sequence[Chain], official: Sequence[Chain]) -> list[str]:
    problems = []
    if len(generated) != len(official):
        problems.append(f"generated {len(generated)} chains, the shipped file has {len(official)}")
    for g, o in zip(generated, official, strict=False):  # lengths compared above
        if g.state != o.state or g.tasks != o.tasks:
            problems.append(
                f"chain {g.index}: generated {g.state} {list(g.tasks)} != shipped {o.state} {list(o.tasks)}"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m envs.calvin.chains", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=N_OFFICIAL_CHAINS, help="number of chains (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (0 reproduces CALVIN's chains)")
    parser.add_argument("--out", help="write the chains to this JSON file")
    parser.add_argument(
        "--check", action="store_true", help="compare generate_chains(1000, 0) with the shipped file"
    )
    args = parser.parse_args(argv)
    if not args.check and not args.out:
        parser.error("give --out FILE and/or --check")
    status = 0
    generated: list[Chain] | None = None
    if args.check:
        t0 = time.perf_counter()
        generated = generate_chains(N_OFFICIAL_CHAINS, 0)
        elapsed = time.perf_counter() - t0
        problems = _compare(generated, official_chains())
        if problems:
            print(f"MISMATCH: {len(problems)} difference(s) with {OFFICIAL_FILE}; first: {problems[0]}")
            status = 1
        else:
            print(
                f"OK: generate_chains(1000, seed=0) reproduces the {len(generated)} shipped chains exactly ({elapsed:.1f} s)"
            )
    if args.out:
        t0 = time.perf_counter()
        same = generated is not None and (args.n, args.seed) == (N_OFFICIAL_CHAINS, 0)
        chains = generated if same and generated is not None else generate_chains(args.n, args.seed)
        data = chains_to_json(chains, n=args.n, seed=args.seed)
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        print(f"wrote {len(chains)} chains to {args.out} ({time.perf_counter() - t0:.1f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
