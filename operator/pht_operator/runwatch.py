"""The operator's own watches of its run objects (Jobs and Pods) in the run namespace.

Kopf watches every resource it handles in every namespace it is given, so if Kopf watched Jobs
and Pods, the operator would need to read Jobs and Pods in the station namespaces and Trains in
the run namespace: permissions the chart does not (and should not) grant. Kopf therefore watches
only the station namespaces (Trains, StationPolicies, TrainApprovals); this module lists and
watches the run namespace's labelled Jobs and Pods and hands each event to the same store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from pht_operator.kubeapi import ApiError, KubeApi, Resource

Obj = dict[str, Any]
Handler = Callable[[str, Obj], None]
logger = logging.getLogger("pht_operator.runwatch")
#: A refused or failing watch is retried after 1, 2, 4 ... seconds, at most this often.
MAX_RETRY_SECONDS = 30.0


def _identity(obj: Obj) -> Obj:
    """What a DELETED event needs (the store keeps no more): the object's metadata identity."""
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "uid", "labels", "resourceVersion")
    return {"metadata": {k: meta[k] for k in keep if k in meta}}


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


async def watch_objects(
    kube: KubeApi,
    resource: Resource,
    namespace: str,
    labels: dict[str, str],
    handle: Handler,
    watch_timeout: float,
    retry_seconds: float = 1.0,
) -> None:
    """List, then watch (with bookmarks) until cancelled; every object goes to ``handle``.

    A listing delivers its items as ``ADDED`` (and ``DELETED`` for those it no longer holds);
    an expired resource version relists. A refusal (403) is logged as an error naming the
    resource and namespace and retried with a growing delay, so a fixed Role is picked up
    without a restart.
    """
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    path = resource.path(namespace)
    version: str | None = None
    known: dict[str, Obj] = {}
    delay = retry_seconds
    while True:
        try:
            if version is None:
                listing = await kube._call("GET", path, params={"labelSelector": selector})
                items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
                listed = {_key(item): item for item in items}
                # Objects deleted while no watch was open get their DELETED event now.
                for key in set(known) - set(listed):
                    handle("DELETED", known.pop(key))
                for key, item in listed.items():
                    known[key] = _identity(item)
                    handle("ADDED", item)
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                delay = retry_seconds
            params = {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "labelSelector": selector,
                "timeoutSeconds": str(max(1, round(watch_timeout))),
            }
            if version:
                params["resourceVersion"] = version
            async with kube._client.stream(
                "GET", path, params=params, timeout=watch_timeout + 10
            ) as response:
                if response.status_code == 410:
                    version = None
                    continue
                if response.status_code >= 400:
                    body = json.loads(await response.aread() or b"{}")
                    raise ApiError(
                        response.status_code,
                        str(body.get("reason", "Error")),
                        str(body.get("message", "")),
                    )
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        version = None
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        if kind == "DELETED":
                            known.pop(_key(obj), None)
                        else:
                            known[_key(obj)] = _identity(obj)
                        handle(str(kind), obj)
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            level = logging.ERROR if exc.code in (401, 403) else logging.WARNING
            logger.log(level, "cannot watch %s in %s: %s", resource.plural, namespace, exc)
            version = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        except Exception as exc:  # a dropped connection or a malformed line: start over
            logger.debug("watch of %s interrupted: %s", resource.plural, type(exc).__name__)
            version = None
            await asyncio.sleep(retry_seconds)
