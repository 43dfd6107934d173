"""The console's pages and form posts, under ``/console/`` on the external listener.

Every page finds the browser's session, authenticates the session's token with the station
API's identity checker (TokenReview, or the local identities file in the box) and asks RBAC
(:meth:`allowed`, a SubjectAccessReview in a cluster) about each Train it shows or acts on:
``approve`` for pending approvals, ``release`` for held results and provenance, ``get`` for the
list of Trains. Kubernetes reads and writes are made with the steward's own token. Every POST
checks the session's CSRF token and the request's origin first.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final, TypeVar

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from pht_contract.aggregates import OutgoingResult
from pht_contract.approvalrecords import (
    DECISIONS,
    Decision,
    NotAdmitted,
    approval_refusal,
    train_approval,
)
from pht_contract.manifests import IDENTIFIER
from pht_contract.objects import Obj
from pht_contract.trains import ReleaseState
from pht_contract.wire import ReleaseDecision
from pht_station_api.console.csrf import FORM_FIELD, check_origin, check_token
from pht_station_api.console.i18n import Translator, choose_language
from pht_station_api.console.kubeaccess import KubeRefused, StewardKube, steward_kube
from pht_station_api.console.rendering import PICTURE_POLICY, render, secure
from pht_station_api.console.sessions import COOKIE_NAME, Session, SessionStore
from pht_station_api.console.signin import SignIn, SignInFailed
from pht_station_api.console.views import (
    TrainRow,
    awaiting_approval,
    pending_train,
    picture_bytes,
    result_detail,
    train_row,
)
from pht_station_api.deps import VERB_GET, VERB_RELEASE, get_state
from pht_station_api.errors import IdentityUnavailable, StationApiError, Unauthenticated
from pht_station_api.identities import Identity
from pht_station_api.results.records import ResultRecord
from pht_station_api.routers import stewards
from pht_station_api.routers.results import result_archive
from pht_station_api.state import StationState

PREFIX: Final = "/console"
HOME: Final = f"{PREFIX}/approvals"
VERB_APPROVE: Final = "approve"
REASON_MAX: Final = 1024

T = TypeVar("T")

Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
#: A Kubernetes object name (DNS subdomain): nothing else reaches the Kubernetes API's URLs.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
Name = Annotated[str, Path(pattern=rf"^{_LABEL}(\.{_LABEL})*$", min_length=1, max_length=253)]
PlotName = Annotated[str, Path(pattern=IDENTIFIER, max_length=63)]
Reason = Annotated[str, Form(max_length=REASON_MAX)]
CsrfField = Annotated[str | None, Form(alias=FORM_FIELD, max_length=256)]

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass
class Console:
    sessions: SessionStore
    sign_in: SignIn | None
    namespaces: tuple[str, ...]


class NotSignedIn(Exception):
    """No live session: the browser is sent to sign in, and back to ``return_to`` after."""

    def __init__(self, return_to: str) -> None:
        super().__init__(return_to)
        self.return_to = return_to


class ConsoleRefused(Exception):
    """A page or action refused; shown as a page with the status and a one-line reason: the
    catalog entry ``key`` filled with ``values`` (``detail``: words of the Kubernetes API or the
    station API, shown as they are)."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Steward:
    session: Session
    identity: Identity
    state: StationState
    console: Console


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def safe_return_to(value: str | None) -> str:
    """Only a console path of this site (never another site, never a scheme-relative URL)."""
    if not value or not value.startswith(PREFIX + "/"):
        return HOME
    if any(bad in value for bad in ("//", "\\", "\n", "\r", "..")):
        return HOME
    return value


async def steward(request: Request) -> Steward:
    """The signed-in person behind this request, authenticated again for every request."""
    console = console_of(request)
    state = get_state(request)
    session = console.sessions.get(request.cookies.get(COOKIE_NAME))
    return_to = safe_return_to(request.url.path)
    if session is None:
        raise NotSignedIn(return_to)
    try:
        identity = await state.identities.authenticate(session.token)
    except Unauthenticated:
        console.sessions.drop(request.cookies.get(COOKIE_NAME))
        raise NotSignedIn(return_to) from None
    except IdentityUnavailable as unavailable:
        raise ConsoleRefused(503, "refused.detail", detail=unavailable.message) from None
    return Steward(session, identity, state, console)


async def posted_by(request: Request, submitted: str | None) -> Steward:
    """The signed-in steward, after the form's CSRF token and origin were checked."""
    who = await steward(request)
    check_origin(request, who.state.settings.public_base_url)
    check_token(who.session.csrf_token, submitted)
    return who


