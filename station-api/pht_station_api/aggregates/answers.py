"""Reading an approved query's answer (SPARQL 1.1 JSON results) as one record per patient.

Values are read the way every station spells them after mapping to ROO/NCIT terms: numbers as
floats, booleans as booleans, IRIs as the IRI, other literals as their text. Categories become
labels: the vocabulary's value codes by their names (``ncit:C20197`` → ``male``, ``ncit:C48728``
→ ``T3``), another IRI by its local name, a literal by its text. Vital status
is a death for ``ncit:C28554``, ``true``, ``1`` or ``dead``, alive for ``ncit:C37987``,
``false``, ``0`` or ``alive``. A patient is read from its first row; later rows are ignored.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pht_contract import vocabulary as voc

Value = str | float | bool | None

XSD: Final = "http://www.w3.org/2001/XMLSchema#"
_NUMERIC: Final = frozenset(
    XSD + name
    for name in (
        "integer", "decimal", "double", "float", "int", "long", "short", "byte",
        "nonNegativeInteger", "positiveInteger", "negativeInteger", "nonPositiveInteger",
        "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte",
    )
)  # fmt: skip
DEAD: Final = voc.DEAD
ALIVE: Final = voc.ALIVE
MISSING: Final = voc.MISSING
#: Value codes read as the words people use for them (``ncit:C20197`` → ``male``).
_CODE_LABELS: Final = {
    voc.MALE: "male",
    voc.FEMALE: "female",
    voc.DEAD: "dead",
    voc.ALIVE: "alive",
    **{
        iri: name
        for codes in (voc.T_CODES, voc.N_CODES, voc.M_CODES)
        for name, iri in codes.items()
    },
}
_DEAD_WORDS: Final = frozenset({"1", "1.0", "true", "dead", "deceased", "yes"})
_ALIVE_WORDS: Final = frozenset({"0", "0.0", "false", "alive", "censored", "no"})


class AnswerUnreadable(ValueError):
    """The answer is not SPARQL JSON results of a SELECT query (the message names no value)."""


@dataclass(frozen=True)
class Answer:
    """A SELECT answer as read: its variables and, per patient, that patient's first row."""

    variables: tuple[str, ...]
    #: One row per patient, in answer order, keyed by variable (unbound variables absent).
    patients: tuple[Mapping[str, Value], ...]
    #: Rows that bound no patient (they count for nobody and are not read).
    rows_without_patient: int


def _term(binding: object) -> Value:
    if not isinstance(binding, dict):
        raise AnswerUnreadable("a binding is not a JSON object")
    kind, value = binding.get("type"), binding.get("value")
    if not isinstance(value, str):
        raise AnswerUnreadable("a binding has no text value")
    if kind == "uri":
        return value
    if kind not in ("literal", "typed-literal", "bnode"):
        raise AnswerUnreadable("a binding has an unknown term type")
    datatype = binding.get("datatype")
    if datatype in _NUMERIC:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if datatype == XSD + "boolean":
        return value.strip() in ("true", "1")
    return value


def read_answer(
    body: bytes, patient_variable: str, patients: frozenset[bytes] | None = None
) -> Answer:
    """The answer's records, one per patient bound by ``patient_variable``.

    With ``patients`` (the IRIs the store knows as patients: typed ``ncit:C16960`` in the
    allowed graphs), a row whose ``patient_variable`` is any other IRI binds no patient: a query
    that mints IRIs (``BIND(IRI(…))``) cannot count one patient several times.
    """
    try:
        document = json.loads(body)
        variables = document["head"]["vars"]
        bindings = document["results"]["bindings"]
    except (ValueError, KeyError, TypeError):
        raise AnswerUnreadable("the answer is not SPARQL JSON results of a SELECT query") from None
    if not isinstance(variables, list) or not isinstance(bindings, list):
        raise AnswerUnreadable("the answer is not SPARQL JSON results of a SELECT query")
    records: dict[str, dict[str, Value]] = {}
    without = 0
    for solution in bindings:
        if not isinstance(solution, dict):
            raise AnswerUnreadable("a solution is not a JSON object")
        patient = solution.get(patient_variable)
        if not isinstance(patient, dict) or patient.get("type") != "uri":
            without += 1
            continue
        key = patient.get("value")
        if not isinstance(key, str) or key in records:
            continue
        if patients is not None and key.encode() not in patients:
            without += 1
            continue
        records[key] = {name: _term(term) for name, term in solution.items()}
    return Answer(tuple(str(v) for v in variables), tuple(records.values()), without)


def number(value: Value) -> float | None:
    """A finite number, or ``None`` (text that spells a number counts too)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def died(value: Value) -> bool | None:
    """True for a death, False for alive (censored), None when the status is unknown."""
    if value is None or value == MISSING:
        return None
    if isinstance(value, bool):
        return value
    if value == DEAD:
        return True
    if value == ALIVE:
        return False
    text = (f"{value:g}" if isinstance(value, float) else value).strip().lower()
    return True if text in _DEAD_WORDS else False if text in _ALIVE_WORDS else None


_LOCAL_NAME: Final = re.compile(r"[#/]")


def label(value: Value) -> str | None:
    """A category label: an IRI's local name or a literal's text; ``None`` when unbound.

    The label is only ever *compared* with the labels a steward listed for a releasable
    variable; a value not on that list is never released as a label.
    """
    if value is None or value == MISSING:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    text = value.strip()
    if text in _CODE_LABELS:
        return _CODE_LABELS[text]
    if "://" in text:
        text = _LOCAL_NAME.split(text.rstrip("/#"))[-1]
    return text or None
