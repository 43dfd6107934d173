"""A train's own failure reason as a covert channel: only a listed word reaches the researcher.

A station in a box runs an author's trains that fail with reasons of their own choosing — one
listed, and others that try to carry more: an unlisted word, free text, a long line, a megabyte
— each as the SDK or a hand-written train reports it (the last ``pht-train-failure:`` line of a
local process's log is its termination message). The researcher's Train and its Events show
the listed reason or ``UnlistedReason`` and nothing of the text; the operator's log and metrics
do not carry it either. The runc runtime's ``/dev/termination-log`` is attacked in
tests/sandbox/test_runcruntime.py, the mapping itself in tests/contract/test_trainfailures.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import yaml

from pht_contract import constants
from pht_contract.objects import Obj
from pht_contract.trainfailures import UNLISTED_REASON
from pht_sandbox.bundledtrains import IMAGE_PREFIX, BundledTrain
from pht_sandbox.stations import REQUEST_NAMESPACE, LocalStation, StationConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO: Final = Path(__file__).resolve().parents[2]
PLAIN: Final = "the run failed after 1 attempt(s) (backoffLimit reached)"
#: Text a hostile train tries to pass; none of it may appear anywhere a researcher or a scraper
#: looks.
SECRET: Final = "PatientSeventeenAgedNinetyThree"

#: Train name → (its entrypoint's source, what the researcher sees after the plain message).
TRAINS: Final[dict[str, tuple[str, str]]] = {
    "listed": (
        "from pht_train import fail\nfail('ModelDidNotConverge')\n",
        "; the train reported ModelDidNotConverge",
    ),
    "unlisted": (
        f"from pht_train import fail\nfail({SECRET!r})\n",
        f"; the train reported {UNLISTED_REASON}",
    ),
    "free-text": (
        "import sys\n"
        f"print('pht-train-failure: InvalidParameters {SECRET} stage IIIb', file=sys.stderr)\n"
        "raise SystemExit(3)\n",
        f"; the train reported {UNLISTED_REASON}",
    ),
    "long": (
        "import sys\n"
        f"print('pht-train-failure: ' + {SECRET!r} * 100, file=sys.stderr)\n"
        "raise SystemExit(3)\n",
        f"; the train reported {UNLISTED_REASON}",
    ),
    # A line longer than the 4096 bytes a kubelet keeps: its start is never read, so no reason.
    "megabyte": (
        "import sys\n"
        f"print('pht-train-failure: ' + {SECRET!r} * 40000, file=sys.stderr)\n"
        "raise SystemExit(3)\n",
        "",
    ),
}


def _image(name: str) -> str:
    return f"{IMAGE_PREFIX}failing-{name}:0.1.0@sha256:{'7' * 64}"


def _write_train(root: Path, name: str, source: str) -> BundledTrain:
    module = f"failing_{name.replace('-', '_')}"
    package = root / name / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(source)
    return BundledTrain(name, root / name, module)


def _train(name: str) -> Obj:
    document: Obj = yaml.safe_load(
        (REPO / "examples" / "trains" / "cohort-summary.yaml").read_text()
    )
    document["metadata"] = {"name": name, "namespace": REQUEST_NAMESPACE}
    document["spec"]["image"] = _image(name)
    return document


async def _run_all(tmp_path: Path) -> tuple[dict[str, Obj], list[Obj], str, str]:
    policy: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "policies" / "station-policy.yaml").read_text()
    )
    policy["spec"]["approval"]["mode"] = "None"
    policy["spec"]["limits"]["maxConcurrentTrains"] = len(TRAINS)
    config = StationConfig("reasons", tmp_path / "station", patients=60)
    async with LocalStation(config) as station:
        assert station._kubelet is not None
        for name, (source, _shown) in TRAINS.items():
            package = _write_train(tmp_path / "trains", name, source)
            station._kubelet.trains[_image(name).partition(":")[0]] = package
        await station.apply(policy, constants.POLICY_PLURAL)
        for name in TRAINS:
            await station.apply(_train(name), constants.TRAIN_PLURAL)
        ended = await asyncio.gather(
            *(station.wait_for(name, lambda _t: False, 150) for name in TRAINS)
        )
        events = await station.kube_request(
            "GET", f"/apis/events.k8s.io/v1/namespaces/{REQUEST_NAMESPACE}/events"
        )
        assert events.status_code == 200, events.text
        async with httpx.AsyncClient() as client:
            scraped = await client.get(station.urls.operator_metrics)
        assert scraped.status_code == 200, scraped.text
        metrics = scraped.text
        assert "pht_trains_finished" in metrics
    operator_log = (config.work_dir / "operator.log").read_text(errors="replace")
    trains = dict(zip(TRAINS, ended, strict=True))
    return trains, events.json()["items"], operator_log, metrics


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Obj], list[Obj], str, str]:
    return asyncio.run(_run_all(tmp_path_factory.mktemp("reasons")))


def _failed(train: Obj) -> Obj:
    (failed,) = [c for c in train["status"]["conditions"] if c["type"] == "Failed"]
    return dict(failed)


@pytest.mark.parametrize("name", list(TRAINS))
def test_the_researcher_sees_a_listed_reason_or_the_fixed_word(
    outcome: tuple[dict[str, Obj], list[Obj], str, str], name: str
) -> None:
    trains, events, _log, _metrics = outcome
    train = trains[name]
    assert train["status"]["summary"] == "Failed", train["status"]
    failed = _failed(train)
    assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
    assert failed["message"] == PLAIN + TRAINS[name][1]
    notes = [e.get("note", "") for e in events if e["regarding"]["name"] == name]
    assert PLAIN + TRAINS[name][1] in notes, notes


def test_nothing_of_a_hostile_reason_reaches_the_train_events_log_or_metrics(
    outcome: tuple[dict[str, Obj], list[Obj], str, str],
) -> None:
    trains, events, operator_log, metrics = outcome
    seen = {
        "the Trains": json.dumps(trains),
        "their Events": json.dumps(events),
        "the operator's log": operator_log,
        "the operator's metrics": metrics,
    }
    for where, text in seen.items():
        for fragment in (SECRET, "Seventeen", "IIIb", "NinetyThree"):
            assert fragment not in text, f"{fragment!r} reached {where}"
    assert "ModelDidNotConverge" not in metrics  # reasons of trains are no metric label
