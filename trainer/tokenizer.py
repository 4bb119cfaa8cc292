"""The offline tokenizer: a word-level vocabulary trained with `tokenizers` on our instructions.

Nothing is fetched from a hub. The vocabulary is: special tokens (ids 0..len(SPECIAL_TOKENS)-1),
the words of the instruction corpus, then ``num_action_bins`` action tokens ``<a0>``..``<a255>`` on
the tail, which the one-step discrete structure predicts. The tokenizer is saved with every
checkpoint (``tokenizer.json``) and loaded back with :func:`load_tokenizer`, so a checkpoint keeps
the vocabulary it was trained with (older ones hold the evaluation phrasings' words too).

The corpus is what training shows and nothing else: the recorded instructions and the phrasings
language augmentation draws from. The evaluation phrasings are left out, so a word that only they
use maps to ``<unk>``, whose embedding word dropout trains (``data.word_dropout``), instead of a
vocabulary entry whose random initial embedding no training step ever changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
IMAGE, VISION_START, VISION_END, ACTION = "<image>", "<vision_start>", "<vision_end>", "<act>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE, VISION_START, VISION_END, ACTION]
NUM_ACTION_BINS = 256
PROMPT = "what action should the robot take to {instruction} ?"


def instruction_corpus(
    tasks: Iterable[str] | None = None, paraphrases: bool = True, instructions: Iterable[str] = ()
) -> list[str]:
    """What training shows: the phrasings language augmentation draws from for ``tasks`` (default:
    all tasks of the CALVIN-style suite; with ``paraphrases``, their paraphrases too), the recorded
    ``instructions`` and the prompt's words. Never the evaluation phrasings."""
    from envs.calvin.chains import TASKS
    from trainer.data.augment import language_choices

    texts = [
        p
        for task in (TASKS if tasks is None else tasks)
        for g in language_choices(task, paraphrases)
        for p in g
    ]
    return texts + list(instructions) + [PROMPT.format(instruction="")]


def tokenizer_for_training(
    episodes: Sequence[Mapping[str, Any]],
    language_augment: bool,
    paraphrases: bool,
    pretrained: str | Path | None = None,
) -> PreTrainedTokenizerFast:
    """The tokenizer of a new training run over ``episodes`` (an episode store's records).

    With ``pretrained`` (``model.pretrained``) naming a folder that holds a tokenizer, that one
    (:func:`pretrained_tokenizer`), so that the pretrained text embeddings read the ids they were
    trained on. Otherwise a word-level tokenizer over :func:`instruction_corpus` for the tasks of
    those episodes and their recorded instructions (the augmentation's phrasings only when language
    augmentation is on)."""
    if pretrained is not None and has_tokenizer(pretrained):
        return pretrained_tokenizer(pretrained)
    tasks = sorted({str(ep["task"]) for ep in episodes if ep.get("task")}) if language_augment else []
    recorded = [str(ep.get("instruction") or "") for ep in episodes]
    return train_tokenizer(instruction_corpus(tasks, paraphrases, recorded))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def has_tokenizer(folder: str | Path) -> bool:
    """Whether ``folder`` holds tokenizer files (as a Hugging Face model folder does)."""
    return any((Path(folder) / name).exists() for name in TOKENIZER_FILES)


def pretrained_tokenizer(
    folder: str | Path, num_action_bins: int = NUM_ACTION_BINS
) -> PreTrainedTokenizerFast:
    """The tokenizer saved in a local ``folder`` (nothing is downloaded) with our tokens added: the
    special tokens it lacks (``<unk>`` stays a token of its own, the one word dropout writes) and the
    action tokens last, on the vocabulary's tail. The backbone grows its embeddings to match."""
    from transformers import AutoTokenizer

    from trainer.config import ConfigError  # here: trainer.config imports the models, which import us

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.pretrained = {folder}: its tokenizer cannot be loaded ({exc})") from None
    if not tok.is_fast:
        raise ConfigError(
            f"model.pretrained = {folder}: holds a slow tokenizer only; save a fast one (tokenizer.json)"
        )
    roles = {"pad_token": PAD, "bos_token": BOS, "eos_token": EOS}
    missing = {role: token for role, token in roles.items() if getattr(tok, role) is None}
    vocab = tok.get_vocab()
    extra = [t for t in (UNK, IMAGE, VISION_START, VISION_END, ACTION) if t not in vocab]
    tok.add_special_tokens(
        {**missing, "additional_special_tokens": extra}, replace_extra_special_tokens=False
    )
    tok.add_tokens([f"<a{i}>" for i in range(num_action_bins)])
    return tok


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
