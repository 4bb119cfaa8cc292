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


def _assert_names_its_object(task: str, phrase: str) -> None:
    parts = task.split("_")
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


def test_phrasings_name_their_object():
    for task in TASKS:
        for phrase in _all_phrasings(task):
            _assert_names_its_object(task, phrase)


# --- paraphrases (envs.calvin.paraphrases) -----------------------------------------------------------
def test_every_task_has_many_paraphrases_in_several_shapes():
    from envs.calvin.paraphrases import paraphrase_groups, paraphrases

    for task in TASKS:
        groups = paraphrase_groups(task)
        assert len(groups) >= 3, task
        assert len(paraphrases(task)) >= 3 * len(TRAIN_INSTRUCTIONS[task]), task
        assert all(p == normalize_instruction(p) for p in paraphrases(task))


def test_paraphrases_keep_the_eval_phrasing_and_its_near_copies_out():
    from difflib import SequenceMatcher

    from envs.calvin.paraphrases import NEAR_COPY, expand_template, paraphrases

    for task in TASKS:
        held_out = normalize_instruction(EVAL_INSTRUCTIONS[task]).split()
        for p in paraphrases(task):
            assert SequenceMatcher(None, p.split(), held_out).ratio() < NEAR_COPY, (task, p)
    # the filter has something to do: one template expansion is a near copy and is dropped
    near = "move the sliding door over to the left"
    assert near in expand_template("{move|push} the sliding door over to the left")
    assert near not in paraphrases("move_slider_left")


def test_paraphrases_belong_to_one_task_and_name_their_object():
    from envs.calvin.paraphrases import paraphrases

    owners: dict[str, set[str]] = {}
    for task in TASKS:
        for p in (*paraphrases(task), *TRAIN_INSTRUCTIONS[task], EVAL_INSTRUCTIONS[task]):
            owners.setdefault(normalize_instruction(p), set()).add(task)
    assert [p for p, tasks in owners.items() if len(tasks) > 1] == []
    for task in TASKS:  # the object-naming rules of the recorded phrasings hold for every paraphrase
        for p in paraphrases(task):
            _assert_names_its_object(task, p)


def test_expand_template():
    from envs.calvin.paraphrases import expand_template

    assert expand_template("Push {the|a} block {left|to the  left}") == [
        "push the block left",
        "push the block to the left",
        "push a block left",
        "push a block to the left",
    ]
    assert expand_template("open the drawer") == ["open the drawer"]


# --- vocabulary and word dropout (trainer.tokenizer, trainer.data.augment) ----------------------------
def _token_ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_vocabulary_holds_what_training_shows_and_no_eval_only_word():
    from trainer.tokenizer import instruction_corpus, train_tokenizer

    tok = train_tokenizer(instruction_corpus())
    vocab = set(tok.get_vocab())
    trained = {w for text in instruction_corpus() for w in re.findall(r"\w+|[^\w\s]+", text.lower())}
    assert {w for w in vocab if not w.startswith("<")} == trained  # every word entry is shown in training
    eval_words = {w for p in EVAL_INSTRUCTIONS.values() for w in _words(p)}
    unseen = eval_words - trained
    assert unseen and not unseen & vocab  # e.g. "lying", "edge": they map to <unk>
    for word in unseen:
        assert _token_ids(tok, word) == [tok.unk_token_id]
    # without paraphrases the corpus is the recorded phrasings only: more eval words are unknown
    recorded = train_tokenizer(instruction_corpus(paraphrases=False))
    unk = [
        sum(i == t.unk_token_id for p in EVAL_INSTRUCTIONS.values() for i in _token_ids(t, p))
        for t in (tok, recorded)
    ]
    assert 0 < unk[0] < unk[1]


