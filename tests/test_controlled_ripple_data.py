"""Controlled RippleEdit: knowledge base, generator, splits, loader and commands."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from controlled_ripple_standin import write_kb
from helpers import requires_controlled_ripple_splits

from ripplebench.core.knowledge_base import (
    ENTITY_TYPES,
    KnowledgeBaseError,
    entity_id,
    load_knowledge_base,
    relation_id,
)
from ripplebench.core.paths import CONTROLLED_RIPPLE_DATA_DIR, CONTROLLED_RIPPLE_KB_DIR
from ripplebench.harness.cli import main
from ripplebench.harness.data.controlled_ripple.generate import fake_subjects, generate, reserved_words
from ripplebench.harness.data.controlled_ripple.kb_checks import independent_source_problems, knowledge_base_problems
from ripplebench.harness.data.controlled_ripple.read import OFFICIAL_NAME, load_instances, read_instances
from ripplebench.harness.data.controlled_ripple.split_checks import split_problems
from ripplebench.harness.data.controlled_ripple.splits import SPLITS, split_path
from ripplebench.harness.data.controlled_ripple.templates import (
    Subject,
    load_name_lists,
    load_story_templates,
    template_problems,
)
from ripplebench.harness.data.controlled_ripple.write import serialize, write_splits

IN_DOMAIN = ("train", "validation", "test_id")


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory) -> Path:
    """The package's knowledge-base files, with stand-ins for any type not written yet."""
    return write_kb(tmp_path_factory.mktemp("kb"))


@pytest.fixture(scope="module")
def kb(kb_dir):
    return load_knowledge_base(kb_dir)


@pytest.fixture(scope="module")
def splits(kb):
    return generate(kb, seed=0)


# ---- knowledge base ---------------------------------------------------------------------------


def available_types() -> list[str]:
    return [name for name in ENTITY_TYPES if (CONTROLLED_RIPPLE_KB_DIR / f"{name}.yaml").is_file()]


def test_every_knowledge_base_file_present_matches_tables_9_and_10():
    assert {"country", "language"} <= set(available_types())
    kb = load_knowledge_base(types=available_types())
    assert knowledge_base_problems(kb) == []


def test_country_and_language_facts_agree_with_independent_sources():
    kb = load_knowledge_base(types=["country", "language"])
    problems, skipped = independent_source_problems(kb)
    assert skipped == [] and problems == []
    kenya = next(e for e in kb["country"].entities if e.name == "Kenya")
    assert kenya.facts["currency"][0] == "Kenyan shilling" and "KES" in kenya.facts["currency"]
    assert kenya.facts["calling_code"][0] == "+254" and kenya.facts["iso_alpha2"] == ("KE",)


def test_independent_sources_catch_a_wrong_fact(tmp_path):
    text = (
        (CONTROLLED_RIPPLE_KB_DIR / "country.yaml")
        .read_text()
        .replace('calling_code: ["+254"', 'calling_code: ["+255"')
    )
    (tmp_path / "country.yaml").write_text(text)
    problems, _ = independent_source_problems(load_knowledge_base(tmp_path, ["country"]))
    assert problems == ["country 'Kenya': calling_code +255 but phonenumbers says +254"]


def break_kb(kb_dir: Path, tmp_path: Path, old: str, new: str, name: str = "country") -> Path:
    broken = tmp_path / "kb"
    shutil.copytree(kb_dir, broken)
    path = broken / f"{name}.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    return broken


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("capital: [Tehran]", "capital: []", r"entity 0 \(Iran\) relation 'capital': needs a non-empty list"),
        ("capital: [Tehran]", "capital: [Tehran, ' ']", "'capital': has an empty or non-text answer"),
        ("capital: [Tehran]", "capital: [Tehran, tehran]", r"duplicated answer\(s\) \['Tehran', 'tehran'\]"),
        ("      capital: [Tehran]\n", "", r"entity 0 \(Iran\): has no answer for relation\(s\) capital"),
        ("      capital: [Tehran]\n", "      capital: [Tehran]\n      capital: [Teheran]\n", "duplicated key"),
        ("- name: Malaysia", "- name: Iran", "entity 1 \\(Iran\\): is listed twice"),
    ],
)
def test_a_broken_knowledge_base_fails_loudly(kb_dir, tmp_path, old, new, message):
    with pytest.raises(KnowledgeBaseError, match=message):
        load_knowledge_base(break_kb(kb_dir, tmp_path, old, new))


