"""JSONPath as WireMock (Jayway) evaluates it: the rules users rely on, pinned (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.stubs.errors import InvalidStubError
from testbed.stubs.jsonpath import PathNotFound, compile_jsonpath
from testbed.stubs.operators import parse_value_pattern

PAYMENT = {"amount": 150000, "currency": "EUR", "active": True, "v": "5", "tags": ["vip", "new"], "empty": []}


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        # issue 9 item 19: the payment-decline example, a filter on the root object
        ("$[?(@.amount > 100000)]", True),
        ("$[?(@.amount > 200000)]", False),
        ("$[?(@.active == true)]", True),
        ("$[?(@.v == '5')]", True),
        ("$[?(@.v == 5)]", True),  # Jayway compares a string and a number as text
        ("$[?(@.currency =~ /eu.*/i)]", True),
        ("$[?(@.currency =~ /eu.*/)]", False),
        ("$[?(@.currency in ['EUR', 'USD'])]", True),
        ("$[?(@.currency nin ['EUR', 'USD'])]", False),
        ("$[?(@.tags size 2)]", True),
        ("$[?(@.tags anyof ['vip'])]", True),
        ("$[?(@.tags noneof ['vip'])]", False),
        ("$[?(@.tags subsetof ['vip', 'new', 'old'])]", True),
        ("$[?(@.empty empty true)]", True),
        ("$[?(@.missing)]", False),
        ("$[?(!(@.amount < 10) && @.currency)]", True),
        ("$.empty", False),  # WireMock 3.13: an empty array is no match
        ("$.missing", False),
        ("$.tags.length()", True),
    ],
)
def test_matches_json_path_on_a_payment(expression: str, matches: bool) -> None:
    import json

    assert parse_value_pattern({"matchesJsonPath": expression}).matches(json.dumps(PAYMENT)) is matches


STORE = {"book": [{"t": "a", "p": 8.95}, {"t": "b", "p": 12.99, "isbn": "x"}, {"t": "c", "p": 22.99}]}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("$.book[0].t", "a"),  # definite: one value
        ("$.book[*].t", ["a", "b", "c"]),  # indefinite: a list
        ("$..t", ["a", "b", "c"]),
        ("$.book[?(@.p < 10)].t", ["a"]),
        ("$.book[?(@.isbn)].t", ["b"]),
        ("$.book[-1:].t", ["c"]),
        ("$.book[:2].t", ["a", "b"]),
        ("$.book.length()", 3),
        ("$..book.length()", 3),  # Jayway's $.length($..book[*])
        ("$.book[*].p.max()", None),  # per element: Jayway fails, see below
    ],
)
def test_read_follows_jayway(expression: str, value: Any) -> None:
    path = compile_jsonpath(expression)
    if value is None:
        with pytest.raises(Exception, match="Aggregation function"):
            path.read(STORE)
        return
    assert path.read(STORE) == value


def test_a_definite_path_without_a_value_is_not_found() -> None:
    with pytest.raises(PathNotFound):
        compile_jsonpath("$.book[9].t").read(STORE)
    # the templates' jsonPath reads a missing last property as null (Jayway's DEFAULT_PATH_LEAF_TO_NULL)
    assert compile_jsonpath("$.book[0].missing").read(STORE, leaf_to_null=True) is None


def test_bad_syntax_is_an_invalid_stub_naming_the_expression() -> None:
    with pytest.raises(InvalidStubError, match=r"invalid JSONPath expression '\$\[\?\(@.a >'"):
        compile_jsonpath("$[?(@.a >")
