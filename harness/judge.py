"""LLM-as-judge (the paper's LLM-Score) through any OpenAI-compatible chat-completions endpoint.

A judge model reads a question, one valid answer and the model's answer, rendered with a jinja2
template (the paper's Appendix A.1 prompt by default), and replies with a score 0-10 inside
<score> tags. The score is divided by 10; a question with several valid answers counts the best.

`Judge.score` judges many items at once: requests run concurrently (bounded), retry with
exponential backoff on rate limits, server errors and timeouts, re-ask a bounded number of times
when the reply has no parseable score, and land in an on-disk cache keyed by (judge model,
template hash, question, reference, prediction) as soon as each one finishes, so an interrupted
or repeated run never pays for a judgement twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ripplebench.core.cache import default_cache_dir

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).parent / "templates" / "judge_prompt.jinja"
MAX_SCORE = 10.0
ENV_PREFIX = "RIPPLEBENCH_JUDGE_"
METADATA_PREFIX = "judge_"
_SCORE_TAG = re.compile(r"<score>\s*([0-9]+(?:\.[0-9]+)?)\s*</score>", re.IGNORECASE)
_THINKING = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)


class JudgeError(RuntimeError):
    """The judge endpoint cannot be used: unreachable, failing past all retries, or refusing."""


def _default_cache_dir() -> Path:
    """Judgements are cached in <ripplebench cache>/judge."""
    return default_cache_dir() / "judge"


@dataclass(frozen=True)
class JudgeSettings:
    """Where and how to ask the judge. Every field can be set by environment or task metadata."""

    model: str
    base_url: str | None = None  # None: the openai client's default (OpenAI's API, or OPENAI_BASE_URL)
    api_key: str | None = None  # None: OPENAI_API_KEY; local servers without a key get "EMPTY"
    concurrency: int = 16
    timeout: float = 60.0  # seconds per request
    retries: int = 6  # on rate limits, server errors, timeouts and connection failures
    backoff: float = 1.0  # seconds before the first retry; doubles each time (at most 60 s)
    reasks: int = 2  # extra requests when a reply has no parseable score
    temperature: float = 0.0
    template: Path = DEFAULT_TEMPLATE
    cache_dir: Path = field(default_factory=_default_cache_dir)

    def __post_init__(self) -> None:
        for name, low in (("concurrency", 1), ("retries", 0), ("reasks", 0), ("backoff", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"Judge setting '{name}' must be at least {low}, got {getattr(self, name)}.")
        if self.timeout <= 0:
            raise ValueError(f"Judge setting 'timeout' must be positive, got {self.timeout}.")

    @property
    def endpoint(self) -> str:
        """The URL requests go to, for messages."""
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    @classmethod
    def names(cls) -> list[str]:
        """Setting names, as used after the RIPPLEBENCH_JUDGE_ / judge_ prefixes."""
        return [item.name for item in fields(cls)]

    @classmethod
    def resolve(
        cls, metadata: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> "JudgeSettings | None":
        """Settings from task metadata (`judge_<name>`, wins) over RIPPLEBENCH_JUDGE_<NAME>.

        Returns None when no judge model is named anywhere: the judge is not configured.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.names():
            value = environ.get(ENV_PREFIX + name.upper())
            if value not in (None, ""):
                values[name] = value
        unknown = []
        for key, value in (metadata or {}).items():
            if not key.startswith(METADATA_PREFIX):
                continue
            name = key[len(METADATA_PREFIX) :]
            if name not in cls.names():
                unknown.append(key)
            elif value not in (None, ""):
                values[name] = value
        if unknown:
            valid = ", ".join(METADATA_PREFIX + name for name in cls.names())
            raise ValueError(f"Unknown judge setting(s) {', '.join(unknown)} in task metadata. Valid: {valid}.")
        if "api_key" not in values and environ.get("OPENAI_API_KEY"):
            values["api_key"] = environ["OPENAI_API_KEY"]
        if "model" not in values:
            if values:
                named = ", ".join(sorted(values))
                logger.warning("Judge settings (%s) are given but no judge model: set %sMODEL.", named, ENV_PREFIX)
            return None
        return cls(**{name: _convert(cls, name, value) for name, value in values.items()})


_CONVERTERS = {"int": int, "float": float, "Path": lambda value: Path(value).expanduser()}


