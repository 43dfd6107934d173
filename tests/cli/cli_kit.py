"""Test doubles for the CLI: a recording HTTP server on 127.0.0.1 and kubeconfig files."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: Any = None


@dataclass
class Recorder:
    """Answers GET/POST by path from ``routes``; remembers every request."""

    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        self.routes[(method, path)] = (status, body)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            recorder.seen.append(
                Seen(
                    self.command,
                    path,
                    self.headers.get("Authorization"),
                    json.loads(raw) if raw else None,
                )
            )
            status, body = recorder.routes.get(
                (self.command, path),
                (404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": path}),
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving() -> Iterator[Recorder]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def write_kubeconfig(
    path: Path,
    server: str,
    user: dict[str, Any] | None = None,
    namespace: str | None = None,
    extra_contexts: dict[str, str] | None = None,
) -> Path:
    """One cluster, one user ``me`` and context ``main`` (plus ``extra_contexts``: name →
    namespace, same cluster and user)."""
    context: dict[str, Any] = {"cluster": "local", "user": "me"}
    if namespace:
        context["namespace"] = namespace
    contexts = [{"name": "main", "context": context}]
    for name, ns in (extra_contexts or {}).items():
        contexts.append({"name": name, "context": {**context, "namespace": ns}})
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "users": [{"name": "me", "user": user or {"token": "unused"}}],
                "contexts": contexts,
                "current-context": "main",
            }
        )
    )
    return path


def train(namespace: str, name: str, summary: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "Train",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {
            "image": "registry.example.org/km:1",
            "requester": {"name": "dr-alice", "organisation": "Maastro"},
            **spec,
        },
        "status": {
            "summary": summary,
            "specHash": "a" * 64,
            "conditions": [{"type": "Approved", "message": "needs 1 more steward"}],
        },
    }


def train_list(*trains: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainList",
        "metadata": {"resourceVersion": "1"},
        "items": list(trains),
    }


TRAINS_PATH = "/apis/pht.health-ai.nl/v1alpha1/namespaces/{ns}/trains"
