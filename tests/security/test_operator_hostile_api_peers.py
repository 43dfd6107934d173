"""The operator's Kubernetes and station API clients facing a hostile or broken peer.

Something in the API server's place (a compromised control plane, a man in the middle with a
trusted certificate, a broken proxy in front of the station API) must not be able to make the
operator hold unbounded memory, spin forever, hand out its credential, or stall its watches.
Each attack runs against a server on 127.0.0.1, bounded in time and bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig

from pht_operator import kube as kube_module
from pht_operator import sessions
from pht_operator.clusterview import RunObjectFields
from pht_operator.kube import JOBS, SECRETS, TRAINS, ApiError, KubeClient
from pht_operator.runwatch import watch_objects
from pht_operator.stationapi import StationApi, StationApiError

TOKEN = "operator-token-for-the-test"
STATION_CREDENTIAL = "operator-internal-credential"
UID = "0b4f0a56-7d43-4c43-9d57-6a1c1d1e2f30"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(handle: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _config(url: str, user: dict[str, Any] | None = None) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": user or {"token": TOKEN}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


@contextlib.asynccontextmanager
async def client(url: str, user: dict[str, Any] | None = None) -> AsyncIterator[KubeClient]:
    kube = KubeClient.from_config(_config(url, user), timeout=5.0)
    try:
        yield kube
    finally:
        await kube.aclose()


async def _endless(request: web.Request, written: list[int], line: bytes, limit: int) -> Any:
    """Chunks of ``line`` until ``limit`` bytes or until the reader goes away."""
    reply = web.StreamResponse(headers={"Content-Type": "application/json"})
    await reply.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        while written[0] < limit:
            await reply.write(line)
            written[0] += len(line)
        await reply.write_eof()
    return reply


# -- Memory: huge, endless and compressed answers ------------------------------------------


async def test_an_endless_answer_is_cut_off_at_the_answer_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions, "MAX_ANSWER_BYTES", 1 << 20, raising=False)
    written = [0]

    async def endless(request: web.Request) -> Any:
        return await _endless(request, written, b"[" * 65536, 256 << 20)

    async with serving(endless) as url, client(url) as kube:
        async with asyncio.timeout(20):
            with pytest.raises(ApiError) as failed:
                await kube.get(SECRETS, "pht-runs", "s")
    assert failed.value.code == 502
    # Stopped reading near the limit (what the sockets buffer on top), not at the server's end.
    assert written[0] < 64 << 20


async def test_an_announced_oversized_answer_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_ANSWER_BYTES", 1 << 20, raising=False)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b" " * (4 << 20), content_type="application/json")

    async with serving(big) as url, client(url) as kube:
        with pytest.raises(ApiError) as failed:
            await kube.get(SECRETS, "pht-runs", "s")
    assert failed.value.code == 502


async def test_answers_are_asked_for_uncompressed_and_a_compressed_one_is_refused() -> None:
    """A few hundred KiB of gzip can inflate to gigabytes: the operator asks for plain
    answers (the API server then sends none compressed) and does not inflate one sent anyway."""
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)
    asked: list[str | None] = []

    async def compressed(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Accept-Encoding"))
        return web.Response(
            body=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async with serving(compressed) as url:
        async with client(url) as kube:
            with pytest.raises(ApiError) as failed:
                await kube.get(SECRETS, "pht-runs", "s")
        station = StationApi(url, lambda: STATION_CREDENTIAL, timeout=5.0)
        try:
            with pytest.raises(StationApiError):
                await station.state(UID)
        finally:
            await station.aclose()
    assert failed.value.code == 502
    assert asked == ["identity", "identity"]


async def test_a_watch_line_without_end_is_cut_off_at_the_line_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_module, "MAX_WATCH_LINE_BYTES", 1 << 20, raising=False)
    written = [0]

    async def endless(request: web.Request) -> Any:
        return await _endless(request, written, b"x" * 65536, 16 << 20)

    async with serving(endless) as url, client(url) as kube:
        async with asyncio.timeout(20):
            with pytest.raises(ApiError) as failed:
                async for _ in kube.watch(
                    JOBS, "pht-runs", labels=None, resource_version="1", server_timeout=5
                ):
                    pass
    assert failed.value.code == 502
    assert written[0] < 12 << 20


async def test_a_large_watch_event_in_many_pieces_is_read_whole() -> None:
    """The line limit leaves room for the largest object the API server stores."""
    event = {
        "type": "ADDED",
        "object": {"metadata": {"resourceVersion": "5"}, "x": "y" * 2_000_000},
    }
    line = json.dumps(event).encode() + b"\n"

    async def pieces(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        await reply.prepare(request)
        for start in range(0, len(line), 1000):
            await reply.write(line[start : start + 1000])
        await reply.write_eof()
        return reply

    async with serving(pieces) as url, client(url) as kube:
        async with asyncio.timeout(20):
            async for kind, obj in kube.watch(  # noqa: B007 - the first event
                JOBS, "pht-runs", labels=None, resource_version="1", server_timeout=5
            ):
                break
    assert kind == "ADDED"
    assert len(obj["x"]) == 2_000_000


# -- Time: listings that never end, watches kept open by a trickle ---------------------------


def _page(token: str) -> web.Response:
    return web.json_response({"metadata": {"continue": token, "resourceVersion": "9"}, "items": []})


async def test_a_listing_whose_continue_token_repeats_is_refused() -> None:
    calls = [0]

    async def looping(request: web.Request) -> web.Response:
        calls[0] += 1
        return _page("same")

    async with serving(looping) as url, client(url) as kube:
        async with asyncio.timeout(20):
            with pytest.raises(ApiError) as failed:
                await kube.list(JOBS, "pht-runs")
    assert failed.value.code == 502
    assert calls[0] <= 3


async def test_a_listing_that_never_ends_is_refused_after_the_page_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_module, "MAX_LIST_PAGES", 5, raising=False)
    calls = [0]

    async def endless(request: web.Request) -> web.Response:
        calls[0] += 1
        return _page(f"page-{calls[0]}")

    async with serving(endless) as url, client(url) as kube:
        async with asyncio.timeout(20):
            with pytest.raises(ApiError) as failed:
                await kube.list(JOBS, "pht-runs")
    assert failed.value.code == 502
    assert calls[0] == 5


async def test_a_watch_kept_open_by_a_trickle_ends_after_the_servers_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watch asks the server to end it after ``server_timeout`` seconds; one that keeps
    sending a byte now and then past that (never a whole event) is ended by the operator."""
    monkeypatch.setattr(kube_module, "WATCH_GRACE_SECONDS", 1.0, raising=False)

    async def trickle(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        await reply.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            for _ in range(200):
                await reply.write(b"\n")
                await asyncio.sleep(0.1)
        return reply

    async with serving(trickle) as url, client(url) as kube:
        async with asyncio.timeout(10):
            with pytest.raises(ApiError) as failed:
                async for _ in kube.watch_heartbeats("pht-requests", "1", server_timeout=1):
                    pass
    assert failed.value.code == 503


async def test_a_slow_answer_ends_at_the_call_timeout() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        await reply.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            for _ in range(100):
                await reply.write(b" ")
                await asyncio.sleep(0.2)
        return reply

    async with serving(slow) as url:
        kube = KubeClient.from_config(_config(url), timeout=1.0)
        try:
            async with asyncio.timeout(10):
                with pytest.raises(ApiError) as failed:
                    await kube.get(SECRETS, "pht-runs", "s")
        finally:
            await kube.aclose()
    assert failed.value.code == 503


# -- Malformed answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"items": 5, "metadata": {}},
        {"items": [], "metadata": "x"},
        {"items": [], "metadata": {"continue": ["a"]}},
        ["not", "an", "object"],
    ],
)
async def test_a_malformed_listing_is_a_bad_gateway_not_a_crash(answer: Any) -> None:
    async def malformed(request: web.Request) -> web.Response:
        return web.json_response(answer)

    async with serving(malformed) as url, client(url) as kube:
        try:
            items, _ = await kube.list(JOBS, "pht-runs")
        except ApiError as exc:
            assert exc.code == 502
        else:
            assert items == []


