"""Human identities on the external listener: Kubernetes decides who may do what.

In a cluster (``IDENTITY_MODE=kubernetes``) a bearer token is checked with a TokenReview and each
action with a SubjectAccessReview on the Train (group ``pht.health-ai.nl``, resource ``trains``),
so RBAC stays the single source of truth for stewards and requesters. ``local`` mode reads a
YAML file of tokens and rules; it exists for the station in a box only and the Helm chart
cannot enable it. See ``docs/station-api.md`` for the verbs.

The Kubernetes checker is :mod:`pht_station_api.kubernetes_identities`; answers are remembered
for a few seconds by :mod:`pht_station_api.identity_cache`.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from pht_station_api.errors import Unauthenticated

#: A user's extra attributes as the authenticator gave them (e.g. the scopes a token is limited
#: to), as sorted ``(key, values)`` pairs so that an identity can be compared and hashed.
Extra = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Identity:
    username: str
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: Extra = ()


class IdentityChecker(Protocol):
    async def authenticate(self, token: str) -> Identity: ...

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool: ...

    async def close(self) -> None: ...


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
