"""The station policy's decision on a Train, computed once per spec and policy content.

The contract's ``evaluate`` parses every SPARQL query of a Train with rdflib's parser, which is
the largest CPU cost of the operator, and one Train needs the decision in several passes
(admission, approval, the run's start, every pass that follows the run). The decision is a pure
function of the spec and the policy, so it is kept in a small bounded cache keyed by both as
canonical JSON: an edited spec or a changed policy is a different key and is judged afresh.

Parsed StationPolicies are kept the same way, by the object's uid and resourceVersion (a new
version of the policy is parsed again), and parsed Train specs by their content: every pass over
a Train models its spec, and on a real cluster a Train sees several passes (its Job and pods
change, its own status writes come back). The key of each decision is computed once per parsed
spec and policy object (the objects are held while their key is, so an object's identity
cannot be taken by another).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final, Generic, TypeVar

import msgspec

from pht_contract.evaluation import Decision, evaluate
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec

#: Decisions kept (least recently used first out); a few hundred bytes each.
DECISIONS_KEPT: Final = 512
#: Parsed policies kept: one per station namespace, plus room for a few versions.
POLICIES_KEPT: Final = 64
#: Parsed Train specs kept (the Trains in flight; a spec not kept is parsed again): about
#: 3 KiB each.
SPECS_KEPT: Final = 64


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
_specs: _Bounded[bytes, TrainSpec] = _Bounded(SPECS_KEPT)
#: The content digest of parsed objects, by ``id``; each entry holds its object, so the id
#: stays that object's while the entry exists.
_digests: _Bounded[int, tuple[TrainSpec | StationPolicySpec, bytes]] = _Bounded(
    SPECS_KEPT + POLICIES_KEPT
)


def _digest(model: TrainSpec | StationPolicySpec) -> bytes:
    """A digest of the model's content (its JSON), computed once per object."""
    found = _digests.get(id(model))
    if found is not None and found[0] is model:
        return found[1]
    digest = hashlib.sha256(model.model_dump_json().encode()).digest()
    _digests.put(id(model), (model, digest))
    return digest


def parse_train_spec(raw: Obj) -> TrainSpec:
    """The Train's ``spec`` as the contract models it, parsed once per content.

    Raises pydantic's ``ValidationError`` for an invalid spec (never cached). The object is
    shared by the passes that parse the same content: nothing may change it.
    """
    key = hashlib.sha256(msgspec.json.encode(raw)).digest()
    found = _specs.get(key)
    if found is None:
        found = TrainSpec.model_validate(raw)
        _specs.put(key, found)
    return found


def decide(spec: TrainSpec, policy: StationPolicySpec) -> Decision:
    """``evaluate(spec, policy)``, from the cache when this spec met this policy before."""
    key = hashlib.sha256(_digest(spec) + b"\0" + _digest(policy)).digest()
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
