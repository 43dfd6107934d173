"""The station policy's decision on a Train, computed once per spec and policy content.

The contract's ``evaluate`` parses every SPARQL query of a Train with rdflib's parser, which is
the largest CPU cost of the operator, and one Train needs the decision in several passes
(admission, approval, the run's start, every pass that follows the run). The decision is a pure
function of the spec and the policy, so it is kept in a small bounded cache keyed by both as
canonical JSON: an edited spec or a changed policy is a different key and is judged afresh.

Parsed StationPolicies are kept the same way, by the object's uid and resourceVersion (a new
version of the policy is parsed again).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final, Generic, TypeVar

from pht_contract.evaluation import Decision, evaluate
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec

#: Decisions kept (least recently used first out); a few hundred bytes each.
DECISIONS_KEPT: Final = 512
#: Parsed policies kept: one per station namespace, plus room for a few versions.
POLICIES_KEPT: Final = 64


K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A dict that forgets its least recently used entry beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


_decisions: _Bounded[bytes, Decision] = _Bounded(DECISIONS_KEPT)
_policies: _Bounded[tuple[str, str], StationPolicySpec] = _Bounded(POLICIES_KEPT)


def decide(spec: TrainSpec, policy: StationPolicySpec) -> Decision:
    """``evaluate(spec, policy)``, from the cache when this spec met this policy before."""
    digest = hashlib.sha256()
    digest.update(spec.model_dump_json().encode())
    digest.update(b"\0")
    digest.update(policy.model_dump_json().encode())
    key = digest.digest()
    found = _decisions.get(key)
    if found is None:
        found = evaluate(spec, policy)
        _decisions.put(key, found)
    return found


def parse_policy(body: Obj) -> StationPolicySpec:
    """The StationPolicy's spec, parsed once per object version.

    Raises pydantic's ``ValidationError`` for an invalid spec (never cached).
    """
    meta = body.get("metadata") or {}
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    if not uid or not version:
        return StationPolicySpec.model_validate(body.get("spec") or {})
    key = (str(uid), str(version))
    found = _policies.get(key)
    if found is None:
        found = StationPolicySpec.model_validate(body.get("spec") or {})
        _policies.put(key, found)
    return found