def test_validate_fails_on_a_missing_file_or_a_wrong_count(kb_dir, tmp_path, capsys):
    broken = tmp_path / "kb"
    shutil.copytree(kb_dir, broken)
    (broken / "species.yaml").unlink()
    assert main(["data", "controlled-ripple", "validate", "--kb-dir", str(broken)]) == 1
    assert "lacks species.yaml" in capsys.readouterr().err
    moved = break_kb(kb_dir, tmp_path / "second", "- name: Iran\n    domain: in", "- name: Iran\n    domain: out")
    assert knowledge_base_problems(load_knowledge_base(moved)) == [
        "country: (30, 8) in/out-of-domain entities, Table 9 has (31, 7)"
    ]


# ---- templates and fake subjects --------------------------------------------------------------


def test_story_templates_fill_table_8_with_the_subjects_pronouns():
    story = load_story_templates()["country"]
    person = Subject("Mira Santos", "person", "female")
    assert person.fill(story["person"]["story"], country_1="Kenya", country_2="Malaysia", country_3="Egypt") == (
        "Mira Santos was born in Kenya. She spent most of her adult life in Malaysia. "
        "After retirement, she lived in Egypt and passed away."
    )
    company = Subject("Veltrix Dynamics", "company", "company")
    filled = company.fill(story["company"]["story"], country_1="France", country_2="Norway", country_3="India")
    assert "It later expanded its business to Norway" in filled
    assert (
        company.fill(story["company"]["slots"][1]["description"])
        == "the country Veltrix Dynamics expanded its business to"
    )
    assert Subject("Omar Kessler", "person", "male").fill("{subject_possessive} {gender_obj}") == "Omar Kessler's him"


def test_every_template_renders_and_a_broken_one_is_reported():
    templates = load_story_templates()
    assert template_problems(templates, list(ENTITY_TYPES)) == []
    broken = yaml.safe_load(yaml.safe_dump(templates))
    broken["species"]["company"]["slots"][2]["atomic"] = "{subject} saw {gender_nom}"
    del broken["event"]["person"]
    assert template_problems(broken, list(ENTITY_TYPES)) == [
        "story template event/person: missing (needs 'story' and three 'slots')",
        "story template species/company: unknown placeholder 'gender_nom'",
    ]


def test_fake_subjects_share_no_word_with_real_entities_or_answers(kb):
    persons, companies = fake_subjects(load_name_lists(), kb)
    reserved = reserved_words(kb)
    assert {"kenya", "nairobi", "shilling"} <= reserved
    for subject in persons + companies:
        assert not {w.casefold() for w in re.findall(r"\w{3,}", subject.name)} & reserved, subject.name
    # a different subject per instance: about half of the 6050 instances have a company subject
    assert len(persons) > 6000 and len(companies) > 3500
    names = {"female_first": ["Kenya", "Mira"], "male_first": [], "last_name": ["Santos", "Nairobi"],
             "company_root": ["Veltrix"], "company_suffix": ["Shilling", "Labs"]}  # fmt: skip
    persons, companies = fake_subjects(names, kb)
    assert [s.name for s in persons] == ["Mira Santos"] and [s.name for s in companies] == ["Veltrix Labs"]


# ---- generated splits -------------------------------------------------------------------------


def test_split_sizes_follow_the_paper(splits):
    assert {name: len(instances) for name, instances in splits.items()} == {
        "train": 4000, "validation": 500, "test_id": 500,
        "test_ood_entity": 350, "test_ood_relation": 350, "test_ood_both": 350,
    }  # fmt: skip


def test_generated_splits_keep_every_promise(splits, kb):
    assert split_problems(splits, kb) == []


def test_ood_splits_are_disjoint_from_the_in_domain_ones(splits, kb):
    def entities(names):
        return {e for name in names for instance in splits[name] for e in instance["entity_ids"]}

    def relations(names):
        return {q["relation_id"] for name in names for i in splits[name] for q in i["questions"]}

    assert not entities(["test_ood_entity", "test_ood_both"]) & entities(IN_DOMAIN)
    assert not relations(["test_ood_relation", "test_ood_both"]) & relations(IN_DOMAIN)
    assert relations(["test_ood_entity"]) <= relations(IN_DOMAIN)  # relations seen
    assert entities(["test_ood_relation"]) <= entities(IN_DOMAIN)  # entities seen
    types = {name: {i["entity_type"] for i in splits[name]} for name in splits}
    assert "organization" not in types["test_ood_entity"] | types["test_ood_both"]  # one OOD organization only
    assert "person" not in types["test_ood_relation"] | types["test_ood_both"]  # no OOD person relation
    assert types["train"] == set(ENTITY_TYPES)


