from __future__ import annotations

import pytest

from testbed.events.matchers import JsonSchema, describe, reasons, subset_reasons


def test_dict_subset_matches_extra_keys_and_nested_objects() -> None:
    payload = {"orderId": "o-1", "amount": 5000, "customer": {"id": 7, "tier": "gold"}, "extra": True}
    assert reasons({"orderId": "o-1", "customer": {"id": 7}}, payload) == []


def test_dict_subset_names_each_mismatch_with_its_path() -> None:
    payload = {"orderId": "o-1", "customer": {"id": 8}}
    assert reasons({"orderId": "o-2", "customer": {"id": 7}, "amount": 1}, payload) == [
        "$.orderId: expected 'o-2', got 'o-1'",
        "$.customer.id: expected 7, got 8",
        "$.amount: missing (expected 1)",
    ]


def test_lists_compare_item_by_item_with_subset_objects() -> None:
    assert subset_reasons([{"sku": "a"}], [{"sku": "a", "qty": 1}]) == []
    assert subset_reasons([1, 2], [1]) == ["$: expected 2 items, got 1: [1]"]


def test_types_matter_except_between_numbers() -> None:
    assert reasons({"n": 1}, {"n": 1.0}) == []
    assert reasons({"n": "1"}, {"n": 1}) == ["$.n: expected '1', got 1"]
    assert reasons({"flag": True}, {"flag": 1}) == ["$.flag: expected True, got 1"]


def test_non_object_payload_against_dict() -> None:
    assert reasons({"a": 1}, "plain text") == ["$: expected an object, got str 'plain text'"]


def test_predicate_false_and_raising_are_reasons_not_crashes() -> None:
    def is_big(p: dict[str, int]) -> bool:
        return p["amount"] > 100

    assert reasons(is_big, {"amount": 500}) == []
    assert reasons(is_big, {"amount": 5}) == [f"predicate {is_big.__qualname__} returned False"]
    assert reasons(is_big, {}) == [f"predicate {is_big.__qualname__} raised KeyError: 'amount'"]


def test_json_schema_reports_where_validation_failed() -> None:
    schema = JsonSchema({"type": "object", "required": ["orderId"],
                         "properties": {"orderId": {"type": "string"}, "amount": {"type": "integer"}}})
    assert reasons(schema, {"orderId": "o-1", "amount": 3}) == []
    assert reasons(schema, {"amount": "3"}) == [
        "schema: $: 'orderId' is a required property",
        "schema: $.amount: '3' is not of type 'integer'",
    ]


def test_none_matches_everything_and_unknown_matchers_are_rejected() -> None:
    assert reasons(None, b"\x00") == []
    assert describe(None) == "any message"
    with pytest.raises(TypeError, match="match= must be a dict"):
        reasons(42, {})  # type: ignore[arg-type]
