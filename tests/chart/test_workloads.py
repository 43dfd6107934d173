"""What a hospital's security review looks for in the rendered workloads: restricted pod security
everywhere, resources on every container, pinned images, the operator as one standalone replica,
the station API's stores on PersistentVolumeClaims (or an external endpoint from a Secret)."""

from typing import Any

from .rendering import NAMESPACE, RELEASE, documents, find, helm_template, one, pod_specs


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_every_pod_is_restricted(rendered: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(rendered))
    assert len(specs) == 3  # operator, station API, helm test
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        assert spec["enableServiceLinks"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys()
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def test_writable_paths_are_size_limited_empty_dirs(rendered: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(rendered):
        if "test" in name:
            continue
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tmp"]["emptyDir"]["sizeLimit"], name
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert "/tmp" in mounts


def test_operator_is_one_standalone_replica_with_stalled_watch_liveness(
    rendered: list[dict[str, Any]],
) -> None:
    deployment = one(rendered, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = _env(container)
    assert env["PHT_OPERATOR_RUN_NAMESPACE"] == "pht-runs"
    assert env["PHT_OPERATOR_STATION_API_URL"] == (
        f"http://{RELEASE}-pht-station-api-internal.{NAMESPACE}.svc:8081"
    )
    # Runs have no DNS: they get the internal Service's fixed ClusterIP.
    service = one(rendered, "Service", f"{RELEASE}-pht-station-api-internal")
    assert env["PHT_OPERATOR_RUN_API_URL"] == f"http://{service['spec']['clusterIP']}:8081"
    assert env["PHT_OPERATOR_API_TOKEN_FILE"].startswith("/var/run/pht/operator-credential/")
    # Each run's NetworkPolicy admits egress only to the station API pods in this namespace.
    sts = one(rendered, "StatefulSet")
    assert env["PHT_OPERATOR_STATION_API_NAMESPACE"] == sts["metadata"]["namespace"] == NAMESPACE
    assert not any(e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"])
    assert not find(rendered, "CustomResourceDefinition", "kopfpeerings.kopf.dev")


def test_station_api_has_two_services_and_ingress_only_reaches_the_external_one(
    render: Any,
) -> None:
    docs = render("ingress")
    internal = one(docs, "Service", f"{RELEASE}-pht-station-api-internal")
    external = one(docs, "Service", f"{RELEASE}-pht-station-api")
    assert [p["targetPort"] for p in internal["spec"]["ports"]] == ["internal"]
    assert [p["targetPort"] for p in external["spec"]["ports"]] == ["external"]
    ingress = one(docs, "Ingress")
    backends = [
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [external["metadata"]["name"]]
    assert ingress["spec"]["tls"][0]["secretName"] == "pht-station-tls"


def test_station_api_stores_on_separate_volumes(
    rendered: list[dict[str, Any]], profile: str
) -> None:
    sts = one(rendered, "StatefulSet")
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"] == ["api"]
    assert env["PHT_API_IDENTITY_MODE"] == "kubernetes"
    assert env["PHT_API_AUDIT_STORE"].startswith(mounts["audit"])
    assert env["PHT_API_CHAIN_HEAD_FILE"].startswith(mounts["state"])
    assert not env["PHT_API_CHAIN_HEAD_FILE"].startswith(mounts["audit"])
    if profile == "external-store":
        assert claims == {"audit", "state"}
        assert env["PHT_API_SPARQL_ENDPOINT"].startswith("http://graphdb.")
        assert env["PHT_API_SPARQL_PASSWORD_FILE"].startswith(mounts["sparql-credential"])
        assert "PHT_API_STORE" not in env
    else:
        assert claims == {"store", "audit", "state"}
        # A subdirectory of the volume: the API's lock file sits next to the store directory.
        assert env["PHT_API_STORE"].startswith(mounts["store"] + "/")


def test_run_namespace_is_created_with_restricted_pod_security(
    rendered: list[dict[str, Any]],
) -> None:
    namespace = one(rendered, "Namespace", "pht-runs")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_gpu_profile_sets_quota_and_policy(render: Any) -> None:
    docs = render("gpu-kueue")
    quota = one(docs, "ResourceQuota")
    assert quota["metadata"]["namespace"] == "pht-runs"
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    policies = find(docs, "StationPolicy")
    assert {p["metadata"]["namespace"] for p in policies} == {"pht-requests", "pht-federated"}
    assert all(p["spec"]["scheduling"]["kueueQueue"] == "pht-runs" for p in policies)
    images = {c["image"] for _, s in pod_specs(docs) for c in s["containers"]}
    assert all("@sha256:" in image for image in images)


def test_rendered_environment_configures_the_real_settings(
    rendered: list[dict[str, Any]], monkeypatch: Any
) -> None:
    """Every variable the chart sets is one the deployable reads, and it parses: the operator's
    and the station API's own settings classes load the rendered environment."""
    from pht_operator.settings import OperatorSettings
    from pht_station_api.settings import Settings

    deployment = one(rendered, "Deployment")
    operator_env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    sts = one(rendered, "StatefulSet")
    api_env = _env(sts["spec"]["template"]["spec"]["containers"][0])

    operator_fields = set(OperatorSettings.model_fields)
    for name in operator_env:
        if name.startswith("PHT_OPERATOR_"):
            assert name.removeprefix("PHT_OPERATOR_").lower() in operator_fields, name
    api_fields = {f.upper() for f in Settings.model_fields}
    for name in api_env:
        if name.startswith("PHT_API_"):
            assert name.removeprefix("PHT_API_") in api_fields, name

    for name, value in operator_env.items():
        monkeypatch.setenv(name, value)
    operator = OperatorSettings()
    policies = find(rendered, "StationPolicy")
    assert operator.station_namespaces == [p["metadata"]["namespace"] for p in policies]
    assert operator.run_api_pod_labels == sts["spec"]["selector"]["matchLabels"]
    assert operator.run_uid == 10001
    assert operator.station_api_namespace == sts["metadata"]["namespace"]
    # The operator refuses to start without it where no service-account file says (not here).
    operator.check_startup()

    for name, value in api_env.items():
        monkeypatch.setenv(name, value)
    api = Settings()
    assert api.identity_mode == "kubernetes"
    assert api.internal_port == 8081 and api.external_port == 8080
    assert operator.run_api_url == api.internal_base_url


def test_a_referenced_run_namespace_is_not_created_but_still_locked_down() -> None:
    result = helm_template(sets={"runNamespace.create": "false"})
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert not find(docs, "Namespace")
    in_runs = {d["kind"] for d in docs if d["metadata"].get("namespace") == "pht-runs"}
    assert {"NetworkPolicy", "Role", "RoleBinding"} <= in_runs
