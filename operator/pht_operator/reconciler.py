"""The lifecycle of one Train, one level-triggered pass at a time, read top to bottom.

Each pass reads the Train (from the watch cache) and the world it depends on (policy,
approvals, the Job, the station API), decides the next step from *state*, never from the event
that woke it, performs it idempotently and records it in the Train status. Passes repeat until
the Train is terminal; killing the operator between any two steps loses nothing:

* run objects have deterministic names, so a repeated create answers 409 and is adopted;
* the token lives only in the run's Secret, so a repeated registration uses the same token;
* the Job's uid is written to status right after the Job exists and before anything depends on
  it; a recorded Job that is gone ends ``Failed/RunLost`` — a second run is never started;
* status writes carry the resourceVersion that was read, so a stale view is refused (409) and
  the pass simply runs again on fresh data;
* the Job TTL is applied only after the outcome is recorded; deletion revokes the token before
  deleting the Job (background propagation, so its pods stop).

:func:`reconcile` is the whole order: finalizer → deletion → admission → approval → run →
ending. Each step answers :class:`~pht_operator.passes.Next` (go on, or done for this pass) or
raises :class:`~pht_operator.passes.TransientError` to be retried with backoff. See
docs/lifecycle.md for the state table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pht_operator import admitting, approving, endings, finalizing, running
from pht_operator.kube import ApiError
from pht_operator.passes import Context, EventSink, Next, TrainPass, TransientError, flush
from pht_operator.stationapi import StationApiError
from pht_operator.statuses import is_terminal

__all__ = ["Context", "EventSink", "TrainPass", "TransientError", "reconcile", "reconcile_uid"]

Step = Callable[[TrainPass], Awaitable[Next]]

#: The steps of a live Train, in order; each decides for itself whether it has work to do.
STEPS: tuple[Step, ...] = (
    finalizing.ensure_finalizer,
    admitting.initialise,
    admitting.parse_spec,
    admitting.admit,
    approving.approve,
    running.hold_while_suspended,
    admitting.resume_within_capacity,
    running.start_run,
    running.follow_run,
)


async def reconcile(train: TrainPass) -> None:
    """One pass: a deleted Train is let go, a finished one cleaned up, a live one advanced
    by the first step that has work to do; the status draft is written once at the end."""
    if train.body["metadata"].get("deletionTimestamp"):
        await finalizing.release_deleted(train)
        return
    if is_terminal(train.status):
        await endings.clean_up(train)
        return
    for step in STEPS:
        if await step(train) is Next.DONE:
            break
    await flush(train)


async def reconcile_uid(ctx: Context, uid: str) -> None:
    """One pass over the Train with this uid (a no-op if it is gone or not ours)."""
    body = ctx.view.trains.get(uid)
    if body is None or body["metadata"].get("namespace") not in ctx.settings.station_namespaces:
        return
    try:
        await reconcile(TrainPass(ctx, body))
    except ApiError as exc:
        raise TransientError(f"Kubernetes API: {exc.code} {exc.reason}") from exc
    except StationApiError as exc:
        raise TransientError(f"station API: {exc}") from exc
