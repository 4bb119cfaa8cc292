"""Our oracle against CALVIN's ``Tasks`` on synthetic state pairs: every verdict of every task agrees.

With a calvin_env checkout (``CALVIN_ENV_DIR``, or ``../shared/calvin_env`` beside the repository)
CALVIN's own ``Tasks`` judges the pairs; the stored verdicts (made by it) are checked always.
"""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

from envs.calvin.official import oracle
from envs.calvin.official.checkout import DIGESTS, CalvinEnvUnavailable, find_checkout
from envs.calvin.official.info import from_calvin_info, to_calvin_info
from envs.calvin.official.pairs import DEFAULT_SEED, synthetic_pairs
from envs.calvin.tasks import RULES, TASK_NAMES
from tests.calvin_checkout import calvin_checkout

ROOT, WHY_NOT = calvin_checkout()
needs_checkout = pytest.mark.skipif(ROOT is None, reason=WHY_NOT)


@pytest.fixture(scope="module")
def pairs() -> list:
    return synthetic_pairs()


@pytest.fixture(scope="module")
def ours(pairs) -> dict:
    return oracle.our_verdicts(pairs)


def _disagreements(ours: dict, reference: dict) -> dict[str, int]:
    return {t: int((ours[t] != reference[t]).sum()) for t in TASK_NAMES if (ours[t] != reference[t]).any()}


def test_ours_agree_with_the_stored_verdicts_on_every_task(pairs, ours):
    stored = oracle.stored_verdicts(pairs)
    assert _disagreements(ours, stored) == {}
    table = oracle.differential(pairs, stored, ours=lambda _pairs: ours)
    assert all(row["agreement"] == 1.0 and row["ours_true"] == row["calvin_true"] for row in table.values())


def test_the_pairs_exercise_every_task_both_ways(pairs):
    stored = oracle.stored_verdicts(pairs)
    for task in TASK_NAMES:
        assert 4 <= stored[task].sum() <= len(pairs) - 4, task


@needs_checkout
def test_ours_agree_with_calvins_tasks_on_every_task(pairs, ours):
    live = oracle.calvin_verdicts(pairs, oracle.calvin_tasks(ROOT))
    assert _disagreements(ours, live) == {}
    assert _disagreements(live, oracle.stored_verdicts(pairs)) == {}  # the stored file is CALVIN's


def _case(
    start_red: set, end_red: set, robot_start: set, robot_end: set, turn: float = 0.0, dx: float = 0.0
) -> tuple:
    """A pair where only the red block (and what the robot touches) changes."""
    info = {
        "joints": {"slider": 0.0, "drawer": 0.0, "button": 0.0, "switch": 0.0},
        "lights": {"lightbulb": 0, "led": 0},
        "robot": {"contacts": frozenset(robot_start)},
        "blocks": {
            c: {
                "pos": np.array([x, -0.12, 0.46]),
                "orn": np.array([0.0, 0.0, 0.0, 1.0]),
                "lin_vel": np.zeros(3),
                "ang_vel": np.zeros(3),
                "contacts": frozenset({"table"}),
            }
            for c, x in (("red", 0.0), ("blue", 0.2), ("pink", -0.2))
        },
    }
    info["blocks"]["red"]["contacts"] = frozenset(start_red)
    end = copy.deepcopy(info)
    end["robot"]["contacts"] = frozenset(robot_end)
    red = end["blocks"]["red"]
    red["contacts"], red["pos"] = frozenset(end_red), red["pos"] + [dx, 0.0, 0.0]
    red["orn"] = np.array([0.0, 0.0, np.sin(np.radians(turn) / 2), np.cos(np.radians(turn) / 2)])
    return info, end


#: (task, pair, CALVIN's verdict): the four places where CALVIN differs from a plain reading of its rules.
FOUR_DIFFERENCES = [
    ("push_red_block_right", _case({"table", "robot"}, {"table"}, {"red_block"}, set(), dx=0.15), True),
    ("push_into_drawer", _case({"table"}, {"drawer", "robot"}, set(), {"red_block"}), True),
    ("push_into_drawer", _case({"table", "robot"}, {"drawer"}, {"red_block"}, set()), False),
    ("place_in_drawer", _case({"robot"}, {"drawer"}, {"red_block", "table"}, {"table"}), False),
    ("place_in_drawer", _case({"robot"}, {"drawer"}, {"red_block"}, set()), True),
    ("rotate_red_block_left", _case({"table"}, {"table"}, set(), set(), turn=180.0), False),
    ("rotate_red_block_left", _case({"table"}, {"table"}, set(), set(), turn=120.0), True),
]


@pytest.mark.parametrize("task,pair,verdict", FOUR_DIFFERENCES)
def test_the_four_differences_are_judged_as_calvin_judges_them(task, pair, verdict):
    assert bool(RULES[task](*pair)) is verdict


@needs_checkout
@pytest.mark.parametrize("task,pair,verdict", FOUR_DIFFERENCES)
def test_calvins_tasks_judge_the_four_differences_so(task, pair, verdict):
    tasks = oracle.calvin_tasks(ROOT)
    start, end = (to_calvin_info(info) for info in pair)
    assert (task in tasks.get_task_info(start, end)) is verdict


def test_infos_survive_the_round_trip_through_calvins_format(pairs):
    for start, end in pairs[:200]:
        for info in (start, end):
            back = from_calvin_info(to_calvin_info(info))
            assert back["robot"] == info["robot"] and back["lights"] == info["lights"]
            assert back["joints"] == pytest.approx(info["joints"])
            for color, block in info["blocks"].items():
                assert back["blocks"][color]["contacts"] == block["contacts"]
                np.testing.assert_array_equal(back["blocks"][color]["orn"], block["orn"])


def test_stored_verdicts_refuse_other_pairs(pairs, ours, tmp_path):
    with pytest.raises(ValueError, match="verdicts for other pairs"):
        oracle.stored_verdicts(pairs[:10])
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps(oracle.verdicts_record(pairs, ours, seed=DEFAULT_SEED)))
    assert _disagreements(oracle.stored_verdicts(pairs, path), ours) == {}


def test_unknown_contact_names_are_refused(pairs):
    info = copy.deepcopy(pairs[0][0])
    info["blocks"]["red"]["contacts"] = frozenset({"shelf"})
    with pytest.raises(
        ValueError, match="unknown contact name 'shelf'; valid: blue_block, button, .*slider_shelf"
    ):
        to_calvin_info(info)


def test_a_missing_checkout_is_one_line_saying_how_to_get_it(tmp_path):
    with pytest.raises(
        CalvinEnvUnavailable, match=r"is not a folder; git clone https://github.com/mees/calvin_env"
    ):
        find_checkout(tmp_path / "nowhere")
    with pytest.raises(CalvinEnvUnavailable, match=r"lacks calvin_env/envs/tasks.py; git clone"):
        find_checkout(tmp_path)


@needs_checkout
def test_a_checkout_of_another_version_is_refused(tmp_path):
    for rel in DIGESTS:  # the checked files only, writable
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    assert find_checkout(tmp_path) == tmp_path.resolve()
    tasks = tmp_path / "calvin_env" / "envs" / "tasks.py"
    tasks.write_text(tasks.read_text().replace("z_threshold=180", "z_threshold=190"))
    with pytest.raises(
        CalvinEnvUnavailable, match=r"is not commit 797142c \(calvin_env/envs/tasks.py differs\)"
    ):
        find_checkout(tmp_path)
