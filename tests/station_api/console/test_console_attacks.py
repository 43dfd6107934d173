"""Attacks on the steward console, each by someone the console must hold off: a researcher with
an account, a visitor without one, a hostile page a signed-in steward opens, and a train that
uploads a hostile result."""

import asyncio
import base64
import contextlib
import hashlib
import http.server
import json
import secrets
import struct
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import httpx
import pytest
import yaml
from consolekit import (
    BASE,
    ORIGIN,
    RESEARCHER,
    STEWARD,
    WARD_STEWARD,
    hidden,
    post_form,
    sign_in,
    signed_in,
)
from stationkit import bearer, example_query, operator_headers, registration

from pht_contract.constants import GROUP_VERSION
from pht_contract.manifests import ModelFile
from pht_contract.objects import Obj
from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TrainRegistration,
)
from pht_station_api.console import locallogin, pages, rendering
from pht_station_api.console.i18n import Translator
from pht_station_api.console.kubeaccess import steward_kube
from pht_station_api.console.plots import Plot, Series
from pht_station_api.console.rendering import SECURITY_HEADERS
from pht_station_api.console.sessions import COOKIE_NAME, MAX_SESSIONS_PER_USER, SessionStore
from pht_station_api.console.signin import SignedIn
from pht_station_api.console.views import (
    CellView,
    ModelSummary,
    ResultDetail,
    TablePreview,
    model_summary,
    pending_train,
)
from pht_station_api.identities import Identity
from pht_station_api.settings import Settings
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO: Final = Path(__file__).resolve().parents[3]
LATER = datetime.now(UTC) + timedelta(hours=8)
KM = example_query("kaplan-meier")
STAGES = {
    "name": "stages",
    "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
    "rows": [["I", 30], ["IIIa", 28]],
    "cohortSize": 60,
}


def _assert_secured(answer: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.request.url, name)


# --- sessions -------------------------------------------------------------------------------


async def test_signing_in_again_and_again_never_pushes_other_stewards_out() -> None:
    """A researcher's script signs in far more often than the store holds sessions."""
    store = SessionStore(20, 3600)
    steward_id, _ = store.create(SignedIn(STEWARD.username, STEWARD.token, LATER))
    researcher_ids = [
        store.create(SignedIn(RESEARCHER.username, RESEARCHER.token, LATER))[0] for _ in range(200)
    ]
    assert store.get(steward_id) is not None
    live = [i for i in researcher_ids if store.get(i) is not None]
    # The researcher's own latest sessions, no more.
    assert live == researcher_ids[-MAX_SESSIONS_PER_USER:]


async def test_someone_showing_a_stewards_name_cannot_sign_the_steward_out() -> None:
    """An OpenID account whose (unverified) e-mail claim is a steward's: its sessions are
    counted by the provider's subject, not by the name shown."""
    store = SessionStore(100, 3600)
    name = "erin@hospital.example"
    erin, _ = store.create(SignedIn(name, "t", LATER, subject="https://idp erin-sub"))
    for _ in range(3 * MAX_SESSIONS_PER_USER):
        store.create(SignedIn(name, "t", LATER + timedelta(hours=1), subject="https://idp eve"))
    assert store.get(erin) is not None


async def test_a_full_store_takes_room_from_whoever_holds_the_most_sessions() -> None:
    store = SessionStore(6, 3600)
    mine = [store.create(SignedIn("mallory", "t", LATER))[0] for _ in range(4)]
    sam, _ = store.create(SignedIn("sam", "t", LATER + timedelta(hours=1)))
    kim, _ = store.create(SignedIn("kim", "t", LATER + timedelta(hours=1)))
    lee, _ = store.create(SignedIn("lee", "t", LATER + timedelta(hours=1)))
    assert all(store.get(s) is not None for s in (sam, kim, lee))
    assert [store.get(m) is not None for m in mine] == [False, True, True, True]


async def test_a_session_id_planted_before_sign_in_is_not_the_stewards_after(
    browser: httpx.AsyncClient,
) -> None:
    """Fixation: the attacker's own session id, set in the steward's browser, does not become
    the steward's session."""
    await signed_in(browser, RESEARCHER)
    planted = str(browser.cookies.get(COOKIE_NAME))
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, planted, domain="console.test")
    answer = await sign_in(browser, STEWARD.username, STEWARD.password)
    assert answer.status_code == 303
    issued = str(browser.cookies.get(COOKIE_NAME))
    assert issued != planted
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, planted, domain="console.test")
    assert (await browser.get("/console/results")).status_code == 303


