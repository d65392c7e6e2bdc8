"""Fine-tuning editors on the tiny model: LoRA revert, token accounting, Meta-Aug data from
the knowledge base, Active Reading's generation cache, the shared training loop."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from helpers import TEST_DEVICE, parameters_hash

from ripplebench.editors import Edit, build_editor
from ripplebench.editors.active_reading import ActiveReader, parse_strategies
from ripplebench.editors.augment import entities_in, in_domain_augmentations, load_kb_folder
from ripplebench.editors.training import Example, TrainingSettings, encode, train

FACT = "Elizabeth Ruiz was born in Kenya. She spent most of her adult life in Malaysia."
EDIT = Edit(id="e1", fact=FACT, subject_type="person")
SWEDISH = Edit(id="e2", fact="Marcus Hale was born into a Swedish-speaking environment.", subject_type="person")

COUNTRY_KB = """
entity_type: country
sources: {capital: test fixture, currency: test fixture, majority_religion: test fixture}
relations:
  capital: {template: "What is the capital of {country}?", domain: in}
  currency: {template: "What is the currency of {country}?", domain: in}
  majority_religion: {template: "Which religion has the most followers in {country}?", domain: out}
entities:
  - name: Kenya
    domain: in
    facts: {capital: [Nairobi], currency: [Kenyan shilling, KES], majority_religion: [Christianity]}
  - name: Malaysia
    domain: out
    facts: {capital: [Kuala Lumpur], currency: [Malaysian ringgit], majority_religion: [Islam]}
"""
LANGUAGE_KB = """
entity_type: language
sources: {iso_639_1: test fixture, script_name: test fixture}
relations:
  iso_639_1: {template: "What is the ISO 639-1 code for {language}?", domain: in}
  script_name: {template: "What is the name of the alphabet or script of {language}?", domain: out}
entities:
  - name: Swedish
    domain: in
    facts: {iso_639_1: [sv], script_name: [Latin alphabet]}
  - name: Swedish Sign Language
    domain: out
    facts: {iso_639_1: [swl], script_name: [none]}