def test_every_answer_comes_from_the_knowledge_base(splits, kb):
    answers = {
        (entity_id(t.name, e.name), relation_id(t.name, r)): list(values)
        for t in kb.values()
        for e in t.entities
        for r, values in e.facts.items()
    }
    for instances in splits.values():
        for instance in instances:
            for question in instance["questions"]:
                key = (question["entity_id"], question["relation_id"])
                assert [question["answer"], *question["answer_aliases"]] == answers[key]


def test_templates_are_filled_with_fitting_pronouns(splits):
    for instances in splits.values():
        for instance in instances:
            texts = [instance["text"]] + [
                q[k] for q in instance["questions"] for k in ("alias_question", "unalias_question")
            ]
            texts += [fact[k] for fact in instance["atomic_facts"] for k in ("prompt", "paraphrase")]
            assert not any("{" in text or "}" in text for text in texts), instance["id"]
            words = set(re.findall(r"[a-z]+", instance["text"].lower()))
            if instance["subject_type"] == "company":
                assert words & {"it", "its"} and not words & {"he", "she", "his", "her", "him"}
            else:
                assert bool(words & {"he", "his", "him"}) != bool(words & {"she", "her"})


def test_questions_refer_to_the_entity_through_the_story(splits, kb):
    instance = next(i for i in splits["test_id"] if i["entity_type"] == "country" and i["subject_type"] == "person")
    slots = load_story_templates()["country"]["person"]["slots"]
    for question in instance["questions"]:
        relation = kb["country"].relations[question["relation_id"].split(":")[1]]
        index = instance["entity_ids"].index(question["entity_id"])
        gender = "female" if re.search(r"\b(she|her)\b", instance["text"]) else "male"
        description = Subject(instance["subject"], "person", gender).fill(slots[index]["description"])
        assert question["alias_question"] == relation.template.replace("{country}", description)
        assert question["unalias_question"] == relation.template.replace(
            "{country}", instance["atomic_facts"][index]["target"]
        )


def test_atomic_facts_follow_the_story(splits):
    for instance in splits["validation"]:
        facts = instance["atomic_facts"]
        assert (
            len(facts) == 3
            and [entity_id(instance["entity_type"], f["target"]) for f in facts] == instance["entity_ids"]
        )
        for fact in facts:
            assert fact["subject"] == instance["subject"] and instance["subject"] in fact["prompt"]
            assert fact["target"] in instance["text"] and fact["paraphrase"] != fact["prompt"]


def test_the_checks_catch_broken_splits(splits, kb):
    broken = json.loads(json.dumps({name: splits[name] for name in ("train", "test_ood_entity")}))
    broken["test_ood_entity"][0]["questions"][0]["answer"] = "Atlantis"
    ood_entity = broken["test_ood_entity"][1]["entity_ids"][0]
    broken["train"][0]["entity_ids"][0] = ood_entity
    broken["train"][1]["text"] += " {gender_subj}"
    problems = "\n".join(split_problems(broken, kb))
    assert "missing split(s): validation, test_id" in problems
    assert "test_ood_entity[0] (test_ood_entity-0001) question 0: answers differ" in problems
    assert "train[0] (train-0001): entities" in problems and "are not all in-domain" in problems
    assert f"test_ood_entity: entities also in in-domain splits: ['{ood_entity}']" in problems
    assert "train[1] (train-0002): unfilled placeholder" in problems


def test_generation_is_deterministic_and_seeded(kb, splits, kb_dir, tmp_path):
    assert serialize(generate(kb, seed=0)["test_id"]) == serialize(splits["test_id"])
    assert generate(kb, seed=1)["test_id"] != splits["test_id"]
    for run in ("a", "b"):
        assert (
            main(["data", "controlled-ripple", "generate", "--kb-dir", str(kb_dir), "--data-dir", str(tmp_path / run)])
            == 0
        )
    files = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert files == sorted(["README.md", *(split_path(tmp_path, split).name for split in SPLITS)])
    assert "train.jsonl.gz" in files and "test_ood_both.jsonl" in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    card = (tmp_path / "a" / "README.md").read_text()
    assert "| test_id | in-domain | in-domain | 500 |" in card and "2284 over 500" in card
    assert "generate --seed 0" in card and "phonenumbers" in card


