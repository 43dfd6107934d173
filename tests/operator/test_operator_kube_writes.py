"""The operator's Kubernetes writes (create, merge patch, delete) as the API server receives
them, and the API server's refusals as the operator sees them; against a recording HTTP server
on 127.0.0.1 that plays the API server."""

from __future__ import annotations

import contextlib
import json
import sys
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


async def test_a_listing_is_read_page_by_page_with_the_last_pages_version(
    api: FakeApiServer,
) -> None:
    pages = {
        "": {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "c-1"}},
        "c-1": {
            "items": [{"metadata": {"name": "b"}}],
            "metadata": {"resourceVersion": "42"},
        },
    }

    async def listing(request: web.Request) -> web.Response:
        api.seen.append(dict(request.query))
        return web.json_response(pages[request.query.get("continue", "")])

    async with serving(listing) as url:
        kube = KubeClient.from_config(_config(url))
        try:
            items, version = await kube.list(JOBS, "pht-runs", labels={"app": "x"})
        finally:
            await kube.aclose()
    assert [item["metadata"]["name"] for item in items] == ["a", "b"]
    assert version == "42"
    assert [seen.get("continue") for seen in api.seen] == [None, "c-1"]
    assert {seen["labelSelector"] for seen in api.seen} == {"app=x"}


async def test_a_redirect_is_not_followed_and_the_credential_stays_home(
    api: FakeApiServer,
) -> None:
    """An API server (or something in its place) answering a write with a redirect to another
    address: the operator's credential must not be sent there."""

    async def elsewhere(request: web.Request) -> web.Response:
        api.seen.append({"auth": request.headers.get("Authorization")})
        return web.json_response({"metadata": {"name": "stolen"}})

    async with serving(elsewhere) as other:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{other}{request.path_qs}")

        async with serving(redirect) as url:
            kube = KubeClient.from_config(_config(url))
            try:
                with pytest.raises(ApiError) as refused:
                    await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
            finally:
                await kube.aclose()
    assert refused.value.code == 307
    assert api.seen == []


async def test_a_cookie_the_server_sets_is_never_sent_back() -> None:
    cookies: list[str | None] = []

    async def planting(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        reply = web.json_response({"metadata": {"name": "s"}})
        reply.set_cookie("session", "planted")
        return reply

    async with serving(planting) as url:
        # By name: a cookie jar takes no cookies from a bare IP address.
        kube = KubeClient.from_config(_config(url.replace("127.0.0.1", "localhost")))
        try:
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "t"}})
        finally:
            await kube.aclose()
    assert cookies == [None, None]


async def test_a_proxy_from_the_environment_is_not_used(
    monkeypatch: pytest.MonkeyPatch, api: FakeApiServer
) -> None:
    proxied: list[str | None] = []

    async def proxy(request: web.Request) -> web.Response:
        proxied.append(request.headers.get("Authorization"))
        return web.json_response({})

    async with serving(proxy) as proxy_url:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy_url)
        kube = KubeClient.from_config(_config(api.url))
        try:
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
        finally:
            await kube.aclose()
    assert proxied == []
    assert [seen["auth"] for seen in api.seen] == [f"Bearer {TOKEN}"]


def _token_file_config(url: str, token_file: str) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {"tokenFile": token_file}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


async def test_a_rotated_token_file_is_read_again_when_the_server_refuses_the_old_token(
    tmp_path: Any, api: FakeApiServer
) -> None:
    """A projected service-account token is rotated on disk: the refused call is made once
    more with the new token, and later calls carry the new one."""
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n")
    accepted = {"Bearer old-token"}
    original = api.handle

    async def checking(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") not in accepted:
            api.seen.append({"refused": request.headers.get("Authorization")})
            return _status(401, "Unauthorized", "Unauthorized")
        return await original(request)

    async with serving(checking) as url:
        kube = KubeClient.from_config(_token_file_config(url, str(token_file)))
        try:
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
            token_file.write_text("new-token\n")
            accepted.clear()
            accepted.add("Bearer new-token")
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "t"}})
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "u"}})
        finally:
            await kube.aclose()
    assert [s.get("auth") or s.get("refused") for s in api.seen] == [
        "Bearer old-token",
        "Bearer old-token",  # refused
        "Bearer new-token",
        "Bearer new-token",
    ]
    assert "refused" in api.seen[1]


async def test_a_credential_that_stays_refused_is_tried_once_more_at_most(
    tmp_path: Any, api: FakeApiServer
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("revoked\n")
    api.replies["POST"] = _status(401, "Unauthorized", "Unauthorized")
    kube = KubeClient.from_config(_token_file_config(api.url, str(token_file)))
    try:
        with pytest.raises(ApiError) as refused:
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
    finally:
        await kube.aclose()
    assert refused.value.code == 401
    # The file did not change: nothing new to try, so the call is not repeated.
    assert len(api.seen) == 1


async def test_an_exec_plugin_gives_the_token_and_is_run_again_when_it_is_refused(
    tmp_path: Any, api: FakeApiServer
) -> None:
    """A kubeconfig whose user is an exec plugin (as ``pht credentials oidc``): its token is
    used until refused, then the plugin is run again and the call repeated with the new one."""
    runs = tmp_path / "runs"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, pathlib\n"
        f"p = pathlib.Path({str(runs)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
        " 'kind': 'ExecCredential', 'status': {'token': f'exec-{n}'}}))\n"
    )
    original = api.handle

    async def checking(request: web.Request) -> web.Response:
        # The first token is accepted once, then refused (it expired).
        if request.headers.get("Authorization") == "Bearer exec-1" and api.seen:
            api.seen.append({"auth": "refused: exec-1"})
            return _status(401, "Unauthorized", "Unauthorized")
        return await original(request)

    async with serving(checking) as url:
        config = KubeConfig.from_dict(
            {
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": sys.executable,
                                "args": [str(plugin)],
                            }
                        },
                    }
                ],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
        kube = KubeClient.from_config(config)
        try:
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
            await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "t"}})
        finally:
            await kube.aclose()
    assert [s["auth"] for s in api.seen] == ["Bearer exec-1", "refused: exec-1", "Bearer exec-2"]
    assert runs.read_text() == "2"
