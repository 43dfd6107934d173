"""The console in a real station in a box: a steward signs in with the local login, approves a
Train (the same TrainApproval ``pht approve`` records), the Train runs, and the steward
releases its held result; a Train whose free-text fields carry markup is shown as text.

The station API runs as its own process here, so the client talks HTTP to 127.0.0.1 and hands
the session cookie over itself (an http client keeps a Secure cookie to https sites).
"""

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import pytest_asyncio
import yaml
from consolekit import hidden

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.demo import held_for_steward
from pht_sandbox.stations import REQUEST_NAMESPACE, LocalStation, StationConfig
from pht_station_api.console.sessions import COOKIE_NAME

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

REPO: Final = Path(__file__).resolve().parents[3]
POLICY: Final = REPO / "examples" / "policies" / "station-policy.yaml"
TRAIN: Final = REPO / "examples" / "trains" / "kaplan-meier.yaml"
MARKUP: Final = "<script>alert(1)</script>"
LONG_QUERY: Final = (
    "SELECT ?x WHERE { ?x ?p ?o . } # </pre><script>alert('sparql')</script>\n" * 150
)


def _load(path: Path) -> Obj:
    document: Obj = yaml.safe_load(path.read_text())
    return document


class Browser:
    """A browser's view of the console over plain HTTP on 127.0.0.1."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http, self.base, self.session = http, base, ""
        self.csrf = ""

    def _headers(self, post: bool = False) -> dict[str, str]:
        headers = {"Cookie": f"{COOKIE_NAME}={self.session}"} if self.session else {}
        if post:
            headers["Origin"] = self.base
        return headers

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(self.base + path, headers=self._headers())

    async def post(self, path: str, **fields: str) -> httpx.Response:
        data = {"csrf_token": self.csrf, **fields}
        return await self.http.post(self.base + path, data=data, headers=self._headers(True))

    async def sign_in(self, username: str, password: str) -> None:
        form = await self.http.get(self.base + "/console/signin")
        login = re.search(r"__Host-pht-console-login=([^;]+)", form.headers["set-cookie"])
        assert login is not None
        answer = await self.http.post(
            self.base + "/console/signin/callback",
            data={
                "form_token": hidden(form.text, "form_token"),
                "return_to": "/console/approvals",
                "username": username,
                "password": password,
            },
            headers={"Origin": self.base, "Cookie": f"__Host-pht-console-login={login[1]}"},
        )
        assert answer.status_code == 303, answer.text
        session = re.search(rf"{COOKIE_NAME}=([^;]+)", answer.headers["set-cookie"])
        assert session is not None
        self.session = session[1]
        page = await self.get("/console/approvals")
        assert page.status_code == 200, page.text
        self.csrf = hidden(page.text, "csrf_token")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStation]:
    config = StationConfig("console", tmp_path_factory.mktemp("box"), patients=120)
    async with LocalStation(config) as station:
        await station.apply(_load(POLICY), constants.POLICY_PLURAL)
        yield station


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def steward(box: LocalStation) -> Browser:
    browser = Browser(box.http, box.urls.external)
    await browser.sign_in(box.console_user, box.steward_password)
    return browser


def _awaiting(train: Obj) -> bool:
    return (train.get("status") or {}).get("summary") == "AwaitingApproval"


async def _approvals(box: LocalStation) -> list[Obj]:
    path = f"/apis/{constants.GROUP_VERSION}/namespaces/{REQUEST_NAMESPACE}/trainapprovals"
    answer = await box.kube_request("GET", path)
    items: list[Obj] = answer.json()["items"]
    return items


async def _pht_approve(box: LocalStation, name: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pht_cli.main",
        "approve",
        name,
        "--namespace",
        REQUEST_NAMESPACE,
        "--approver",
        box.approver,
        "--kubeconfig",
        str(box.urls.kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.mark.timeout(240)
async def test_approve_run_and_release_from_the_console(
    box: LocalStation, steward: Browser
) -> None:
    train = _load(TRAIN)
    name = train["metadata"]["name"]
    await box.apply(train, constants.TRAIN_PLURAL)
    waiting = await box.wait_for(name, _awaiting, 60)
    assert _awaiting(waiting)

    listing = await steward.get("/console/approvals")
    assert f"/console/approvals/{REQUEST_NAMESPACE}/{name}" in listing.text
    page = await steward.get(f"/console/approvals/{REQUEST_NAMESPACE}/{name}")
    assert page.status_code == 200, page.text
    assert "allowed by the policy" in page.text and "Dr. A. Researcher" in page.text
    assert f"<dd>{box.requester}</dd>" in page.text  # who created it, as Kubernetes says
    spec_hash = hidden(page.text, "spec_hash")
    assert spec_hash == waiting["status"]["specHash"]

    reason = "Reviewed image, queries and purpose."
    stale = await steward.post(
        f"/console/approvals/{REQUEST_NAMESPACE}/{name}",
        decision="Approve",
        reason=reason,
        spec_hash="0" * 64,
    )
    assert "The Train changed since this page was shown" in stale.text
    assert await _approvals(box) == []
    decided = await steward.post(
        f"/console/approvals/{REQUEST_NAMESPACE}/{name}",
        decision="Approve",
        reason=reason,
        spec_hash=spec_hash,
    )
    assert decided.status_code == 200, decided.text
    assert "Your decision was recorded." in decided.text
    # The page now shows who approved already (what a second steward sees).
    assert f"<li>{box.approver}: Approve — {reason}</li>" in decided.text
    (approval,) = await _approvals(box)
    assert approval["metadata"]["name"] == f"{name}-steward-station-local-{spec_hash[:8]}"
    assert approval["spec"] == {
        "train": {"name": name, "specHash": spec_hash, "uid": waiting["metadata"]["uid"]},
        "decision": "Approve",
        "approver": box.approver,
        "comment": reason,
    }
    # `pht approve` names the very same object: it finds the decision already recorded.
    assert "already recorded" in await _pht_approve(box, name)
    assert len(await _approvals(box)) == 1

    held = await box.wait_for(name, held_for_steward, 120)
    assert held_for_steward(held), held["status"]
    result = await steward.get(f"/console/results/{REQUEST_NAMESPACE}/{name}")
    assert result.status_code == 200 and "StewardReviewRequired" in result.text
    # The survival table is drawn: one curve per stage, through released points only.
    assert result.text.count("<polyline") >= 2
    assert "Survival curves of table" in result.text
    released = await steward.post(
        f"/console/results/{REQUEST_NAMESPACE}/{name}",
        decision="Release",
        reason="survival curves by stage only",
    )
    assert "Your decision was recorded." in released.text
    final = await box.wait_for(name, lambda _t: False, 60)
    assert final["status"]["summary"] == "Succeeded"

    trains = await steward.get("/console/trains")
    assert name in trains.text and "Succeeded" in trains.text
    timeline = await steward.get(f"/console/trains/{REQUEST_NAMESPACE}/{name}")
    assert timeline.status_code == 200
    assert "approval" in timeline.text and "release" in timeline.text
    assert timeline.text.count(box.approver) >= 2  # the approval and the release
    assert "<dd>None</dd>" not in timeline.text  # an empty detail is left out, not shown as None
    audit = await steward.get("/console/audit")
    assert "The chain verifies" in audit.text
    pending = await steward.get("/console/approvals")
    assert f"/console/approvals/{REQUEST_NAMESPACE}/{name}" not in pending.text


@pytest.mark.timeout(120)
async def test_markup_in_a_trains_fields_is_shown_as_text(
    box: LocalStation, steward: Browser
) -> None:
    train: dict[str, Any] = _load(TRAIN)
    train["metadata"]["name"] = "markup"
    spec = train["spec"]
    spec["requester"]["name"] = f"Dr. {MARKUP}"
    spec["purpose"] = f"Survival {MARKUP} by stage"
    spec["parameters"] = '{"note": "</pre><script>alert(2)</script>"}'
    spec["queries"].append({"name": "long", "sparql": LONG_QUERY})
    await box.apply(train, constants.TRAIN_PLURAL)
    await box.wait_for("markup", lambda t: bool((t.get("status") or {}).get("specHash")), 60)
    page = await steward.get(f"/console/approvals/{REQUEST_NAMESPACE}/markup")
    assert page.status_code == 200, page.text
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;/pre&gt;&lt;script&gt;alert(" in page.text
    # Shown laid out and, in the "as submitted" block, as written: escaped text both times.
    assert page.text.count("alert(&#39;sparql&#39;)") == 2 * 150
