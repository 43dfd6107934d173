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

    A listing delivers its items as ``ADDED``; an expired resource version relists. A refusal
    (403) is logged as an error naming the verb and namespace and retried, so a fixed Role is
    picked up without a restart.
    """
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    path = resource.path(namespace)
    version: str | None = None
    while True:
        try:
            if version is None:
                listing = await kube._call("GET", path, params={"labelSelector": selector})
                for item in listing.get("items") or []:
                    if isinstance(item, dict):
                        handle("ADDED", item)
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
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
                        handle(str(kind), obj)
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            level = logging.ERROR if exc.code in (401, 403) else logging.WARNING
            logger.log(level, "cannot watch %s in %s: %s", resource.plural, namespace, exc)
            version = None
            await asyncio.sleep(retry_seconds)
        except Exception as exc:  # a dropped connection or a malformed line: start over
            logger.debug("watch of %s interrupted: %s", resource.plural, type(exc).__name__)
            version = None
            await asyncio.sleep(retry_seconds)