@pytest.mark.parametrize("status", ["allowed", ["x"], 7])
async def test_a_malformed_access_review_is_not_allowed(status: Any) -> None:
    async def malformed(request: web.Request) -> web.Response:
        return web.json_response({"status": status})

    async with serving(malformed) as url, client(url) as kube:
        try:
            allowed = await kube.allowed({"verb": "get", "resource": "secrets"})
        except ApiError as exc:
            assert exc.code == 502
        else:
            assert allowed is False


async def test_a_typed_watch_with_wrong_types_starts_over_and_reads_on() -> None:
    """A run-object watch whose event has fields of the wrong type: the watch relists and
    watches again, and the events after it still arrive."""
    requests: list[str] = []
    job = {"metadata": {"name": "run-1", "uid": "j-1", "resourceVersion": "3"}}

    async def server(request: web.Request) -> web.StreamResponse:
        watching = request.query.get("watch") == "true"
        requests.append("watch" if watching else "list")
        if not watching:
            return web.json_response({"metadata": {"resourceVersion": "2"}, "items": []})
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        await reply.prepare(request)
        if requests.count("watch") == 1:
            bad = {"type": "ADDED", "object": {"metadata": {"name": 5, "labels": "x"}}}
            await reply.write(json.dumps(bad).encode() + b"\n")
        else:
            await reply.write(json.dumps({"type": "ADDED", "object": job}).encode() + b"\n")
        await asyncio.sleep(0.5)
        return reply

    seen: list[tuple[str, Any]] = []
    async with serving(server) as url, client(url) as kube:
        task = asyncio.create_task(
            watch_objects(
                kube,
                JOBS,
                "pht-runs",
                {},
                lambda kind, obj: seen.append((kind, obj["metadata"].get("name"))),
                watch_timeout=1,
                retry_seconds=0.05,
                fields=RunObjectFields,
            )
        )
        try:
            async with asyncio.timeout(10):
                while ("ADDED", "run-1") not in seen:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert requests[:4] == ["list", "watch", "list", "watch"]


