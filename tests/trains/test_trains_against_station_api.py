"""The example trains, as processes, against the real station API (``pht api``) on 127.0.0.1.

No test double here: a generated cohort in embedded Oxigraph, the station API's gateway in
approved-queries mode, its disclosure gate and result store. The test plays the operator's
part over the internal API (register with the approved query hash, report completion, read the
state) and starts each train's entrypoint with the environment a run gets.
"""

import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from trainkit import EXAMPLES, REPO

from pht_contract.hashing import canonical_json, token_hash
from pht_contract.policies import ImageReview, StationPolicySpec
from pht_contract.sparql import query_hash
from pht_contract.times import utc_iso
from pht_contract.wire import (
    HEALTH_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    ApprovedQuery,
    TrainRegistration,
)
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.triplestores.loading import load_rdf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

GRAPH = "urn:pht:graph:lung1"
OPERATOR_TOKEN = "operator-credential-for-train-tests"
PATIENTS = 250


@dataclass
class Station:
    internal: str
    policy: StationPolicySpec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    root = tmp_path_factory.mktemp("station")
    load_rdf(root / "store", io.BytesIO(cohort_bytes(PATIENTS, 5)), "ntriples", GRAPH)
    (root / "operator-token").write_text(OPERATOR_TOKEN)
    policy_file = REPO / "examples" / "policies" / "station-policy.yaml"
    internal, external = free_port(), free_port()
    pht = Path(sys.executable).parent / "pht"
    log = (root / "api.log").open("w")
    process = subprocess.Popen(
        [
            str(pht), "api", "--store", str(root / "store"), "--state-dir", str(root / "state"),
            "--policy", str(policy_file), "--operator-token-file", str(root / "operator-token"),
            "--host", "127.0.0.1", "--internal-port", str(internal),
            "--external-port", str(external), "--station-name", "train-tests",
        ],
        # progress shows at the next tick of this many seconds (30 by default)
        env={**os.environ, "PHT_API_PROGRESS_TICK_SECONDS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{internal}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + HEALTH_PATH, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("pht api did not start: " + (root / "api.log").read_text()[-2000:])
            time.sleep(0.2)
        spec = yaml.safe_load(policy_file.read_text())["spec"]
        yield Station(url, StationPolicySpec.model_validate(spec))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def register(station: Station, train: dict[str, Any], token: str) -> str:
    """What the operator does for an admitted, approved Train."""
    uid = str(uuid.uuid4())
    spec = train["spec"]
    # A steward's review of each example image counts here, so the test sees what the gate's
    # checks decide (any other image's result is held for a steward).
    now = datetime.now(UTC)
    review = ImageReview(
        digest=spec["image"].split("@", 1)[1],
        reviewer="steward@station.local",
        reviewed_at=utc_iso(now - timedelta(days=1)),
        expires_at=utc_iso(now + timedelta(days=30)),
        notes="the example train's code, reviewed for its tests",
    )
    disclosure = station.policy.disclosure.model_copy(update={"reviewed_images": [review]})
    policy = station.policy.model_copy(update={"disclosure": disclosure})
    registration = TrainRegistration(
        uid=uid,
        namespace="pht-requests",
        name=train["metadata"]["name"],
        spec_hash=hashlib.sha256(canonical_json(spec)).hexdigest(),
        image=spec["image"],
        image_runs_as_built=True,
        token_hash=token_hash(token),
        approved_query_hashes=[query_hash(q["sparql"]) for q in spec["queries"]],
        approved_queries=[
            ApprovedQuery(name=q["name"], sparql=q["sparql"], hash=query_hash(q["sparql"]))
            for q in spec["queries"]
        ],
        allowed_graphs=[GRAPH],
        policy=policy,
        policy_hash=hashlib.sha256(canonical_json(policy.wire())).hexdigest(),
        requester_name=spec["requester"]["name"],
        requester_organisation=spec["requester"]["organisation"],
        expires_at=(datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    answer = httpx.put(
        station.internal + TRAIN_REGISTRATION_PATH.format(uid=uid),
        json=registration.wire(),
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text
    return uid


def run_train(
    station: Station, folder: str, module: str, manifest: str, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    train = yaml.safe_load((REPO / "examples" / "trains" / manifest).read_text())
    token = secrets.token_urlsafe(24)
    uid = register(station, train, token)
    (tmp_path / "token").write_text(token)
    queries = tmp_path / "queries"
    queries.mkdir()
    for query in train["spec"]["queries"]:
        (queries / f"{query['name']}.rq").write_text(query["sparql"])
    (tmp_path / "scratch").mkdir()
    env = {
        "PHT_STATION_API_URL": station.internal,
        "PHT_TOKEN_FILE": str(tmp_path / "token"),
        "PHT_TRAIN_UID": uid,
        "PHT_TRAIN_NAME": train["metadata"]["name"],
        "PHT_ATTEMPT": "1",
        "PHT_PARAMETERS": train["spec"].get("parameters") or "{}",
        "PHT_QUERIES_DIR": str(queries),
        "PHT_SCRATCH_DIR": str(tmp_path / "scratch"),
        "HOME": str(tmp_path / "scratch"),
        "TMPDIR": str(tmp_path / "scratch"),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES / folder), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120
    )
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    completion = {"jobSucceeded": done.returncode == 0, "reason": "RunCompleted"}
    answer = httpx.put(
        station.internal + TRAIN_COMPLETION_PATH.format(uid=uid),
        json=completion,
        headers=operator,
        timeout=30,
    )
    assert answer.status_code < 300, answer.text
    time.sleep(1.1)  # the last progress report becomes visible at the next (1 s) tick
    state = httpx.get(
        station.internal + TRAIN_STATE_PATH.format(uid=uid), headers=operator, timeout=30
    )
    assert state.status_code == 200, state.text
    return done, state.json()


@pytest.mark.parametrize(
    ("folder", "module", "manifest", "release"),
    [
        ("cohort-summary", "cohort_summary", "cohort-summary.yaml", {"Released"}),
        ("kaplan-meier", "kaplan_meier", "kaplan-meier.yaml", {"Released"}),
        ("federated-logreg", "federated_logreg", "federated-logreg.yaml", {"Released"}),
        ("gpu-training-step", "gpu_training_step", "gpu-training-step.yaml", {"Held"}),
    ],
)
def test_the_train_runs_at_a_real_station(
    station: Station, tmp_path: Path, folder: str, module: str, manifest: str, release: set[str]
) -> None:
    if module == "gpu_training_step":
        pytest.importorskip("torch")
    done, state = run_train(station, folder, module, manifest, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert state["uploads"] == 1
    assert state["progress"]["stage"] == "Done" and state["progress"]["percent"] == 100
    assert state["release"] in release, json.dumps(state)