def test_tokenizer_for_training_covers_only_the_stores_tasks():
    from trainer.tokenizer import tokenizer_for_training

    episodes = [{"task": "open_drawer", "instruction": "pull the drawer open"}, {"instruction": "wave hello"}]
    tok = tokenizer_for_training(episodes, language_augment=True, paraphrases=True)
    assert _token_ids(tok, "tug") != [tok.unk_token_id]  # a paraphrase word of open_drawer
    assert _token_ids(tok, "wave hello") != [tok.unk_token_id] * 2  # recorded instructions count
    assert _token_ids(tok, "led") == [tok.unk_token_id]  # no LED task in these episodes
    plain = tokenizer_for_training(episodes, language_augment=False, paraphrases=True)
    assert _token_ids(plain, "tug") == [plain.unk_token_id]  # augmentation off: recorded words only


def test_word_dropout_yields_the_unknown_token_at_its_rate():
    import numpy as np

    from trainer.data.augment import AugmentConfig, augment_language, drop_words
    from trainer.tokenizer import UNK, train_tokenizer

    rng = np.random.default_rng(0)
    words = " ".join(["block"] * 20000)
    share = drop_words(words, 0.25, rng).split().count(UNK) / 20000
    assert abs(share - 0.25) < 0.01
    assert drop_words("open the drawer", 0.0, rng) == "open the drawer"
    tok = train_tokenizer()
    dropped = drop_words("open the drawer", 0.999, rng)
    assert _token_ids(tok, dropped) == [tok.unk_token_id] * 3  # the tokenizer reads it as <unk>
    cfg = AugmentConfig(word_dropout=0.0)
    drawn = {augment_language("x", "open_drawer", cfg, rng) for _ in range(400)}
    from envs.calvin.paraphrases import paraphrases

    assert drawn <= set(TRAIN_INSTRUCTIONS["open_drawer"]) | set(paraphrases("open_drawer"))
    assert drawn & set(TRAIN_INSTRUCTIONS["open_drawer"]) and drawn - set(TRAIN_INSTRUCTIONS["open_drawer"])
    assert EVAL_INSTRUCTIONS["open_drawer"] not in drawn
    recorded_only = AugmentConfig(word_dropout=0.0, paraphrases=False)
    assert {augment_language("x", "open_drawer", recorded_only, rng) for _ in range(200)} <= set(
        TRAIN_INSTRUCTIONS["open_drawer"]
    )
    assert augment_language("wave", None, cfg, rng) == "wave"  # unknown task: kept
    assert augment_language("wave", "open_drawer", AugmentConfig.off(), rng) == "wave"


def test_a_tokenizer_saved_before_keeps_its_vocabulary(tmp_path):
    from trainer.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    old_corpus = [p for ps in TRAIN_INSTRUCTIONS.values() for p in ps] + list(EVAL_INSTRUCTIONS.values())
    old = train_tokenizer(old_corpus)  # how checkpoints built their vocabulary before
    save_tokenizer(old, tmp_path)
    loaded = load_tokenizer(tmp_path)
    text = EVAL_INSTRUCTIONS["push_into_drawer"]
    assert _token_ids(loaded, text) == _token_ids(old, text)
    assert loaded.unk_token_id not in _token_ids(loaded, text)


def test_language_probe_store_ties_each_action_to_its_task_only(tmp_path):
    import numpy as np

    from trainer.data.store import EpisodeStore
    from trainer.language_probe import language_only_store

    store = EpisodeStore(language_only_store(tmp_path / "s", episodes_per_task=2, frames=4))
    assert len(store) == 2 * len(TASKS)
    means: dict[str, list[np.ndarray]] = {}
    for i in range(len(store)):
        ep = store.episode(i)
        assert ep.info["instruction"] in TRAIN_INSTRUCTIONS[ep.info["task"]]  # never an eval phrasing
        means.setdefault(ep.info["task"], []).append(np.asarray(ep.data["rel_actions"]).mean(axis=0))
    for task, (a, b) in means.items():
        assert np.abs(a - b).max() < 0.2, task  # the same action in every episode of a task
    first = np.stack([m[0] for m in means.values()])
    assert np.abs(first[:, None] - first[None]).max(axis=-1)[~np.eye(len(TASKS), dtype=bool)].min() > 0.2