# -- Credentials -----------------------------------------------------------------------------

REDIRECTS = [301, 302, 303, 307, 308]


@pytest.mark.parametrize("code", REDIRECTS)
@pytest.mark.parametrize("absolute", [True, False])
async def test_no_redirect_is_followed_by_any_client(code: int, absolute: bool) -> None:
    """Every redirect code, to another address and to another path: none is followed, by a
    call, a watch or the station API client, so no credential goes where it points."""
    elsewhere_seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        elsewhere_seen.append(request.headers.get("Authorization"))
        return web.json_response({"metadata": {"name": "x"}})

    async with serving(elsewhere) as other:
        target = other if absolute else ""

        async def redirect(request: web.Request) -> web.Response:
            if request.path.startswith("/elsewhere"):
                return await elsewhere(request)
            location = f"{target}/elsewhere{request.path_qs}"
            return web.Response(status=code, headers={"Location": location})

        async with serving(redirect) as url:
            async with client(url) as kube:
                with pytest.raises(ApiError) as refused:
                    await kube.get(SECRETS, "pht-runs", "s")
                assert refused.value.code == code
                with pytest.raises(ApiError):
                    await kube.create(SECRETS, "pht-runs", {"metadata": {"name": "s"}})
                with pytest.raises(ApiError):
                    async for _ in kube.watch(
                        JOBS, "pht-runs", labels=None, resource_version="1", server_timeout=1
                    ):
                        pass
                with pytest.raises(ApiError):
                    async for _ in kube.watch_heartbeats("pht-requests", "1", server_timeout=1):
                        pass
            station = StationApi(url, lambda: STATION_CREDENTIAL, timeout=5.0)
            try:
                with pytest.raises(StationApiError):
                    await station.state(UID)
                with pytest.raises(StationApiError):
                    await station.deregister(UID)
            finally:
                await station.aclose()
    assert elsewhere_seen == []


