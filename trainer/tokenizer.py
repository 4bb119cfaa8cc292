"""The offline tokenizer: a word-level vocabulary trained with `tokenizers` on our instructions.

Nothing is fetched from a hub. The vocabulary is: special tokens (ids 0..len(SPECIAL_TOKENS)-1),
the words of the instruction corpus, then ``num_action_bins`` action tokens ``<a0>``..``<a255>`` on
the tail, which the one-step discrete structure predicts. The tokenizer is saved with every
checkpoint (``tokenizer.json``) and loaded back with :func:`load_tokenizer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
IMAGE, VISION_START, VISION_END, ACTION = "<image>", "<vision_start>", "<vision_end>", "<act>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE, VISION_START, VISION_END, ACTION]
NUM_ACTION_BINS = 256
PROMPT = "what action should the robot take to {instruction} ?"


def instruction_corpus() -> list[str]:
    """Every training and evaluation phrasing of the CALVIN-style suite, plus the prompt words."""
    from envs.calvin.language import EVAL_INSTRUCTIONS, TRAIN_INSTRUCTIONS

    texts = [p for phrasings in TRAIN_INSTRUCTIONS.values() for p in phrasings]
    texts += list(EVAL_INSTRUCTIONS.values())
    return texts + [PROMPT.format(instruction="")]


def train_tokenizer(
    corpus: Iterable[str] | None = None, num_action_bins: int = NUM_ACTION_BINS
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``corpus`` (default: :func:`instruction_corpus`)."""
    corpus = list(corpus if corpus is not None else instruction_corpus())
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([f"<a{i}>" for i in range(num_action_bins)])  # added last: the vocabulary's tail
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=[IMAGE, VISION_START, VISION_END, ACTION],
    )
    return fast


def action_token_ids(tokenizer: PreTrainedTokenizerFast, num_action_bins: int = NUM_ACTION_BINS) -> list[int]:
    """Vocabulary ids of ``<a0>``..``<a{n-1}>`` (contiguous, the last ids of the vocabulary)."""
    ids = tokenizer.convert_tokens_to_ids([f"<a{i}>" for i in range(num_action_bins)])
    if ids != list(range(ids[0], ids[0] + num_action_bins)) or ids[-1] != len(tokenizer) - 1:
        raise ValueError("the tokenizer's action tokens are not the contiguous tail of its vocabulary")
    return ids


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> None:
    tokenizer.save_pretrained(str(folder))


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with :func:`save_tokenizer` (files only: tokenizer.json + configs)."""
    path = Path(folder)
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"{path}: tokenizer.json is missing (a checkpoint saves it beside the weights)"
        )
    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
