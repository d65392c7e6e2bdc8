"""A fake OpenAI-compatible judge on 127.0.0.1 for tests.

It answers POST .../chat/completions deterministically: <score>10</score> when the reference
(the text between the ground-truth markers of the prompt) occurs in the assistant's answer,
otherwise <score>2</score>. It can be told to fail the next requests with an HTTP status, to
stall past the client's timeout, or to answer without a score. It records every request's prompt
and the largest number of requests in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_REFERENCE = re.compile(r"\[The Start of Ground truth\]\n(.*?)\n\[The End of Ground truth\]", re.DOTALL)
_ANSWER = re.compile(r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.DOTALL)


class FakeJudge:
    """Start with `with FakeJudge() as judge:`; `judge.base_url` is the OpenAI base URL."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds each answer takes, so that concurrency can be observed
        self.prompts: list[str] = []
        self.failures: list[int] = []  # HTTP statuses for the next requests, consumed in order
        self.stalls = 0  # how many next requests stall for `stall_seconds`
        self.stall_seconds = 2.0
        self.garbage = 0  # how many next requests get a reply without a score (-1: all)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return len(self.prompts)

    def __enter__(self) -> "FakeJudge":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_behaviour(self) -> tuple[str, int | None]:
        with self._lock:
            if self.failures:
                return "fail", self.failures.pop(0)
            if self.stalls:
                self.stalls -= 1
                return "stall", None
            if self.garbage:
                if self.garbage > 0:
                    self.garbage -= 1
                return "garbage", None
        return "score", None

    def reply(self, prompt: str) -> str:
        reference = _REFERENCE.search(prompt).group(1).strip().lower()
        answer = _ANSWER.search(prompt).group(1).strip().lower()
        return f"<score>{10 if reference and reference in answer else 2}</score>"

    def _handler(self) -> type:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge._lock:
                    judge.prompts.append(payload["messages"][-1]["content"])
                    judge.in_flight += 1
                    judge.max_in_flight = max(judge.max_in_flight, judge.in_flight)
                try:
                    self._answer(payload)
                finally:
                    with judge._lock:
                        judge.in_flight -= 1

            def _answer(self, payload: dict) -> None:
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                behaviour, status = judge._next_behaviour()
                time.sleep(judge.delay)
                if behaviour == "fail":
                    self._send(status, {"error": {"message": f"told to fail with {status}"}})
                    return
                if behaviour == "stall":
                    time.sleep(judge.stall_seconds)
                content = (
                    "I think it is fine." if behaviour == "garbage" else judge.reply(payload["messages"][-1]["content"])
                )
                self._send(
                    200,
                    {
                        "id": "fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": payload["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                        ],
                    },
                )

        return Handler
