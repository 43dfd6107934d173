"""The kubectl commands in the install guide and the runbook work as written: every object they
name (deploy/..., statefulset/..., pod ..., secret ..., a namespace after -n, a label selector)
is one the chart renders for the installation the guides describe (release `pht-station` in
`pht-system`). Renamed for another release as docs/operations.md explains, they name the objects
that release renders."""

import re
import shlex
from dataclasses import dataclass
from functools import cache

import pytest

from .rendering import ROOT, documents, helm_template

GUIDES = ["install.md", "operations.md"]
GUIDE_RELEASE = "pht-station"
GUIDE_NAMESPACE = "pht-system"
#: Objects of every cluster that the guides name; the chart does not render them.
CLUSTER_OBJECTS = {("Service", "default", "kubernetes")}
#: kubectl's short and long resource names -> the kind the chart renders.
KINDS = {
    **dict.fromkeys(["deploy", "deployment", "deployments"], "Deployment"),
    **dict.fromkeys(["sts", "statefulset", "statefulsets"], "StatefulSet"),
    **dict.fromkeys(["svc", "service", "services"], "Service"),
    **dict.fromkeys(["po", "pod", "pods"], "Pod"),
    **dict.fromkeys(["secret", "secrets"], "Secret"),
    **dict.fromkeys(["cm", "configmap", "configmaps"], "ConfigMap"),
    **dict.fromkeys(["pvc", "persistentvolumeclaim", "persistentvolumeclaims"], "PVC"),
    **dict.fromkeys(["ns", "namespace", "namespaces"], "Namespace"),
    **dict.fromkeys(["netpol", "networkpolicy", "networkpolicies"], "NetworkPolicy"),
    **dict.fromkeys(["sa", "serviceaccount", "serviceaccounts"], "ServiceAccount"),
    **dict.fromkeys(["role", "roles"], "Role"),
    **dict.fromkeys(["rolebinding", "rolebindings"], "RoleBinding"),
    **dict.fromkeys(["clusterrole", "clusterroles"], "ClusterRole"),
    **dict.fromkeys(["stationpolicy", "stationpolicies"], "StationPolicy"),
}
#: Verbs that make a new object rather than name an existing one.
CREATING = {"create", "run", "apply", "auth"}


@dataclass(frozen=True)
class Command:
    doc: str
    text: str
    namespace: str | None
    verb: str
    references: tuple[tuple[str, str], ...]  # (kind, name)
    selector: str | None


def _command_texts(markdown: str) -> list[str]:
    """kubectl command lines from fenced blocks and inline code, continuation lines joined."""
    texts: list[str] = []
    fenced = re.findall(r"```(?:bash|sh)\n(.*?)```", markdown, flags=re.S)
    for block in fenced:
        texts += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    texts += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    commands = []
    for text in texts:
        for part in re.split(r"\||&&|;", text):
            part = part.strip()
            if part.startswith("kubectl "):
                commands.append(part)
    return commands


def _parse(doc: str, text: str) -> Command:
    try:
        words = shlex.split(text.rstrip("&").strip())
    except ValueError:
        words = text.split()
    namespace = selector = None
    positional: list[str] = []
    i = 1
    while i < len(words):
        word = words[i]
        if word in {"-n", "--namespace"}:
            namespace, i = words[i + 1], i + 2
            continue
        if word.startswith("--namespace="):
            namespace = word.split("=", 1)[1]
        elif word in {"-l", "--selector"}:
            selector, i = words[i + 1], i + 2
            continue
        elif word in {"-o", "-f", "--image", "--overrides", "-c"}:
            i += 2
            continue
        elif not word.startswith("-"):
            positional.append(word)
        i += 1
    verb = positional[0] if positional else ""
    references: list[tuple[str, str]] = []
    rest = positional[1:]
    if verb in {"rollout", "auth"} and rest:
        rest = rest[1:]
    if verb not in CREATING and rest:
        if "/" in rest[0]:
            kind, name = rest[0].split("/", 1)
            if kind in KINDS:
                references.append((KINDS[kind], name))
        elif rest[0] in KINDS and len(rest) > 1 and "," not in rest[0]:
            references.append((KINDS[rest[0]], rest[1]))
    if verb == "label" and rest[:1] and rest[0] in KINDS:
        references = [(KINDS[rest[0]], rest[1])]
    return Command(doc, text, namespace, verb, tuple(references), selector)


def _commands() -> list[Command]:
    return [
        _parse(doc, text)
        for doc in GUIDES
        for text in _command_texts((ROOT / "docs" / doc).read_text())
    ]


@dataclass(frozen=True)
class Rendered:
    objects: frozenset[tuple[str, str, str]]  # (kind, namespace, name)
    namespaces: frozenset[str]
    pod_labels: tuple[tuple[str, dict[str, str]], ...]  # (namespace, labels)


