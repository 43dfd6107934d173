"""Event objects the API server accepts: a real kube-apiserver validates an Event's name as a
DNS subdomain (a ``generateName`` prefix ending in ``.`` is refused with 422)."""

import re

from pht_operator.events import build_event, event_name

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
TRAIN = {
    "apiVersion": "pht.health-ai.nl/v1alpha1",
    "kind": "Train",
    "metadata": {"name": "km-survival", "namespace": "pht-requests", "uid": "u-1"},
}


def test_event_names_are_dns_subdomains_and_distinct() -> None:
    long_name = "t" * 253
    names = [event_name("km-survival") for _ in range(200)] + [event_name(long_name)]
    assert all(DNS_SUBDOMAIN.fullmatch(n) and len(n) <= 253 for n in names), names[:3]
    assert len(set(names)) == len(names)


def test_an_event_names_itself_and_needs_no_generated_name() -> None:
    event = build_event(TRAIN, "Normal", "Admitted", "admitted", "Admit")
    meta = event["metadata"]
    assert "generateName" not in meta
    assert meta["name"].startswith("km-survival.")
    assert DNS_SUBDOMAIN.fullmatch(meta["name"])
