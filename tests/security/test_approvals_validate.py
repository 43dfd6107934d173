"""``pht validate`` judges types exactly as the API server does with the generated CRDs.

The pydantic models alone are lax ("2" becomes 2, "true" becomes True), so a manifest could
pass offline and be refused by the cluster, or the reverse. Each corpus entry is checked three
ways: by ``validate_object`` (what ``pht validate`` and the station in a box run), by a JSON
schema validator against the CRD files in ``crds/`` as the server would apply them (nulls
pruned, whole numbers accepted as integers, RFC 3339 date-times), and against the expectation
written here. All three must agree.
"""

from __future__ import annotations

import copy
import datetime
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pht_contract.validation import validate_object, without_nulls

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def _server_schema(kind: str) -> Obj:
    for path in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            schema: Obj = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(kind)


def _whole(checker: object, value: object) -> bool:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    )


_FORMATS = jsonschema.FormatChecker(formats=())


def _rfc3339(value: object) -> bool:
    pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
    if not isinstance(value, str) or not re.match(pattern, value):
        return not isinstance(value, str)
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


_FORMATS.checks("date-time", raises=ValueError)(_rfc3339)
_SERVER = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    type_checker=jsonschema.Draft4Validator.TYPE_CHECKER.redefine("integer", _whole),
)


def server_accepts(obj: Obj) -> bool:
    validator = _SERVER(_server_schema(obj["kind"]), format_checker=_FORMATS)
    return not list(validator.iter_errors(without_nulls(obj)))


def train() -> Obj:
    data: Obj = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
    return data


def standing() -> Obj:
    data: Obj = yaml.safe_load(
        (REPO / "examples" / "approvals" / "standing-federated.yaml").read_text()
    )
    return data


def edit(base: Callable[[], Obj], change: Callable[[Obj], None]) -> Obj:
    obj = copy.deepcopy(base())
    change(obj["spec"])
    return obj


def _resources(**values: Any) -> Callable[[Obj], None]:
    return lambda spec: spec.setdefault("resources", {}).update(values)


def _scope(**values: Any) -> Callable[[Obj], None]:
    return lambda spec: spec["standing"].update(values)


def _bound(**values: Any) -> Callable[[Obj], None]:
    return lambda spec: spec["standing"]["parameters"][1].update(values)


CORPUS: list[tuple[str, Obj, bool]] = [
    ("train as written", train(), True),
    ("quantity as a string", edit(train, _resources(cpu="2", memory="1Gi")), True),
    ("quantity as a bare number", edit(train, _resources(cpu=2)), False),
    ("quantity as a float", edit(train, _resources(cpu=0.5)), False),
    ("gpu count as a string", edit(train, _resources(gpu="1")), False),
    ("gpu count as a whole float", edit(train, _resources(gpu=1.0)), True),
    ("retries as a fraction", edit(train, lambda s: s.update(retries=1.5)), False),
    ("timeout as a string", edit(train, lambda s: s.update(timeoutSeconds="600")), False),
    ("suspend as a string", edit(train, lambda s: s.update(suspend="true")), False),
    ("suspend as null (pruned)", edit(train, lambda s: s.update(suspend=None)), True),
    ("command as null (pruned)", edit(train, lambda s: s.update(command=None)), True),
    ("command as a string", edit(train, lambda s: s.update(command="sh")), False),
    ("args holding a number", edit(train, lambda s: s.update(args=["--n", 5])), False),
    ("purpose as a number", edit(train, lambda s: s.update(purpose=42)), False),
    ("parameters as an object", edit(train, lambda s: s.update(parameters={"a": 1})), False),
    ("standing approval as written", standing(), True),
    (
        "standing without requesters",
        edit(standing, lambda s: s["standing"].pop("requesters")),
        False,
    ),
    ("standing maxRuns as a string", edit(standing, _scope(maxRuns="5")), False),
    ("standing expiry not RFC 3339", edit(standing, _scope(expiresAt="next March")), False),
    (
        "standing expiry with offset",
        edit(standing, _scope(expiresAt="2027-03-01T00:00:00+01:00")),
        True,
    ),
    ("bound enum holding a number", edit(standing, _bound(enum=[70])), False),
    ("bound minimum as a string", edit(standing, _bound(minimum="5")), False),
    ("bound of an unknown type", edit(standing, _bound(type="matrix")), False),
]


@pytest.mark.parametrize(("case", "obj", "valid"), CORPUS, ids=[c[0] for c in CORPUS])
def test_pht_validate_agrees_with_the_crd_schema(case: str, obj: Obj, valid: bool) -> None:
    problems = validate_object(copy.deepcopy(obj))
    assert (problems == []) is valid, problems
    assert server_accepts(copy.deepcopy(obj)) is valid


def test_the_cli_refuses_a_type_the_server_refuses(tmp_path: Path) -> None:
    manifest = tmp_path / "train.yaml"
    manifest.write_text(yaml.safe_dump(edit(train, _resources(gpu="1"))))
    result = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "validate", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "spec.resources.gpu: '1' is not of type 'integer'" in result.stdout