def _convert(cls: type, name: str, value: Any) -> Any:
    """Turn an environment or metadata string into the field's type, naming the setting when it cannot."""
    kind = {item.name: item.type for item in fields(cls)}[name]  # annotations are strings here
    try:
        return _CONVERTERS.get(kind, str)(value)
    except ValueError:
        raise ValueError(f"Judge setting '{name}' must be {kind}, got {value!r}.") from None


def parse_score(reply: str) -> float | None:
    """The 0-10 score in a judge reply's <score> tags, divided by 10; None when there is none.

    Reasoning inside <think>...</think> is ignored. Several tags must agree, and the value must
    lie in 0-10; anything else is not a parseable score.
    """
    found = {float(value) for value in _SCORE_TAG.findall(_THINKING.sub("", reply or ""))}
    if len(found) != 1:
        return None
    score = found.pop()
    return score / MAX_SCORE if 0 <= score <= MAX_SCORE else None


@dataclass(frozen=True)
class JudgeItem:
    """One generated answer to judge against every valid answer of its question."""

    question: str
    answers: tuple[str, ...]
    prediction: str


@dataclass
class JudgeReport:
    """What one `Judge.score` call did."""

    items: int = 0
    judgements: int = 0  # distinct (question, reference, prediction) triples
    cached: int = 0
    requests: int = 0
    unscorable: list[JudgeItem] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.items} items, {self.judgements} judgements ({self.cached} from cache, "
            f"{self.requests} requests), {len(self.unscorable)} unscorable"
        )


class JudgeCache:
    """Judgements on disk (SQLite), keyed by judge model, template hash and the three texts.

    Each judgement is committed as soon as it arrives. Unscorable judgements are stored too
    (score NULL, with the last reply) so a rerun does not ask again unless told to.
    """

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "judgements.sqlite"
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, model TEXT, template_sha TEXT, "
            "question TEXT, reference TEXT, prediction TEXT, score REAL, reply TEXT)"
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, template_sha: str, question: str, reference: str, prediction: str) -> str:
        return hashlib.sha256(json.dumps([model, template_sha, question, reference, prediction]).encode()).hexdigest()

    def lookup(self, keys: Sequence[str]) -> dict[str, float | None]:
        """The cached scores among `keys` (None: cached as unscorable); absent keys are left out."""
        found: dict[str, float | None] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite bounds the number of parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(f"SELECT key, score FROM judgements WHERE key IN ({marks})", chunk).fetchall()
                )
        return found

    def put(self, key: str, values: Sequence[Any], score: float | None, reply: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (key, *values, score, reply)
            )
            self._db.commit()

    def close(self) -> None:
        self._db.close()


