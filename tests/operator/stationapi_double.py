"""A TEST DOUBLE of the station API's internal listener (operator side of the wire contract).

Not the station API: it stores registrations and provenance in memory and plays the result
side of a run by a per-Train plan (how many uploads, which release decision). It checks what
the real one must check — the operator's bearer credential, the request bodies against the
contract models, idempotency of registration (by uid) and provenance (by event_id, whether
posted or carried by a registration).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp.web

from pht_contract import wire
from pht_contract.sparql import query_hash
from pht_contract.trains import Progress, ProgressStage, ReleaseState, ResultSummary

OPERATOR_TOKEN = "operator-test-credential"


@dataclass
class Plan:
    uploads: int = 1
    release: ReleaseState = ReleaseState.RELEASED
    rule: str | None = None


@dataclass
class StationApiDouble:
    plan_for: Callable[[wire.TrainRegistration], Plan] = lambda registration: Plan()
    registrations: dict[str, wire.TrainRegistration] = field(default_factory=dict)
    registration_puts: int = 0
    deregistered: list[str] = field(default_factory=list)
    completions: dict[str, wire.RunCompletion] = field(default_factory=dict)
    #: Every operator record by event id, posted on its own or carried by a registration.
    provenance: dict[str, wire.ProvenanceEvent] = field(default_factory=dict)
    #: The records the operator posted on their own (``POST /internal/v1/provenance``).
    provenance_posts: list[str] = field(default_factory=list)
    states: dict[str, wire.TrainState] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    #: How often each Train's state (progress, release) was read.
    state_reads: collections.Counter[str] = field(default_factory=collections.Counter)
    fail_next: int = 0
    #: While set, registrations answer 503 (the station API is down for runs).
    refuse_registrations: bool = False
    #: While set, the completion call answers 204 without the Train's state.
    completion_without_state: bool = False

    def _authorised(self, request: aiohttp.web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {OPERATOR_TOKEN}"

    def _guard(self, request: aiohttp.web.Request) -> aiohttp.web.Response | None:
        if not self._authorised(request):
            return aiohttp.web.json_response({"detail": "unauthorised"}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return aiohttp.web.json_response({"detail": "injected"}, status=503)
        return None

    async def put_registration(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        if self.refuse_registrations:
            return aiohttp.web.json_response({"detail": "unavailable"}, status=503)
        registration = wire.TrainRegistration.model_validate(await request.json())
        uid = request.match_info["uid"]
        assert registration.uid == uid
        # As the real station does: a stored query text must be the one its hash approves.
        for query in registration.approved_queries:
            if query.hash != query_hash(query.sparql) or (
                query.hash not in registration.approved_query_hashes
            ):
                return aiohttp.web.json_response({"reason": "InvalidRegistration"}, status=422)
        self.registration_puts += 1
        for carried in registration.provenance:  # written first, as the real one does
            assert carried.train_uid == uid
            self.provenance.setdefault(carried.event_id, carried)
        created = uid not in self.registrations
        self.registrations[uid] = registration
        self.plans.setdefault(uid, self.plan_for(registration))
        self.states.setdefault(uid, wire.TrainState(uid=uid, registered=True))
        receipt = wire.RegistrationReceipt(
            uid=uid, created=created, registered_at=datetime.datetime.now(datetime.UTC).isoformat()
        )
        return aiohttp.web.json_response(receipt.wire(), status=201 if created else 200)

    async def delete_registration(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        uid = request.match_info["uid"]
        if uid not in self.registrations:
            return aiohttp.web.json_response({"detail": "not registered"}, status=404)
        self.registrations.pop(uid)
        self.deregistered.append(uid)
        return aiohttp.web.Response(status=204)

    async def get_state(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        uid = request.match_info["uid"]
        self.state_reads[uid] += 1
        state = self.states.get(uid)
        if state is None:
            return aiohttp.web.json_response({"detail": "unknown"}, status=404)
        return aiohttp.web.json_response(state.wire())

    async def put_completion(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        uid = request.match_info["uid"]
        completion = wire.RunCompletion.model_validate(await request.json())
        self.completions[uid] = completion
        plan = self.plans.get(uid, Plan())
        state = self.states.setdefault(uid, wire.TrainState(uid=uid, registered=True))
        if completion.job_succeeded and state.release == ReleaseState.PENDING:
            self._settle(uid, plan)
        if self.completion_without_state:
            return aiohttp.web.Response(status=204)
        # As the real station answers: the Train's state once the gate has decided.
        return aiohttp.web.json_response(self.states[uid].wire())

    def _settle(self, uid: str, plan: Plan) -> None:
        release = plan.release if plan.uploads else ReleaseState.NO_OUTPUT
        result = None
        if release == ReleaseState.RELEASED:
            result = ResultSummary(digest="sha256:" + "a" * 64, size_bytes=123)
        self.states[uid] = wire.TrainState(
            uid=uid,
            registered=True,
            uploads=plan.uploads,
            release=release,
            rule=plan.rule,
            result=result,
            progress=Progress(percent=100, stage=ProgressStage.DONE),
        )

    def report_progress(self, uid: str, percent: int, stage: ProgressStage) -> None:
        state = self.states[uid]
        self.states[uid] = state.model_copy(
            update={"progress": Progress(percent=percent, stage=stage)}
        )

    def decide(self, uid: str, release: ReleaseState, rule: str | None = None) -> None:
        """A steward's decision on a held result."""
        state = self.states[uid]
        result = (
            ResultSummary(digest="sha256:" + "b" * 64, size_bytes=9)
            if release == ReleaseState.RELEASED
            else None
        )
        self.states[uid] = state.model_copy(
            update={"release": release, "rule": rule, "result": result}
        )

    async def post_provenance(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        event = wire.ProvenanceEvent.model_validate(await request.json())
        self.provenance_posts.append(event.event_id)
        self.provenance.setdefault(event.event_id, event)
        return aiohttp.web.Response(status=202)

    def app(self) -> aiohttp.web.Application:
        app = aiohttp.web.Application()
        reg = wire.TRAIN_REGISTRATION_PATH.replace("{uid}", "{uid}")
        app.add_routes(
            [
                aiohttp.web.put(reg, self.put_registration),
                aiohttp.web.delete(reg, self.delete_registration),
                aiohttp.web.get(wire.TRAIN_STATE_PATH, self.get_state),
                aiohttp.web.put(wire.TRAIN_COMPLETION_PATH, self.put_completion),
                aiohttp.web.post(wire.PROVENANCE_PATH, self.post_provenance),
            ]
        )
        return app

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        runner = aiohttp.web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
