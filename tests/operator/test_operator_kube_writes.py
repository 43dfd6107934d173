"""The operator's Kubernetes writes (create, merge patch, delete) as the API server receives
them, and the API server's refusals as the operator sees them; against a recording HTTP server
on 127.0.0.1 that plays the API server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig

from pht_contract import constants
from pht_operator.kube import EVENTS, JOBS, SECRETS, TRAINS, ApiError, KubeClient

TOKEN = "operator-token-for-the-test"


@dataclass
class FakeApiServer:
    """Records each request; answers from ``replies`` (by method) or echoes the body."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, web.Response] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(body) if body else None,
            }
        )
        reply = self.replies.get(request.method)
        if reply is not None:
            return reply
        answer = json.loads(body) if body else {"kind": "Status", "status": "Success"}
        if isinstance(answer, dict) and "metadata" in answer:
            answer["metadata"]["uid"] = "uid-from-the-server"
        return web.json_response(answer)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(handle: Handler) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 answering every path with ``handle``; yields its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _config(url: str) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {"token": TOKEN}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    async with serving(server.handle) as url:
        server.url = url
        yield server


@pytest.fixture
async def kube(api: FakeApiServer) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_config(_config(api.url))
    try:
        yield client
    finally:
        await client.aclose()


async def test_writes_reach_the_api_server_as_the_kubernetes_api_expects(
    api: FakeApiServer, kube: KubeClient
) -> None:
    secret = {"metadata": {"name": "run-1-token"}, "stringData": {"token": "t"}}
    created = await kube.create(SECRETS, "pht-runs", secret)
    assert created["metadata"] == {
        "name": "run-1-token",
        "namespace": "pht-runs",
        "uid": "uid-from-the-server",
    }
    await kube.create(EVENTS, "pht-requests", {"metadata": {"name": "e-1"}, "note": "n"})
    patch = {"status": {"summary": "Queued"}, "metadata": {"resourceVersion": "7"}}
    await kube.merge_patch(TRAINS, "pht-requests", "t-1", patch, status=True)
    await kube.merge_patch(JOBS, "pht-runs", "run-1", {"spec": {"ttlSecondsAfterFinished": 60}})
    assert await kube.delete(SECRETS, "pht-runs", "run-1-token") is True

    sent = [(s["method"], s["path"], s["query"], s["type"]) for s in api.seen]
    manager = {"fieldManager": "pht-station-operator"}
    assert sent == [
        ("POST", "/api/v1/namespaces/pht-runs/secrets", manager, "application/json"),
        (
            "POST",
            "/apis/events.k8s.io/v1/namespaces/pht-requests/events",
            manager,
            "application/json",
        ),
        (
            "PATCH",
            f"/apis/{constants.GROUP_VERSION}/namespaces/pht-requests/trains/t-1/status",
            manager,
            "application/merge-patch+json",
        ),
        (
            "PATCH",
            "/apis/batch/v1/namespaces/pht-runs/jobs/run-1",
            manager,
            "application/merge-patch+json",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/pht-runs/secrets/run-1-token",
            {"propagationPolicy": "Background"},
            None,
        ),
    ]
    # The kind and the namespace are filled in; the caller's object is left as it was.
    assert api.seen[0]["body"] == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "run-1-token", "namespace": "pht-runs"},
        "stringData": {"token": "t"},
    }
    assert secret == {"metadata": {"name": "run-1-token"}, "stringData": {"token": "t"}}
    assert api.seen[2]["body"] == patch
    # Every write carries the operator's credential.
    assert {s["auth"] for s in api.seen} == {f"Bearer {TOKEN}"}


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message},
        status=code,
    )


async def test_refusals_keep_the_api_servers_code_reason_and_message(
    api: FakeApiServer, kube: KubeClient
) -> None:
    api.replies["PATCH"] = _status(409, "Conflict", "the object has been modified " + "x" * 400)
    with pytest.raises(ApiError) as refused:
        await kube.merge_patch(TRAINS, "pht-requests", "t-1", {"status": {}}, status=True)
    assert refused.value.conflict
    assert refused.value.reason == "Conflict"
    assert refused.value.message.startswith("the object has been modified")
    assert len(refused.value.message) == 200

    api.replies["DELETE"] = _status(404, "NotFound", 'secrets "run-1-token" not found')
    assert await kube.delete(SECRETS, "pht-runs", "run-1-token") is False

    api.replies["POST"] = _status(403, "Forbidden", "no")
    with pytest.raises(ApiError) as forbidden:
        await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
    assert (forbidden.value.code, forbidden.value.reason) == (403, "Forbidden")


async def test_a_refusal_without_a_status_body_keeps_the_http_code(
    api: FakeApiServer, kube: KubeClient
) -> None:
    api.replies["DELETE"] = web.Response(status=503, text="upstream unavailable")
    with pytest.raises(ApiError) as failed:
        await kube.delete(JOBS, "pht-runs", "run-1")
    assert failed.value.code == 503
    assert failed.value.message == ""


async def test_an_unreachable_api_server_is_a_503() -> None:
    kube2 = KubeClient.from_config(_config("http://127.0.0.1:9"), timeout=2.0)
    try:
        with pytest.raises(ApiError) as failed:
            await kube2.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
        assert failed.value.code == 503
    finally:
        await kube2.aclose()


async def test_the_run_object_watch_reads_events_resumes_and_stops_on_an_error() -> None:
    """Events split across chunks arrive whole; when the server ends a watch it is resumed from
    the last version seen; an ``ERROR`` event (410: too old) ends it with that code."""
    rounds: list[dict[str, str]] = []

    async def watch(request: web.Request) -> web.StreamResponse:
        rounds.append(dict(request.query))
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        if len(rounds) == 1:
            first = json.dumps(
                {"type": "ADDED", "object": {"metadata": {"name": "j-1", "resourceVersion": "5"}}}
            ).encode()
            await response.write(first[:20])
            await response.write(first[20:] + b"\n\n")
            second = {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "6"}}}
            await response.write(json.dumps(second).encode() + b"\n")
        else:
            error = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await response.write(json.dumps({"type": "ERROR", "object": error}).encode() + b"\n")
        await response.write_eof()
        return response

    async with serving(watch) as url:
        watcher = KubeClient.from_config(_config(url))
        seen: list[tuple[str, str]] = []
        try:
            with pytest.raises(ApiError) as ended:
                async for kind, obj in watcher.watch(
                    JOBS,
                    "pht-runs",
                    labels={"pht.health-ai.nl/train-uid": "u-1"},
                    resource_version="4",
                    server_timeout=30,
                ):
                    seen.append((kind, obj["metadata"]["resourceVersion"]))
        finally:
            await watcher.aclose()
    assert seen == [("ADDED", "5"), ("MODIFIED", "6")]
    assert (ended.value.code, ended.value.reason) == (410, "Expired")
    assert [r.get("resourceVersion") for r in rounds] == ["4", "6"]
    assert {r["labelSelector"] for r in rounds} == {"pht.health-ai.nl/train-uid=u-1"}
    assert {r["watch"] for r in rounds} == {"true"}


async def test_an_answer_without_a_body_is_an_empty_object(
    api: FakeApiServer, kube: KubeClient
) -> None:
    api.replies["DELETE"] = web.Response(status=200)
    api.replies["PATCH"] = web.Response(status=200)
    assert await kube.delete(SECRETS, "pht-runs", "run-1-token") is True
    assert await kube.merge_patch(JOBS, "pht-runs", "run-1", {"spec": {}}) == {}
