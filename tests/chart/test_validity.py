"""Every profile renders objects a real API server would accept: built-in kinds against the upstream
OpenAPI schemas (kubernetes-validate, the newest Kubernetes it ships), our own custom resources
against our CRDs (the openAPIV3Schema, then the contract's own validation incl. CEL)."""

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from pht_contract.validation import validate_object

from .rendering import CHART, ROOT

K8S_VERSION = kubernetes_validate.latest_version()
OUR_GROUP = "pht.health-ai.nl/"
#: Custom resources of other projects; they have no upstream schema here, so the tests below
#: check the fields the chart sets on them instead.
THIRD_PARTY = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
    "kueue.x-k8s.io/v1beta1": {"LocalQueue"},
}


def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
    return schemas


def test_newest_kubernetes_schema_is_used() -> None:
    major, minor, _ = (int(p) for p in K8S_VERSION.split("."))
    assert (major, minor) >= (1, 33)


def test_every_built_in_object_matches_upstream_schema(rendered: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in rendered:
        api_version, kind = doc["apiVersion"], doc["kind"]
        if api_version.startswith(OUR_GROUP) or kind in THIRD_PARTY.get(api_version, ()):
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 20


def test_unknown_api_versions_are_refused() -> None:
    """The validator really checks: a misspelled field in a Deployment is an error."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": 1, "selectr": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_our_custom_resources_match_our_crds(rendered: list[dict[str, Any]]) -> None:
    schemas = _crd_schemas()
    ours = [d for d in rendered if d["apiVersion"].startswith(OUR_GROUP)]
    assert ours, "the chart renders a default StationPolicy"
    for doc in ours:
        jsonschema.validate(doc, schemas[doc["kind"]])
        assert validate_object(doc) == [], [str(p) for p in validate_object(doc)]


def test_a_broken_station_policy_fails_crd_validation() -> None:
    """Guards the test above: a rendered policy with a wrong type is caught."""
    schema = _crd_schemas()["StationPolicy"]
    policy = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "StationPolicy",
        "metadata": {"name": "station-policy"},
        "spec": {"organisations": ["x"], "dataAccess": {"allowedGraphs": "not-a-list"}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(policy, schema)
    assert validate_object(policy)


def test_third_party_resources_are_well_formed(render: Any) -> None:
    docs = render("monitoring") + render("gpu-kueue")
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "PrometheusRule", "LocalQueue"} <= kinds
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            assert doc["spec"]["selector"]["matchLabels"]
            # the operator's metrics port and the station API's own metrics port, never `http`
            assert {e["port"] for e in doc["spec"]["endpoints"]} == {"metrics", "api-metrics"}
        elif doc["kind"] == "PrometheusRule":
            for group in doc["spec"]["groups"]:
                assert group["rules"] and all("alert" in r and "expr" in r for r in group["rules"])
        elif doc["kind"] == "LocalQueue":
            assert doc["spec"]["clusterQueue"] == "gpu-cluster-queue"


def test_chart_crds_are_the_repository_crds() -> None:
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert sorted(chart) == sorted(repo), "charts/pht-station/crds must hold exactly crds/*.yaml"
    stale = [name for name in repo if chart[name] != repo[name]]
    assert not stale, f"copy crds/ into charts/pht-station/crds/ (stale: {stale})"
