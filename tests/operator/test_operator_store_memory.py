"""The operator's Train cache holds what the operator reads, not the API server's bookkeeping."""

from __future__ import annotations

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
