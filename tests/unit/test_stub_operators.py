"""WireMock value matchers: parsing, matching and distances (no sockets)."""

from __future__ import annotations

import pytest

from testbed.stubs.errors import InvalidStubError
from testbed.stubs.json_operators import json_differences
from testbed.stubs.operators import (
    levenshtein_ratio,
    parse_multi_value_pattern,
    parse_value_pattern,
)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ({"equalTo": "a"}, "a", True),
        ({"equalTo": "a"}, "A", False),
        ({"equalTo": "a", "caseInsensitive": True}, "A", True),
        ({"equalTo": "a"}, None, False),
        ({"contains": "ell"}, "hello", True),
        ({"doesNotContain": "x"}, "hello", True),
        ({"doesNotContain": "x"}, None, True),
        ({"matches": "[0-9]+"}, "123", True),
        ({"matches": "[0-9]+"}, "123a", False),  # whole-value match, like Java's String.matches
        ({"matches": "(?<id>[0-9]+)"}, "12", True),  # Java named group syntax
        ({"doesNotMatch": "[0-9]+"}, "abc", True),
        ({"absent": True}, None, True),
        ({"absent": True}, "", False),
        ({"anything": "x"}, None, True),
        ({"not": {"equalTo": "a"}}, "b", True),
        ({"and": [{"contains": "a"}, {"contains": "b"}]}, "ab", True),
        ({"and": [{"contains": "a"}, {"contains": "b"}]}, "a", False),
        ({"or": [{"equalTo": "a"}, {"equalTo": "b"}]}, "b", True),
        ({"equalToJson": {"a": [1, 2]}}, '{"a": [1, 2]}', True),
        ({"equalToJson": '{"a": 1}'}, '{"a": 1.0}', True),
        ({"equalToJson": {"a": 1}}, '{"a": true}', False),
        ({"equalToJson": {"a": [1, 2]}, "ignoreArrayOrder": True}, '{"a": [2, 1]}', True),
        ({"equalToJson": {"a": {}}, "ignoreExtraElements": True}, '{"a": {"b": 1}, "c": 2}', True),
        ({"equalToJson": {"a": "${json-unit.any-number}"}}, '{"a": "1"}', False),
        ({"matchesJsonPath": "$.a.b"}, '{"a": {"b": 0}}', True),
        ({"matchesJsonPath": "$.a.b"}, '{"a": {}}', False),
        ({"matchesJsonPath": "$.items[?(@.n > 1)]"}, '{"items": [{"n": 2}]}', True),
        ({"matchesJsonPath": {"expression": "$.n", "equalTo": "5"}}, '{"n": 5}', True),
        ({"matchesJsonPath": {"expression": "$.ok", "equalTo": "true"}}, '{"ok": true}', True),
        ({"matchesJsonSchema": {"type": "object", "required": ["a"]}}, '{"a": 1}', True),
        ({"matchesJsonSchema": {"type": "object", "required": ["a"]}}, "{}", False),
        ({"equalToXml": "<a><b x='1'>t</b></a>"}, '<a>\n <b x="1">t</b>\n</a>', True),
        ({"equalToXml": "<a><b/><c/></a>"}, "<a><c/><b/></a>", True),  # XMLUnit pairs siblings by name
        ({"equalToXml": "<a><b>1</b><b>2</b></a>"}, "<a><b>2</b><b>1</b></a>", False),  # same name: in order
        ({"equalToXml": "<a><b/><c/></a>", "ignoreOrderOfSameNode": True}, "<a><c/><b/></a>", True),
        ({"equalToXml": "<a>${xmlunit.ignore}</a>", "enablePlaceholders": True}, "<a>whatever</a>", True),
        ({"matchesXPath": "//b[@x='1']"}, "<a><b x='1'/></a>", True),
        ({"matchesXPath": {"expression": "count(//b)", "equalTo": "2"}}, "<a><b/><b/></a>", True),
        ({"before": "2030-01-01T00:00:00Z"}, "2029-06-01T00:00:00Z", True),
        ({"after": "now"}, "2001-01-01T00:00:00Z", False),
        ({"equalToDateTime": "2024-01-01T00:00:00Z"}, "Mon, 01 Jan 2024 00:00:00 GMT", True),
        ({"before": "now +1 days", "actualFormat": "dd/MM/yyyy"}, "01/01/2020", True),
        ({"binaryEqualTo": "aGk="}, "hi", True),
    ],
)
def test_value_patterns(pattern: dict[str, object], value: str | None, expected: bool) -> None:
    assert parse_value_pattern(pattern, "/p").matches(value) is expected


def test_unknown_operator_names_the_pointer() -> None:
    with pytest.raises(InvalidStubError) as info:
        parse_value_pattern({"equalsTo": "x"}, "/request/headers/A")
    assert info.value.pointer == "/request/headers/A"
    assert "not a valid match operation" in info.value.detail
    assert "Did you mean 'equalTo'?" in info.value.detail


@pytest.mark.parametrize(
    "bad",
    [
        {"matches": "("},
        {"and": []},
        {"equalToJson": "{bad"},
        {"matchesJsonPath": "$[?("},
        {"equalToXml": "<a>"},
        {"before": "yesterday-ish"},
        {"binaryEqualTo": "!!"},
    ],
)
def test_invalid_patterns_are_rejected_when_parsed(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidStubError):
        parse_value_pattern(bad, "/x")


def test_multi_value_patterns() -> None:
    exactly = parse_multi_value_pattern({"hasExactly": [{"equalTo": "1"}, {"equalTo": "2"}]})
    assert exactly.matches(["2", "1"]) and not exactly.matches(["1"]) and not exactly.matches(["1", "2", "3"])
    includes = parse_multi_value_pattern({"includes": [{"equalTo": "1"}]})
    assert includes.matches(["1", "9"]) and not includes.matches(["9"])
    single = parse_multi_value_pattern({"equalTo": "b"})
    assert single.matches(["a", "b"]) and not single.matches([])


def test_distances_rank_closer_values_lower() -> None:
    assert levenshtein_ratio("abc", "abc") == 0.0
    assert levenshtein_ratio("abcd", "abce") < levenshtein_ratio("abcd", "wxyz") == 1.0
    p = parse_value_pattern({"equalToJson": {"a": 1, "b": 2, "c": 3}})
    assert 0 < p.distance('{"a": 1, "b": 2, "c": 4}') < p.distance('{"a": 0, "b": 0, "c": 0}') <= 1


def test_json_differences_explain_where() -> None:
    diffs = json_differences({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}, "x": 1})
    assert diffs == ["$.a.b[1]: expected 2, got 3", "$.x: unexpected"]
