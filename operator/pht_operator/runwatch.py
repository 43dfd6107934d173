"""The operator's own watches of its run objects (Jobs and Pods) in the run namespace.

Kopf watches every resource it handles in every namespace it is given, so if Kopf watched Jobs
and Pods, the operator would need to read Jobs and Pods in the station namespaces and Trains in
the run namespace: permissions the chart does not (and should not) grant. Kopf therefore watches
only the station namespaces (Trains, StationPolicies, TrainApprovals); this module lists and
watches the run namespace's labelled Jobs and Pods and hands each event to the same cluster view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from pht_contract import constants
from pht_contract.objects import Obj
from pht_operator.kube import ApiError, KubeClient, Resource

Handler = Callable[[str, Obj], None]
logger = logging.getLogger("pht_operator.runwatch")
#: A refused or failing watch is retried after 1, 2, 4 ... seconds, at most this often.
MAX_RETRY_SECONDS = 30.0


#: What is remembered of each listed or watched object between listings: name, namespace,
#: uid, resourceVersion and the label naming its Train (a tuple, not a dict: one per run object).
Identity = tuple[str | None, str | None, str | None, str | None, str | None]
_IDENTITY_FIELDS = ("name", "namespace", "uid", "resourceVersion")


def _identity(obj: Obj) -> Identity:
    meta = obj.get("metadata") or {}
    train_uid = (meta.get("labels") or {}).get(constants.LABEL_TRAIN_UID)
    name, namespace, uid, version = (meta.get(key) for key in _IDENTITY_FIELDS)
    return name, namespace, uid, version, train_uid


def _deleted(identity: Identity) -> Obj:
    """What a DELETED event needs (the store keeps no more): the object's metadata identity,
    with only the label naming its Train (the cluster view finds the Train by it)."""
    *fields, train_uid = identity
    meta: Obj = {
        key: value for key, value in zip(_IDENTITY_FIELDS, fields, strict=True) if value is not None
    }
    if train_uid is not None:
        meta["labels"] = {constants.LABEL_TRAIN_UID: train_uid}
    return {"metadata": meta}


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


async def watch_objects(
    kube: KubeClient,
    resource: Resource,
    namespace: str,
    labels: dict[str, str],
    handle: Handler,
    watch_timeout: float,
    retry_seconds: float = 1.0,
    fields: type[msgspec.Struct] | None = None,
) -> None:
    """List, then watch until cancelled; every object goes to ``handle``.

    A listing delivers its items as ``ADDED`` (and ``DELETED`` for those it no longer holds);
    an expired resource version relists. A refusal (403) is logged as an error naming the
    resource and namespace and retried with a growing delay, so a fixed Role is picked up
    without a restart. ``fields``: what is read of each watched object (see
    :meth:`KubeClient.watch`); listings are read whole.
    """
    version: str | None = None
    known: dict[str, Identity] = {}
    delay = retry_seconds
    what = resource.__name__
    while True:
        try:
            if version is None:
                items, version = await kube.list(resource, namespace, labels)
                listed = {_key(item): item for item in items}
                # Objects deleted while no watch was open get their DELETED event now.
                for key in set(known) - set(listed):
                    handle("DELETED", _deleted(known.pop(key)))
                for key, item in listed.items():
                    known[key] = _identity(item)
                    handle("ADDED", item)
            async for kind, obj in kube.watch(
                resource,
                namespace,
                labels=labels,
                resource_version=version,
                server_timeout=max(1, round(watch_timeout)),
                fields=fields,
            ):
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                delay = retry_seconds
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    if kind == "DELETED":
                        known.pop(_key(obj), None)
                    else:
                        known[_key(obj)] = _identity(obj)
                    handle(kind, obj)
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            version = None
            if exc.code == 410:  # too old to resume: relist
                continue
            level = logging.ERROR if exc.code in (401, 403) else logging.WARNING
            logger.log(level, "cannot watch %s in %s: %s", what, namespace, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        except Exception as exc:  # a dropped connection or a malformed line: start over
            logger.debug("watch of %s interrupted: %s", what, type(exc).__name__)
            version = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