# --- headers on every console response ------------------------------------------------------


async def test_every_console_response_carries_the_security_headers(
    browser: httpx.AsyncClient,
) -> None:
    """Clickjacking and caching: errors, redirects and static files too, not only pages."""
    browser.cookies.clear()
    answers = [
        await browser.get("/console/no-such-page"),
        await browser.get("/console/results"),  # a redirect to sign in
        await browser.get("/console/signin"),
        await browser.get("/console/static/console.css"),
        await browser.post("/console/signout", headers=ORIGIN),
    ]
    await signed_in(browser, STEWARD)
    answers += [
        await browser.get("/console/results/Not_A_Namespace/x"),
        await browser.post("/console/results/pht-requests/x", data={}, headers=ORIGIN),
        await browser.get("/console/results/pht-requests/" + "a" * 300),
    ]
    assert [a.status_code for a in answers] == [404, 303, 200, 200, 303, 422, 422, 422]
    for answer in answers:
        _assert_secured(answer)


# --- path tricks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a%3Fwatch=true",  # a query for the Kubernetes API
        "a%23fragment",
        "%2E%2E",
        "Upper",
        "a%2F..%2F..%2Fapprovals",
        "a%00b",
    ],
)
async def test_names_that_are_not_kubernetes_names_reach_nothing(
    browser: httpx.AsyncClient, name: str
) -> None:
    """A name the Kubernetes API would not accept is refused before RBAC or Kubernetes are
    asked (this station has no Kubernetes: asking it would answer 502)."""
    csrf = await signed_in(browser, STEWARD)
    for path in ("approvals", "results", "trains"):
        page = await browser.get(f"/console/{path}/pht-requests/{name}")
        assert page.status_code in (404, 422), (path, page.status_code)
        assert "Traceback" not in page.text
    post = await browser.post(
        f"/console/approvals/pht-requests/{name}",
        data=post_form(csrf, decision="Approve", reason="x", spec_hash="a" * 64),
        headers=ORIGIN,
    )
    assert post.status_code in (404, 422)


async def test_the_sign_in_redirect_keeps_the_page_as_one_parameter(
    browser: httpx.AsyncClient,
) -> None:
    browser.cookies.clear()
    answer = await browser.get("/console/trains/pht-requests/a&return_to=x")
    assert answer.status_code in (404, 422)
    answer = await browser.get("/console/approvals/pht-requests/train-1")
    assert answer.headers["location"] == (
        "/console/signin?return_to=/console/approvals/pht-requests/train-1"
    )


# --- CSRF -----------------------------------------------------------------------------------


async def test_a_post_from_an_opaque_origin_is_refused_whatever_its_referer(
    browser: httpx.AsyncClient,
) -> None:
    """``Origin: null`` comes from sandboxed frames and cross-site redirects; a Referer that
    names the console does not make it a console form."""
    csrf = await signed_in(browser, STEWARD)
    answer = await browser.post(
        "/console/signout",
        data=post_form(csrf),
        headers={"Origin": "null", "Referer": f"{BASE}/console/results"},
    )
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert (await browser.get("/console/results")).status_code == 200


# --- a hostile upload -----------------------------------------------------------------------


def _model(raw: bytes, fmt: str = "safetensors") -> ModelFile:
    return ModelFile.model_validate(
        {
            "name": "model.safetensors",
            "format": fmt,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "sizeBytes": len(raw),
            "dataBase64": base64.b64encode(raw).decode(),
        }
    )


def _safetensors(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize(
    "header",
    [
        b"[1, 2, 3]",
        b'"a string"',
        json.dumps({"w": {"dtype": "F32", "shape": 5}}).encode(),
        json.dumps({"w": {"dtype": "F32", "shape": None}}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
async def test_a_hostile_model_header_is_summarised_as_unreadable(header: bytes) -> None:
    """The steward's result page must open whatever a train uploads as a model."""
    summary = model_summary(_model(_safetensors(header)))
    assert summary.note == "unreadable"
    assert summary.tensors == []


async def test_a_well_formed_model_header_still_lists_its_tensors() -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3]}, "__metadata__": {}}).encode()
    summary = model_summary(_model(_safetensors(header)))
    assert summary.tensors == [("w", "F32", "2×3")]
    assert summary.note == ""


# --- another namespace's steward -------------------------------------------------------------