class Judge:
    """Scores items with a judge model; see the module docstring."""

    def __init__(self, settings: JudgeSettings):
        import jinja2

        self.settings = settings
        try:
            source = Path(settings.template).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"Cannot read the judge prompt template {settings.template}: {error.strerror}.") from None
        self.template_sha = hashlib.sha256(source.encode()).hexdigest()
        self._template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source)
        if not (settings.api_key or settings.base_url or os.environ.get("OPENAI_BASE_URL")):
            raise ValueError(
                f"The judge '{settings.model}' at {settings.endpoint} needs an API key: set {ENV_PREFIX}API_KEY "
                f"or OPENAI_API_KEY, or {ENV_PREFIX}BASE_URL for a local OpenAI-compatible server."
            )
        self.cache = JudgeCache(Path(settings.cache_dir))

    def close(self) -> None:
        """Close the cache."""
        self.cache.close()

    def prompt(self, question: str, reference: str, prediction: str) -> str:
        """The judge prompt for one (question, valid answer, generated answer)."""
        return self._template.render(question=question, reference=reference, prediction=prediction)

    def score(
        self, items: Sequence[JudgeItem], retry_unscorable: bool = False, progress: bool = True
    ) -> tuple[list[float | None], JudgeReport]:
        """Each item's best normalised score over its answers (None: unscorable), and a report.

        An item is unscorable when no answer could be scored, or when an answer could not be
        scored and no other answer reached the top score (its best is then unknown).
        """
        report = JudgeReport(items=len(items))
        triples = sorted({(item.question, answer, item.prediction) for item in items for answer in item.answers})
        report.judgements = len(triples)
        cached = self.cache.lookup([self._key(triple) for triple in triples])
        scores: dict[tuple[str, str, str], float | None] = {}
        missing = []
        for triple in triples:
            key = self._key(triple)
            if key not in cached or (retry_unscorable and cached[key] is None):
                missing.append(triple)
            else:
                scores[triple] = cached[key]
        report.cached = len(triples) - len(missing)
        if missing:
            report.requests = _run(self._judge_all(missing, scores, progress))
        results = [_best(scores[(item.question, answer, item.prediction)] for answer in item.answers) for item in items]
        report.unscorable = [item for item, result in zip(items, results) if result is None]
        return results, report

    def _key(self, triple: tuple[str, str, str]) -> str:
        return JudgeCache.key(self.settings.model, self.template_sha, *triple)

    async def _judge_all(self, triples: list[tuple[str, str, str]], scores: dict, progress: bool) -> int:
        """Judge the triples concurrently; returns the number of requests made."""
        from openai import AsyncOpenAI
        from tqdm.auto import tqdm

        settings = self.settings
        api_key = settings.api_key or ("EMPTY" if settings.base_url else None)
        try:
            client = AsyncOpenAI(base_url=settings.base_url, api_key=api_key, timeout=settings.timeout, max_retries=0)
        except Exception as error:  # the openai client refuses to start without an API key
            raise JudgeError(f"Cannot set up the judge client for {settings.endpoint}: {error}") from None
        limit = asyncio.Semaphore(settings.concurrency)
        counter = [0]
        bar = tqdm(total=len(triples), desc=f"Judging with {settings.model}", disable=not progress)

        async def one(triple: tuple[str, str, str]) -> None:
            async with limit:
                score, reply = await self._ask(client, triple, counter)
            self.cache.put(self._key(triple), (settings.model, self.template_sha, *triple), score, reply)
            scores[triple] = score
            bar.update()

        tasks = [asyncio.ensure_future(one(triple)) for triple in triples]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()
        finally:
            bar.close()
            await client.close()
        return counter[0]

    async def _ask(self, client: Any, triple: tuple[str, str, str], counter: list[int]) -> tuple[float | None, str]:
        """One judgement: retries on transport failures, re-asks on unparseable replies."""
        reply = ""
        for _ in range(1 + self.settings.reasks):
            reply = await self._request(client, self.prompt(*triple), counter)
            score = parse_score(reply)
            if score is not None:
                return score, reply
        logger.warning(
            "Judge reply has no parseable score after %d tries (question %r, reference %r); a valid reply "
            "holds one <score>N</score> with N from 0 to 10: %r",
            1 + self.settings.reasks,
            triple[0],
            triple[1],
            reply[:200],
        )
        return None, reply

    async def _request(self, client: Any, prompt: str, counter: list[int]) -> str:
        import openai

        settings = self.settings
        retryable = (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APITimeoutError,
            openai.APIConnectionError,
        )
        for attempt in range(settings.retries + 1):
            counter[0] += 1
            try:
                response = await client.chat.completions.create(
                    model=settings.model,
                    messages=[{"role": "user", "content": prompt}],
                    temperature=settings.temperature,
                )
                return (response.choices[0].message.content or "") if response.choices else ""
            except retryable as error:
                if attempt == settings.retries:
                    raise JudgeError(_failure(settings, error, attempt + 1)) from None
                delay = min(60.0, settings.backoff * 2**attempt) * (1 + 0.25 * random.random())
                logger.info("Judge request failed (%s); retrying in %.2f s", type(error).__name__, delay)
                await asyncio.sleep(delay)
            except openai.APIStatusError as error:  # 4xx other than 429: retrying cannot help
                raise JudgeError(
                    f"The judge at {settings.endpoint} refused the request (HTTP {error.status_code}, "
                    f"model '{settings.model}'): {error.message}"
                ) from None
        raise AssertionError("unreachable")


def _failure(settings: JudgeSettings, error: Exception, tries: int) -> str:
    import openai

    if isinstance(error, openai.APIConnectionError) and not isinstance(error, openai.APITimeoutError):
        what = "cannot be reached"
    elif isinstance(error, openai.APITimeoutError):
        what = f"did not answer within {settings.timeout:g} s"
    else:
        what = f"kept failing ({error})"
    return f"The judge at {settings.endpoint} {what} after {tries} tries."


def _best(scores: Iterable[float | None]) -> float | None:
    scores = list(scores)
    known = [score for score in scores if score is not None]
    if not known or (len(known) < len(scores) and max(known) < 1.0):
        return None
    return max(known)


def _run(coroutine: Any) -> Any:
    """Run a coroutine to completion, also from code that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised in the caller's thread
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
