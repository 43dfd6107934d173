"""The PHT station operator: takes a Train from ``kubectl apply`` to a terminal condition.

Layout (each module one job):

* :mod:`settings` — configuration from ``PHT_OPERATOR_*`` environment variables;
* :mod:`kubeapi` — a small async Kubernetes client for the operator's own writes;
* :mod:`stationapi` — the operator's side of the wire contract with the station API;
* :mod:`names`, :mod:`runs` — deterministic names and the run's Secret/NetworkPolicy/Job;
* :mod:`statuses` — Train conditions, summary and status patches;
* :mod:`approvals`, :mod:`jobstates` — pure decisions (admission itself is the contract's
  ``evaluate``);
* :mod:`reconciler` — the lifecycle of one Train, level-triggered and idempotent: the order of
  the steps, which live in :mod:`passes` (shared state and helpers), :mod:`admitting`,
  :mod:`running` and :mod:`endings`;
* :mod:`stores`, :mod:`events` — the watch cache, and Kubernetes Events on Trains;
* :mod:`workqueues` — deduplicated, bounded-concurrency reconciliation of many Trains;
* :mod:`metrics`, :mod:`liveness` — Prometheus metrics and the stalled-watch probe;
* :mod:`handlers`, :mod:`app`, :mod:`runner` — the Kopf wiring, the long-lived parts, and the
  process entry point.
"""