"""


@pytest.fixture()
def kb_dir(tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "country.yaml").write_text(COUNTRY_KB)
    (folder / "language.yaml").write_text(LANGUAGE_KB)
    return folder


# --- CPT: LoRA and token accounting ---------------------------------------------------------


def test_lora_cpt_trains_an_adapter_and_revert_removes_it_bit_for_bit(tiny):
    editor = build_editor("cpt", {"lora_rank": 4, "lr": 1e-2})
    modules_before = [(name, type(module)) for name, module in tiny.model.named_modules()]
    before = parameters_hash(tiny.model)
    probe = tiny.tokenizer("Elizabeth Ruiz was born in", return_tensors="pt").to(tiny.device)
    logits_before = tiny.model(**probe).logits
    handle = editor.apply(tiny, [EDIT])
    assert any("lora_" in name for name, _ in tiny.model.named_parameters())
    assert not torch.allclose(tiny.model(**probe).logits, logits_before), "the adapter should change outputs"
    editor.revert(handle)
    assert [(name, type(module)) for name, module in tiny.model.named_modules()] == modules_before
    assert parameters_hash(tiny.model) == before
    assert all(p.requires_grad for p in tiny.model.parameters())
    assert torch.equal(tiny.model(**probe).logits, logits_before)


def test_lora_respects_the_layer_range(tiny):
    editor = build_editor("cpt", {"lora_rank": 2, "layers": "1-2"})
    handle = editor.apply(tiny, [EDIT])
    adapted = {name.split(".layers.")[1].split(".")[0] for name, _ in tiny.model.named_parameters() if "lora_" in name}
    editor.revert(handle)
    assert adapted == {"1", "2"}


@pytest.mark.parametrize("overrides", [{}, {"lora_rank": 2}, {"layers": "0-1", "epochs": 2}])
def test_cpt_counts_training_tokens_over_all_epochs(tiny, overrides):
    editor = build_editor("cpt", overrides)
    handle = editor.apply(tiny, [EDIT, SWEDISH])
    editor.revert(handle)
    fact_tokens = sum(len(tiny.tokenizer(e.fact)["input_ids"]) for e in (EDIT, SWEDISH))
    assert handle.stats["train_tokens"] == editor.config.epochs * fact_tokens
    assert handle.stats["fact_tokens"] == fact_tokens
    assert handle.stats["tokens_vs_cpt"] == 1.0


# --- Meta-Aug CPT -----------------------------------------------------------------------------


def test_meta_aug_trains_on_the_fact_and_gold_in_domain_qa_only(tiny, kb_dir):
    editor = build_editor("meta_aug_cpt", {"kb_dir": str(kb_dir), "epochs": 1})
    texts = editor.training_texts(tiny, [EDIT])
    assert texts == [
        FACT,
        "What is the capital of Kenya? Nairobi.",
        "What is the currency of Kenya? Kenyan shilling.",
        "What is the capital of Malaysia? Kuala Lumpur.",
        "What is the currency of Malaysia? Malaysian ringgit.",
    ]
    assert not any("religion" in text or "Islam" in text for text in texts)
    before = parameters_hash(tiny.model)
    handle = editor.apply(tiny, [EDIT])
    editor.revert(handle)
    assert parameters_hash(tiny.model) == before
    assert handle.stats["oracle"] is True
    every_token = sum(len(tiny.tokenizer(text)["input_ids"]) for text in texts)
    assert handle.stats["train_tokens"] == every_token
    assert handle.stats["tokens_vs_cpt"] == pytest.approx(every_token / handle.stats["fact_tokens"], abs=1e-3)
    assert "ORACLE" in type(editor).description


def test_meta_aug_matches_whole_names_and_prefers_the_longest(kb_dir):
    kb = load_kb_folder(kb_dir)
    assert [e.name for _, e in entities_in(SWEDISH.fact, kb)] == ["Swedish"]
    assert [e.name for _, e in entities_in("She signs in Swedish Sign Language in Kenya.", kb)] == [
        "Swedish Sign Language",
        "Kenya",
    ]
    assert entities_in("Kenyans and Swedishness", kb) == []
    assert in_domain_augmentations(SWEDISH.fact, kb, "x") == ["What is the ISO 639-1 code for Swedish? sv."]


def test_meta_aug_names_the_edit_when_the_fact_has_no_kb_entity(tiny, kb_dir):
    editor = build_editor("meta_aug_cpt", {"kb_dir": str(kb_dir)})
    before = parameters_hash(tiny.model)
    with pytest.raises(ValueError, match=r"Edit 'v9'.*no knowledge-base entity"):
        editor.apply(tiny, [Edit(id="v9", fact="Veltrix Dynamics was founded in Atlantis.")])
    assert parameters_hash(tiny.model) == before


def test_meta_aug_refuses_an_empty_kb_folder(tmp_path):
    with pytest.raises(ValueError, match="No knowledge-base files"):
        load_kb_folder(tmp_path)


# --- Active Reading -----------------------------------------------------------------------------


class FakeGenerator:
    identity = "fake-1"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, prompts):
        self.calls += len(prompts)
        return [
            "## Paraphrase the passage\n## Quiz yourself on it"
            if "strateg" in p.split("Study strategy:")[0]
            else f"Notes {i}"
            for i, p in enumerate(prompts)
        ]


def test_active_reading_second_run_reuses_the_cache_without_generator_calls(tmp_path):
    first = FakeGenerator()
    augmentations = ActiveReader(first, tmp_path, max_strategies=3).augment(FACT)
    assert first.calls == 2 + 4  # two stage-1 prompts, then one per strategy (2 from each)
    assert augmentations == ["Notes 0", "Notes 1", "Notes 2", "Notes 3"]
    again = FakeGenerator()
    assert ActiveReader(again, tmp_path, max_strategies=3).augment(FACT) == augmentations
    assert again.calls == 0
    other = FakeGenerator()
    other.identity = "fake-2"  # another generator must not reuse fake-1's text
    ActiveReader(other, tmp_path, max_strategies=3).augment(FACT)
    assert other.calls == 6


def test_active_reading_cache_key_covers_the_templates(tmp_path):
    from ripplebench.editors.active_reading import TEMPLATES_DIR

    templates = tmp_path / "templates"
    templates.mkdir()
    for source in TEMPLATES_DIR.glob("active_reading_*.j2"):
        (templates / source.name).write_text(source.read_text())
    generator = FakeGenerator()
    ActiveReader(generator, tmp_path / "cache", templates_dir=templates).augment(FACT)
    (templates / "active_reading_augmentation.j2").write_text("Apply {{ strategy }} to: {{ fact }}")
    ActiveReader(generator, tmp_path / "cache", templates_dir=templates).augment(FACT)
    assert generator.calls == 12


def test_strategies_are_parsed_from_headings_or_lists():
    assert parse_strategies("Intro\n## Make flashcards\n## Draw a map\n## Teach it", 2) == [
        "Make flashcards",
        "Draw a map",
    ]
    assert parse_strategies("1. Make flashcards\n2) Draw a map", 5) == ["Make flashcards", "Draw a map"]
    assert parse_strategies("## 1. **Make flashcards**: one per name", 5) == ["Make flashcards: one per name"]
    assert parse_strategies("Just reread it slowly.", 5) == ["Just reread it slowly."]


def test_active_reading_cpt_with_the_model_itself_as_generator(tiny, tmp_path):
    settings = {"cache_dir": str(tmp_path), "max_new_tokens": 6, "max_strategies": 2, "epochs": 1}
    editor = build_editor("active_reading_cpt", settings)
    before = parameters_hash(tiny.model)
    handle = editor.apply(tiny, [EDIT])
    editor.revert(handle)
    assert parameters_hash(tiny.model) == before
    [record] = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert record["fact"] == FACT and record["generator"].startswith("local|")
    assert handle.stats["train_texts"] == 1 + len(record["augmentations"])
    assert handle.stats["tokens_vs_cpt"] > 1


@pytest.fixture()
def chat_server():
    """A local OpenAI-compatible endpoint that counts its requests."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            prompt = body["messages"][0]["content"]
            text = (
                "## Restate the fact\n## Ask about the country"
                if "study strategies" in prompt
                else "Kenya uses the shilling."
            )
            reply = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()
    server.server_close()


