"""A test double of the station API's internal listener, for the train SDK's tests.

Not the station API: a tiny ``http.server`` on 127.0.0.1 that answers the three paths a train
calls from a script of canned responses and records every request, so tests can check what
the SDK sent and how it reacts to errors, throttling and outages.
"""

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Canned:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(status: int, document: Any, **headers: str) -> Canned:
    return Canned(status, json.dumps(document).encode(), headers=headers)


class GatewayDouble:
    """Answers queued responses per path (or a default), recording each request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queues: dict[str, deque[Canned]] = {}
        self._defaults: dict[str, Canned] = {}
        self._lock = threading.Lock()
        self.url = ""

    def queue(self, path: str, *answers: Canned) -> None:
        with self._lock:
            self._queues.setdefault(path, deque()).extend(answers)

    def always(self, path: str, answer: Canned) -> None:
        self._defaults[path] = answer

    def answer(self, path: str) -> Canned:
        with self._lock:
            queued = self._queues.get(path)
            if queued:
                return queued.popleft()
        return self._defaults.get(
            path, json_answer(404, {"reason": "NotFound", "message": "no such path"})
        )

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


def _handler(double: GatewayDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            double.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )
            canned = double.answer(self.path)
            self.send_response(canned.status)
            self.send_header("Content-Type", canned.content_type)
            self.send_header("Content-Length", str(len(canned.body)))
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_gateway_double() -> Iterator[GatewayDouble]:
    double = GatewayDouble()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(double))
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
