"""Train status as the operator writes it: ``metav1.Condition`` list, one-word summary.

The reconciler works on a :class:`StatusDraft` (a copy of the current status) and sends it as
one merge patch to the ``/status`` subresource, guarded by the resourceVersion it read, so a
stale view (another writer, a restarted operator) is refused with 409 instead of overwriting
newer state. A draft that changes nothing is never sent: level-triggered passes over settled
Trains cost no writes.
"""

from __future__ import annotations

from typing import Any

from pht_contract.conditions import TERMINAL_SUMMARIES, ConditionType, Reason, Summary
from pht_contract.objects import Obj
from pht_contract.times import researcher_iso, utc_iso
from pht_operator.jsondata import copy_json

#: What ``Succeeded=Unknown`` says while a Train is live, by summary (its reason is the summary).
_LIVE_MESSAGES = {
    Summary.PENDING: "admitted; the run is being prepared",
    Summary.WAITING: "waiting for a free run slot of this namespace",
    Summary.AWAITING_APPROVAL: "waiting for a data steward's approval",
    Summary.SUSPENDED: "suspended before its run started",
    Summary.QUEUED: "the run's Job waits to start",
    Summary.RUNNING: "the run is running",
    Summary.AWAITING_RELEASE: "the run finished; its result awaits release",
}
#: Conditions every Train carries from the first pass on (``Unknown`` until decided).
INITIAL_CONDITIONS = (ConditionType.ADMITTED, ConditionType.APPROVED, ConditionType.SUCCEEDED)
#: Conditions a run's code can move (when it ends, how): their transition times show whole
#: minutes. Admission and approval happen before the code runs and keep the second.
RUN_MOVED_CONDITIONS = frozenset(
    {
        ConditionType.RUNNING,
        ConditionType.SUCCEEDED,
        ConditionType.FAILED,
        ConditionType.RESULT_RELEASED,
    }
)


def conditions_of(status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status.get("conditions") or [] if isinstance(c, dict)}


def condition(status: Obj, kind: ConditionType) -> Obj | None:
    return conditions_of(status).get(kind.value)


def is_true(status: Obj, kind: ConditionType) -> bool:
    found = condition(status, kind)
    return found is not None and found.get("status") == "True"


def reason_of(status: Obj, kind: ConditionType) -> str | None:
    found = condition(status, kind)
    return None if found is None else str(found.get("reason"))


def is_terminal(status: Obj) -> bool:
    return status.get("summary") in {s.value for s in TERMINAL_SUMMARIES}


class StatusDraft:
    """A mutable copy of a Train's status; :meth:`patch` says what changed."""

    def __init__(self, status: Obj | None, generation: int | None) -> None:
        self.original = copy_json(status or {})
        self.status = copy_json(status or {})
        self.generation = generation

    def set_condition(
        self, kind: ConditionType, value: str, reason: Reason | str, message: str
    ) -> bool:
        """Set one condition; ``lastTransitionTime`` moves only when its status changes (in
        whole minutes for :data:`RUN_MOVED_CONDITIONS`: a researcher reads them)."""
        conditions = [dict(c) for c in self.status.get("conditions") or []]
        current = next((c for c in conditions if c.get("type") == kind.value), None)
        reason = str(reason)
        if current is not None and (
            current.get("status"),
            current.get("reason"),
            current.get("message"),
        ) == (value, reason, message):
            return False
        now = researcher_iso() if kind in RUN_MOVED_CONDITIONS else utc_iso()
        entry: Obj = {
            "type": kind.value,
            "status": value,
            "reason": reason,
            "message": message[:32768],
            "lastTransitionTime": (
                current["lastTransitionTime"]
                if current is not None and current.get("status") == value
                else now
            ),
        }
        if self.generation is not None:
            entry["observedGeneration"] = self.generation
        if current is None:
            conditions.append(entry)
        else:
            conditions[conditions.index(current)] = entry
        self.status["conditions"] = conditions
        return True

    def set(self, key: str, value: Any) -> None:
        if value is None:
            self.status.pop(key, None)
        else:
            self.status[key] = value

    def initialise(self) -> None:
        """Conditions a Train has not got yet start ``Unknown`` (a Train seen the first time)."""
        for kind in INITIAL_CONDITIONS:
            if condition(self.status, kind) is None:
                self.set_condition(kind, "Unknown", Reason.PENDING, "not decided yet")

    def set_summary(self, summary: Summary) -> None:
        """The one-word summary; while live, ``Succeeded`` is ``Unknown`` with it as reason."""
        self.status["summary"] = summary.value
        if summary not in TERMINAL_SUMMARIES:
            self.set_condition(
                ConditionType.SUCCEEDED, "Unknown", summary.value, _LIVE_MESSAGES[summary]
            )

    def set_outcome(self, summary: Summary, reason: str, message: str) -> None:
        """A terminal summary; ``Succeeded`` is ``True``, or ``False`` with the reason why not."""
        self.status["summary"] = summary.value
        value = "True" if summary == Summary.SUCCEEDED else "False"
        self.set_condition(ConditionType.SUCCEEDED, value, reason, message)

    @property
    def changed(self) -> bool:
        return self.status != self.original

    def patch(self, resource_version: str | None) -> Obj:
        """A merge patch that replaces the status wholesale, guarded by resourceVersion."""
        body: Obj = {"status": dict(self.status)}
        # Keys that disappeared must be nulled explicitly in a merge patch.
        for key in self.original:
            if key not in self.status:
                body["status"][key] = None
        if self.generation is not None:
            body["status"]["observedGeneration"] = self.generation
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return body
