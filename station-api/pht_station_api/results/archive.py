"""Result uploads, the gate's decision on the final attempt, steward decisions and retention.

A running train may upload several times (a retried pod, a checkpointed step); the archive numbers
attempts in upload order, keeps only the latest attempt's bytes (the gate never looks at any
other) and refuses uploads past ``MAX_UPLOADS`` (``409 TooManyUploads``), so a running train can
neither fill the disk nor grow the provenance chain without bound. Nothing is decided until the
operator reports the run's completion: then the gate runs on the *last* attempt, with the
admitting policy's disclosure rules and the cohort the audited queries saw; the differencing
ledger then compares the patient set the train's queries bound with every earlier released or
held result of the station (see :mod:`pht_station_api.disclosure.ledgers`). Released and held
results keep their outgoing manifest; blocked ones keep nothing that could leave. Every upload
and every decision (the gate's and a steward's) is a provenance record naming its rule.

A result that passes every check is released only when the admitting policy holds a review of
the train's image digest that counts at the moment of the decision; any other is held for a
steward with the gate's findings (see :mod:`pht_station_api.disclosure.trust`). The release
record of such an automatic release names the review: reviewer, date, expiry, link and the
hash of the notes.
"""

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from pht_contract.aggregates import AggregateResult, OutgoingResult
from pht_contract.hashing import sha256_hex
from pht_contract.manifests import ResultManifest
from pht_contract.policies import ImageReview
from pht_contract.signedreviews import SignedReviewCheck
from pht_contract.times import researcher_iso_of, utc_iso, utc_now
from pht_contract.trains import Progress, ReleaseState, ResultSummary
from pht_contract.wire import (
    DetailValue,
    ProvenanceKind,
    ReleaseDecision,
    RunCompletion,
    TrainState,
    UploadReceipt,
)
from pht_station_api.disclosure import DifferencingLedger, GateDecision, Outcome
from pht_station_api.disclosure.gate import (
    aggregates_shape,
    evaluate_bytes,
    hides_something,
    station_computed,
)
from pht_station_api.disclosure.ledgers import (
    LINKED,
    LedgerEntry,
    hold_for_differencing,
    hold_linked,
    just_below,
)
from pht_station_api.disclosure.trust import review_record, still_trusted, trusted_review
from pht_station_api.results.errors import (
    InvalidResult,
    NotHeld,
    NotReleased,
    OwnResult,
    OwnResultView,
    ResultClosed,
    ResultTooLarge,
    TooManyUploads,
    UnknownResult,
)
from pht_station_api.results.files import read_json, train_folder, write_atomic, write_json
from pht_station_api.results.records import Attempt, ResultRecord, TrainContext
from pht_station_api.settings import Settings

log = logging.getLogger(__name__)

GATE_ACTOR = "disclosure-gate"
STEWARD_BLOCKED = "StewardBlocked"
OUTGOING = "outgoing.json"
STATE = "state.json"
#: One file per ledger entry; ``_`` cannot begin a result folder's name (see ``train_folder``).
LEDGER_DIR = "_ledger"
#: Cohort sizes per ``organisation/requester``, as kept before patient sets; read, never written.
LEGACY_LEDGER = "ledger.json"
PURGE_INTERVAL_SECONDS = 600.0
#: Uploads one train may make: the contract allows at most 5 retries, so 6 pod attempts, each
#: may upload once; a train that checkpoints more often should upload only its final result.
MAX_UPLOADS = 6