async def may(who: Steward, verb: str, namespace: str, name: str) -> bool:
    try:
        return await who.state.identities.allowed(who.identity, verb, namespace, name, None)
    except IdentityUnavailable as unavailable:
        raise ConsoleRefused(503, "refused.detail", detail=unavailable.message) from None


class ListPermissions:
    """RBAC answers for a page that lists many Trains: one namespace-wide review per verb and
    namespace (allowed there means allowed for every name), and a review per Train only where
    that is refused, so a researcher's many Trains do not turn every page view into as many
    reviews of the API server."""

    def __init__(self, who: Steward) -> None:
        self._who = who
        self._namespace_wide: dict[tuple[str, str], bool] = {}

    async def may(self, verb: str, namespace: str, name: str) -> bool:
        key = (verb, namespace)
        if key not in self._namespace_wide:
            self._namespace_wide[key] = await may(self._who, verb, namespace, "")
        return self._namespace_wide[key] or await may(self._who, verb, namespace, name)


async def require(who: Steward, verb: str, namespace: str, name: str) -> None:
    if not await may(who, verb, namespace, name):
        raise ConsoleRefused(
            403,
            "refused.may_not",
            user=who.identity.username,
            verb=verb,
            train=f"{namespace}/{name}",
        )


async def kube_call(action: Awaitable[T]) -> T:
    try:
        return await action
    except KubeRefused as refused:
        status = refused.status if refused.status in (403, 404) else 502
        raise ConsoleRefused(status, "refused.detail", detail=str(refused)) from None


def page(request: Request, who: Steward, template: str, **values: object) -> Response:
    return render(
        request,
        template,
        {"user": who.identity.username, "csrf_token": who.session.csrf_token, **values},
    )


# --- signing in and out ----------------------------------------------------------------


@router.get("")
@router.get("/")
async def home() -> Response:
    return secure(RedirectResponse(HOME, status_code=303))


@router.get("/signin")
async def sign_in(
    request: Request, return_to: Annotated[str | None, Query(max_length=2048)] = None
) -> Response:
    chosen = console_of(request).sign_in
    if chosen is None:
        return render(request, "signin_unavailable.html", status_code=503)
    return secure(await chosen.start(request, safe_return_to(return_to)))


@router.api_route("/signin/callback", methods=["GET", "POST"])
async def sign_in_callback(request: Request) -> Response:
    console = console_of(request)
    if console.sign_in is None:
        return render(request, "signin_unavailable.html", status_code=503)
    try:
        signed_in = await console.sign_in.finish(request)
    except SignInFailed as failed:
        return render(
            request, "signin_failed.html", {"failure": str(failed)}, status_code=failed.status
        )
    return_to = signed_in.return_to or request.query_params.get("return_to")
    if request.method == "POST":
        return_to = str((await request.form()).get("return_to") or "") or return_to
    # A session id the browser held before signing in is never reused.
    console.sessions.drop(request.cookies.get(COOKIE_NAME))
    session_id, _ = console.sessions.create(signed_in)
    target = safe_return_to(return_to)
    if request.method == "GET":
        # An identity provider's redirect brought the browser here from another site, and a
        # browser keeps SameSite=Strict cookies off every request of such a redirect chain: so
        # the way on is a page of the console's own, whose navigation carries the new cookie.
        response: Response = render(request, "signed_in.html", {"target": target})
    else:
        response = RedirectResponse(target, status_code=303)  # the console's own login form
    console.sign_in.forget(response)
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        secure=True,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return secure(response)


@router.post("/signout")
async def sign_out(request: Request, csrf_token: CsrfField = None) -> Response:
    await posted_by(request, csrf_token)
    console_of(request).sessions.drop(request.cookies.get(COOKIE_NAME))
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    response.delete_cookie(COOKIE_NAME, secure=True, httponly=True, samesite="strict", path="/")
    return secure(response)


# --- pending approvals ------------------------------------------------------------------


async def listed_trains(
    who: Steward, verb: str, keep: Callable[[Obj], bool] = lambda _train: True
) -> list[TrainRow]:
    """The Trains of the console's namespaces that ``keep`` selects and RBAC lets ``who``
    ``verb`` (one review per namespace where it can)."""
    rows: list[TrainRow] = []
    permissions = ListPermissions(who)
    async with steward_kube(who.state.settings, who.session.token) as kube:
        for namespace in who.console.namespaces:
            for train in await kube_call(kube.trains(namespace)):
                row = train_row(train)
                if keep(train) and await permissions.may(verb, namespace, row.name):
                    rows.append(row)
    return rows


