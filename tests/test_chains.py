"""The symbolic chain generator and CALVIN's official 1000 evaluation chains."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import numpy as np
import pytest

from envs.calvin import chains as C
from envs.calvin.chains import (
    TASK_CATEGORIES,
    TASKS,
    Chain,
    apply_task,
    check_task_name,
    generate_chains,
    initial_states,
    is_valid_chain,
    official_chains,
    valid_tasks,
)

EXPECTED_CATEGORIES = [
    ("rotate_red_block_right", 1),
    ("rotate_red_block_left", 1),
    ("rotate_blue_block_right", 1),
    ("rotate_blue_block_left", 1),
    ("rotate_pink_block_right", 1),
    ("rotate_pink_block_left", 1),
    ("push_red_block_right", 1),
    ("push_red_block_left", 1),
    ("push_blue_block_right", 1),
    ("push_blue_block_left", 1),
    ("push_pink_block_right", 1),
    ("push_pink_block_left", 1),
    ("move_slider_left", 2),
    ("move_slider_right", 2),
    ("open_drawer", 3),
    ("close_drawer", 3),
    ("lift_red_block_table", 4),
    ("lift_red_block_slider", 5),
    ("lift_red_block_drawer", 6),
    ("lift_blue_block_table", 4),
    ("lift_blue_block_slider", 5),
    ("lift_blue_block_drawer", 6),
    ("lift_pink_block_table", 4),
    ("lift_pink_block_slider", 5),
    ("lift_pink_block_drawer", 6),
    ("place_in_slider", 7),
    ("place_in_drawer", 7),
    ("turn_on_lightbulb", 8),
    ("turn_off_lightbulb", 8),
    ("turn_on_led", 8),
    ("turn_off_led", 8),
    ("push_into_drawer", 9),
    ("stack_block", 10),
    ("unstack_block", 11),
]

# CALVIN draws task names in the order of its rule table: stack/unstack come before the lights.
CALVIN_DRAW_ORDER = [t for t, _ in EXPECTED_CATEGORIES if t not in ("stack_block", "unstack_block")]
_i = CALVIN_DRAW_ORDER.index("place_in_drawer") + 1
CALVIN_DRAW_ORDER[_i:_i] = ["stack_block", "unstack_block"]

STATE0 = {
    "led": 0,
    "lightbulb": 0,
    "slider": "right",
    "drawer": "closed",
    "red_block": "table",
    "blue_block": "table",
    "pink_block": "slider_right",
    "grasped": 0,
}


def _key(state: dict) -> tuple:
    return tuple(sorted(state.items()))


@pytest.fixture(scope="module")
def shipped() -> dict:
    text = resources.files("envs.calvin").joinpath("data/calvin_eval_sequences.json").read_text()
    return json.loads(text)


@pytest.fixture(scope="module")
def official() -> list[Chain]:
    return official_chains()


# --- tasks and states -------------------------------------------------------------------------------
def test_task_categories_exact():
    assert list(TASK_CATEGORIES.items()) == EXPECTED_CATEGORIES
    assert tuple(t for t, _ in EXPECTED_CATEGORIES) == TASKS
    assert len(TASKS) == 34 and len(set(TASK_CATEGORIES.values())) == 11


def test_initial_states():
    states = initial_states()
    assert len(states) == 192
    assert len({_key(s) for s in states}) == 192
    assert states[0] == STATE0
    for s in states:
        blocks = [s[f"{c}_block"] for c in ("red", "blue", "pink")]
        assert blocks.count("table") in (1, 2)
        assert blocks.count("slider_left") <= 1 and blocks.count("slider_right") <= 1
        assert set(blocks) <= {"table", "slider_left", "slider_right"}
        assert s["grasped"] == 0
    # every combination of the lights, slider and drawer appears with each block layout
    assert Counter((s["led"], s["lightbulb"], s["slider"], s["drawer"]) for s in states) == {
        k: 12 for k in Counter((s["led"], s["lightbulb"], s["slider"], s["drawer"]) for s in states)
    }
    states[0]["led"] = 1  # fresh copies: mutating one does not leak
    assert initial_states()[0] == STATE0


def test_check_task_name():
    assert check_task_name("open_drawer") == "open_drawer"
    with pytest.raises(ValueError, match="open_drawer") as err:
        check_task_name("open_the_drawer")
    assert "unstack_block" in str(err.value)  # lists the valid names


# --- preconditions and effects ----------------------------------------------------------------------
def test_valid_tasks_of_first_state():
    expected = {
        "rotate_red_block_right",
        "rotate_red_block_left",
        "rotate_blue_block_right",
        "rotate_blue_block_left",
        "push_red_block_right",
        "push_red_block_left",
        "push_blue_block_right",
        "push_blue_block_left",
        "move_slider_left",
        "open_drawer",
        "lift_red_block_table",
        "lift_blue_block_table",
        "turn_on_lightbulb",
        "turn_on_led",
    }
    got = valid_tasks(STATE0)
    assert set(got) == expected
    assert got == [t for t in TASKS if t in expected]


def test_apply_task_effects():
    s = apply_task(STATE0, "move_slider_left")
    assert s["slider"] == "left" and STATE0["slider"] == "right"  # input untouched
    # pink sits in the right part; it is reachable once the door is moved left
    assert "lift_pink_block_slider" not in valid_tasks(STATE0)
    s = apply_task(s, "lift_pink_block_slider")
    assert s["pink_block"] == "grasped" and s["grasped"] == 1
    assert valid_tasks(s) == ["place_in_slider"]  # drawer closed, two blocks on the table: stack is ambiguous
    s2 = apply_task(s, "place_in_slider")
    assert s2["pink_block"] == "slider_left" and s2["grasped"] == 0
    s = apply_task(apply_task(STATE0, "lift_red_block_table"), "stack_block")
    assert (s["red_block"], s["blue_block"], s["grasped"]) == ("stacked_top", "stacked_bottom", 0)
    s = apply_task(s, "unstack_block")
    assert (s["red_block"], s["blue_block"]) == ("table", "table")
    on = apply_task(apply_task(STATE0, "turn_on_led"), "turn_on_lightbulb")
    assert (on["led"], on["lightbulb"]) == (1, 1)


def test_push_into_drawer_and_lift_from_drawer():
    state = dict(STATE0, drawer="open", blue_block="slider_left")
    assert "push_into_drawer" in valid_tasks(state)
    s = apply_task(state, "push_into_drawer")
    assert s["red_block"] == "drawer"
    s = apply_task(s, "lift_red_block_drawer")
    assert s["red_block"] == "grasped"
    s = apply_task(s, "place_in_drawer")
    assert s["red_block"] == "drawer" and s["grasped"] == 0
    # two blocks on the table: push_into_drawer needs the other two in the slider
    assert "push_into_drawer" not in valid_tasks(dict(STATE0, drawer="open"))


def test_apply_task_errors():
    with pytest.raises(ValueError, match="open_drawer") as err:
        apply_task(dict(STATE0, drawer="open"), "open_drawer")
    assert "drawer='open'" in str(err.value) and "'closed'" in str(err.value)
    with pytest.raises(ValueError, match="lift_pink_block_table") as err:
        apply_task(STATE0, "lift_pink_block_table")
    assert "pink_block='slider_right'" in str(err.value)
    holding = apply_task(apply_task(STATE0, "move_slider_left"), "lift_pink_block_slider")
    with pytest.raises(ValueError, match="ambiguous"):
        apply_task(holding, "stack_block")  # red and blue both on the table
    with pytest.raises(ValueError, match="unknown"):
        apply_task(STATE0, "fly_away")
    with pytest.raises(ValueError, match="bad symbolic state"):
        apply_task({**STATE0, "drawer": "ajar"}, "open_drawer")


def test_is_valid_chain():
    good = ["open_drawer", "lift_red_block_table", "place_in_drawer", "turn_on_led", "move_slider_left"]
    assert is_valid_chain(STATE0, good)
    assert not is_valid_chain(STATE0, ["open_drawer", "close_drawer"])  # same category
    assert not is_valid_chain(STATE0, ["lift_red_block_table", "turn_on_led"])  # holding a block
    assert not is_valid_chain(STATE0, ["move_slider_left", "lift_pink_block_slider", "stack_block"])
    with pytest.raises(ValueError):
        is_valid_chain(STATE0, ["open_drawer", "dance"])


# --- the shipped chains -----------------------------------------------------------------------------
def test_official_chains_shape(official, shipped):
    assert len(official) == 1000
    assert [c.index for c in official] == list(range(1000))
    assert [[c.state, list(c.tasks)] for c in official] == shipped["sequences"]
    per_state = Counter(_key(c.state) for c in official)
    assert len(per_state) == 192 == shipped["n_distinct_initial_states"]
    assert set(per_state) == {_key(s) for s in initial_states()}
    assert sorted(Counter(per_state.values()).items()) == [(5, 152), (6, 40)]
    mine = official_chains()
    mine[0].state["led"] = 7  # fresh objects on each call: mutating them does not leak
    assert official_chains()[0].state == shipped["sequences"][0][0]


def test_official_chains_are_valid(official):
    for chain in official:
        assert len(chain.tasks) == 5
        assert len({TASK_CATEGORIES[t] for t in chain.tasks}) == 5
        assert is_valid_chain(chain.state, chain.tasks), chain


def test_shipped_counts_agree(official, shipped):
    counts = Counter(t for c in official for t in c.tasks)
    assert counts == shipped["task_counts"]
    assert Counter(c.tasks[0] for c in official) == shipped["first_task_counts"]
    assert set(counts) == set(TASKS)
    assert counts["place_in_slider"] == 398 and counts["open_drawer"] == 379
    assert min(counts.values()) == counts["lift_pink_block_drawer"] == 17
    data = C.chains_to_json(official)
    assert list(data["task_counts"].items()) == list(shipped["task_counts"].items())
    assert list(data["first_task_counts"].items()) == list(shipped["first_task_counts"].items())


def test_generator_reproduces_official_chains_exactly(official):
    generated = generate_chains(1000, 0)
    assert len(generated) == 1000
    mismatches = [
        g.index for g, o in zip(generated, official, strict=True) if (g.state, g.tasks) != (o.state, o.tasks)
    ]
    assert mismatches == []
    assert generated == official


# --- the generator on other seeds -------------------------------------------------------------------
def _reference_generate(n: int, seed: int) -> list[tuple[dict, tuple[str, ...]]]:
    """CALVIN's procedure written plainly (rng.choice, list-of-pairs shuffle), for small n."""
    states = initial_states()
    sizes = [len(p) for p in np.array_split(range(n), len(states))]
    pairs = []
    for i, (state, count) in enumerate(zip(states, sizes, strict=True)):
        rng = np.random.RandomState(seed * 100003 + i)
        found = []
        while len(found) < count:
            seq = tuple(str(t) for t in rng.choice(CALVIN_DRAW_ORDER, size=5, replace=False))
            if is_valid_chain(state, seq):
                found.append(seq)
        pairs.extend((state, seq) for seq in found)
    np.random.RandomState(seed).shuffle(pairs)
    return pairs