def test_validate_passes_on_fresh_splits_and_fails_on_stale_ones(kb_dir, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "controlled-ripple", "generate", "--kb-dir", str(kb_dir), "--data-dir", str(data)]) == 0
    assert main(["data", "controlled-ripple", "validate", "--kb-dir", str(kb_dir), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert (
        main(["data", "controlled-ripple", "validate", "--kb-dir", str(kb_dir), "--data-dir", str(data), "--seed", "3"])
        == 1
    )
    assert "test_id: differs from a fresh generation with --seed 3" in capsys.readouterr().err


# ---- loading ----------------------------------------------------------------------------------


def official_row(**overrides) -> dict:
    row = {
        "subject": "Adam Jacobson",
        "subject_type": "person",
        "text": "Adam Jacobson was born in Portugal.",
        "facts": [{"fact": "Adam Jacobson was born in Portugal.", "prefix": "Adam Jacobson was born in", "target": "Portugal"}],
        "questions": [
            {"alias_question": "What year did the event Adam Jacobson studied end?",
             "unalias_question": "What year did French Revolution end?", "answer": 1799},
        ],
    }  # fmt: skip
    return {**row, **overrides}


def test_loader_reads_our_files_and_the_official_release(splits, tmp_path):
    ours = tmp_path / "ours"
    ours.mkdir()
    write_splits(splits, ours)
    assert load_instances(ours, "train") == json.loads(json.dumps(splits["train"]))  # gzipped
    assert load_instances(ours / "test_id.jsonl")[0]["questions"] == splits["test_id"][0]["questions"]
    official = tmp_path / "official"
    official.mkdir()
    (official / "test_data_ood.jsonl").write_text(json.dumps(official_row()) + "\n")
    [instance] = load_instances(official, "test_ood_both")
    assert instance["questions"][0]["answer"] == "1799" and instance["questions"][0]["answer_aliases"] == []
    assert instance["atomic_facts"] == [
        {"prompt": "Adam Jacobson was born in", "target": "Portugal", "subject": "Adam Jacobson"}
    ]


def test_loader_reads_a_saved_datasets_dataset(tmp_path):
    import datasets

    rows = [official_row(), official_row(text="Adam Jacobson was born in Italy.")]
    datasets.DatasetDict({"test_data_id": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "dict"))
    assert [i["text"] for i in load_instances(tmp_path / "dict", "test_id")] == [r["text"] for r in rows]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    assert len(load_instances(tmp_path / "one", "test_ood_both")) == 2
    with pytest.raises(ValueError, match="has no split 'train'. Its splits: test_data_id"):
        load_instances(tmp_path / "dict", "train")


def test_loader_explains_an_unreachable_official_name_and_unknown_sources(tmp_path):
    with pytest.raises(RuntimeError, match="Pass a local copy instead"):
        load_instances(OFFICIAL_NAME, "test_id")
    with pytest.raises(FileNotFoundError, match="neither a file, a folder, nor the official dataset name"):
        load_instances(tmp_path / "nothing", "test_id")
    with pytest.raises(ValueError, match="Unknown Controlled RippleEdit split 'test'. Valid: train, validation"):
        load_instances(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="looked for test_id.jsonl, test_id.jsonl.gz, test_data_id.jsonl"):
        load_instances(tmp_path, "test_id")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (official_row(text=""), r"d.jsonl:2: instance has no fact \(field 'text'"),
        (official_row(questions="none"), r"d.jsonl:2: instance has no questions \(field 'questions'"),
        (
            official_row(questions=[{"alias_question": "q?", "unalias_question": "r?", "answer": " "}]),
            r"d.jsonl:2: question 0 lacks answer \(field 'questions\[0\].answer'\)",
        ),
        (
            official_row(
                questions=[{"alias_question": "q?", "unalias_question": "r?", "answer": "a", "answer_aliases": "b"}]
            ),
            r"d.jsonl:2: field 'questions\[0\].answer_aliases' must be a list",
        ),
        (official_row(atomic_facts=[{"prompt": "p", "subject": "s"}]), r"d.jsonl:2: field 'atomic_facts\[0\].target'"),
    ],
)
def test_a_malformed_row_is_named_by_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(official_row()) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=message):
        read_instances(path)


# ---- the committed splits (present once the knowledge base is complete) ------------------------


@requires_controlled_ripple_splits
def test_the_committed_splits_validate():
    data = CONTROLLED_RIPPLE_DATA_DIR
    assert (
        main(
            [
                "data",
                "controlled-ripple",
                "validate",
                "--kb-dir",
                str(CONTROLLED_RIPPLE_KB_DIR),
                "--data-dir",
                str(data),
            ]
        )
        == 0
    )