async def _held(inside: httpx.AsyncClient, namespace: str, requested_by: str) -> TrainRegistration:
    """A Train in ``namespace`` whose aggregate result waits for a steward."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM])
    reg = reg.model_copy(update={"namespace": namespace, "requested_by": requested_by})
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    manifest = {"tables": [STAGES], "messages": ["done"]}
    upload = await inside.put(RESULT_PATH, json=manifest, headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid),
        json={"jobSucceeded": True, "reason": "RunCompleted"},
        headers=operator_headers(),
    )
    assert done.status_code == 200, done.text
    return reg


async def test_a_steward_sees_no_earlier_release_of_a_namespace_they_do_not_steward(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    """The 'earlier releases to this requester' list is bounded by RBAC like every list."""
    elsewhere = await _held(inside, "ward-b", "dr-bob")
    csrf = await signed_in(browser, STEWARD)
    released = await browser.post(
        f"/console/results/ward-b/{elsewhere.name}",
        data=post_form(csrf, decision="Release", reason="aggregates only"),
        headers=ORIGIN,
    )
    assert released.status_code == 200, released.text
    here = await _held(inside, "pht-requests", "dr-bob")
    # A steward of every namespace sees the earlier release ...
    page = await browser.get(f"/console/results/pht-requests/{here.name}")
    assert page.status_code == 200 and elsewhere.name in page.text
    # ... a steward of pht-requests only does not.
    await signed_in(browser, WARD_STEWARD)
    page = await browser.get(f"/console/results/pht-requests/{here.name}")
    assert page.status_code == 200, page.text
    assert elsewhere.name not in page.text
    assert (await browser.get(f"/console/results/ward-b/{elsewhere.name}")).status_code == 403
    # Nor can they decide on a held result there.
    there = await _held(inside, "ward-b", "dr-bob")
    csrf = hidden(page.text, "csrf_token")
    for decision in ("Release", "Block"):
        answer = await browser.post(
            f"/console/results/ward-b/{there.name}",
            data=post_form(csrf, decision=decision, reason="not mine to decide"),
            headers=ORIGIN,
        )
        assert answer.status_code == 403
    assert console_station.results.find("ward-b", there.name).release.value == "Held"


# --- open redirects and the local login ------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/console/",
        "/\\evil.example/console/",
        "/console/\\\\evil.example",
        "https:evil.example/console/",
        "/console//evil.example",
        "/console/%2F%2Fevil.example/../..",
        "/console/x\r\nSet-Cookie: a=b",
        "javascript:alert(1)//console/",
        "\t/console/",
    ],
)
async def test_no_return_to_leads_off_the_console(browser: httpx.AsyncClient, target: str) -> None:
    browser.cookies.clear()
    form = await browser.get("/console/signin", params={"return_to": target})
    answer = await browser.post(
        "/console/signin/callback",
        data={
            "form_token": hidden(form.text, "form_token"),
            "return_to": target,
            "username": STEWARD.username,
            "password": STEWARD.password,
        },
        headers=ORIGIN,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/approvals"
    assert "set-cookie: a=b" not in str(answer.headers).lower()


async def test_an_unknown_user_name_costs_the_same_scrypt_work_as_a_wrong_password(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing: the answer must not tell which user names exist."""
    costs: list[tuple[int, int, int]] = []
    real = hashlib.scrypt

    def counting(password: bytes, **parameters: int) -> bytes:
        costs.append((parameters["n"], parameters["r"], parameters["p"]))
        return real(password, **parameters)  # type: ignore[arg-type]

    monkeypatch.setattr(locallogin.hashlib, "scrypt", counting)
    for username in (STEWARD.username, "no-such-user"):
        browser.cookies.clear()
        answer = await sign_in(browser, username, "wrong-password")
        assert answer.status_code == 401
    assert len(costs) == 2 and costs[0] == costs[1]


@pytest.mark.parametrize("parameters", ["[" * 5000 + "]" * 5000, '{"a": ', "\u0000"])
async def test_a_trains_hostile_parameters_are_shown_as_written(parameters: str) -> None:
    """A researcher's parameters (up to 16 KiB of text) never break the approval page."""
    train = {
        "metadata": {"name": "t", "namespace": "pht-requests", "uid": "u"},
        "spec": {"parameters": parameters},
        "status": {},
    }
    assert pending_train(train, None, []).parameters == parameters


