"""The operator's Train cache holds what the operator reads, not the API server's bookkeeping."""

from __future__ import annotations

from pht_contract.objects import Obj
from pht_operator.clusterview import ClusterView


def test_managed_fields_and_the_last_applied_copy_are_not_kept() -> None:
    store = ClusterView()
    body = {
        "metadata": {
            "uid": "u-1",
            "name": "km",
            "namespace": "pht-requests",
            "resourceVersion": "5",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"spec": "..."}',
                "pht.example/requested-by": "alice",
            },
        },
        "spec": {"image": "x"},
    }
    store.put_train(body)
    kept = store.trains["u-1"]
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"pht.example/requested-by": "alice"}
    assert kept["spec"] == {"image": "x"} and kept["metadata"]["resourceVersion"] == "5"
    assert "managedFields" in body["metadata"]  # the caller's object is left as it was


def test_a_train_without_bookkeeping_is_kept_as_is() -> None:
    store = ClusterView()
    body = {"metadata": {"uid": "u-2", "name": "km", "namespace": "ns", "resourceVersion": "1"}}
    store.put_train(body)
    assert store.trains["u-2"] is body


def _watched(version: str, summary: str) -> Obj:
    return {
        "metadata": {
            "uid": "u-3",
            "name": "km",
            "namespace": "ns",
            "resourceVersion": version,
            "managedFields": [{"manager": "pht-operator", "fieldsV1": {"f:status": {}}}],
        },
        "status": {"summary": summary},
    }


def test_a_watched_train_is_copied_once_per_version() -> None:
    store = ClusterView()
    first = _watched("7", "Queued")
    store.put_watched_train(first)
    kept = store.trains["u-3"]
    assert kept is not first and "managedFields" not in kept["metadata"]
    assert kept["status"] == {"summary": "Queued"}
    first["status"]["summary"] = "changed by someone else"  # the cache holds its own copy
    assert kept["status"] == {"summary": "Queued"}
    store.put_watched_train(_watched("7", "Queued"))  # the same version again
    assert store.trains["u-3"] is kept
    store.put_watched_train(_watched("8", "Running"))
    assert store.trains["u-3"]["status"] == {"summary": "Running"}
    assert store.trains["u-3"]["metadata"]["resourceVersion"] == "8"
    store.put_watched_train(_watched("6", "Pending"))  # an older version never wins
    assert store.trains["u-3"]["metadata"]["resourceVersion"] == "8"