@pytest.mark.parametrize(
    "proxy_variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY"]
)
async def test_no_proxy_variable_reaches_either_client(
    monkeypatch: pytest.MonkeyPatch, proxy_variable: str
) -> None:
    proxied: list[str | None] = []
    direct: list[str | None] = []

    async def proxy(request: web.Request) -> web.Response:
        proxied.append(request.headers.get("Authorization"))
        return web.json_response({})

    async def server(request: web.Request) -> web.Response:
        direct.append(request.headers.get("Authorization"))
        return web.json_response({"uid": UID, "registered": False})

    async with serving(proxy) as proxy_url, serving(server) as url:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(proxy_variable, proxy_url)
        async with client(url) as kube:
            await kube.get(SECRETS, "pht-runs", "s")
        station = StationApi(url, lambda: STATION_CREDENTIAL, timeout=5.0)
        try:
            await station.deregister(UID)
        finally:
            await station.aclose()
    assert proxied == []
    assert direct == [f"Bearer {TOKEN}", f"Bearer {STATION_CREDENTIAL}"]


async def test_a_token_with_a_line_break_cannot_add_a_header(tmp_path: Any) -> None:
    """A token file holding a line break (written by mistake or by someone who can write
    it) must not add a header to the request, and the failure must not show the token."""
    token_file = tmp_path / "token"
    token_file.write_text("secret-part\r\nX-Injected: yes\n")
    seen: list[dict[str, str]] = []

    async def server(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({})

    async with serving(server) as url, client(url, {"tokenFile": str(token_file)}) as kube:
        with pytest.raises(ValueError) as failed:
            await kube.get(SECRETS, "pht-runs", "s")
    assert seen == []
    assert "secret-part" not in str(failed.value)


async def test_unreachable_peers_are_reported_without_address_or_credential() -> None:
    station = StationApi("http://user:pass-in-url@127.0.0.1:9", lambda: None, timeout=2.0)
    try:
        with pytest.raises(StationApiError) as failed:
            await station.state(UID)
    finally:
        await station.aclose()
    assert "pass-in-url" not in str(failed.value)
    async with client("http://127.0.0.1:9") as kube:
        with pytest.raises(ApiError) as refused:
            await kube.get(SECRETS, "pht-runs", "s")
    assert refused.value.code == 503
    assert TOKEN not in str(refused.value)


async def test_refused_concurrent_calls_run_the_exec_plugin_a_bounded_number_of_times(
    tmp_path: Any,
) -> None:
    """An API server refusing every credential: twenty calls at once run the credential
    plugin a few times (not once per call and try), and each call gives up."""
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
    calls = [0]

    async def refusing(request: web.Request) -> web.Response:
        calls[0] += 1
        return web.json_response(
            {"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401
        )

    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
        }
    }
    async with serving(refusing) as url, client(url, user) as kube:
        async with asyncio.timeout(30):
            results = await asyncio.gather(
                *(kube.get(TRAINS, "pht-requests", f"t-{i}") for i in range(20)),
                return_exceptions=True,
            )
    assert all(isinstance(r, ApiError) and r.code == 401 for r in results)
    assert int(runs.read_text()) <= 3
    assert calls[0] <= 40


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """The API server closes each connection after its answer (without saying so): the next
    calls open a new one instead of failing on the closed one."""

    async def closing(request: web.Request) -> web.StreamResponse:
        reply = web.Response(body=b"{}", content_type="application/json")
        await reply.prepare(request)
        await reply.write_eof()
        transport = request.transport
        if transport is not None:
            transport.close()
        return reply

    async with serving(closing) as url, client(url) as kube:
        for _ in range(5):
            assert await kube.get(SECRETS, "pht-runs", "s") == {}
            await asyncio.sleep(0.05)


