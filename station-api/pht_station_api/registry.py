"""Registered trains: who may query, report progress and upload, and what they have seen.

The operator registers a train (idempotent ``PUT`` keyed by uid) with the *hash* of the token it
minted; a running train presents the token and is found by that hash only, so the station API
never holds a usable token. Deregistration revokes at once and is final: a revoked uid cannot be
registered again. Records survive a restart (a JSON file written atomically), because losing a
registration would strand a running train, and losing ``max_distinct_patients`` would let the
disclosure gate believe an algorithm's word about its cohort, and losing a train's patient set
would let the differencing ledger compare against nothing. Those are written at once;
counters and progress (frequent, and harmless to lose for a second) at most once per
:data:`LAZY_SAVE_SECONDS`, so a chatty train cannot turn every request into a file write.

Progress is a channel out of a run that holds patient data (the requester reads it in the
Train's status), so what a run reports is only *offered*: it becomes visible at the next fixed
tick of the wall clock (:class:`ProgressOffer`), as a stage and a percentage quantised to
:data:`PROGRESS_PERCENT_STEP`, stamped with the tick itself. When within a tick a report came
carries nothing; what is left is one forward-only path of stages, each step placed on a tick.
"""

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pht_contract.times import utc_iso, utc_now
from pht_contract.trains import Progress, ProgressStage
from pht_contract.wire import TrainRegistration
from pht_station_api.errors import Conflict
from pht_station_api.patientsets import PatientFingerprints, load_or_create_key

LAZY_SAVE_SECONDS = 1.0
#: The fingerprint key sits next to the registrations file, in the station's state directory.
PATIENT_KEY_FILE = "patient-fingerprint.key"
#: Visible progress percentages are multiples of this (0, 25, 50, 75, 100).
PROGRESS_PERCENT_STEP = 25
#: Visible progress changes only at multiples of this many seconds of the wall clock.
PROGRESS_TICK_SECONDS = 30
_STAGE_ORDER = {stage: index for index, stage in enumerate(ProgressStage)}


