"""The operator's Kubernetes writes (create, merge patch, delete) as the API server receives
them, and the API server's refusals as the operator sees them; against a recording HTTP server
on 127.0.0.1 that plays the API server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
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


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def kube(api: FakeApiServer) -> AsyncIterator[KubeClient]:
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": api.url}}],
            "users": [{"name": "u", "user": {"token": TOKEN}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    client = KubeClient.from_config(config)
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


async def test_an_unreachable_api_server_is_a_503(api: FakeApiServer, kube: KubeClient) -> None:
    await kube.aclose()
    kube2 = KubeClient.from_config(
        KubeConfig.from_dict(
            {
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        timeout=2.0,
    )
    try:
        with pytest.raises(ApiError) as failed:
            await kube2.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
        assert failed.value.code == 503
    finally:
        await kube2.aclose()