async def test_many_held_results_cost_one_rbac_review_per_namespace(
    browser: httpx.AsyncClient,
    inside: httpx.AsyncClient,
    console_station: StationState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A researcher's many Trains must not make every steward page view ask RBAC once per
    Train; a steward allowed namespace-wide is asked once per namespace, and RBAC still
    decides (a steward of one namespace sees only its results)."""
    for _ in range(6):
        await _held(inside, "pht-requests", "dr-carol")
    await _held(inside, "ward-c", "dr-carol")
    identities = console_station.identities
    real = identities.allowed
    asked: list[tuple[str, str, str]] = []

    async def counting(
        identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        asked.append((verb, namespace, name))
        return await real(identity, verb, namespace, name, subresource)

    await signed_in(browser, STEWARD)
    monkeypatch.setattr(identities, "allowed", counting)
    listing = await browser.get("/console/results")
    assert listing.status_code == 200
    namespaces = {r.namespace for r in console_station.results.held()}
    assert len(namespaces) >= 2 and len(asked) == len(namespaces), asked
    assert "ward-c" in listing.text

    monkeypatch.setattr(identities, "allowed", real)
    await signed_in(browser, WARD_STEWARD)
    mine = await browser.get("/console/results")
    assert mine.status_code == 200
    held = console_station.results.held()
    assert all(r.name in mine.text for r in held if r.namespace == "pht-requests")
    assert not any(r.name in mine.text for r in held if r.namespace != "pht-requests")


# --- a Train whose queries are slow to check ----------------------------------------------------


#: As long as a Train's query may be (16 KiB): a chain of UNIONs the query check needs about a
#: second for.
SLOW_QUERY = "SELECT * WHERE {" + "UNION".join(["{?a ?b ?c}"] * 1090) + "}"


class OneTrainKube:
    """Kubernetes as the console's pages read it, holding one Train (no cluster here)."""

    def __init__(self, train: Obj, policy: Obj) -> None:
        self._train, self._policy = train, policy

    async def train(self, namespace: str, name: str) -> Obj:
        return self._train

    async def policy(self, namespace: str) -> Obj:
        return self._policy

    async def approvals(self, namespace: str) -> list[Obj]:
        return []


async def test_a_train_with_slow_queries_does_not_stall_other_requests(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the approval page of such a Train is built, the listener answers everyone else."""
    assert len(SLOW_QUERY) <= 16384
    train = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "Train",
        "metadata": {"name": "slow", "namespace": "pht-requests", "uid": "u-slow"},
        "spec": {"queries": [{"name": f"q{i}", "sparql": SLOW_QUERY} for i in range(2)]},
        "status": {"summary": "AwaitingApproval"},
    }
    policy = yaml.safe_load((REPO / "examples" / "policies" / "station-policy.yaml").read_text())

    @contextlib.asynccontextmanager
    async def one_train(settings: object, token: str) -> AsyncIterator[OneTrainKube]:
        yield OneTrainKube(train, policy)

    monkeypatch.setattr(pages, "steward_kube", one_train)
    await signed_in(browser, STEWARD)
    finished: list[str] = []

    async def approval_page() -> None:
        answer = await browser.get("/console/approvals/pht-requests/slow")
        assert answer.status_code == 200, answer.text
        finished.append("approval page")

    async def someone_else() -> None:
        await asyncio.sleep(0.3)
        answer = await browser.get("/console/static/console.css")
        assert answer.status_code == 200
        finished.append("someone else")

    await asyncio.gather(approval_page(), someone_else())
    assert finished == ["someone else", "approval page"]


# --- researcher text in every field of a page ------------------------------------------------

EVIL = "\"'><script>alert(1)</script><svg onload=alert(2)>{t}{0}"


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_researcher_text_in_every_field_of_the_result_page_stays_text(language: str) -> None:
    """Names, findings, table and column names, cells, models, tensors, messages, plot labels:
    whatever a hostile upload or Train carries, in either catalog, in text and attributes."""
    detail = ResultDetail(
        namespace=EVIL,
        name=EVIL,
        release="Held",
        rule=EVIL,
        findings=[EVIL],
        attempts=1,
        requested_by=EVIL,
        tables=[TablePreview(EVIL, EVIL, [EVIL], [[CellView(EVIL)]], 60, 0)],
        statistics=[(EVIL, EVIL, 5)],
        models=[ModelSummary(EVIL, EVIL, 1, EVIL, [(EVIL, EVIL, EVIL)], "")],
        messages=[EVIL],
        aggregates=[(EVIL, EVIL, EVIL)],
        earlier=[(EVIL, EVIL, EVIL)],
        plots=[Plot(EVIL, 640, 300, 40, 1.0, [Series(EVIL, "40.0,40.0", "#0072B2")], [], [])],
        ledger_scopes=[EVIL],
        cohorts=[60],
    )
    html = rendering.ENVIRONMENT.get_template("result.html").render(
        t=Translator(language),
        lang=language,
        languages=("en", "nl"),
        path="/console/results/x/y",
        user=EVIL,
        csrf_token="c",
        notice=None,
        failure=EVIL,
        item=detail,
        held=True,
    )
    assert "<script" not in html and "<svg onload" not in html
    assert "\"'>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 20


async def test_posts_without_a_session_act_on_nothing(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    """A visitor without an account (or with a made-up session id) posting every form."""
    reg = await _held(inside, "pht-requests", "dr-dave")
    browser.cookies.clear()
    for cookie in (None, secrets.token_urlsafe(32)):
        if cookie is not None:
            browser.cookies.set(COOKIE_NAME, cookie, domain="console.test")
        for path, fields in (
            (f"/console/results/{reg.namespace}/{reg.name}", {"decision": "Release"}),
            (f"/console/approvals/{reg.namespace}/{reg.name}", {"decision": "Approve"}),
            ("/console/signout", {}),
        ):
            data = {"reason": "x", "spec_hash": "a" * 64, "csrf_token": "x", **fields}
            answer = await browser.post(path, data=data, headers=ORIGIN)
            assert answer.status_code == 303, (path, answer.status_code)
            assert answer.headers["location"].startswith("/console/signin")
    assert console_station.results.find(reg.namespace, reg.name).release.value == "Held"


async def test_a_result_the_gate_blocks_shows_none_of_its_numbers(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    """A blocked result never leaves, so its page shows the rule, never what was uploaded."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM]).model_copy(update={"requested_by": "dr-erin"})
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    assert (
        await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    ).status_code == 200
    tiny = {
        "name": "tiny",
        "columns": [
            {"name": "stage", "role": "Group"},
            {"name": "n", "role": "Count"},
            {"name": "age", "role": "Statistic"},
        ],
        "rows": [["I", 2, 83.4375]],
        "cohortSize": 2,
    }
    upload = await inside.put(
        RESULT_PATH,
        json={"tables": [tiny], "statistics": [], "messages": []},
        headers=bearer(token),
    )
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid),
        json={"jobSucceeded": True, "reason": "RunCompleted"},
        headers=operator_headers(),
    )
    assert done.status_code == 200, done.text
    assert console_station.results.find(reg.namespace, reg.name).release.value == "Blocked"
    await signed_in(browser, STEWARD)
    page = await browser.get(f"/console/results/{reg.namespace}/{reg.name}")
    assert page.status_code == 200, page.text
    assert "MinCohort" in page.text
    assert "83.4375" not in page.text and 'class="preview"' not in page.text


