"""The ledger's reader scopes: the namespace and the admission-recorded identity."""

from pht_contract.policies import DataAccessPolicy, StationPolicySpec
from pht_contract.wire import TrainRegistration
from pht_station_api.registry import RegisteredTrain
from pht_station_api.routers.results import train_context


def _registered(name: str, requested_by: str | None) -> RegisteredTrain:
    policy = StationPolicySpec(
        organisations=["maastro"], data_access=DataAccessPolicy(allowed_graphs=["urn:g"])
    )
    registration = TrainRegistration(
        uid="u-" + name.replace(" ", ""),
        namespace="pht-requests",
        name="km",
        spec_hash="a" * 64,
        image="ghcr.io/x/y@sha256:" + "b" * 64,
        token_hash="c" * 64,
        allowed_graphs=["urn:g"],
        policy=policy,
        policy_hash="d" * 64,
        requester_name=name,
        requester_organisation="maastro",
        expires_at="2030-01-01T00:00:00Z",
        requested_by=requested_by,
    )
    return RegisteredTrain(registration=registration, registered_at="2026-01-01T00:00:00Z")


def test_renaming_yourself_in_the_spec_does_not_start_a_new_ledger() -> None:
    first = train_context(_registered("Dr. A. Researcher", "oidc:alice"))
    second = train_context(_registered("A Researcher (again)", "oidc:alice"))
    assert first.ledger_scopes == second.ledger_scopes
    assert first.ledger_scopes == ("namespace/pht-requests", "requester/oidc:alice")


def test_without_a_recorded_identity_only_the_namespace_is_a_scope() -> None:
    """A typed name could be somebody else's: it must not file results under their scope."""
    scopes = train_context(_registered("oidc:alice", None)).ledger_scopes
    assert scopes == ("namespace/pht-requests",)


def test_the_patient_set_the_gateway_recorded_reaches_the_ledger() -> None:
    registered = _registered("Dr. A", "oidc:alice")
    registered.patient_set = {"f1", "f2"}
    assert train_context(registered).patients == frozenset({"f1", "f2"})
