"""skaffold.yaml cannot run here (no Docker engine, no cluster), so its structure is checked and the
chart is rendered with exactly the values each profile would set, with stand-in image values where
skaffold would fill its templates after a build."""

import copy
import re
from typing import Any

import pytest
import yaml

from .rendering import CHART, ROOT, documents, helm_template

CONFIG = ROOT / "skaffold.yaml"
#: What skaffold puts into its templates after building an image (stand-ins for a real build).
BUILT_TAG = "3f1c7a5"
BUILT_DIGEST = "sha256:" + "ab" * 32


def _config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return data


def _sanitised(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", image)


def _apply(config: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Patch add/replace/remove, as skaffold applies a profile's patches; a path that does
    not exist is an error, as it is for skaffold."""
    result = copy.deepcopy(config)
    for patch in patches:
        *parents, last = patch["path"].strip("/").split("/")
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if patch["op"] == "remove":
            del target[last]
        elif patch["op"] == "replace":
            assert last in target, f"replace of a missing path {patch['path']}"
            target[last] = patch["value"]
        elif patch["op"] == "add":
            target[last] = patch["value"]
        else:
            raise AssertionError(f"unexpected op {patch['op']}")
    return result


def _profile(name: str | None) -> dict[str, Any]:
    config = _config()
    if name is None:
        return config
    (profile,) = [p for p in config["profiles"] if p["name"] == name]
    return _apply(config, profile.get("patches", []))


def _helm_values(config: dict[str, Any]) -> dict[str, str]:
    """The --set values skaffold passes to helm, its image templates filled as after a build."""
    (release,) = config["deploy"]["helm"]["releases"]
    built = {_sanitised(a["image"]): a["image"] for a in config["build"]["artifacts"]}
    values = {
        str(k): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in release.get("setValues", {}).items()
    }
    for key, template in release.get("setValueTemplates", {}).items():
        match = re.fullmatch(r"\{\{\.(IMAGE_[A-Z_]+?)_([a-z0-9_]+)\}\}", template)
        assert match, f"{key}: {template}"
        kind, image = match.groups()
        domain, _, repository = built[image].partition("/")
        values[key] = {
            "IMAGE_DOMAIN": domain,
            "IMAGE_REPO_NO_DOMAIN": repository,
            "IMAGE_TAG": BUILT_TAG,
            "IMAGE_DIGEST": BUILT_DIGEST,
        }[kind]
    return values


def test_schema_version_and_kind() -> None:
    config = _config()
    assert re.fullmatch(r"skaffold/v4beta\d+", config["apiVersion"])
    assert config["kind"] == "Config"


def test_builds_every_image_the_chart_and_examples_use() -> None:
    images = {a["image"] for a in _config()["build"]["artifacts"]}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in ("operator", "stationApi"):
        image = values[component]["image"]
        assert f"{image['registry']}/{image['repository']}" in images
    for manifest in (ROOT / "examples" / "trains").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "Train":
                repository = doc["spec"]["image"].split("@")[0].rsplit(":", 1)[0]
                assert repository in images, f"{manifest.name}: {repository} is not built"


def test_image_templates_name_built_artifacts() -> None:
    config = _config()
    built = {_sanitised(a["image"]) for a in config["build"]["artifacts"]}
    (release,) = config["deploy"]["helm"]["releases"]
    for key, template in release["setValueTemplates"].items():
        image = re.fullmatch(r"\{\{\.IMAGE_[A-Z_]+?_([a-z0-9_]+)\}\}", template)
        assert image and image.group(1) in built, f"{key}: {template} names no built image"
    for component in ("operator", "stationApi"):
        for field in ("registry", "repository", "tag", "digest"):
            assert f"{component}.image.{field}" in release["setValueTemplates"]
    assert (ROOT / release["chartPath"]).resolve() == CHART.resolve()


def test_profiles_for_local_clusters_and_gpu_nodes() -> None:
    names = {p["name"] for p in _config()["profiles"]}
    assert {"kind", "k3d", "gpu"} <= names
    for local in ("kind", "k3d"):
        config = _profile(local)
        assert config["build"]["local"]["push"] is False
        templates = config["deploy"]["helm"]["releases"][0]["setValueTemplates"]
        assert not [k for k in templates if k.endswith(".digest")]


@pytest.mark.parametrize("name", [None, "kind", "k3d", "gpu"])
def test_chart_renders_with_the_values_skaffold_sets(name: str | None) -> None:
    config = _profile(name)
    (release,) = config["deploy"]["helm"]["releases"]
    values_files = [ROOT / f for f in release.get("valuesFiles", [])]
    result = helm_template(
        values_files, _helm_values(config), namespace=release["namespace"], release=release["name"]
    )
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    services = {
        d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
        for d in docs
        if d["kind"] == "Service"
    }
    for forward in config["portForward"]:
        assert forward["resourceName"] in services, forward["resourceName"]
        assert forward["port"] in services[forward["resourceName"]]
        assert forward["namespace"] == release["namespace"]
    images = [
        c["image"]
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet"}
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    digests = "digest" in str(release["setValueTemplates"])
    expected = f":{BUILT_TAG}@{BUILT_DIGEST}" if digests else f":{BUILT_TAG}"
    assert len(images) == 2 and all(i.endswith(expected) for i in images), images
    assert {i.split(":")[0] for i in images} == {
        a["image"] for a in config["build"]["artifacts"] if "/trains/" not in a["image"]
    }