async def test_a_deeply_nested_answer_is_a_bad_gateway() -> None:
    async def nested(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000, content_type="application/json")

    async with serving(nested) as url, client(url) as kube:
        with pytest.raises(ApiError) as failed:
            await kube.get(SECRETS, "pht-runs", "s")
    assert failed.value.code == 502


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"uid": 5}'])
async def test_a_malformed_station_api_answer_is_a_station_api_error(body: bytes) -> None:
    async def malformed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async with serving(malformed) as url:
        station = StationApi(url, lambda: STATION_CREDENTIAL, timeout=5.0)
        try:
            with pytest.raises(StationApiError):
                await station.state(UID)
        finally:
            await station.aclose()


def _plugin_user(tmp_path: Any, body: str) -> dict[str, Any]:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(body)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
        }
    }


async def test_a_hanging_credential_plugin_fails_the_call_instead_of_holding_every_call(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_module, "CREDENTIAL_TIMEOUT_SECONDS", 0.5)
    # It hangs past the limit, then exits (the test waits for that, so that no plugin
    # process outlives the test's event loop).
    user = _plugin_user(tmp_path, "import time\ntime.sleep(1.5)\n")
    reached = [0]

    async def answering(request: web.Request) -> web.Response:
        reached[0] += 1
        return web.json_response({})

    async with serving(answering) as url, client(url, user) as kube:
        async with asyncio.timeout(10):
            results = await asyncio.gather(
                *(kube.get(SECRETS, "pht-runs", f"s-{i}") for i in range(3)),
                return_exceptions=True,
            )
    assert all(isinstance(r, ApiError) and r.reason == "CredentialUnavailable" for r in results)
    assert reached[0] == 0
    await asyncio.sleep(2.0)


async def test_a_failing_credential_plugins_own_output_stays_out_of_the_error(
    tmp_path: Any,
) -> None:
    user = _plugin_user(
        tmp_path, "import sys\nsys.stderr.write('refresh-token=do-not-log')\nsys.exit(3)\n"
    )

    async def answering(request: web.Request) -> web.Response:
        return web.json_response({})

    async with serving(answering) as url, client(url, user) as kube:
        with pytest.raises(ApiError) as failed:
            await kube.get(SECRETS, "pht-runs", "s")
    assert failed.value.reason == "CredentialUnavailable"
    assert "do-not-log" not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


class _MalformedWatches:
    """Lists fine; every watch breaks with a malformed line."""

    def __init__(self) -> None:
        self.listings = 0

    async def list(self, res: Any, namespace: str, labels: Any = None) -> tuple[list[Any], str]:
        self.listings += 1
        return [], "1"

    async def watch(self, res: Any, namespace: str, **_: Any) -> Any:
        raise ValueError("malformed watch line")
        yield  # pragma: no cover - an async generator


async def test_a_watch_that_keeps_breaking_is_retried_ever_more_slowly() -> None:
    """A server whose watch answers only malformed lines is listed again with a growing
    delay, not at a fixed pace."""
    kube = _MalformedWatches()
    task = asyncio.create_task(
        watch_objects(
            kube,  # type: ignore[arg-type]
            JOBS,
            "pht-runs",
            {},
            lambda kind, body: None,
            watch_timeout=1.0,
            retry_seconds=0.01,
        )
    )
    await asyncio.sleep(1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # 0.01 + 0.02 + 0.04 + ... : about seven tries in a second (a fixed delay: about 100).
    assert 3 <= kube.listings <= 10
