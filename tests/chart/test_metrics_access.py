"""The station API's metrics are not a door: not on the Ingress's port, only on their own port,
behind a token the chart generates (or takes from a Secret) and wires into the ServiceMonitor,
and reachable only from the monitoring namespace."""

import base64
from typing import Any

from .rendering import NAMESPACE, RELEASE, documents, find, helm_template, one, render_profile

TOKEN_SECRET = f"{RELEASE}-pht-station-metrics-token"


def _api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return container


def test_the_api_serves_metrics_on_its_own_port_with_a_token() -> None:
    docs = documents(render_profile("default"))
    container = _api_container(docs)
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["PHT_API_METRICS_PORT"] == str(ports["api-metrics"])
    assert ports["api-metrics"] not in (ports["internal"], ports["external"])
    assert env["PHT_API_METRICS_TOKEN_FILE"].startswith("/var/run/pht/metrics-token/")
    volumes = one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
    (token_volume,) = [v for v in volumes if v["name"] == "metrics-token"]
    assert token_volume["secret"]["secretName"] == TOKEN_SECRET
    secret = one(docs, "Secret", TOKEN_SECRET)
    assert len(base64.b64decode(secret["data"]["token"])) >= 32


def test_the_external_service_and_ingress_carry_no_metrics() -> None:
    docs = documents(render_profile("ingress"))
    ingress = one(docs, "Ingress")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    external = one(docs, "Service", f"{RELEASE}-pht-station-api")
    assert all(b["name"] == external["metadata"]["name"] for b in backends)
    assert [p["targetPort"] for p in external["spec"]["ports"]] == ["external"]
    assert "pht.health-ai.nl/metrics" not in external["metadata"]["labels"]
    scraped = [
        s for s in find(docs, "Service") if s["metadata"]["labels"].get("pht.health-ai.nl/metrics")
    ]
    assert {p["targetPort"] for s in scraped for p in s["spec"]["ports"]} == {
        "metrics",
        "api-metrics",
    }


def test_the_service_monitor_presents_the_token() -> None:
    docs = documents(render_profile("monitoring"))
    monitor = one(docs, "ServiceMonitor")
    (api,) = [e for e in monitor["spec"]["endpoints"] if e["port"] == "api-metrics"]
    credentials = api["authorization"]["credentials"]
    assert api["authorization"]["type"] == "Bearer"
    assert (credentials["name"], credentials["key"]) == (TOKEN_SECRET, "token")
    assert one(docs, "Secret", TOKEN_SECRET)["metadata"]["namespace"] == NAMESPACE


def test_an_existing_token_secret_is_used_and_none_generated() -> None:
    result = helm_template(
        sets={
            "metrics.token.existingSecret": "prometheus-scrape",
            "metrics.token.key": "bearer",
            "metrics.serviceMonitor.enabled": "true",
        }
    )
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert not find(docs, "Secret", TOKEN_SECRET)
    (api,) = [e for e in one(docs, "ServiceMonitor")["spec"]["endpoints"] if "authorization" in e]
    assert api["authorization"]["credentials"] == {"name": "prometheus-scrape", "key": "bearer"}
    env = {e["name"]: e.get("value") for e in _api_container(docs)["env"]}
    assert env["PHT_API_METRICS_TOKEN_FILE"] == "/var/run/pht/metrics-token/bearer"


def test_only_the_monitoring_namespace_reaches_the_metrics_port() -> None:
    result = helm_template(sets={"networkPolicy.monitoringNamespace": "observability"})
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-pht-station-api")
    metrics_port = int(
        {e["name"]: e.get("value") for e in _api_container(docs)["env"]}["PHT_API_METRICS_PORT"]
    )
    rules = [
        rule
        for rule in policy["spec"]["ingress"]
        if any(p["port"] == metrics_port for p in rule.get("ports", []))
    ]
    assert len(rules) == 1
    (peer,) = rules[0]["from"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}
    }
    # the external port's rule does not open the metrics port to everyone
    assert all(
        {p["port"] for p in rule.get("ports", [])} == {metrics_port}
        for rule in policy["spec"]["ingress"]
        if metrics_port in {p["port"] for p in rule.get("ports", [])}
    )


def test_only_the_monitoring_namespace_reaches_the_operator_metrics() -> None:
    docs = documents(render_profile("default"))
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-pht-station-operator")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
