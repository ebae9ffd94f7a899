"""Response templating: the request model and helpers (no sockets)."""

from __future__ import annotations

import re

import pytest

from testbed.stubs import Request, UnsupportedTemplateHelperError
from testbed.stubs.errors import StubError
from testbed.stubs.templating import render

REQUEST = Request(
    "POST",
    "/orders/42/items?page=2&tag=a&tag=b",
    (("X-Trace", "t-1"), ("Cookie", "sid=abc"), ("Content-Type", "application/json")),
    b'{"order": {"id": 7, "lines": [{"sku": "a"}, {"sku": "b"}]}, "name": "ada"}',
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{request.path}}", "/orders/42/items"),
        ("{{request.url}}", "/orders/42/items?page=2&tag=a&tag=b"),
        ("{{request.pathSegments.[1]}} {{request.path.[2]}}", "42 items"),
        ("{{request.query.page}} {{request.query.tag.[1]}} {{request.query.tag.last}}", "2 b b"),
        ("{{request.method}} {{request.headers.x-trace}} {{request.cookies.sid}}", "POST t-1 abc"),
        ("{{jsonPath request.body '$.order.id'}}", "7"),
        ("{{jsonPath request.body '$.order.lines[1].sku'}}", "b"),
        ("{{jsonPath request.body '$.missing' default='none'}}", "none"),
        ("{{#each (jsonPath request.body '$.order.lines') as |line|}}{{this.sku}}{{/each}}", "ab"),
        ("{{#if (eq request.query.page.[0] '2')}}second{{else}}other{{/if}}", "second"),
        ("{{#unless request.query.nope}}none{{/unless}}", "none"),
        ("{{math 7 '/' 2}} {{math 3 '*' 4}} {{math 1.5 '+' 1}}", "4 12 2.5"),
        ("{{upper (jsonPath request.body '$.name')}} {{capitalize 'hello world'}}", "ADA Hello World"),
        ("{{size request.pathSegments}}", "3"),
        ("{{base64 'hi'}} {{base64 'aGk=' decode=true}} {{urlEncode 'a b&c'}}", "aGk= hi a+b%26c"),
        ("{{regexExtract request.path '/orders/([0-9]+)'}}", "/orders/42"),  # one parameter: the whole match
        ("{{regexExtract request.path '/orders/([0-9]+)/([a-z]+)' 'g'}}{{g.0}}-{{g.1}}", "42-items"),
        ("{{#with request.query}}{{page}}{{/with}}", "2"),
        ("{{! a comment }}x", "x"),
        ("{{{request.body}}}", '{"order": {"id": 7, "lines": [{"sku": "a"}, {"sku": "b"}]}, "name": "ada"}'),
    ],
)
def test_templates(template: str, expected: str) -> None:
    assert render(template, REQUEST) == expected


def test_path_template_parameters_and_transformer_parameters() -> None:
    out = render(
        "{{request.path.id}}/{{parameters.env}}",
        REQUEST,
        path_params={"id": "42"},
        parameters={"env": "test"},
    )
    assert out == "42/test"


def test_random_and_dates_have_the_right_shape() -> None:
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        render("{{randomValue type='UUID'}}", REQUEST),
    )
    assert re.fullmatch(r"[A-Z0-9]{12}", render("{{randomValue length=12 uppercase=true}}", REQUEST))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", render("{{now format='yyyy-MM-dd' offset='3 days'}}", REQUEST))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", render("{{now}}", REQUEST))


def test_unknown_helper_is_named() -> None:
    with pytest.raises(UnsupportedTemplateHelperError, match="'frobnicate'"):
        render("{{frobnicate request.body}}", REQUEST)
    with pytest.raises(UnsupportedTemplateHelperError, match="'split'"):  # not a WireMock helper either
        render("{{split request.body ','}}", REQUEST)
    with pytest.raises(StubError, match="never closed"):
        render("{{#if x}}open", REQUEST)
    with pytest.raises(StubError, match="is closed by"):
        render("{{#if x}}open{{/each}}", REQUEST)


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{range 1 100000000}}", ["range 1 100000000", "100,000,000 elements", "limit of 100,000"]),
        ("{{randomValue length=100000000}}", ["randomValue length", "limit of 10,000,000 characters"]),
        (
            "{{#each (range 1 1000)}}{{#each (range 1 1000)}}{{/each}}{{/each}}",
            ["{{#each}}", "loop iterations", "limit of 100,000"],
        ),
        (
            "{{#each (range 1 100)}}{{randomValue length=200000}}{{/each}}",
            ["rendered output", "limit of 10,000,000 characters"],
        ),
    ],
)
def test_runaway_templates_stop_at_a_named_limit(template: str, words: list[str]) -> None:
    from testbed.stubs.errors import TemplateLimitError

    with pytest.raises(TemplateLimitError) as info:
        render(template, REQUEST)
    for w in words:
        assert w in str(info.value)


def test_a_helper_that_fails_on_its_arguments_names_itself() -> None:
    from testbed.stubs.errors import StubError

    with pytest.raises(StubError, match="math: division by zero"):
        render("{{math 1 '/' 0}}", REQUEST)
    with pytest.raises(StubError, match="helper 'substring' failed|substring 9 2 is out of range"):
        render("{{substring 'abc' 9 2}}", REQUEST)