@router.get("/approvals")
async def approvals(request: Request) -> Response:
    who = await steward(request)
    pending = await listed_trains(who, VERB_APPROVE, awaiting_approval)
    return page(request, who, "approvals.html", pending=pending)


async def _approval_page(
    request: Request,
    who: Steward,
    kube: StewardKube,
    namespace: str,
    name: str,
    notice: str | None = None,
    failure: str | None = None,
) -> Response:
    train = await kube_call(kube.train(namespace, name))
    policy = await kube_call(kube.policy(namespace))
    recorded = await kube_call(kube.approvals(namespace))
    # Checking a Train's queries against the policy parses up to 32 queries of 16 KiB each:
    # seconds for a hostile one, so never on the event loop that serves everyone else.
    view = await run_in_threadpool(pending_train, train, policy, recorded)
    return page(
        request,
        who,
        "approval.html",
        item=view,
        awaiting=awaiting_approval(train),
        notice=notice,
        failure=failure,
    )


@router.get("/approvals/{namespace}/{name}")
async def approval(request: Request, namespace: Namespace, name: Name) -> Response:
    who = await steward(request)
    await require(who, VERB_APPROVE, namespace, name)
    async with steward_kube(who.state.settings, who.session.token) as kube:
        return await _approval_page(request, who, kube, namespace, name)


@router.post("/approvals/{namespace}/{name}")
async def decide_approval(
    request: Request,
    namespace: Namespace,
    name: Name,
    decision: Annotated[str, Form(max_length=16)],
    reason: Reason,
    spec_hash: Annotated[str, Form(max_length=64)],
    csrf_token: CsrfField = None,
) -> Response:
    who = await posted_by(request, csrf_token)
    await require(who, VERB_APPROVE, namespace, name)
    if decision not in DECISIONS:
        raise ConsoleRefused(422, "refused.decision", choices="Approve, Reject")
    chosen: Decision = "Approve" if decision == "Approve" else "Reject"
    if not reason.strip():
        raise ConsoleRefused(422, "refused.reason")
    async with steward_kube(who.state.settings, who.session.token) as kube:
        train = await kube_call(kube.train(namespace, name))
        failed, notice = await _record_approval(kube, who, train, chosen, reason, spec_hash)
        failure = None
        if failed is not None:
            failure = Translator(choose_language(request))(failed[0], **failed[1])
        return await _approval_page(request, who, kube, namespace, name, notice, failure)


Outcome = tuple[str, dict[str, object]]


async def _record_approval(
    kube: StewardKube, who: Steward, train: Obj, decision: Decision, reason: str, reviewed: str
) -> tuple[Outcome | None, str | None]:
    """(failure, notice): record the decision exactly as ``pht approve`` would; a failure is a
    catalog key and its values."""
    try:
        approval_doc = train_approval(train, who.identity.username, decision, reason.strip())
    except NotAdmitted:
        return ("approval.not_admitted", {}), None
    spec_hash = approval_doc["spec"]["train"]["specHash"]
    if spec_hash != reviewed:
        return ("approval.changed", {}), None
    if decision == "Approve":
        policy = await kube_call(kube.policy(train["metadata"]["namespace"]))
        why = approval_refusal(train, policy)
        if why:
            return ("approval.policy_refuses", {"why": why}), None
    try:
        await kube.create_approval(approval_doc)
    except KubeRefused as refused:
        if refused.status != 409:
            return ("approval.not_recorded", {"detail": str(refused)}), None
        existing = await kube_call(
            kube.approval(approval_doc["metadata"]["namespace"], approval_doc["metadata"]["name"])
        )
        recorded = ((existing or {}).get("spec") or {}).get("decision", "Approve")
        if existing is not None and recorded != decision:
            return ("approval.other_decision", {"recorded": recorded, "decision": decision}), None
        return None, "already recorded"
    return None, "recorded"


# --- held results ---------------------------------------------------------------------


@router.get("/results")
async def held_results(request: Request) -> Response:
    who = await steward(request)
    archive = result_archive(who.state)
    permissions = ListPermissions(who)
    held = [
        stewards.summary(record)
        for record in archive.held()
        if await permissions.may(VERB_RELEASE, record.namespace, record.name)
    ]
    return page(request, who, "results.html", held=held)


async def _outgoing_for(who: Steward, record: ResultRecord) -> OutgoingResult | None:
    """The result as it would leave, unless this steward requested the Train (not released)."""
    archive = result_archive(who.state)
    try:
        return await run_in_threadpool(archive.outgoing_for, record, who.identity.username)
    except StationApiError as error:
        raise ConsoleRefused(error.status, "refused.detail", detail=error.message) from None


