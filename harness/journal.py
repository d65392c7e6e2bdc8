"""A crash-safe journal of answered edit groups, so a killed evaluation resumes where it stopped.

One JSON-lines file per run configuration: a header line holding the configuration key, then
one line per finished edit group (its edit ids, questions, answers and edit statistics),
appended, flushed and fsync'd as the group finishes. The file is named by a hash of the key, so
a changed model, editor config, task, data or decoding setting opens another file and never
reuses stale answers. A torn last line (the process died while writing it) is ignored and cut
off before the next append. A journal is locked while it is open: a second run with the same
configuration and folder stops at once (`locks.Busy`) instead of writing beside the first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ripplebench.harness.locks import lock

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def digest(data: Any) -> str:
    """A short stable hash of JSON-able data (keys sorted; other values by their str())."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class GroupRecord:
    """One finished edit group as the journal holds it."""

    edit_ids: tuple[str, ...]
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    edit_stats: dict[str, Any]


class EditJournal:
    """Answered edit groups of one configuration (`key`), read from and appended to `folder`.

    `resume=False` discards what an earlier run journaled under the same key.
    """

    def __init__(self, folder: str | Path, name: str, key: Mapping[str, Any], resume: bool = True) -> None:
        self.key = json.loads(json.dumps(dict(key), sort_keys=True, default=str))
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        self.path = Path(folder) / f"{safe_name}-{digest(self.key)}.jsonl"
        self.reused = 0
        self.recorded = 0
        self._groups: dict[tuple[str, ...], GroupRecord] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        try:
            lock(self._file.fileno(), f"Journal {self.path}")
            if resume and self.path.stat().st_size > 0:
                self._groups = self._read()
            else:
                self._start()
        except BaseException:
            self._file.close()  # and with it the lock
            raise

    def lookup(self, edit_ids: Sequence[str], questions: Sequence[str]) -> GroupRecord | None:
        """The journaled answers of this edit group, or None when it has not been answered.

        Raises ValueError when the journal holds the group with other questions (an edited file).
        """
        record = self._groups.get(tuple(edit_ids))
        if record is None:
            return None
        if record.questions != tuple(questions):
            raise ValueError(
                f"Journal {self.path} holds edit group {'+'.join(edit_ids)} with other questions than "
                "this run asks; delete the file or pass --model_args resume=false."
            )
        self.reused += 1
        return record

    def record(
        self,
        edit_ids: Sequence[str],
        questions: Sequence[str],
        answers: Sequence[str],
        edit_stats: Mapping[str, Any],
    ) -> None:
        """Append one finished group and force it to disk before returning."""
        record = GroupRecord(tuple(edit_ids), tuple(questions), tuple(answers), dict(edit_stats))
        line = {
            "edit_ids": list(record.edit_ids),
            "questions": list(record.questions),
            "answers": list(record.answers),
            "edit_stats": record.edit_stats,
        }
        self._append(line)
        self._groups[record.edit_ids] = record
        self.recorded += 1

    def close(self) -> None:
        self._file.close()

    def summary(self) -> dict[str, Any]:
        """What this run took from and added to the journal (recorded in results)."""
        return {"path": str(self.path), "reused_groups": self.reused, "answered_groups": self.recorded}

    def _append(self, line: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _start(self) -> None:
        """A new journal holding only the header; the folder entry is fsync'd too."""
        with self.path.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"journal": FORMAT_VERSION, "key": self.key}, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _read(self) -> dict[tuple[str, ...], GroupRecord]:
        """The groups journaled so far; a torn last line is cut off so appends stay well-formed."""
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # whatever follows the last newline was never fully written
        groups: dict[tuple[str, ...], GroupRecord] = {}
        kept = 0
        for number, raw in enumerate(complete, start=1):
            try:
                line = json.loads(raw)
            except ValueError:
                if number < len(complete):
                    raise ValueError(
                        f"Journal {self.path}, line {number}: not valid JSON; delete the file or pass "
                        "--model_args resume=false."
                    ) from None
                break  # a torn last line
            if number == 1:
                self._check_header(line)
            else:
                record = GroupRecord(
                    tuple(line["edit_ids"]), tuple(line["questions"]), tuple(line["answers"]), line["edit_stats"]
                )
                groups[record.edit_ids] = record
            kept += len(raw) + 1
        if kept == 0:  # not even a header survived
            self._start()
        elif kept < len(data):
            log.warning("Journal %s: ignoring a torn last line (%d bytes).", self.path, len(data) - kept)
            os.truncate(self.path, kept)
        if groups:
            log.info("Journal %s: %d edit groups already answered.", self.path, len(groups))
        return groups

    def _check_header(self, header: Any) -> None:
        if not isinstance(header, dict) or header.get("journal") != FORMAT_VERSION or header.get("key") != self.key:
            raise ValueError(
                f"Journal {self.path} was written for another configuration than this run's; delete it "
                "or pass --model_args resume=false."
            )
