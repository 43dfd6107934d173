"""``pht held`` / ``release`` / ``block`` / ``result get`` against a real external listener.

The listener is served by uvicorn on 127.0.0.1 (an ephemeral port) in a thread; results are
put into the station's result archive directly, as the internal listener would.
"""

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from stationkit import station_settings

from pht_cli.main import main
from pht_contract.policies import DisclosurePolicy
from pht_contract.wire import RunCompletion
from pht_station_api.app import create_external_app
from pht_station_api.results import ResultArchive, TrainContext
from pht_station_api.state import StationState, build_state

STEWARD, REQUESTER = "cli-steward-token", "cli-requester-token"
DONE = RunCompletion(job_succeeded=True, reason="RunCompleted")


def _identities(directory: Path) -> Path:
    users = [
        ("steward-sam", STEWARD, ["pht-stewards"]),
        ("dr-alice", REQUESTER, ["researchers"]),
    ]
    path = directory / "cli-people.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {
                        "username": name,
                        "groups": groups,
                        "tokenSha256": hashlib.sha256(token.encode()).hexdigest(),
                    }
                    for name, token, groups in users
                ],
                "rules": [
                    {"groups": ["pht-stewards"], "verbs": ["release", "get"]},
                    {"groups": ["researchers"], "verbs": ["get"]},
                ],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def served(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, StationState]]:
    state_dir = tmp_path_factory.mktemp("cli-state")
    state = build_state(
        station_settings(cohort_store, state_dir, local_identities_file=_identities(state_dir))
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_external_app(state), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _put_result(state: StationState, name: str, body: dict[str, Any]) -> None:
    train = TrainContext(
        uid=f"uid-{name}",
        namespace="pht-requests",
        name=name,
        requester="dr-alice",
        organisation="maastro",
        # Not reviewed for automatic release: every result waits for the steward.
        disclosure=DisclosurePolicy(
            releasable_variables=[{"name": "stage", "values": ["I", "II"]}]  # type: ignore[list-item]
        ),
        retention_days=30,
        image="ghcr.io/pht-station/trains/kaplan-meier@sha256:" + "f" * 64,
    )
    store = state.results
    assert isinstance(store, ResultArchive)
    store.upload(train, json.dumps(body).encode(), state.chain)
    store.complete(train, DONE, 80, state.chain)


def _manifest(with_model: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [["I", 40], ["II", 40]],
                "cohortSize": 80,
            }
        ]
    }
    if with_model:
        data = b'{"coef": [1.5]}'
        body["models"] = [
            {
                "name": "m.json",
                "format": "json",
                "sha256": hashlib.sha256(data).hexdigest(),
                "sizeBytes": len(data),
                "dataBase64": base64.b64encode(data).decode(),
            }
        ]
    return body


def test_steward_releases_and_requester_downloads(
    served: tuple[str, StationState], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url, state = served
    _put_result(state, "km-cli", _manifest(with_model=True))
    steward = ["--url", url, "--token", STEWARD]
    assert main(["held", *steward]) == 0
    out = capsys.readouterr().out
    assert "pht-requests/km-cli" in out and "ManualReleaseRequired" in out
    assert main(["result", "get", "pht-requests/km-cli", "--url", url, "--token", REQUESTER]) == 1
    assert "NotReleased" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text(REQUESTER + "\n")
    denied = ["release", "km-cli", "-n", "pht-requests", "--reason", "ok", "--url", url]
    assert main([*denied, "--token-file", str(token_file)]) == 1
    assert "Forbidden" in capsys.readouterr().err
    assert main(["release", "pht-requests/km-cli", "--reason", "reviewed", *steward]) == 0
    assert "Released" in capsys.readouterr().out
    out_file = tmp_path / "stages.csv"
    assert (
        main(
            [
                "result",
                "get",
                "pht-requests/km-cli",
                "--table",
                "stages",
                "--out",
                str(out_file),
                "--url",
                url,
                "--token",
                REQUESTER,
            ]
        )
        == 0
    )
    assert out_file.read_text().splitlines() == ["stage,n", "I,40", "II,40"]
    assert main(["result", "get", "pht-requests/km-cli", "--url", url, "--token", REQUESTER]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["name"] == "m.json"


def test_steward_blocks(
    served: tuple[str, StationState], capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = served
    body = _manifest(with_model=False) | {"messages": ["epoch 3 loss 0.2"]}
    _put_result(state, "msg-cli", body)
    steward = ["--url", url, "--token", STEWARD]
    assert main(["result", "view", "pht-requests/msg-cli", *steward]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["rule"] == "FreeTextHeld" and view["outgoing"]["messages"]
    assert main(["block", "pht-requests/msg-cli", "--reason", "free text", *steward]) == 0
    assert "Blocked (rule StewardBlocked)" in capsys.readouterr().out
    assert main(["block", "pht-requests/msg-cli", "--reason", "again", *steward]) == 1
    assert "NotHeld" in capsys.readouterr().err


def test_connection_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["held", "--url", "http://127.0.0.1:9", "--token", "t"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert main(["release", "no-namespace", "--reason", "x", "--token", "t"]) == 1
    assert "NAMESPACE/NAME" in capsys.readouterr().err