@cache
def _rendered(release: str) -> Rendered:
    result = helm_template(namespace=GUIDE_NAMESPACE, release=release)
    assert result.returncode == 0, result.stderr
    objects: set[tuple[str, str, str]] = set(CLUSTER_OBJECTS)
    namespaces = {GUIDE_NAMESPACE, "default"}
    pod_labels: list[tuple[str, dict[str, str]]] = []
    for doc in documents(result.stdout):
        kind, meta = doc["kind"], doc["metadata"]
        namespace = meta.get("namespace", "")
        objects.add((kind, namespace, meta["name"]))
        if namespace:
            namespaces.add(namespace)
        if kind == "Namespace":
            namespaces.add(meta["name"])
            objects.add(("Namespace", "", meta["name"]))
        if kind == "StatefulSet":
            pods = [f"{meta['name']}-{i}" for i in range(doc["spec"].get("replicas", 1))]
            objects |= {("Pod", namespace, pod) for pod in pods}
            for claim in doc["spec"].get("volumeClaimTemplates", []):
                objects |= {("PVC", namespace, f"{claim['metadata']['name']}-{p}") for p in pods}
        if kind in {"Deployment", "StatefulSet"}:
            pod_labels.append((namespace, doc["spec"]["template"]["metadata"]["labels"]))
        if kind == "Pod":
            pod_labels.append((namespace, meta.get("labels", {})))
    objects |= {("Namespace", "", ns) for ns in namespaces}
    return Rendered(frozenset(objects), frozenset(namespaces), tuple(pod_labels))


def _prefix(release: str) -> str:
    """The names' prefix for a release, as docs/operations.md states the rule."""
    return release if "pht-station" in release else f"{release}-pht-station"


def _problems(command: Command, release: str = GUIDE_RELEASE) -> list[str]:
    """What in the command names nothing the chart renders for `release`, after renaming the
    guide release's objects and instance label for that release."""
    rendered = _rendered(release)

    def renamed(name: str) -> str:
        if name.startswith(_prefix(GUIDE_RELEASE)):
            return _prefix(release) + name.removeprefix(_prefix(GUIDE_RELEASE))
        return name

    problems = []
    namespace = command.namespace or ""
    if command.namespace and command.namespace not in rendered.namespaces:
        problems.append(f"namespace {command.namespace} is not one the chart uses")
    for kind, name in command.references:
        if "<" in name or "…" in name:
            continue
        if kind == "Namespace":
            key = ("Namespace", "", name)
        elif kind in {"ClusterRole"}:
            key = (kind, "", renamed(name))
        else:
            key = (kind, namespace, renamed(name))
        if key not in rendered.objects:
            problems.append(f"{kind} {key[2]!r} in namespace {namespace!r} is not rendered")
    if command.selector:
        wanted = dict(pair.split("=", 1) for pair in command.selector.split(","))
        if wanted.get("app.kubernetes.io/instance") == GUIDE_RELEASE:
            wanted["app.kubernetes.io/instance"] = release
        if not any(
            ns == namespace and wanted.items() <= labels.items()
            for ns, labels in rendered.pod_labels
        ):
            problems.append(f"no pod in {namespace!r} matches -l {command.selector}")
    return problems


def test_the_guides_have_commands_naming_chart_objects() -> None:
    commands = _commands()
    named = [c for c in commands if c.references]
    assert len(commands) >= 15
    assert {c.doc for c in named} == set(GUIDES)
    assert any(kind == "Deployment" for c in named for kind, _ in c.references)
    assert any(kind == "StatefulSet" for c in named for kind, _ in c.references)
    assert any(kind == "Secret" for c in named for kind, _ in c.references)


def test_commands_carry_no_placeholder_for_the_release() -> None:
    for command in _commands():
        assert "<release>" not in command.text and "<ns>" not in command.text, command.text


@pytest.mark.parametrize("command", _commands(), ids=lambda c: f"{c.doc}:{c.text[:60]}")
def test_each_command_names_what_the_chart_renders(command: Command) -> None:
    assert not _problems(command), command.text


@pytest.mark.parametrize("release", ["hospital", "pht-station-umc"])
def test_the_naming_rule_in_the_runbook_holds_for_other_releases(release: str) -> None:
    """operations.md: a release without `pht-station` in its name prefixes `<release>-`; one with
    it uses its own name."""
    for command in _commands():
        problems = _problems(command, release)
        assert not problems, f"{command.text}: {problems}"


def test_a_wrong_name_is_caught() -> None:
    """Guards the tests above: the old runbook's `deploy/<release>-pht-station-operator`,
    spelled out for the guide's release, names nothing the chart renders."""
    wrong = _parse("x", "kubectl -n pht-system logs deploy/pht-station-pht-station-operator")
    other_ns = _parse("x", "kubectl -n pht-jobs describe pod pht-station-api-0")
    bad_label = _parse("x", "kubectl -n pht-system get pods -l app.kubernetes.io/component=api")
    assert _problems(wrong)
    assert _problems(other_ns)
    assert _problems(bad_label)
    right = _parse("x", "kubectl -n pht-system logs deploy/pht-station-operator")
    assert not _problems(right)
    assert _problems(right, "hospital") == []
    assert _problems(_parse("x", "kubectl -n pht-system get secret hospital-pht-station-x"))
