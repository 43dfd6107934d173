"""Attacker: a requester who moves a ``PREFIX`` line across a ``BASE`` line.

Relative IRIs (a ``PREFIX`` value included) mean what the ``BASE`` in force where they stand
says. The normaliser once dropped ``PREFIX`` lines but kept ``BASE`` tokens, so a steward's
approved text (which read nothing) and a requester's reordered copy (which read every patient's
stage) shared a hash, and a standing approval covered the copy. Now the hash resolves IRIs in
document order and every query with ``BASE`` is refused before it can be admitted or run.
"""

import pytest

from pht_contract.conditions import Reason
from pht_contract.evaluation import check_query_facts
from pht_contract.policies import DataAccessPolicy
from pht_contract.sparql import QuerySyntaxError, parse_query, query_hash

ROO = "http://www.cancerdata.org/roo/"
GRAPH = "http://example.org/graph/lung1"
TAIL = f"SELECT ?patient ?stage WHERE {{ ?patient <{ROO}P100029> ?t . ?t v: ?stage }}"
APPROVED = f"BASE <http://vocab.example/unused/>\nPREFIX v: <P100219>\nBASE <{ROO}>\n{TAIL}"
REORDERED = f"BASE <http://vocab.example/unused/>\nBASE <{ROO}>\nPREFIX v: <P100219>\n{TAIL}"


def test_moving_a_prefix_across_a_base_changes_the_hash() -> None:
    assert query_hash(APPROVED) != query_hash(REORDERED)


@pytest.mark.parametrize("text", [APPROVED, REORDERED, "base <http://x/> " + TAIL])
def test_a_query_with_base_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(QuerySyntaxError, match="BASE declarations are refused"):
        parse_query(text)
    policy = DataAccessPolicy(allowed_graphs=[GRAPH])
    violations, query_hash_or_none = check_query_facts(text, policy, "spec.queries[0].sparql")
    assert [v.reason for v in violations] == [Reason.INVALID_QUERY]
    assert query_hash_or_none is None


def test_the_word_base_inside_a_string_or_a_name_is_not_refused() -> None:
    parse_query(f'PREFIX ex: <{ROO}> SELECT ?base WHERE {{ ?base ex:base "BASE" }}')
