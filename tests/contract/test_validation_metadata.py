"""`pht validate` judges metadata and reads YAML as the API server and kubectl do (the real
server's verdicts are in tests/realcluster/test_realcluster_validate.py; these run offline)."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from pht_contract.validation import load_documents, validate_object

ROOT = Path(__file__).resolve().parents[2]


def train(**metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples/trains/kaplan-meier.yaml").read_text())
    body["metadata"] = {"name": "km", **metadata}
    return body


@pytest.mark.parametrize(
    ("metadata", "path"),
    [
        ({"name": "KM_Survival"}, "metadata.name"),
        ({"name": "k" * 254}, "metadata.name"),
        ({"name": None}, "metadata.name"),
        ({"namespace": "Requests"}, "metadata.namespace"),
        ({"labels": {"study": "lung cancer"}}, "metadata.labels[study]"),
        ({"labels": {"round": 1}}, "metadata.labels[round]"),
        ({"annotations": {"-bad": "x"}}, "metadata.annotations[-bad]"),
        ({"annotations": {"Bad_Prefix/x": "y"}}, "metadata.annotations[Bad_Prefix/x]"),
    ],
)
def test_metadata_the_server_refuses_is_refused(metadata: dict[str, Any], path: str) -> None:
    problems = validate_object(train(**metadata))
    assert [p.path for p in problems] == [path], problems
    assert problems[0].reason == "Metadata"


@pytest.mark.parametrize(
    "metadata",
    [
        {"name": "km.survival.v2"},
        {"name": None, "generateName": "km-"},
        {"labels": {"pht.health-ai.nl/study": "lung1", "empty": ""}},
        {"annotations": {"pht.health-ai.nl/requested-by": "oidc:alice@example.org"}},
    ],
)
def test_metadata_the_server_accepts_is_accepted(metadata: dict[str, Any]) -> None:
    assert validate_object(train(**metadata)) == []


def test_an_unquoted_date_time_is_read_as_a_string_like_kubectl_does(tmp_path: Path) -> None:
    text = (ROOT / "examples/approvals/standing-federated.yaml").read_text()
    assert '"2027-03-01T00:00:00Z"' in text
    path = tmp_path / "standing.yaml"
    path.write_text(text.replace('"2027-03-01T00:00:00Z"', "2027-03-01T00:00:00Z"))
    (doc,) = load_documents(path)
    assert doc["spec"]["standing"]["expiresAt"] == "2027-03-01T00:00:00Z"
    assert validate_object(doc) == []
    path.write_text(text.replace('"2027-03-01T00:00:00Z"', "2027-03-01"))
    (doc,) = load_documents(path)
    assert [p.path for p in validate_object(doc)] == ["spec.standing.expiresAt"]
