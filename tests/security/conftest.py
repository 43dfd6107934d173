"""Adversarial suite: the algorithm author and the requester as attackers.

Each module plays one attacker against one boundary (gate, gateway, ledger, metrics, progress,
audit, approvals) and fails if a patient-level value reaches a researcher without a steward, if
a Train runs anything its policy and approvals would not run, or if the server stops answering.
"""
