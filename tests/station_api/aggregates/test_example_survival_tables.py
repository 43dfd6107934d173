"""The example survival Train on the demo's cohort: the rules suppress what they must and
little else — at least 80 % of the grid's points released for the overall curve and for every
stage with 50 patients or more — and no two released numbers at risk differ by fewer than k."""

import itertools
from collections import Counter
from pathlib import Path

import pyoxigraph
import yaml

from pht_contract.aggregates import AggregateKind, AggregateStatus
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_sandbox.stations import StationConfig
from pht_station_api.aggregates.answers import label, read_answer
from pht_station_api.aggregates.compute import compute
from pht_station_api.cohorts import DEFAULT_PATIENTS, cohort_bytes

REPO = Path(__file__).resolve().parents[3]


def _load(path: str) -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load((REPO / path).read_text())
    return document


def test_the_demo_survival_tables_release_at_least_80_percent_of_their_points() -> None:
    spec = TrainSpec.model_validate(_load("examples/trains/survival-aggregates.yaml")["spec"])
    policy = StationPolicySpec.model_validate(
        _load("examples/policies/station-policy.yaml")["spec"]
    )
    demo = StationConfig("demo", Path("unused"), patients=DEFAULT_PATIENTS)
    store = pyoxigraph.Store()
    store.load(
        cohort_bytes(demo.patients, demo.seed, demo.hospital), format=pyoxigraph.RdfFormat.N_QUADS
    )
    assert spec.queries is not None and spec.aggregates is not None
    solutions = store.query(spec.queries[0].sparql, use_default_graph_as_union=True)
    assert isinstance(solutions, pyoxigraph.QuerySolutions)
    answer = read_answer(solutions.serialize(format=pyoxigraph.QueryResultsFormat.JSON), "patient")
    sizes = Counter(label(p.get("stage")) for p in answer.patients)
    k = policy.disclosure.min_cell_count
    curves = 0
    for declared in spec.aggregates:
        if declared.kind is not AggregateKind.KAPLAN_MEIER:
            continue
        result = compute(declared, answer, {}, policy.disclosure)
        assert result.status is AggregateStatus.RELEASED and result.table is not None
        columns = [c.name for c in result.table.columns]
        at_risk = columns.index("at_risk")
        by_group: dict[str, list[int | None]] = {}
        for row in result.table.rows:
            group = str(row[0]) if declared.by else "All"
            value = row[at_risk]
            by_group.setdefault(group, []).append(value if isinstance(value, int) else None)
        for group, points in by_group.items():
            released = [p for p in points if p is not None]
            # Every released number at risk, and every difference of two, is 0 or at least k.
            assert all(p >= k for p in released)
            assert all(a - b >= k for a, b in itertools.pairwise(released))
            if group == "All" or sizes[group] >= 50:
                curves += 1
                assert len(released) >= 0.8 * len(points), (declared.name, group, points)
    assert curves == 4  # All, and stages I, IIIa and IIIb (stage II has fewer than 50 patients)
