"""Helpers for station API tests: cohort stores, settings, registrations, headers."""

import contextlib
import hashlib
import io
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from pht_contract.hashing import canonical_json, token_hash
from pht_contract.policies import ImageReview, StationPolicySpec
from pht_contract.sparql import query_hash
from pht_contract.wire import TRAIN_REGISTRATION_PATH, ApprovedQuery, TrainRegistration
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.settings import Settings
from pht_station_api.state import StationState, build_state
from pht_station_api.triplestores.loading import load_rdf

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GRAPH = "urn:pht:graph:lung1"
OTHER_GRAPH = "urn:pht:graph:secret"
OPERATOR_TOKEN = "operator-test-credential"
STEWARD_TOKEN = "steward-test-token"
COHORT_PATIENTS = 60
COHORT_SEED = 3


def example_query(name: str) -> str:
    train = yaml.safe_load((EXAMPLES / "trains" / f"{name}.yaml").read_text())
    return str(train["spec"]["queries"][0]["sparql"])


def example_policy() -> StationPolicySpec:
    policy = yaml.safe_load((EXAMPLES / "policies" / "station-policy.yaml").read_text())
    return StationPolicySpec.model_validate(policy["spec"])


def make_store(path: Path, patients: int = COHORT_PATIENTS, seed: int = COHORT_SEED) -> Path:
    load_rdf(path, io.BytesIO(cohort_bytes(patients, seed)), "ntriples", GRAPH)
    # A graph outside every policy: the gateway must never let a train see it.
    secret = b"<urn:secret:s> <urn:secret:p> <urn:secret:o> .\n"
    load_rdf(path, io.BytesIO(secret), "ntriples", OTHER_GRAPH)
    return path


def identities_file(directory: Path) -> Path:
    path = directory / "identities.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {
                        "username": "steward",
                        "groups": ["pht-stewards"],
                        "tokenSha256": hashlib.sha256(STEWARD_TOKEN.encode()).hexdigest(),
                    }
                ],
                "rules": [{"groups": ["pht-stewards"], "verbs": ["release", "get"]}],
            }
        )
    )
    return path


def station_settings(store: Path | None, state_dir: Path, **overrides: Any) -> Settings:
    state_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "store": store,
        "state_dir": state_dir,
        "operator_token": OPERATOR_TOKEN,
        "identity_mode": "local",
        "local_identities_file": identities_file(state_dir),
        "station_name": "test-station",
        "public_base_url": "http://fdp.test",
        "internal_base_url": "http://internal.test",
        "query_workers": 1,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def started_station(settings: Settings) -> AsyncIterator[StationState]:
    """A real station state (store workers, chain, result archive), started and closed."""
    state = build_state(settings)
    await state.start()
    try:
        yield state
    finally:
        await state.close()


def client_for(app: Any, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def registration(
    token: str,
    queries: list[str] | None = None,
    *,
    expires_in: timedelta = timedelta(hours=1),
    allowed_graphs: list[str] | None = None,
    **data_access: Any,
) -> TrainRegistration:
    policy = example_policy()
    if data_access:
        policy = policy.model_copy(
            update={"data_access": policy.data_access.model_copy(update=data_access)}
        )
    uid = str(uuid.uuid4())
    return TrainRegistration(
        uid=uid,
        namespace="pht-requests",
        name=f"train-{uid[:8]}",
        spec_hash="a" * 64,
        image="ghcr.io/pht-station/trains/kaplan-meier:0.1.0",
        image_runs_as_built=True,
        token_hash=token_hash(token),
        approved_query_hashes=[query_hash(q) for q in (queries or [])],
        approved_queries=[
            ApprovedQuery(name=f"q{index}", sparql=q, hash=query_hash(q))
            for index, q in enumerate(queries or [])
        ],
        allowed_graphs=allowed_graphs or [GRAPH],
        policy=policy,
        policy_hash=hashlib.sha256(canonical_json(policy.wire())).hexdigest(),
        requester_name="Dr. A. Researcher",
        requester_organisation="maastro",
        expires_at=(datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


async def register(
    client: httpx.AsyncClient, queries: list[str] | None = None, **kwargs: Any
) -> tuple[str, TrainRegistration]:
    """Register a fresh train; returns its bearer token and registration."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, queries, **kwargs)
    response = await client.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert response.status_code == 201, response.text
    return token, reg


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def current_review(digest: str, reviewer: str = "steward@station.local") -> ImageReview:
    """A steward's review of ``digest`` that counts now: dated yesterday, expiring in 30 days."""
    now = datetime.now(UTC).replace(microsecond=0)
    return ImageReview(
        digest=digest,
        reviewer=reviewer,
        reviewed_at=(now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        expires_at=(now + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        notes="reviewed the train's code: aggregate tables and statistics only",
    )