# --- whose account writes to Kubernetes --------------------------------------------------------


class RecordingApiServer:
    """A Kubernetes API stand-in on 127.0.0.1 that records who each request says it is."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Obj) -> None:
                outer.seen.append((self.command, self.path, self.headers.get("Authorization")))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(
                    200,
                    {
                        "apiVersion": GROUP_VERSION,
                        "kind": "Train",
                        "metadata": {"name": "t", "namespace": "ns"},
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._answer(201, json.loads(self.rfile.read(length)))

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "RecordingApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


async def test_the_console_reads_and_writes_kubernetes_as_the_steward_only(
    tmp_path: Path,
) -> None:
    """The station API's own credential (here a token in its kubeconfig) is never presented
    for a steward: the admission policy sees the steward create the TrainApproval."""
    with RecordingApiServer() as api:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": api.url}}],
                    "users": [{"name": "station", "user": {"token": "station-account-token"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "station"}}],
                    "current-context": "x",
                }
            )
        )
        settings = Settings(kubeconfig=kubeconfig)
        async with steward_kube(settings, "steward-token") as kube:
            await kube.train("ns", "t")
            await kube.create_approval(
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "TrainApproval",
                    "metadata": {"name": "a", "namespace": "ns"},
                    "spec": {"decision": "Approve", "approver": "steward-sam"},
                }
            )
    assert [(method, auth) for method, _, auth in api.seen] == [
        ("GET", "Bearer steward-token"),
        ("POST", "Bearer steward-token"),
    ]
