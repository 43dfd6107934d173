"""A real ``pht api`` process on 127.0.0.1 for a rehearsal, and the operator's calls to it.

The operator is not running during a rehearsal, so :class:`OperatorCalls` makes the operator's
calls itself, with the operator's own client (:class:`pht_operator.stationapi.StationApi`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
import yaml

from pht_contract.wire import (
    HEALTH_PATH,
    ProvenanceEvent,
    RunCompletion,
    TrainRegistration,
    TrainState,
)
from pht_operator.stationapi import StationApi, StationApiError
from pht_sandbox.controlplane.processes import free_port
from pht_sandbox.rehearsal.inputs import StationUnavailable

T = TypeVar("T")

STARTUP_SECONDS: Final = 60.0
#: The local station shows a run's progress at this tick (seconds).
LOCAL_PROGRESS_TICK_SECONDS: Final = 1
REQUEST_SECONDS: Final = 30.0


class OperatorCalls:
    """The operator's side of the wire contract, made with the operator's own client.

    The client is asynchronous; one event loop serves every call, so its connections are reused.
    """

    def __init__(self, internal_url: str, token: str) -> None:
        self._loop = asyncio.Runner()
        self._api = StationApi(internal_url, lambda: token, REQUEST_SECONDS)

    def _call(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.run(call)
        except StationApiError as exc:
            raise StationUnavailable(f"the local station API refused {exc}") from None

    def register(self, registration: TrainRegistration) -> None:
        self._call(self._api.register(registration))

    def state(self, uid: str) -> TrainState:
        return self._call(self._api.state(uid))

    def complete(self, uid: str, completion: RunCompletion) -> None:
        self._call(self._api.complete(uid, completion))

    def deregister(self, uid: str) -> None:
        self._call(self._api.deregister(uid))

    def record(self, event: ProvenanceEvent) -> None:
        self._call(self._api.record(event))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run(self._api.aclose())
        self._loop.close()


class StationApiProcess:
    """A ``pht api`` process on 127.0.0.1 with a synthetic cohort and a temporary state dir.

    Holds three credentials, each random and written to a file: the operator's (internal
    listener), a steward's (to read the audited queries and the gate's findings) and a
    requester's (to download a released result), the latter two in ``local`` identity mode.
    """

    def __init__(self, root: Path, policy_file: Path) -> None:
        self.root = root
        self.policy_file = policy_file
        self.operator_token = secrets.token_urlsafe(32)
        self.steward_token = secrets.token_urlsafe(32)
        self.requester_token = secrets.token_urlsafe(32)
        self.internal = f"http://127.0.0.1:{free_port()}"
        self.external = f"http://127.0.0.1:{free_port()}"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=REQUEST_SECONDS)
        #: The operator's calls to the internal listener, with the operator's credential.
        self.operator = OperatorCalls(self.internal, self.operator_token)

    def load_cohort(self, patients: int, seed: int, graph: str) -> None:
        from pht_station_api.cohorts import cohort_bytes
        from pht_station_api.triplestores.loading import load_rdf

        source = io.BytesIO(cohort_bytes(patients, seed))
        load_rdf(self.root / "store", source, "ntriples", graph)

    def _write_credentials(self) -> tuple[Path, Path]:
        operator = self.root / "operator-token"
        operator.write_text(self.operator_token, encoding="utf-8")
        identities = self.root / "identities.yaml"
        users = [
            {"username": "local-steward", "groups": ["pht-stewards"], "token": self.steward_token},
            {
                "username": "local-author",
                "groups": ["pht-requesters"],
                "token": self.requester_token,
            },
        ]
        rules = [
            {"groups": ["pht-stewards"], "verbs": ["release"]},
            {"groups": ["pht-requesters"], "verbs": ["get"]},
        ]
        identities.write_text(yaml.safe_dump({"users": users, "rules": rules}), encoding="utf-8")
        for path in (operator, identities):
            path.chmod(0o600)
        return operator, identities

    def start(self) -> None:
        operator, identities = self._write_credentials()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHT_API_")}
        env["PHT_API_IDENTITY_MODE"] = "local"
        env["PHT_API_LOCAL_IDENTITIES_FILE"] = str(identities)
        # Synthetic data only, so no need for the station's coarse progress tick: a short one
        # keeps the author's progress lines prompt.
        env["PHT_API_PROGRESS_TICK_SECONDS"] = str(LOCAL_PROGRESS_TICK_SECONDS)
        command = [
            sys.executable, "-m", "pht_cli.main", "api",
            "--store", str(self.root / "store"), "--state-dir", str(self.root / "state"),
            "--policy", str(self.policy_file), "--operator-token-file", str(operator),
            "--host", "127.0.0.1", "--station-name", "run-local",
            "--internal-port", self.internal.rsplit(":", 1)[1],
            "--external-port", self.external.rsplit(":", 1)[1],
        ]  # fmt: skip
        log = (self.root / "api.log").open("wb")
        self._process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if self._client.get(self.internal + HEALTH_PATH, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        tail = (self.root / "api.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise StationUnavailable("the local station API did not start: " + " | ".join(tail))

    def stop(self) -> None:
        self._client.close()
        self.operator.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def _call(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            answer = self._client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise StationUnavailable(f"the local station API failed: {exc}") from None
        if answer.status_code >= 400:
            try:
                body = answer.json()
                detail = f"{body.get('reason')}: {body.get('message')}"
            except (ValueError, AttributeError):
                detail = f"HTTP {answer.status_code}"
            raise StationUnavailable(f"the local station API refused {method} {url}: {detail}")
        return answer

    def steward(self, path: str) -> httpx.Response:
        return self._call("GET", self.external + path, self.steward_token)

    def requester(self, path: str) -> httpx.Response:
        return self._call("GET", self.external + path, self.requester_token)


@contextlib.contextmanager
def local_station(root: Path, policy_file: Path) -> Iterator[StationApiProcess]:
    station = StationApiProcess(root, policy_file)
    try:
        yield station
    finally:
        station.stop()
