"""End to end: ``pht api`` as a process, four trains, the gate's decisions, ``pht audit verify``.

A suppressed small cell, a small cell blocked by policy, a model held and released by a
steward, a pickle refused; after the API stops, every decision is in the provenance chain and
``pht audit verify`` checks it — and catches an edit of the published heads.
"""

import base64
import hashlib
import json
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stationkit import (
    OPERATOR_TOKEN,
    bearer,
    current_review,
    example_query,
    make_store,
    operator_headers,
    registration,
)

from pht_cli.main import main
from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    TrainRegistration,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KM = example_query("kaplan-meier")
STEWARD = "e2e-steward-token"
REVIEWED_IMAGE = "ghcr.io/pht-station/trains/kaplan-meier:0.1.0@sha256:" + "a" * 64


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


METRICS_TOKEN = secrets.token_urlsafe(16)
METRICS_PORT = _free_port()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, Path, subprocess.Popen[bytes]]]:
    root = tmp_path_factory.mktemp("e2e")
    store = make_store(root / "store")
    state = root / "state"
    state.mkdir()
    (root / "operator-token").write_text(OPERATOR_TOKEN)
    people = root / "people.yaml"
    people.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {
                        "username": "steward-sam",
                        "groups": ["pht-stewards"],
                        "tokenSha256": hashlib.sha256(STEWARD.encode()).hexdigest(),
                    }
                ],
                "rules": [{"groups": ["pht-stewards"], "verbs": ["release", "get"]}],
            }
        )
    )
    internal_port, external_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PHT_API_METRICS_PORT": str(METRICS_PORT),
        "PHT_API_METRICS_TOKEN": METRICS_TOKEN,
        "PHT_API_IDENTITY_MODE": "local",
        "PHT_API_LOCAL_IDENTITIES_FILE": str(people),
        "PHT_API_QUERY_WORKERS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pht_cli.main",
        "api",
        "--store",
        str(store),
        "--state-dir",
        str(state),
        "--host",
        "127.0.0.1",
        "--internal-port",
        str(internal_port),
        "--external-port",
        str(external_port),
        "--operator-token-file",
        str(root / "operator-token"),
        "--station-name",
        "e2e",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    internal = f"http://127.0.0.1:{internal_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if httpx.get(internal + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the station API did not become ready")
    try:
        yield internal, f"http://127.0.0.1:{external_port}", state, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if process.stdout:
            process.stdout.close()


def _train(client: httpx.Client, body: dict[str, Any], **disclosure: Any) -> TrainRegistration:
    token = secrets.token_urlsafe(16)
    reg = registration(token, [KM])
    # A steward's review of the image counts now, so the gate's checks decide.
    review = current_review(REVIEWED_IMAGE.split("@")[1])
    disclosure = {"reviewed_images": [review], **disclosure}
    policy = reg.policy.model_copy(
        update={"disclosure": reg.policy.disclosure.model_copy(update=disclosure)}
    )
    reg = reg.model_copy(update={"policy": policy, "image": REVIEWED_IMAGE})
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    assert client.put(path, json=reg.wire(), headers=operator_headers()).status_code == 201
    assert client.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token)).status_code == 200
    assert client.put(RESULT_PATH, json=body, headers=bearer(token)).status_code == 201
    done = {"jobSucceeded": True, "reason": "RunCompleted"}
    path = TRAIN_COMPLETION_PATH.format(uid=reg.uid)
    assert client.put(path, json=done, headers=operator_headers()).status_code == 200
    return reg


def _table(counts: list[int]) -> dict[str, Any]:
    return {
        "name": "stages",
        "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
        "rows": [[["I", "II", "IIIa", "IIIb"][i], c] for i, c in enumerate(counts)],
        "cohortSize": sum(counts),
    }


def _model(data: bytes, fmt: str) -> dict[str, Any]:
    return {
        "name": f"weights.{fmt}",
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sizeBytes": len(data),
        "dataBase64": base64.b64encode(data).decode(),
    }


def test_decisions_end_to_end_and_audited(
    api: tuple[str, str, Path, subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    internal, external, state_dir, process = api
    with httpx.Client(base_url=internal, timeout=30) as client:
        suppressed = _train(client, {"tables": [_table([40, 3, 17])]})
        blocked = _train(client, {"tables": [_table([40, 3, 17])]}, small_cell_action="Block")
        held = _train(client, {"tables": [_table([30, 30])], "models": [_model(b"[0.5]", "json")]})
        refused = _train(
            client, {"tables": [_table([30, 30])], "models": [_model(pickle.dumps([1]), "npy")]}
        )
        states = {
            reg.name: client.get(
                TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers()
            ).json()
            for reg in (suppressed, blocked, held, refused)
        }
    assert (states[suppressed.name]["release"], states[suppressed.name]["rule"]) == (
        "Released",
        None,
    )
    assert (states[blocked.name]["release"], states[blocked.name]["rule"]) == (
        "Blocked",
        "MinCellCount",
    )
    assert states[held.name]["rule"] == "ManualReleaseRequired"
    assert states[refused.name]["rule"] == "PickleRefused"

    steward = ["--url", external, "--token", STEWARD]
    held_ref = f"{held.namespace}/{held.name}"
    assert main(["release", held_ref, "--reason", "weights only", *steward]) == 0
    assert main(["result", "get", f"{suppressed.namespace}/{suppressed.name}", *steward]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])["tables"][0]["rows"]
    assert rows[1] == [None, None]  # the small row is emptied, its label too

    metrics = httpx.get(
        f"http://127.0.0.1:{METRICS_PORT}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    ).text
    decisions = [
        line
        for line in metrics.splitlines()
        if line.startswith("pht_disclosure_decisions_total{") and "PickleRefused" in line
    ]
    assert len(decisions) == 1 and decisions[0].endswith(" 1.0")

    # Stop the API (one writer per store), then audit offline.
    store, heads = state_dir / "audit", state_dir / "chain-head.json"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert main(["audit", "verify", "--store", str(store), "--head-file", str(heads)]) == 0
    assert "chain intact" in capsys.readouterr().out
    assert main(["audit", "show", held_ref, "--store", str(store), "--head-file", str(heads)]) == 0
    story = capsys.readouterr().out
    for kind in ("registration", "query", "upload", "release"):
        assert kind in story
    assert "steward-sam" in story and "ManualReleaseRequired" in story

    lines = heads.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"hash": "0" * 64}
    heads.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    assert main(["audit", "verify", "--store", str(store), "--head-file", str(heads)]) == 1
    assert f"TAMPERED record {forged['seq']}" in capsys.readouterr().out