def test_active_reading_cpt_through_an_openai_endpoint_is_cached(tiny, tmp_path, chat_server, monkeypatch):
    url, requests = chat_server
    monkeypatch.setenv("TEST_KEY", "not-a-secret")
    settings = {
        "generator": "openai",
        "generator_model": "gpt-test",
        "base_url": url,
        "api_key_env": "TEST_KEY",
        "cache_dir": str(tmp_path),
        "epochs": 1,
    }
    first = build_editor("active_reading_cpt", settings)
    first.revert(first.apply(tiny, [EDIT]))
    assert len(requests) == 2 + 4 and requests[0]["model"] == "gpt-test"
    second = build_editor("active_reading_cpt", settings)
    handle = second.apply(tiny, [EDIT])
    second.revert(handle)
    assert len(requests) == 6, "the second run must reuse the cached augmentations"
    assert handle.stats["train_texts"] == 5


def test_openai_generator_names_the_missing_key_variable(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    editor = build_editor(
        "active_reading_cpt",
        {"generator": "openai", "generator_model": "m", "api_key_env": "NO_SUCH_KEY", "cache_dir": str(tmp_path)},
    )
    with pytest.raises(ValueError, match="NO_SUCH_KEY"):
        editor.apply(tiny, [EDIT])


# --- the shared training loop -----------------------------------------------------------------------


def test_loss_covers_the_completion_only(tiny):
    ids, labels = encode(tiny.tokenizer, Example("Q: Where? A:", " Kenya"), 64, add_eos=True)
    prompt = len(tiny.tokenizer("Q: Where? A:")["input_ids"])
    assert labels[:prompt] == [-100] * prompt
    assert labels[prompt:] == ids[prompt:] and ids[-1] == tiny.tokenizer.eos_token_id


def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir, monkeypatch):
    from ripplebench.core.models import load_model, resolve_model

    clip = torch.nn.utils.clip_grad_norm_
    gradients = []

    def record(parameters, max_norm):  # the batch's gradient, just before the optimiser step
        parameters = list(parameters)
        gradients.append(torch.cat([p.grad.flatten() for p in parameters if p.grad is not None]))
        return clip(parameters, max_norm)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record)
    examples = [Example("Q: capital of Kenya? A:", " Nairobi"), Example("", FACT), Example("Q: x A:", " a b c d")]
    for micro in (3, 1):
        loaded = load_model(resolve_model(str(tiny_model_dir)), device=TEST_DEVICE)
        settings = TrainingSettings(lr=1e-2, epochs=1, batch_size=3, micro_batch_size=micro)
        train(loaded.model, loaded.tokenizer, examples, list(loaded.model.parameters()), settings)
    assert len(gradients) == 2 and gradients[0].abs().max() > 0
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)


def test_training_tokens_reach_lm_evals_model_info(tiny_model_dir):
    from lm_eval.api.instance import Instance

    from ripplebench.harness.lm_model import EditingLM

    lm = EditingLM(model=str(tiny_model_dir), editor="cpt", batch_size=2, **{"editor.epochs": 1})
    docs = [{"edit_id": f"e{i}", "fact": fact} for i, fact in enumerate((FACT, SWEDISH.fact))]
    requests = [
        Instance("generate_until", doc, ("Where?", {"until": ["\n"], "max_gen_toks": 3}), 0, ("t", i, 1))
        for i, doc in enumerate(docs)
    ]
    lm.generate_until(requests, disable_tqdm=True)
    stats = lm.get_model_info()["ripplebench"]["edit_stats"]
    expected = sum(len(lm.loaded.tokenizer(doc["fact"])["input_ids"]) for doc in docs) / 2
    assert stats["edit_groups"] == 2
    assert stats["train_tokens_mean"] == pytest.approx(expected) and stats["tokens_vs_cpt_mean"] == 1.0
