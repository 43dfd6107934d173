"""Least privilege as rendered: who can do what, and where. The operator writes run objects only
in the run namespace and Train status only in station namespaces; the station API only asks
TokenReview and SubjectAccessReview; researchers never get near runs; the network mirrors it."""

from typing import Any

from .rendering import RELEASE, find, one

STATION_NAMESPACES = {"pht-requests"}
RUN_NAMESPACE = "pht-runs"
FORBIDDEN_FOR_PEOPLE = {"secrets", "pods", "pods/log", "pods/exec", "pods/attach", "jobs"}


def _rules(role: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def test_no_wildcards_anywhere(rendered: list[dict[str, Any]]) -> None:
    for role in find(rendered, "Role") + find(rendered, "ClusterRole"):
        assert "*" not in {part for rule in _rules(role) for part in rule}, role["metadata"]


def test_operator_permissions_are_split_by_namespace(rendered: list[dict[str, Any]]) -> None:
    roles = [r for r in find(rendered, "Role") if "operator" in r["metadata"]["name"]]
    by_namespace = {r["metadata"]["namespace"]: set(_rules(r)) for r in roles}
    station_namespaces = {p["metadata"]["namespace"] for p in find(rendered, "StationPolicy")}
    assert station_namespaces >= STATION_NAMESPACES
    assert set(by_namespace) == station_namespaces | {RUN_NAMESPACE}
    run = by_namespace.pop(RUN_NAMESPACE)
    assert ("batch", "jobs", "create") in run and ("", "secrets", "create") in run
    assert ("networking.k8s.io", "networkpolicies", "create") in run
    assert not {r for r in run if r[0] == "pht.health-ai.nl"}
    # Read-only: the operator lists and watches its run pods for failure reasons.
    assert {r for r in run if r[1] == "pods"} == {("", "pods", "list"), ("", "pods", "watch")}
    for rules in by_namespace.values():
        assert ("pht.health-ai.nl", "trains/status", "patch") in rules
        assert not {r for r in rules if r[1] in {"jobs", "secrets", "networkpolicies", "pods"}}
        assert not {r for r in rules if r[2] in {"create", "delete", "update"} and r[1] != "events"}
    operator_cluster_roles = [
        r for r in find(rendered, "ClusterRole") if "operator" in r["metadata"]["name"]
    ]
    assert operator_cluster_roles == []


def test_station_api_may_only_review_tokens_and_access(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "ClusterRole", f"{RELEASE}-pht-station-api-pht-system-reviews")
    assert set(_rules(role)) == {
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    }
    api_roles = [r for r in find(rendered, "Role") if "-api" in r["metadata"]["name"]]
    assert api_roles == []


def test_people_roles(rendered: list[dict[str, Any]]) -> None:
    steward = set(_rules(one(rendered, "ClusterRole", f"{RELEASE}-pht-station-pht-system-steward")))
    researcher = set(
        _rules(one(rendered, "ClusterRole", f"{RELEASE}-pht-station-pht-system-researcher"))
    )
    group = "pht.health-ai.nl"
    for verb in ("approve", "release", "block"):
        assert (group, "trains", verb) in steward
        assert (group, "trains", verb) not in researcher
    assert (group, "trainapprovals", "create") in steward
    assert (group, "stationpolicies", "patch") in steward
    assert (group, "trains", "create") in researcher
    assert (group, "trains/results", "get") in researcher
    assert not {r for r in researcher if r[1] in {"trainapprovals"} or r[2] in {"update", "patch"}}
    for rules in (steward, researcher):
        assert not {r for r in rules if r[1] in FORBIDDEN_FOR_PEOPLE}


def test_role_bindings_bind_people_in_station_namespaces_only(render: Any) -> None:
    docs = render("gpu-kueue")
    bindings = [b for b in find(docs, "RoleBinding") if b["roleRef"]["kind"] == "ClusterRole"]
    assert {b["metadata"]["namespace"] for b in bindings} == {"pht-requests", "pht-federated"}
    assert RUN_NAMESPACE not in {
        b["metadata"]["namespace"]
        for b in find(docs, "RoleBinding")
        if b["subjects"][0]["kind"] != "ServiceAccount"
    }
    subjects = {
        (b["roleRef"]["name"].rsplit("-", 1)[-1], b["subjects"][0]["name"]) for b in bindings
    }
    assert subjects == {
        ("steward", "hospital-data-stewards"),
        ("researcher", "consortium-researchers"),
    }


def test_run_namespace_is_default_deny_with_egress_only_to_the_internal_port(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [
        p for p in find(rendered, "NetworkPolicy") if p["metadata"]["namespace"] == RUN_NAMESPACE
    ]
    deny = one(policies, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allows = [p for p in policies if p is not deny]
    assert len(allows) == 1
    (egress,) = allows[0]["spec"]["egress"]
    assert egress["ports"] == [{"port": 8081, "protocol": "TCP"}]
    peer = egress["to"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "pht-system"}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "station-api"
    assert "ingress" not in allows[0]["spec"]


def test_internal_port_admits_only_runs_and_the_operator(rendered: list[dict[str, Any]]) -> None:
    policy = one(rendered, "NetworkPolicy", f"{RELEASE}-pht-station-api")
    internal = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 8081]
    assert len(internal) == 1
    peers = internal[0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": RUN_NAMESPACE}}
    } in peers
    operator = [p for p in peers if "podSelector" in p]
    assert operator[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert len(peers) == 2


def test_in_cluster_external_store_admits_only_the_station_api(render: Any) -> None:
    policy = one(
        render("external-store"), "NetworkPolicy", f"{RELEASE}-pht-station-store-from-station-api"
    )
    assert policy["metadata"]["namespace"] == "clinical-data"
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 7200, "protocol": "TCP"}]
    assert (
        rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        == "station-api"
    )


def test_restricted_external_port_still_admits_the_helm_test(render: Any) -> None:
    policy = one(render("ingress"), "NetworkPolicy", f"{RELEASE}-pht-station-api")
    (external,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 8080]
    namespaces = [
        p["namespaceSelector"]["matchLabels"] for p in external["from"] if "namespaceSelector" in p
    ]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in namespaces
    tests = [p for p in external["from"] if "podSelector" in p]
    assert tests[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"


def test_the_operator_roles_grant_exactly_the_verbs_the_operator_checks_for(
    rendered: list[dict[str, Any]],
) -> None:
    from pht_operator.permissions import required
    from pht_operator.settings import OperatorSettings

    roles = [r for r in find(rendered, "Role") if "operator" in r["metadata"]["name"]]
    granted = {(r["metadata"]["namespace"], *rule) for r in roles for rule in _rules(r)}
    (run_namespace,) = {
        r["metadata"]["namespace"] for r in roles if r["metadata"]["name"].endswith("-runs")
    }
    station_namespaces = {r["metadata"]["namespace"] for r in roles} - {run_namespace}
    settings = OperatorSettings(
        station_namespaces=sorted(station_namespaces),
        run_namespace=run_namespace,
        station_api_namespace="pht-system",
    )
    needs = {(p.namespace, p.group, p.resource, p.verb) for p in required(settings)}
    assert needs - granted == set()  # missing: the operator would report itself unhealthy
    assert granted - needs == set()  # more than the operator uses
