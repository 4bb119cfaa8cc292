"""A pretrained tokenizer from a local model folder: our tokens added, the embeddings grown to match."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainer_helpers import TINY, fixed_batch, make_tiny_data
from trainer.models.vla import ModelConfig, VLAModel
from trainer.tokenizer import (
    IMAGE,
    NUM_ACTION_BINS,
    UNK,
    action_token_ids,
    pretrained_tokenizer,
    tokenizer_for_training,
)


def _save_plain_tokenizer(folder: Path) -> int:
    """A word-level tokenizer of some other project: its own unknown and pad tokens, none of ours."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["what action should the robot take to open the drawer ?", "turn on the led", "wave hello"]
    tok.train_from_iterator(corpus, trainer=trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.save_pretrained(str(folder))
    return len(fast)


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory) -> tuple[Path, int]:
    """A model folder as a user would have it: a tokenizer and weights whose vocabulary is its own."""
    folder = tmp_path_factory.mktemp("pretrained")
    n_own = _save_plain_tokenizer(folder)
    model = VLAModel(ModelConfig(image_size=32), pretrained_tokenizer(folder))
    model.backbone.model.resize_token_embeddings(n_own)  # the "pretrained" weights know n_own tokens
    model.backbone.model.save_pretrained(str(folder))
    return folder, n_own


def test_pretrained_tokenizer_keeps_its_ids_and_adds_ours(pretrained_folder):
    folder, n_own = pretrained_folder
    tok = pretrained_tokenizer(folder)
    assert tok("open the drawer", add_special_tokens=False)["input_ids"] == [
        tok.get_vocab()[w] for w in ("open", "the", "drawer")
    ]
    assert all(tok.get_vocab()[w] < n_own for w in ("open", "the", "drawer"))  # its own ids, unchanged
    assert tok.convert_tokens_to_ids(UNK) >= n_own and tok.convert_tokens_to_ids(IMAGE) >= n_own
    assert tok("open the <unk>", add_special_tokens=False)["input_ids"][-1] == tok.convert_tokens_to_ids(UNK)
    ids = action_token_ids(tok)  # contiguous on the tail
    assert len(ids) == NUM_ACTION_BINS and ids[-1] == len(tok) - 1
    assert tokenizer_for_training([], True, True, pretrained=folder).get_vocab() == tok.get_vocab()
    episodes = [{"task": "open_drawer", "instruction": "open the drawer"}]
    word_level = tokenizer_for_training(episodes, True, True, pretrained=folder / "missing")
    assert "tug" in word_level.get_vocab()  # no tokenizer there: the word-level one


def test_pretrained_backbone_grows_its_embeddings_and_keeps_the_pretrained_rows(pretrained_folder):
    from safetensors.torch import load_file

    folder, n_own = pretrained_folder
    tok = pretrained_tokenizer(folder)
    model = VLAModel(ModelConfig(image_size=32, pretrained=str(folder)), tok).eval()
    emb = model.backbone.model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) > n_own
    saved = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in saved.items() if "embed_tokens" in k and v.shape[0] == n_own)
    torch.testing.assert_close(emb[:n_own], saved[key])
    feats, _ = model.features(fixed_batch())
    assert torch.isfinite(feats).all()


def test_training_with_a_pretrained_folder_uses_its_tokenizer(pretrained_folder, tmp_path):
    from policies.vla.policy import VLAPolicy
    from trainer.train import main as train_main

    folder, n_own = pretrained_folder
    data = make_tiny_data(tmp_path / "data")
    out = tmp_path / "run"
    args = ["--config", "trainer/configs/base.json", f"data.path={data}", f"train.out={out}", *TINY]
    assert train_main([*args, f"model.pretrained={folder}"]) == 0
    policy = VLAPolicy.from_checkpoint(str(out / "latest"))
    assert policy.model.tokenizer.get_vocab() == pretrained_tokenizer(folder).get_vocab()
