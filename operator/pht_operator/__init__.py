"""The PHT station operator: takes a Train from ``kubectl apply`` to a terminal condition.

Layout (each module one job):

* :mod:`settings` — configuration from ``PHT_OPERATOR_*`` environment variables;
* :mod:`kubeapi` — a small async Kubernetes client for the operator's own writes;
* :mod:`stationapi` — the operator's side of the wire contract with the station API;
* :mod:`names`, :mod:`runs` — deterministic names and the run's Secret/NetworkPolicy/Job;
* :mod:`statuses` — Train conditions, summary and status patches;
* :mod:`admissions`, :mod:`approvals`, :mod:`jobstates` — pure decisions;
* :mod:`reconciler` — the lifecycle of one Train, level-triggered and idempotent;
* :mod:`workqueues` — deduplicated, bounded-concurrency reconciliation of many Trains;
* :mod:`metrics`, :mod:`liveness` — Prometheus metrics and the stalled-watch probe;
* :mod:`handlers`, :mod:`runner` — the Kopf wiring and the process entry point.
"""