def parse_timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ProgressOffer:
    """The newest forward report of a run, waiting for its tick (epoch seconds, whole)."""

    percent: int
    stage: ProgressStage
    visible_at: int

    def as_progress(self) -> Progress:
        moment = datetime.fromtimestamp(self.visible_at, UTC)
        return Progress(percent=self.percent, stage=self.stage, updated_at=utc_iso(moment))

    def to_json(self) -> dict[str, Any]:
        return {"percent": self.percent, "stage": self.stage.value, "visibleAt": self.visible_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProgressOffer":
        return cls(
            percent=int(data["percent"]),
            stage=ProgressStage(data["stage"]),
            visible_at=int(data["visibleAt"]),
        )


def _ahead(percent: int, stage: ProgressStage, of: Progress | ProgressOffer | None) -> bool:
    """Forward only: neither percent nor stage goes back, and at least one moves on."""
    if of is None:
        return True
    if percent < of.percent or _STAGE_ORDER[stage] < _STAGE_ORDER[of.stage]:
        return False
    return (percent, stage) != (of.percent, of.stage)


def _current(registration: dict[str, Any]) -> dict[str, Any]:
    """A saved registration as this version reads it: a policy saved with the replaced
    ``autoReleaseImageDigests`` (bare digests, no reviewer) loads without it, trusting nothing,
    so a station with such runs saved still starts and holds their results for a steward."""
    policy = registration.get("policy")
    if not isinstance(policy, dict):
        return registration
    disclosure = policy.get("disclosure")
    if not isinstance(disclosure, dict) or "autoReleaseImageDigests" not in disclosure:
        return registration
    disclosure = {k: v for k, v in disclosure.items() if k != "autoReleaseImageDigests"}
    return {**registration, "policy": {**policy, "disclosure": disclosure}}


@dataclass
class RegisteredTrain:
    registration: TrainRegistration
    registered_at: str
    revoked: bool = False
    revoked_at: str | None = None
    #: Progress made visible at a past tick; :attr:`progress` adds an offer whose tick came.
    shown_progress: Progress | None = None
    progress_offer: ProgressOffer | None = None
    #: Most distinct ``ncit:C16960`` patients any audited query result of this train bound.
    max_distinct_patients: int = 0
    queries_run: int = 0
    #: Keyed fingerprints of every patient any answered query of this train bound (the union):
    #: what the differencing ledger compares between releases. Never raw IRIs.
    patient_set: set[str] = field(default_factory=set)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    @property
    def progress(self) -> Progress | None:
        """What the requester and the operator may see now (never an offer before its tick)."""
        offer = self.progress_offer
        if offer is not None and self.clock() >= offer.visible_at:
            return offer.as_progress()
        return self.shown_progress

    @property
    def uid(self) -> str:
        return self.registration.uid

    def expired(self, now: datetime | None = None) -> bool:
        return parse_timestamp(self.registration.expires_at) <= (now or utc_now())

    def active(self, now: datetime | None = None) -> bool:
        return not self.revoked and not self.expired(now)

    def to_json(self) -> dict[str, Any]:
        return {
            "registration": self.registration.wire(),
            "registeredAt": self.registered_at,
            "revoked": self.revoked,
            "revokedAt": self.revoked_at,
            "progress": self.shown_progress.wire() if self.shown_progress else None,
            "progressOffer": self.progress_offer.to_json() if self.progress_offer else None,
            "maxDistinctPatients": self.max_distinct_patients,
            "queriesRun": self.queries_run,
            "patientSet": sorted(self.patient_set),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RegisteredTrain":
        progress = data.get("progress")
        offer = data.get("progressOffer")
        return cls(
            registration=TrainRegistration.model_validate(_current(data["registration"])),
            registered_at=str(data["registeredAt"]),
            revoked=bool(data.get("revoked", False)),
            revoked_at=data.get("revokedAt"),
            shown_progress=Progress.model_validate(progress) if progress else None,
            progress_offer=ProgressOffer.from_json(offer) if offer else None,
            max_distinct_patients=int(data.get("maxDistinctPatients", 0)),
            queries_run=int(data.get("queriesRun", 0)),
            patient_set={str(f) for f in data.get("patientSet") or ()},
        )


class TrainRegistry:
    """All registrations of this station, indexed by uid and by token hash."""

    def __init__(
        self,
        path: Path | None,
        progress_tick_seconds: int = PROGRESS_TICK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if progress_tick_seconds < 1:
            raise ValueError("the progress tick is at least one second")
        self._tick = progress_tick_seconds
        self._clock = clock
        self._path = path
        self._fingerprints = PatientFingerprints(
            load_or_create_key(path.with_name(PATIENT_KEY_FILE) if path is not None else None)
        )
        self._lock = threading.Lock()
        self._trains: dict[str, RegisteredTrain] = {}
        self._by_token: dict[str, str] = {}
        self._dirty = False
        self._saved_at = float("-inf")
        if path is not None and path.exists():
            for item in json.loads(path.read_text(encoding="utf-8")).get("trains", []):
                train = RegisteredTrain.from_json(item)
                train.clock = clock
                self._trains[train.uid] = train
                if not train.revoked:
                    self._by_token[train.registration.token_hash] = train.uid

    def _save_lazily(self) -> None:
        if time.monotonic() - self._saved_at >= LAZY_SAVE_SECONDS:
            self._save()
        else:
            self._dirty = True

    def flush(self) -> None:
        """Write what :meth:`_save_lazily` postponed (called when the API stops)."""
        with self._lock:
            if self._dirty:
                self._save(durable=True)

    def _save(self, durable: bool = False) -> None:
        self._dirty = False
        self._saved_at = time.monotonic()
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        payload = json.dumps({"trains": [t.to_json() for t in self._trains.values()]})
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self._path)

    def register(self, registration: TrainRegistration) -> tuple[RegisteredTrain, bool]:
        """Create or update (same uid) a registration; ``created`` tells which."""
        with self._lock:
            existing = self._trains.get(registration.uid)
            if existing is not None and existing.revoked:
                raise Conflict(f"train {registration.uid} was deregistered; its token is revoked")
            other = self._by_token.get(registration.token_hash)
            if other is not None and other != registration.uid:
                raise Conflict("this token hash is registered to another train")
            if existing is None:
                train = RegisteredTrain(
                    registration=registration, registered_at=utc_iso(), clock=self._clock
                )
                created = True
            else:
                self._by_token.pop(existing.registration.token_hash, None)
                existing.registration = registration
                train, created = existing, False
            self._trains[train.uid] = train
            self._by_token[registration.token_hash] = train.uid
            self._save(durable=True)
            return train, created

    def deregister(self, uid: str) -> RegisteredTrain | None:
        with self._lock:
            train = self._trains.get(uid)
            if train is None:
                return None
            if not train.revoked:
                train.revoked = True
                train.revoked_at = utc_iso()
                self._by_token.pop(train.registration.token_hash, None)
                self._save(durable=True)
            return train

    def get(self, uid: str) -> RegisteredTrain | None:
        return self._trains.get(uid)

    def by_token_hash(self, token_hash: str) -> RegisteredTrain | None:
        uid = self._by_token.get(token_hash)
        return self._trains.get(uid) if uid is not None else None

    def __iter__(self) -> Iterator[RegisteredTrain]:
        return iter(list(self._trains.values()))

    def record_query(
        self, uid: str, distinct_patients: int, patients: Iterable[bytes] = ()
    ) -> None:
        """Count an answered query; ``patients`` are the patient IRIs its answer bound.

        The IRIs are fingerprinted at once and dropped; a grown patient set is written at once,
        because the ledger's decision at completion must not rest on a set lost in a restart.
        """
        fingerprints = self._fingerprints.of(patients)
        with self._lock:
            train = self._trains.get(uid)
            if train is None:
                return
            train.queries_run += 1
            grown = not fingerprints <= train.patient_set
            if grown:
                # A new set, never an in-place update: the completion handler copies the set
                # from another thread without this lock, and must not see it change under it.
                train.patient_set = train.patient_set | fingerprints
            if distinct_patients > train.max_distinct_patients or grown:
                train.max_distinct_patients = max(distinct_patients, train.max_distinct_patients)
                self._save()
            else:
                self._save_lazily()

    def forget_patients(self, uid: str) -> None:
        """Drop a train's patient set once its result is decided.

        The result archive's ledger has taken what it needs (released and held results); the
        rest need no fingerprints at all, and this file stays small however many trains ran.
        """
        with self._lock:
            train = self._trains.get(uid)
            if train is None or not train.patient_set:
                return
            train.patient_set = set()
            self._save()

    def offer_progress(self, uid: str, percent: int, stage: ProgressStage) -> bool:
        """Offer a run's report for the next tick; ``True`` when it was kept as the offer.

        The percent is rounded down to a multiple of :data:`PROGRESS_PERCENT_STEP`. A report
        that does not move forward of what is shown or already offered (a retried pod starting
        again at ``Starting``, a repeat) is dropped. Within one tick a newer forward report
        replaces the offer, so only the last one before the tick is ever seen, stamped with the
        tick: nothing about when, inside the tick, the run reported is kept.
        """
        rounded = percent - percent % PROGRESS_PERCENT_STEP
        now = self._clock()
        with self._lock:
            train = self._trains.get(uid)
            if train is None:
                return False
            offer = train.progress_offer
            if offer is not None and now >= offer.visible_at:
                train.shown_progress, train.progress_offer = offer.as_progress(), None
            if not _ahead(rounded, stage, train.progress_offer or train.shown_progress):
                return False
            next_tick = (math.floor(now / self._tick) + 1) * self._tick
            train.progress_offer = ProgressOffer(rounded, stage, next_tick)
            self._save_lazily()
            return True
