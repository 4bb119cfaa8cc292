"""Training and evaluation instructions of the 34 tasks."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from envs.calvin.chains import BLOCKS, TASKS
from envs.calvin.language import (
    EVAL_INSTRUCTIONS,
    TRAIN_INSTRUCTIONS,
    eval_instruction,
    normalize_instruction,
    task_from_instruction,
    train_instructions,
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _all_phrasings(task: str) -> tuple[str, ...]:
    return (*TRAIN_INSTRUCTIONS[task], EVAL_INSTRUCTIONS[task])


def test_coverage():
    assert tuple(TRAIN_INSTRUCTIONS) == TASKS
    assert tuple(EVAL_INSTRUCTIONS) == TASKS
    for task in TASKS:
        train = TRAIN_INSTRUCTIONS[task]
        assert isinstance(train, tuple) and len(train) >= 6, task
        assert len({normalize_instruction(p) for p in train}) == len(train), task  # no repeats
        assert isinstance(EVAL_INSTRUCTIONS[task], str) and EVAL_INSTRUCTIONS[task].strip()
        assert train_instructions(task) == train
        assert eval_instruction(task) == EVAL_INSTRUCTIONS[task]


def test_eval_phrasings_unseen_in_training():
    seen = {normalize_instruction(p) for phrases in TRAIN_INSTRUCTIONS.values() for p in phrases}
    for task, phrase in EVAL_INSTRUCTIONS.items():
        assert normalize_instruction(phrase) not in seen, (task, phrase)
    assert len({normalize_instruction(p) for p in EVAL_INSTRUCTIONS.values()}) == len(TASKS)


def test_every_phrasing_belongs_to_one_task():
    owners = Counter(normalize_instruction(p) for task in TASKS for p in _all_phrasings(task))
    shared = [p for p, n in owners.items() if n > 1]
    assert shared == []


def test_round_trip():
    for task in TASKS:
        for phrase in _all_phrasings(task):
            assert task_from_instruction(phrase) == task
            assert task_from_instruction(f"  {phrase.upper()} ") == task
            assert task_from_instruction(phrase.replace(" ", "   \t")) == task


def test_unknown_instruction_and_task():
    with pytest.raises(ValueError, match="no task matches"):
        task_from_instruction("do a little dance")
    with pytest.raises(ValueError, match="no task matches"):
        task_from_instruction("open the drawer please")  # exact lookup, no fuzzy matching
    with pytest.raises(ValueError, match="unknown"):
        eval_instruction("open_the_drawer")
    with pytest.raises(ValueError, match="unknown"):
        train_instructions("")


def test_phrasings_name_their_object():
    for task in TASKS:
        parts = task.split("_")
        for phrase in _all_phrasings(task):
            words = _words(phrase)
            if len(parts) > 1 and parts[1] in BLOCKS:  # rotate/push/lift with a colour
                assert parts[1] in words, (task, phrase)
                assert not (words & (set(BLOCKS) - {parts[1]})), (task, phrase)
            if parts[0] in ("rotate", "push", "move") and parts[-1] in ("left", "right"):
                side, other = parts[-1], {"left": "right", "right": "left"}[parts[-1]]
                clockwise = {"right": {"clockwise"}, "left": {"counterclockwise", "anticlockwise"}}
                assert words & ({side, f"{side}wards"} | clockwise[side]), (task, phrase)
                assert not words & ({other, f"{other}wards"} | clockwise[other]), (task, phrase)
            if parts[0] == "lift":
                source = {"table": {"table", "desk"}, "slider": {"slider", "sliding"}, "drawer": {"drawer"}}
                assert words & source[parts[3]], (task, phrase)
                for other, other_words in source.items():
                    if other != parts[3]:
                        assert not words & other_words, (task, phrase)
            if parts[0] == "turn":
                on = parts[1] == "on"
                light = {"lightbulb": {"bulb", "yellow"}, "led": {"led", "green"}}
                assert words & light[parts[2]], (task, phrase)
                assert not words & light["led" if parts[2] == "lightbulb" else "lightbulb"], (task, phrase)
                if on:
                    assert not words & {"off", "dark", "out", "down"}, (task, phrase)
                else:
                    assert "on" not in words and "up" not in words, (task, phrase)
            if task in ("open_drawer", "close_drawer", "place_in_drawer", "push_into_drawer"):
                assert "drawer" in words, (task, phrase)
            if task == "place_in_slider":
                assert words & {"slider", "sliding"}, (task, phrase)