class Chain(Protocol):
    """The part of :class:`~pht_station_api.provenance.ProvenanceChain` the archive uses."""

    def record(
        self,
        kind: ProvenanceKind,
        *,
        train_uid: str | None,
        actor: str,
        details: dict[str, DetailValue],
        event_id: str | None = None,
        at: str | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class Completion:
    record: ResultRecord
    #: The gate's decision; ``None`` for NoOutput and for a repeated completion.
    decision: GateDecision | None
    #: False when the completion had already been reported (nothing new was decided).
    decided_now: bool


@dataclass(frozen=True)
class _Gated:
    """The gate's decision on one attempt, reached outside the archive's lock."""

    attempt: int
    decision: GateDecision
    review: ImageReview | SignedReviewCheck | None


class ResultArchive:
    """Thread-safe; one per station API process (the only writer of its directory)."""

    def __init__(self, directory: Path) -> None:
        self._root = directory
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._last_purge = float("-inf")
        self._records: dict[str, ResultRecord] = {}
        for state_file in sorted(self._root.glob(f"*/{STATE}")):
            record = ResultRecord.from_json(read_json(state_file))
            self._records[record.uid] = record
        entries = [
            LedgerEntry.from_json(read_json(path))
            for path in sorted((self._root / LEDGER_DIR).glob("*.json"))
        ]
        legacy = self._root / LEGACY_LEDGER
        if legacy.exists():
            entries += [LedgerEntry.legacy(k, v) for k, v in read_json(legacy).items()]
        self._ledger = DifferencingLedger(entries)

    @classmethod
    def open(cls, settings: Settings) -> "ResultArchive":
        return cls(settings.results_path)

    # --- persistence -----------------------------------------------------------------
    def _folder(self, uid: str) -> Path:
        return train_folder(self._root, uid)

    def _attempt_file(self, uid: str, attempt: int) -> Path:
        return self._folder(uid) / f"attempt-{attempt}.json"

    def _save(self, record: ResultRecord) -> None:
        self._records[record.uid] = record
        write_json(self._folder(record.uid) / STATE, record.to_json())

    def _ledger_file(self, uid: str) -> Path:
        return train_folder(self._root / LEDGER_DIR, uid).with_suffix(".json")

    def _get(self, uid: str) -> ResultRecord:
        record = self._records.get(uid)
        if record is None:
            raise UnknownResult(f"no result is known for train {uid}")
        return record

    # --- the running train -----------------------------------------------------------
    def upload(self, train: TrainContext, raw: bytes, chain: Chain) -> UploadReceipt:
        """Keep one attempt; refused when too large, not a manifest, or after completion."""
        limit = train.disclosure.max_result_bytes
        if len(raw) > limit:
            raise ResultTooLarge(f"the result exceeds the policy's {limit} bytes")
        try:
            ResultManifest.model_validate_json(raw)
        except (ValidationError, ValueError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else []
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in errors})[:10]
            raise InvalidResult(
                "the upload is not a valid result manifest", fields=fields
            ) from None
        digest = "sha256:" + sha256_hex(raw)
        with self._lock:
            record = self._records.get(train.uid) or ResultRecord.new(train, utc_iso())
            if record.completed:
                raise ResultClosed(f"train {train.uid} has completed; no more uploads")
            if len(record.attempts) >= MAX_UPLOADS:
                raise TooManyUploads(
                    f"train {train.uid} has uploaded {MAX_UPLOADS} times, the most allowed"
                )
            attempt = Attempt(len(record.attempts) + 1, digest, len(raw), utc_iso())
            write_atomic(self._attempt_file(train.uid, attempt.attempt), raw)
            record.attempts.append(attempt)
            self._save(record)
            # Only the last attempt is ever gated: earlier bytes would only take up disk.
            for earlier in record.attempts[:-1]:
                self._attempt_file(train.uid, earlier.attempt).unlink(missing_ok=True)
        chain.record(
            ProvenanceKind.UPLOAD,
            train_uid=train.uid,
            actor="train",
            details={"attempt": attempt.attempt, "digest": digest, "sizeBytes": len(raw)},
        )
        return UploadReceipt(
            uid=train.uid, attempt=attempt.attempt, digest=digest, size_bytes=len(raw)
        )

    # --- the operator ----------------------------------------------------------------
    def complete(
        self,
        train: TrainContext,
        completion: RunCompletion,
        audited_cohort: int | None,
        chain: Chain,
        aggregates: Sequence[AggregateResult] = (),
    ) -> "Completion":
        """Decide once (idempotent): NoOutput, or the gate's decision on the final attempt.

        ``aggregates`` are those the station computed itself for the run: they leave with the
        result. Without an upload they are the result, released after the ledger's check
        whatever the image (held only when the policy holds every result).

        The gate reads the final attempt outside the archive's lock (re-encoding plots takes
        seconds), so other trains' uploads and the console are not held up; its decision is
        applied under the lock only while that attempt is still the final one.
        """
        gated = None
        if completion.job_succeeded:
            gated = self._gate_final_attempt(train.uid, audited_cohort, completion)
        with self._lock:
            record = self._records.get(train.uid) or ResultRecord.new(train, utc_iso())
            if record.completed:
                return Completion(record, None, decided_now=False)
            record.completed = True
            record.completion_reason = completion.reason
            decision: GateDecision | None = None
            review: ImageReview | SignedReviewCheck | None = None
            if not completion.job_succeeded or not (record.attempts or aggregates):
                record.release = ReleaseState.NO_OUTPUT
                record.decided_at = utc_iso()
                record.decided_by = GATE_ACTOR
            elif not record.attempts:
                decision = station_computed(record.policy(), aggregates)
                decision = self._check_ledger(record, train, decision, audited_cohort)
                decision = self._check_linked(record, train, decision, aggregates)
                self._apply(record, decision, aggregates)
                self._enter_ledger(record, train, decision, aggregates)
            else:
                final = record.attempts[-1]
                if gated is None or gated.attempt != final.attempt:
                    # An upload came in meanwhile: decide on the final attempt here instead.
                    gated = self._gate(record, final.attempt, audited_cohort, completion)
                decision, review = gated.decision, gated.review
                decision = self._check_ledger(record, train, decision, audited_cohort)
                self._apply(record, decision, aggregates)
                self._enter_ledger(record, train, decision, aggregates)
            self._save(record)
        details: dict[str, DetailValue] = {
            "decision": record.release.value,
            "rule": record.rule,
            "jobSucceeded": completion.job_succeeded,
            "runReason": completion.reason,
            "attempts": len(record.attempts),
        }
        if decision is not None:
            if record.attempts:
                details["attempt"] = record.attempts[-1].attempt
            details["suppressedCells"] = decision.suppressed_cells
            details["findings"] = "; ".join(f.describe() for f in decision.findings)[:1024]
            details["auditedCohort"] = audited_cohort
            if aggregates:
                details["aggregates"] = "; ".join(
                    f"{a.name}: {a.status.value}" + (f" ({a.rule})" if a.rule else "")
                    for a in aggregates
                )[:1024]
            if review is not None and record.attempts and record.release == ReleaseState.RELEASED:
                # An automatic release names the review that let it skip a steward.
                details.update(review_record(review))
        chain.record(ProvenanceKind.RELEASE, train_uid=train.uid, actor=GATE_ACTOR, details=details)
        return Completion(record, decision, decided_now=True)

    def _gate_final_attempt(
        self, uid: str, audited_cohort: int | None, completion: RunCompletion
    ) -> _Gated | None:
        """The gate's decision on the final attempt of an undecided result, or ``None``."""
        with self._lock:
            record = self._records.get(uid)
            if record is None or record.completed or not record.attempts:
                return None
            snapshot = ResultRecord.from_json(record.to_json())
        try:
            return self._gate(snapshot, snapshot.attempts[-1].attempt, audited_cohort, completion)
        except FileNotFoundError:  # a later upload replaced it: decided under the lock
            return None

    def _gate(
        self,
        record: ResultRecord,
        attempt: int,
        audited_cohort: int | None,
        completion: RunCompletion,
    ) -> _Gated:
        raw = self._attempt_file(record.uid, attempt).read_bytes()
        moment = utc_now()
        # Only an image with a review that counts now, under the policy the run was
        # registered with and the policy as it is now, may skip a steward; every other
        # result is held with the gate's findings.
        policy = still_trusted(record.policy(), completion.trust_now)
        review = trusted_review(policy, record.image, record.signed_review, moment)
        decision = evaluate_bytes(
            raw,
            policy,
            audited_cohort=audited_cohort,
            image=record.image,
            at=moment,
            signed_review=record.signed_review,
        )
        return _Gated(attempt, decision, review)

    def _apply(
        self,
        record: ResultRecord,
        decision: GateDecision,
        aggregates: Sequence[AggregateResult] = (),
    ) -> None:
        now = utc_iso()
        record.rule = decision.rule.value if decision.rule else None
        record.findings = [f.describe() for f in decision.findings]
        record.cohorts = list(decision.cohorts)
        record.decided_at, record.decided_by = now, GATE_ACTOR
        if decision.outcome == Outcome.BLOCKED:
            record.release = ReleaseState.BLOCKED
            return
        leaving = OutgoingResult.model_validate(
            {**decision.released.model_dump(), "aggregates": list(aggregates)}
        )
        outgoing = leaving.model_dump_json(by_alias=True, exclude_none=False).encode()
        write_atomic(self._folder(record.uid) / OUTGOING, outgoing)
        if decision.outcome == Outcome.HELD:
            record.release = ReleaseState.HELD
            return
        self._release(record, outgoing, now)

    def _release(self, record: ResultRecord, outgoing: bytes, now: str) -> None:
        record.release = ReleaseState.RELEASED
        record.released_digest = "sha256:" + hashlib.sha256(outgoing).hexdigest()
        record.released_size = len(outgoing)
        record.released_at = now

    # --- the differencing ledger -----------------------------------------------------
    def _check_ledger(
        self,
        record: ResultRecord,
        train: TrainContext,
        decision: GateDecision,
        audited_cohort: int | None,
    ) -> GateDecision:
        """Hold when the patient set, or a declared cohort over (nearly) the same patients, is
        within the policy's threshold of an earlier result's, or when a declared cohort is just
        below the audited one."""
        threshold = record.policy().differencing_threshold
        overlap = self._ledger.closest(
            record.uid, record.ledger_scopes, train.patients, threshold, decision.cohorts
        )
        below = bool(train.patients) and just_below(decision.cohorts, audited_cohort, threshold)
        return hold_for_differencing(decision, overlap, below_audited=below)

    def _check_linked(
        self,
        record: ResultRecord,
        train: TrainContext,
        decision: GateDecision,
        aggregates: Sequence[AggregateResult],
    ) -> GateDecision:
        """Hold station-computed tables that, beside an earlier result over the same patients,
        could give back what one of the two suppressed."""
        earlier = self._ledger.linked(
            record.uid, train.patients, hides_something(aggregates), aggregates_shape(aggregates)
        )
        if earlier is None:
            return decision
        return hold_linked(decision, f"{LINKED} near {earlier.train}")

    def _enter_ledger(
        self,
        record: ResultRecord,
        train: TrainContext,
        decision: GateDecision,
        aggregates: Sequence[AggregateResult] = (),
    ) -> None:
        """Released and held results are what readers have or may get; blocked ones are not."""
        if record.release not in (ReleaseState.RELEASED, ReleaseState.HELD):
            return
        if not train.patients and not record.cohorts:
            return
        entry = LedgerEntry(
            uid=record.uid,
            train=f"{record.namespace}/{record.name}",
            scopes=frozenset(record.ledger_scopes),
            patients=train.patients,
            cohorts=frozenset(record.cohorts),
            hides=decision.suppressed_cells > 0 or hides_something(aggregates),
            shape=aggregates_shape(aggregates) if not record.attempts else None,
        )
        write_json(self._ledger_file(record.uid), entry.to_json())
        self._ledger.record(entry)

    def train_state(self, uid: str, registered: bool, progress: Progress | None) -> TrainState:
        """What the operator mirrors: the rule, but a result summary only after release (its
        time in whole minutes, as researchers see it; the record keeps the second)."""
        record = self._records.get(uid)
        if record is None:
            return TrainState(uid=uid, registered=registered, progress=progress)
        summary = None
        if record.release == ReleaseState.RELEASED and record.released_digest:
            summary = ResultSummary(
                digest=record.released_digest,
                size_bytes=record.released_size or 0,
                released_at=researcher_iso_of(record.released_at),
            )
        return TrainState(
            uid=uid,
            registered=registered,
            progress=progress,
            uploads=len(record.attempts),
            release=record.release if record.completed else ReleaseState.PENDING,
            rule=record.rule,
            result=summary,
        )

    # --- stewards and requesters -------------------------------------------------------
    def completed(self, uid: str) -> bool:
        """Whether the run's completion was already reported (and so decided)."""
        with self._lock:
            record = self._records.get(uid)
            return record is not None and record.completed

    def held(self) -> list[ResultRecord]:
        with self._lock:
            return sorted(
                (r for r in self._records.values() if r.release == ReleaseState.HELD),
                key=lambda r: r.decided_at or "",
            )

    def get(self, uid: str) -> ResultRecord:
        with self._lock:
            return self._get(uid)

    def records(self) -> list[ResultRecord]:
        """Every result on record (decisions and rules; never content)."""
        with self._lock:
            return list(self._records.values())

    def find(self, namespace: str, name: str) -> ResultRecord:
        """The latest train of that name (a name can be reused by a new Train, a new uid)."""
        with self._lock:
            matches = [
                r for r in self._records.values() if (r.namespace, r.name) == (namespace, name)
            ]
        if not matches:
            raise UnknownResult(f"no result is known for train {namespace}/{name}")
        return max(matches, key=lambda r: r.created_at)

    def outgoing_for(self, record: ResultRecord, viewer: str) -> OutgoingResult | None:
        """The result as it would leave, for a steward to review: refused to the Train's own
        requester until it is released (they would otherwise see what is held from them)."""
        if record.requested_by == viewer and record.release != ReleaseState.RELEASED:
            raise OwnResultView(
                f"{viewer} requested train {record.namespace}/{record.name}: another steward "
                f"must release its result before {viewer} sees it"
            )
        return self.outgoing(record.uid)

    def outgoing(self, uid: str) -> OutgoingResult | None:
        """The result as it would leave (stewards) — ``None`` if blocked, absent or purged."""
        path = self._folder(uid) / OUTGOING
        if not path.exists():
            return None
        return OutgoingResult.model_validate_json(path.read_bytes())

    def released(self, uid: str) -> OutgoingResult:
        record = self.get(uid)
        manifest = self.outgoing(uid) if record.release == ReleaseState.RELEASED else None
        if manifest is None:
            raise NotReleased(f"train {record.namespace}/{record.name} has no released result")
        return manifest

    def decide(self, uid: str, decision: ReleaseDecision, actor: str, chain: Chain) -> ResultRecord:
        """A steward releases or blocks a held result; the holding rule stays on record."""
        with self._lock:
            record = self._get(uid)
            if record.release != ReleaseState.HELD:
                raise NotHeld(f"the result of train {uid} is {record.release.value}, not Held")
            if decision.decision == "Release" and record.requested_by == actor:
                raise OwnResult(
                    f"{actor} requested train {record.namespace}/{record.name}: another "
                    "steward must release its result"
                )
            held_by = record.rule
            now = utc_iso()
            record.decided_at, record.decided_by = now, actor
            if decision.decision == "Release":
                self._release(record, (self._folder(uid) / OUTGOING).read_bytes(), now)
            else:
                record.release = ReleaseState.BLOCKED
                record.rule = STEWARD_BLOCKED
                (self._folder(uid) / OUTGOING).unlink(missing_ok=True)
                # A blocked result reaches no reader: it no longer holds others back.
                self._ledger.forget(uid)
                self._ledger_file(uid).unlink(missing_ok=True)
            self._save(record)
        chain.record(
            ProvenanceKind.RELEASE,
            train_uid=uid,
            actor=actor,
            details={
                "decision": record.release.value,
                "rule": record.rule,
                "heldBy": held_by,
                "steward": True,
                # The steward's words stay in the result archive; the chain binds them by hash.
                "reasonSha256": sha256_hex(decision.reason.encode()),
            },
        )
        return record

    # --- retention -------------------------------------------------------------------
    def purge_if_due(self, interval_seconds: float = PURGE_INTERVAL_SECONDS) -> list[str]:
        """Purge at most every ``interval_seconds``; called from handlers the operator polls."""
        if time.monotonic() - self._last_purge < interval_seconds:
            return []
        self._last_purge = time.monotonic()
        return self.purge_expired()

    def purge_expired(self, now: datetime | None = None) -> list[str]:
        """Delete result content older than the policy's ``resultRetentionDays``.

        The record (decision, rule, digests) stays, so the Train's status and the audit still
        make sense; attempts and the outgoing manifest are removed.
        """
        moment = now or utc_now()
        purged: list[str] = []
        with self._lock:
            for record in list(self._records.values()):
                if record.purged_at is not None:
                    continue
                started = datetime.fromisoformat(
                    (record.decided_at or record.created_at).replace("Z", "+00:00")
                )
                if moment - started < timedelta(days=record.retention_days):
                    continue
                folder = self._folder(record.uid)
                for path in folder.iterdir():
                    if path.name != STATE:
                        if path.is_dir():
                            shutil.rmtree(path)
                        else:
                            path.unlink()
                record.purged_at = utc_iso(moment)
                self._save(record)
                purged.append(record.uid)
        if purged:
            log.info("purged the content of %d result(s) past retention", len(purged))
        return purged
