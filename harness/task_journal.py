"""Where the `editing` model journals its answered edit groups: one journal per task run.

`journal=DIR` keeps each journal in DIR for good (the sweep's `CELL/journal/`). Without it the
journals live in the cache folder, `<cache>/journals/` (core/cache.py), while the run lasts: a
journal's file is named by a hash of the run's whole configuration, so rerunning a killed
command finds it and resumes, with no need to know lm_eval's --output_path. Once every task of
a run is answered its journals there are removed, so a finished run is never replayed from the
cache (the same command run twice is computed twice) and the cache does not grow. A journal
there that another process holds (the same configuration running elsewhere) is left to it:
this run goes on without one, with a warning.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from ripplebench.core.cache import default_cache_dir
from ripplebench.core.settings import parse_bool
from ripplebench.harness.journal import EditJournal
from ripplebench.harness.locks import Busy

log = logging.getLogger(__name__)


def default_journal_dir() -> Path:
    """The journals' folder when `journal=` is not given."""
    return default_cache_dir() / "journals"


class TaskJournals:
    """The journals of one `editing` model: opened per task, summarised for the results."""

    def __init__(self, folder: str | None, resume: bool | str) -> None:
        self.keep = folder is not None  # journal=DIR: kept; the default folder: removed when done
        self.folder = Path(folder) if folder is not None else default_journal_dir()
        self.resume = parse_bool(resume, "model_args resume")
        self.summaries: list[dict[str, Any]] = []  # each task's journal summary, for the results
        self._answered: list[Path] = []  # default-folder journals of tasks answered in full

    @contextmanager
    def open(self, task: str, key: Mapping[str, Any]) -> Iterator[EditJournal | None]:
        """The journal of `task` under `key` while its groups are answered (None: none to be had);
        once they all are, its summary is recorded and the resume, if any, logged."""
        try:
            journal = EditJournal(self.folder, task, key, resume=self.resume)
        except Busy as busy:
            if self.keep:
                raise
            log.warning("%s; task %s runs without a journal.", busy, task)
            yield None
            return
        try:
            yield journal
        finally:
            journal.close()
        self.summaries.append({"task": task, **journal.summary()})
        # A resume is worth seeing among lm-eval's log lines, which show warnings only.
        (log.warning if journal.reused else log.info)(
            "Task %s: reused %d answered edit groups from the journal %s, answered %d.",
            task, journal.reused, journal.path, journal.recorded,
        )  # fmt: skip
        if not self.keep:
            self._answered.append(journal.path)

    def remove_answered(self) -> None:
        """Delete the default-folder journals of the tasks answered in full (the run is done)."""
        for path in self._answered:
            path.unlink(missing_ok=True)
        self._answered.clear()
