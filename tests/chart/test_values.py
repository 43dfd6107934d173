"""Wrong values are refused at `helm install` with a message that names the value and says why:
values.schema.json for single values, the chart's own checks for values that depend on each
other. Each case also proves the default values pass (see test_lint)."""

import pytest

from .rendering import helm_template

SCHEMA_CASES = [
    # (--set pairs, text the error must contain)
    (
        {"stationApi.identityMode": "local"},
        "at '/stationApi/identityMode': value must be 'kubernetes'",
    ),
    ({"station.name": "Bad_Name"}, "at '/station/name'"),
    (
        {"station.namespaces[0]": "Requests"},
        "at '/station/namespaces/0': 'Requests' does not match",
    ),
    ({"stationApi.store.mode": "external"}, "at '/stationApi/store/external/existingSecret'"),
    ({"stationApi.store.mode": "graphdb"}, "at '/stationApi/store/mode'"),
    (
        {"stationApi.service.internal.clusterIP": "None"},
        "at '/stationApi/service/internal/clusterIP'",
    ),
    ({"operator.containerSecurityContext.readOnlyRootFilesystem": "false"}, "value must be true"),
    ({"operator.podSecurityContext.runAsUser": "0"}, "at '/operator/podSecurityContext/runAsUser'"),
    ({"runNamespace.runAsUser": "0"}, "at '/runNamespace/runAsUser'"),
    ({"operator.image.digest": "sha256:abc"}, "at '/operator/image/digest'"),
    ({"stationApi.resources": "null"}, "at '/stationApi': missing property 'resources'"),
    ({"stationapi.image.tag": "1.0"}, "additional properties 'stationapi' not allowed"),
    ({"kueue.enabled": "true"}, "at '/kueue/clusterQueue'"),
    (
        {"stationPolicy.spec.organisations": "null"},
        "at '/stationPolicy/spec': missing property 'organisations'",
    ),
    (
        {"admissionPolicy.validationActions[0]": "Ignore"},
        "at '/admissionPolicy/validationActions/0'",
    ),
    # Warn or Audit alone would let a researcher approve their own Train.
    ({"admissionPolicy.validationActions[0]": "Audit"}, "at '/admissionPolicy/validationActions'"),
    ({"admissionPolicy.validationActions[0]": "Warn"}, "at '/admissionPolicy/validationActions"),
]

CHART_CHECKS = [
    ({"operator.image.tag": "latest"}, "operator.image.tag: 'latest' is not reproducible"),
    ({"runNamespace.name": "pht-requests"}, "is also a station namespace"),
    ({"stationApi.ports.external": "8081"}, "internal and external must differ"),
]


@pytest.mark.parametrize(("sets", "message"), SCHEMA_CASES + CHART_CHECKS)
def test_bad_value_is_refused_with_a_clear_message(sets: dict[str, str], message: str) -> None:
    result = helm_template(sets=sets)
    assert result.returncode != 0, f"{sets} was accepted"
    assert message in result.stderr, result.stderr


def test_release_in_the_run_namespace_is_refused() -> None:
    result = helm_template(namespace="pht-runs")
    assert result.returncode != 0
    assert '"pht-runs" is the release namespace' in result.stderr


def test_a_valid_external_store_is_accepted() -> None:
    result = helm_template(
        sets={
            "stationApi.store.mode": "external",
            "stationApi.store.external.endpoint": "http://virtuoso.data.svc:8890/sparql",
            "stationApi.store.external.existingSecret": "virtuoso-pht",
        }
    )
    assert result.returncode == 0, result.stderr
    assert "http://virtuoso.data.svc:8890/sparql" in result.stdout
