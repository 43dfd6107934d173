"""The emulated API server behaves like Kubernetes where the operator depends on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from pht_sandbox.emulator import (
    JOBS,
    PODS,
    TRAINS,
    ClusterEmulator,
    label_selector_matches,
)

BASE = "/apis/pht.health-ai.nl/v1alpha1/namespaces/ns/trains"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[ClusterEmulator, httpx.AsyncClient]]:
    cluster = ClusterEmulator(bookmark_interval=0.2)
    async with cluster.serving() as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        yield cluster, client
        await cluster.close_watches()


async def create(
    client: httpx.AsyncClient, name: str, labels: dict[str, str] | None = None
) -> dict:
    response = await client.post(
        BASE, json={"metadata": {"name": name, "labels": labels or {}}, "spec": {"image": "x"}}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_sets_identity_and_refuses_duplicates(api) -> None:
    _, client = api
    body = await create(client, "a")
    meta = body["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["generation"] == 1 and meta["namespace"] == "ns"
    assert body["kind"] == "Train"
    again = await client.post(BASE, json={"metadata": {"name": "a"}, "spec": {}})
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"


async def test_status_is_a_separate_subresource_and_generation_counts_spec_only(api) -> None:
    _, client = api
    await create(client, "a")
    r = await client.patch(f"{BASE}/a", json={"status": {"summary": "X"}}, headers=MERGE)
    assert "status" not in r.json()  # the main endpoint ignores status
    r = await client.patch(
        f"{BASE}/a/status", json={"status": {"summary": "Y"}, "spec": {"image": "z"}}, headers=MERGE
    )
    assert r.json()["status"] == {"summary": "Y"} and r.json()["spec"]["image"] == "x"
    assert r.json()["metadata"]["generation"] == 1
    r = await client.patch(f"{BASE}/a", json={"metadata": {"labels": {"k": "v"}}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 1
    r = await client.patch(f"{BASE}/a", json={"spec": {"suspend": True}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 2


async def test_stale_resource_version_conflicts_and_noop_writes_change_nothing(api) -> None:
    _, client = api
    body = await create(client, "a")
    version = body["metadata"]["resourceVersion"]
    r = await client.patch(f"{BASE}/a", json={"spec": {"image": "y"}}, headers=MERGE)
    newer = r.json()["metadata"]["resourceVersion"]
    stale = {"metadata": {"resourceVersion": version}, "spec": {"image": "z"}}
    r = await client.patch(f"{BASE}/a", json=stale, headers=MERGE)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    r = await client.patch(f"{BASE}/a", json={"spec": {"image": "y"}}, headers=MERGE)
    assert r.json()["metadata"]["resourceVersion"] == newer


async def test_lists_have_a_kind_and_honour_label_selectors(api) -> None:
    _, client = api
    await create(client, "a", {"team": "x", "tier": "gpu"})
    await create(client, "b", {"team": "y"})
    r = await client.get(BASE, params={"labelSelector": "team=x"})
    assert r.json()["kind"] == "TrainList" and r.json()["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["a"]
    r = await client.get(BASE, params={"labelSelector": "team in (x,y),!tier"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["b"]


def test_label_selector_grammar() -> None:
    labels = {"a": "1", "b": "2"}
    assert label_selector_matches("a=1,b!=3", labels)
    assert label_selector_matches("a,!c", labels)
    assert not label_selector_matches("a notin (1,2)", labels)
    assert label_selector_matches("b in (2, 3)", labels)


async def read_events(client: httpx.AsyncClient, params: dict[str, str], limit: int) -> list[dict]:
    found: list[dict] = []
    async with client.stream("GET", BASE, params={"watch": "true", **params}) as response:
        async for line in response.aiter_lines():
            if line.strip():
                found.append(json.loads(line))
            if len(found) >= limit:
                break
    return found


async def test_watch_replays_from_a_version_and_sends_bookmarks(api) -> None:
    _, client = api
    first = await create(client, "a")
    await create(client, "b")
    since = first["metadata"]["resourceVersion"]
    events = await read_events(client, {"resourceVersion": since, "allowWatchBookmarks": "true"}, 2)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "b"),
        ("BOOKMARK", None),
    ]


async def test_watch_timeout_ends_the_stream(api) -> None:
    _, client = api
    events = await read_events(client, {"resourceVersion": "0", "timeoutSeconds": "1"}, 10)
    assert events == []


async def test_finalizers_hold_deletion_until_removed(api) -> None:
    _, client = api
    await client.post(BASE, json={"metadata": {"name": "a", "finalizers": ["x/y"]}, "spec": {}})
    r = await client.delete(f"{BASE}/a")
    assert r.json()["metadata"]["deletionTimestamp"]
    assert (await client.get(f"{BASE}/a")).status_code == 200
    await client.patch(f"{BASE}/a", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert (await client.get(f"{BASE}/a")).status_code == 404


async def test_background_deletion_removes_owned_pods(api) -> None:
    cluster, _ = api
    job = await cluster.create_object(JOBS, {"metadata": {"name": "j", "namespace": "r"}})
    owner = {"uid": job["metadata"]["uid"], "kind": "Job", "name": "j", "apiVersion": "batch/v1"}
    await cluster.create_object(
        PODS, {"metadata": {"name": "p", "namespace": "r", "ownerReferences": [owner]}}
    )
    await cluster.delete_object(JOBS, "r", "j", propagation="Background")
    assert cluster.get_object(PODS, "r", "p") is None


async def test_injected_faults_answer_once_then_pass(api) -> None:
    cluster, client = api
    await create(client, "a")
    cluster.faults.fail(503, methods=["PATCH"], plural="trains", count=1)
    r = await client.patch(f"{BASE}/a", json={"spec": {"image": "q"}}, headers=MERGE)
    assert r.status_code == 503
    r = await client.patch(f"{BASE}/a", json={"spec": {"image": "q"}}, headers=MERGE)
    assert r.status_code == 200
    assert cluster.writes[("PATCH", "trains", "")] == 1


async def test_namespaces_and_generate_name(api) -> None:
    _, client = api
    r = await client.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    assert r.status_code == 201
    assert (await client.get("/api/v1/namespaces/team")).json()["kind"] == "Namespace"
    assert (await client.get("/api/v1/namespaces")).json()["kind"] == "NamespaceList"
    r = await client.post(
        "/api/v1/namespaces/team/events", json={"metadata": {"generateName": "ev-"}}
    )
    assert r.json()["metadata"]["name"].startswith("ev-")
    refused = await client.post(
        "/api/v1/namespaces/team/events", json={"metadata": {"generateName": "ev."}}
    )
    assert refused.status_code == 422  # as a real API server: a name may not end in "."


async def test_discovery_lists_our_resources(api) -> None:
    _, client = api
    r = await client.get("/apis/pht.health-ai.nl/v1alpha1")
    names = {res["name"] for res in r.json()["resources"]}
    assert {"trains", "trains/status", "stationpolicies", "trainapprovals"} <= names
    r = await client.get("/api/v1")
    assert r.json()["groupVersion"] == "v1"


async def test_in_process_listeners_see_changes(api) -> None:
    cluster, _ = api
    seen: list[str] = []
    cluster.add_listener(lambda kind, spec, obj: seen.append(f"{kind}:{spec.plural}"))
    await cluster.create_object(TRAINS, {"metadata": {"name": "t", "namespace": "ns"}})
    await asyncio.sleep(0)
    assert seen == ["ADDED:trains"]
