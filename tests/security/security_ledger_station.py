"""A real station for the ledger attacks: trains that query, upload and complete, and readers.

Readers are the local identity file's version of the chart's RBAC: the researcher role is
granted per namespace, stewards everywhere. Alice and Bob are colleagues in ``oncology``
(and Alice also in ``oncology-2``); Carol reads ``cardiology`` only.
"""

import hashlib
import json
import secrets
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "station_api"))

from stationkit import bearer, current_review, operator_headers, registration

from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    TrainRegistration,
)

STEWARD: Final = "ledger-steward-token"
ALICE: Final = "ledger-alice-token"
BOB: Final = "ledger-bob-token"
CAROL: Final = "ledger-carol-token"
#: Usernames as TokenReview would report them; the admission policy records the same.
USERS: Final = {ALICE: "oidc:alice", BOB: "oidc:bob", CAROL: "oidc:carol"}
DONE: Final = {"jobSucceeded": True, "reason": "RunCompleted"}
REVIEWED_IMAGE: Final = "ghcr.io/pht-station/trains/stage-table"
REVIEWED_DIGEST: Final = "sha256:" + "d" * 64

PREFIXES: Final = (
    "PREFIX roo: <http://www.cancerdata.org/roo/>\n"
    "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#>\n"
)


def stage_query(*excluded: str) -> str:
    """Each patient's stage; ``excluded`` patients are filtered out (the attacker's edit)."""
    filters = "".join(f"  FILTER(?patient != <{iri}>)\n" for iri in excluded)
    return (
        f"{PREFIXES}SELECT ?patient ?stage WHERE {{\n"
        "  ?patient a ncit:C16960 ; roo:P100029 ?tumour .\n"
        "  ?tumour roo:P100219 ?stage .\n"
        f"{filters}}}\n"
    )


def count_query(*excluded: str) -> str:
    """Patients per stage counted in SPARQL: the answer carries no patient IRI at all."""
    filters = "".join(f"  FILTER(?patient != <{iri}>)\n" for iri in excluded)
    return (
        f"{PREFIXES}SELECT ?stage (COUNT(DISTINCT ?patient) AS ?n) WHERE {{\n"
        "  ?patient a ncit:C16960 ; roo:P100029 ?tumour .\n"
        "  ?tumour roo:P100219 ?stage .\n"
        f"{filters}}} GROUP BY ?stage\n"
    )


def count_manifest(answer: dict[str, Any]) -> dict[str, Any]:
    """The attacker's upload from counts: a stage table, its cohort the counts' sum."""
    rows = [(r["stage"]["value"], int(r["n"]["value"])) for r in answer["results"]["bindings"]]
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [[stage, n] for stage, n in sorted(rows)],
                "cohortSize": sum(n for _, n in rows),
            }
        ]
    }


def block_query(iris: list[str], block: int, *extra: int) -> str:
    """A cohort of its own for one test: block ``block`` of five patients left out, so any two
    tests' cohorts differ by ten patients (past the threshold of five) and cannot interfere;
    ``extra`` indexes (45 and up, outside every block) are the attacker's further edits."""
    return stage_query(*iris[5 * block : 5 * block + 5], *(iris[i] for i in extra))


def identities(directory: Path) -> Path:
    def user(name: str, token: str, groups: list[str]) -> dict[str, Any]:
        return {
            "username": name,
            "groups": groups,
            "tokenSha256": hashlib.sha256(token.encode()).hexdigest(),
        }

    path = directory / "ledger-people.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    user("steward-sam", STEWARD, ["pht-stewards"]),
                    user(USERS[ALICE], ALICE, ["oncology", "oncology-2"]),
                    user(USERS[BOB], BOB, ["oncology"]),
                    user(USERS[CAROL], CAROL, ["cardiology"]),
                ],
                "rules": [
                    {"groups": ["pht-stewards"], "verbs": ["release", "get"]},
                    *(
                        {"groups": [ns], "verbs": ["get"], "namespaces": [ns]}
                        for ns in ("oncology", "oncology-2", "cardiology")
                    ),
                ],
            }
        )
    )
    return path


def stage_manifest(answer: dict[str, Any]) -> dict[str, Any]:
    """What the attacker's algorithm uploads: patients per stage over what it was given."""
    rows = answer["results"]["bindings"]
    counts = Counter(row["stage"]["value"] for row in rows)
    patients = {row["patient"]["value"] for row in rows}
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [[stage, n] for stage, n in sorted(counts.items())],
                "cohortSize": len(patients),
            }
        ]
    }


async def patient_iris(inside: httpx.AsyncClient) -> list[str]:
    """Two patients' IRIs, as a train with the unfiltered query would see them."""
    token, _ = await register_train(inside, "scout", "scouting", "oidc:scout", stage_query())
    answer = await inside.get(
        SPARQL_PATH,
        params={"query": stage_query()},
        headers={**bearer(token), "Accept": "application/sparql-results+json"},
    )
    assert answer.status_code == 200, answer.text
    return sorted({row["patient"]["value"] for row in answer.json()["results"]["bindings"]})


async def register_train(
    inside: httpx.AsyncClient,
    name: str,
    namespace: str,
    requested_by: str | None,
    query: str,
    **spec: str,
) -> tuple[str, TrainRegistration]:
    """``spec`` overrides what the researcher typed (``requester_name``, ``..._organisation``)."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [query])
    # A steward's review of the image counts now, so what the ledger decides is what the
    # requester would see without a steward (an unreviewed image is held anyway).
    disclosure = reg.policy.disclosure.model_copy(
        update={"reviewed_images": [current_review(REVIEWED_DIGEST)]}
    )
    reg = reg.model_copy(
        update={
            "name": name,
            "namespace": namespace,
            "requested_by": requested_by,
            "image": f"{REVIEWED_IMAGE}@{REVIEWED_DIGEST}",
            "policy": reg.policy.model_copy(update={"disclosure": disclosure}),
            **spec,
        }
    )
    response = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert response.status_code == 201, response.text
    return token, reg


async def run_train(
    inside: httpx.AsyncClient,
    name: str,
    namespace: str,
    requested_by: str | None,
    query: str,
    build: Callable[[dict[str, Any]], dict[str, Any]] = stage_manifest,
    **spec: str,
) -> tuple[TrainRegistration, dict[str, Any]]:
    """Register, query, upload the stage table, complete; the operator's view of the state."""
    token, reg = await register_train(inside, name, namespace, requested_by, query, **spec)
    answer = await inside.get(
        SPARQL_PATH,
        params={"query": query},
        headers={**bearer(token), "Accept": "application/sparql-results+json"},
    )
    assert answer.status_code == 200, answer.text
    upload = await inside.put(
        RESULT_PATH, content=json.dumps(build(answer.json())), headers=bearer(token)
    )
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    body: dict[str, Any] = state.json()
    return reg, body


def result_url(reg: TrainRegistration) -> str:
    return f"/results/{reg.namespace}/{reg.name}"


def steward_url(reg: TrainRegistration) -> str:
    return f"/stewards/results/{reg.namespace}/{reg.name}"