def test_generator_matches_plain_reference_on_another_seed():
    fast = generate_chains(12, seed=3)
    ref = _reference_generate(12, seed=3)
    assert [(c.state, c.tasks) for c in fast] == ref


def test_generator_deterministic():
    assert generate_chains(40, seed=5) == generate_chains(40, seed=5)


def test_other_seeds_give_other_valid_chains(official):
    # with n=96 the first 96 start states get one chain each
    by_seed = {seed: generate_chains(96, seed=seed) for seed in (1, 2)}
    first_96 = Counter(_key(s) for s in initial_states()[:96])
    for chains in by_seed.values():
        assert len(chains) == 96
        assert Counter(_key(c.state) for c in chains) == first_96
        for c in chains:
            assert len(c.tasks) == 5 and is_valid_chain(c.state, c.tasks)
    assert [c.tasks for c in by_seed[1]] != [c.tasks for c in by_seed[2]]
    assert [c.state for c in by_seed[1]] != [c.state for c in by_seed[2]]  # shuffled differently
    official_pairs = {(_key(c.state), c.tasks) for c in official}
    assert not all((_key(c.state), c.tasks) in official_pairs for c in by_seed[1])


def test_generate_chains_arguments():
    assert generate_chains(0) == []
    assert len(generate_chains(3, seed=9)) == 3
    with pytest.raises(ValueError):
        generate_chains(-1)
    with pytest.raises(ValueError):
        generate_chains(10, seed=-2)


def test_cli_writes_shipped_layout(tmp_path, capsys):
    out = tmp_path / "chains.json"
    assert C.main(["--n", "20", "--seed", "4", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"sequences", "task_counts", "first_task_counts", "n_distinct_initial_states"} <= set(data)
    assert len(data["sequences"]) == 20 and data["n_distinct_initial_states"] == 20
    assert sum(data["task_counts"].values()) == 100 and sum(data["first_task_counts"].values()) == 20
    expected = [[c.state, list(c.tasks)] for c in generate_chains(20, seed=4)]
    assert data["sequences"] == expected
    assert "wrote 20 chains" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_check(capsys):
    assert C.main(["--check"]) == 0
    assert capsys.readouterr().out.startswith("OK")
