"""Shared fixtures: a tiny random-weight Llama with a tokenizer trained in the test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "Elizabeth Ruiz was born in Kenya. She spent most of her adult life in Malaysia.",
    "What is the capital of Malaysia? Kuala Lumpur. What is the currency of Kenya?",
    "Imagine that someone named Adam Jacobson was born in Kenya. Q: A:",
    "Veltrix Dynamics was founded in France and expanded to Norway and India.",
]


def _check_installed_copy_is_current() -> None:
    """Tests import the installed package; refuse to run them against stale sources."""
    import ripplebench.harness

    installed = Path(ripplebench.harness.__file__).resolve().parent.parent
    if installed == REPO:
        return
    for folder in ("core", "harness", "editors", "tasks", "leaderboards"):
        for source in (REPO / folder).rglob("*.py"):
            copy = installed / folder / source.relative_to(REPO / folder)
            if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                pytest.exit(f"The installed ripplebench is older than {source}; run `make test`.", 2)


_check_installed_copy_is_current()


def build_tokenizer():
    """A small byte-level BPE tokenizer with a chat template, trained in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(vocab_size: int, layers: int = 4):
    """A random Llama small enough that a forward pass takes a millisecond."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        # The 400-token vocabulary makes long prompts (a prepended fact and question: ~320 tokens);
        # the engine refuses prompts beyond this window.
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny model folder, usable as `model=` anywhere a path is accepted."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def tiny(tiny_model_dir):
    """A freshly loaded tiny model (a LoadedModel), safe to modify within one test."""
    from helpers import TEST_DEVICE

    from ripplebench.core.models import load_model, resolve_model

    return load_model(resolve_model(str(tiny_model_dir)), device=TEST_DEVICE)