async def _result_page(
    request: Request,
    who: Steward,
    namespace: str,
    name: str,
    notice: str | None = None,
    failure: str | None = None,
) -> Response:
    archive = result_archive(who.state)
    try:
        record = archive.find(namespace, name)
    except StationApiError as error:
        raise ConsoleRefused(error.status, "refused.detail", detail=error.message) from None
    outgoing = await _outgoing_for(who, record)
    permissions = ListPermissions(who)
    # Earlier releases to the same requester, of Trains this steward may see (RBAC): a
    # steward of one namespace learns nothing of another's.
    earlier = [
        r
        for r in archive.records()
        if r.uid != record.uid
        and r.release == ReleaseState.RELEASED
        and record.requested_by is not None
        and r.requested_by == record.requested_by
        and await permissions.may(VERB_RELEASE, r.namespace, r.name)
    ]
    view = await run_in_threadpool(result_detail, record, outgoing, earlier)
    return page(
        request,
        who,
        "result.html",
        item=view,
        held=record.release == ReleaseState.HELD,
        notice=notice,
        failure=failure,
    )


@router.get("/results/{namespace}/{name}")
async def held_result(request: Request, namespace: Namespace, name: Name) -> Response:
    who = await steward(request)
    await require(who, VERB_RELEASE, namespace, name)
    return await _result_page(request, who, namespace, name)


@router.get("/results/{namespace}/{name}/plots/{plot}")
async def result_plot(
    request: Request, namespace: Namespace, name: Name, plot: PlotName
) -> Response:
    """A plot of a result the steward may see (the same checks as the result's page), as
    the canonical PNG the station wrote."""
    who = await steward(request)
    await require(who, VERB_RELEASE, namespace, name)
    archive = result_archive(who.state)
    try:
        record = archive.find(namespace, name)
    except StationApiError as error:
        raise ConsoleRefused(error.status, "refused.detail", detail=error.message) from None
    outgoing = await _outgoing_for(who, record)
    found = next((p for p in (outgoing.plots if outgoing else []) if p.name == plot), None)
    if found is None:
        raise ConsoleRefused(404, "refused.no_plot", plot=plot)
    response = secure(Response(picture_bytes(found), media_type="image/png"))
    response.headers["Content-Security-Policy"] = PICTURE_POLICY
    response.headers["Content-Disposition"] = f'inline; filename="{found.name}.png"'
    return response


@router.post("/results/{namespace}/{name}")
async def decide_result(
    request: Request,
    namespace: Namespace,
    name: Name,
    decision: Annotated[str, Form(max_length=16)],
    reason: Reason,
    csrf_token: CsrfField = None,
) -> Response:
    who = await posted_by(request, csrf_token)
    await require(who, VERB_RELEASE, namespace, name)
    if decision not in ("Release", "Block"):
        raise ConsoleRefused(422, "refused.decision", choices="Release, Block")
    if not reason.strip():
        raise ConsoleRefused(422, "refused.reason")
    chosen = ReleaseDecision(
        decision="Release" if decision == "Release" else "Block", reason=reason.strip()
    )
    try:
        await stewards.decide_result(namespace, name, chosen, who.state, who.identity)
    except StationApiError as error:
        return await _result_page(request, who, namespace, name, failure=error.message)
    return await _result_page(request, who, namespace, name, notice="recorded")


# --- trains and audit -------------------------------------------------------------------


@router.get("/trains")
async def trains(request: Request) -> Response:
    who = await steward(request)
    return page(request, who, "trains.html", trains=await listed_trains(who, VERB_GET))


@router.get("/trains/{namespace}/{name}")
async def train_timeline(request: Request, namespace: Namespace, name: Name) -> Response:
    who = await steward(request)
    await require(who, VERB_RELEASE, namespace, name)
    async with steward_kube(who.state.settings, who.session.token) as kube:
        train = await kube_call(kube.train(namespace, name))
    row = train_row(train)
    story = await run_in_threadpool(who.state.chain.story, row.uid) if row.uid else []
    return page(request, who, "timeline.html", train=row, records=[r.canonical() for r in story])


@router.get("/audit")
async def audit(request: Request) -> Response:
    who = await steward(request)
    if not any([await may(who, VERB_RELEASE, ns, "") for ns in who.console.namespaces]):
        raise ConsoleRefused(403, "refused.chain", user=who.identity.username)
    report = await run_in_threadpool(who.state.chain.verify)
    return page(
        request,
        who,
        "audit.html",
        ok=report.ok,
        problems=[str(p) for p in report.problems][:100],
        records=report.records,
    )
