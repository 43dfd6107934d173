"""The PHT station operator: takes a Train from ``kubectl apply`` to a terminal condition.

Layout (each module one job):

* :mod:`settings` — configuration from ``PHT_OPERATOR_*`` environment variables;
* :mod:`kube` — the operator's one Kubernetes client (lightkube's ``AsyncClient``, JSON dicts
  in and out); nothing outside this package uses it;
* :mod:`stationapi` — the operator's side of the wire contract with the station API;
* :mod:`names`, :mod:`runobjects` — deterministic names and the run's Secret/NetworkPolicy/Job;
* :mod:`statuses` — Train conditions, summary and status patches;
* :mod:`approvals`, :mod:`jobstates` — pure decisions (admission itself is the contract's
  ``evaluate``);
* :mod:`reconciler` — the lifecycle of one Train, level-triggered and idempotent: the order of
  the steps, read top to bottom; :mod:`passes` holds one pass's state and shared helpers, and
  the steps are plain functions by stage in :mod:`finalizing`, :mod:`admitting`,
  :mod:`approving`, :mod:`running` and :mod:`endings`;
* :mod:`clusterview`, :mod:`events` — the watch cache, and Kubernetes Events on Trains;
* :mod:`workqueues` — deduplicated, bounded-concurrency reconciliation of many Trains;
* :mod:`metrics`, :mod:`liveness` — Prometheus metrics and the stalled-watch probe;
* :mod:`handlers`, :mod:`app`, :mod:`entrypoint` — the Kopf wiring, the long-lived parts, and the
  process entry point.
"""
