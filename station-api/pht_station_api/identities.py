"""Human identities on the external listener: Kubernetes decides who may do what.

In a cluster (``IDENTITY_MODE=kubernetes``) a bearer token is checked with a TokenReview and each
action with a SubjectAccessReview on the Train (group ``pht.health-ai.nl``, resource ``trains``),
so RBAC stays the single source of truth for stewards and requesters. ``local`` mode reads a
YAML file of tokens and rules; it exists for the station in a box only and the Helm chart
cannot enable it. See ``docs/station-api.md`` for the verbs.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from pht_contract.constants import API_GROUP, TRAIN_PLURAL
from pht_station_api.errors import IdentityUnavailable, Unauthenticated
from pht_station_api.settings import Settings

REVIEW_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Identity:
    username: str
    groups: tuple[str, ...] = ()
    uid: str | None = None


class IdentityChecker(Protocol):
    async def authenticate(self, token: str) -> Identity: ...

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool: ...

    async def close(self) -> None: ...


class KubernetesIdentities:
    """TokenReview + SubjectAccessReview with the API's own service-account token."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        verify: Any = True
        if settings.KUBERNETES_CA_FILE is not None and settings.KUBERNETES_CA_FILE.exists():
            verify = str(settings.KUBERNETES_CA_FILE)
        self._client = httpx.AsyncClient(
            base_url=settings.KUBERNETES_API_URL,
            verify=verify,
            timeout=REVIEW_TIMEOUT_SECONDS,
            transport=transport,
        )

    def _headers(self) -> dict[str, str]:
        try:
            token = self._settings.KUBERNETES_TOKEN_FILE.read_text(encoding="utf-8").strip()
        except OSError:
            raise IdentityUnavailable("the station API has no service-account token") from None
        return {"Authorization": f"Bearer {token}"}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=body, headers=self._headers())
        except httpx.HTTPError:
            raise IdentityUnavailable("the Kubernetes API could not be reached") from None
        if response.status_code >= 300:
            raise IdentityUnavailable(f"the Kubernetes API answered {response.status_code}")
        result = response.json()
        return result if isinstance(result, dict) else {}

    async def authenticate(self, token: str) -> Identity:
        review = await self._post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        if not status.get("authenticated"):
            raise Unauthenticated("the bearer token is not valid in this cluster")
        user = status.get("user") or {}
        return Identity(
            str(user.get("username", "")), tuple(user.get("groups") or ()), user.get("uid")
        )

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        attributes: dict[str, str] = {
            "group": API_GROUP,
            "resource": TRAIN_PLURAL,
            "verb": verb,
            "namespace": namespace,
            "name": name,
        }
        if subresource:
            attributes["subresource"] = subresource
        spec: dict[str, Any] = {
            "user": identity.username,
            "groups": list(identity.groups),
            "resourceAttributes": attributes,
        }
        if identity.uid:
            spec["uid"] = identity.uid
        review = await self._post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return bool((review.get("status") or {}).get("allowed"))

    async def close(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class LocalRule:
    verbs: frozenset[str]
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset({"*"})

    def matches(self, identity: Identity, verb: str, namespace: str) -> bool:
        subject = identity.username in self.users or bool(self.groups & set(identity.groups))
        verb_ok = verb in self.verbs or "*" in self.verbs
        return subject and verb_ok and ("*" in self.namespaces or namespace in self.namespaces)


@dataclass
class LocalIdentities:
    """Station in a box only: tokens (stored as sha256) and RBAC-like rules from a YAML file.

    File shape::

        users:
          - {username: steward, groups: [pht-stewards], tokenSha256: <hex>}   # or token: <plain>
        rules:
          - {groups: [pht-stewards], verbs: [release, get], namespaces: ["*"]}
    """

    users: dict[str, Identity] = field(default_factory=dict)  # token sha256 → identity
    rules: list[LocalRule] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path) -> "LocalIdentities":
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        users: dict[str, Identity] = {}
        for entry in document.get("users", []):
            digest = (
                entry.get("tokenSha256") or hashlib.sha256(str(entry["token"]).encode()).hexdigest()
            )
            users[str(digest)] = Identity(str(entry["username"]), tuple(entry.get("groups", ())))
        rules = [
            LocalRule(
                verbs=frozenset(rule.get("verbs", ())),
                users=frozenset(rule.get("users", ())),
                groups=frozenset(rule.get("groups", ())),
                namespaces=frozenset(rule.get("namespaces", ("*",))),
            )
            for rule in document.get("rules", [])
        ]
        return cls(users, rules)

    async def authenticate(self, token: str) -> Identity:
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, identity in self.users.items():
            if hmac.compare_digest(known, digest):
                return identity
        raise Unauthenticated("unknown local identity token")

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        return any(rule.matches(identity, verb, namespace) for rule in self.rules)

    async def close(self) -> None:
        return None


def build_identity_checker(settings: Settings) -> IdentityChecker:
    if settings.IDENTITY_MODE == "local":
        if settings.LOCAL_IDENTITIES_FILE is None:
            raise ValueError("IDENTITY_MODE=local needs PHT_API_LOCAL_IDENTITIES_FILE")
        return LocalIdentities.from_file(settings.LOCAL_IDENTITIES_FILE)
    return KubernetesIdentities(settings)
