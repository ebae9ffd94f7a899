"""Generated cases for the wide differential (see differential.py): WireMock's documented features, each
crossed with the inputs a user sends. Every case uses its own URL prefix ``/d/<case id>``."""

# ruff: noqa: E501  (a table of cases: long template strings read better on one line)
from __future__ import annotations

import base64
import json
from typing import Any

Case = dict[str, Any]
TPL = ["response-template"]


def stub(request: dict[str, Any], response: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"request": request, "response": response or {"status": 200, "body": "hit"}, **extra}


def r(method: str, path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "compare": compare, **kw}


def g(path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return r("GET", path, compare, **kw)


def p(path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return r("POST", path, compare, **kw)


class Cases:
    def __init__(self) -> None:
        self.cases: list[Case] = []
        self._ids: set[str] = set()

    def add(self, cid: str, mappings: list[dict[str, Any]], steps: list[dict[str, Any]], kind: str = "shared") -> None:
        assert cid not in self._ids, cid
        self._ids.add(cid)
        self.cases.append({"id": cid, "mappings": mappings, "steps": steps, "kind": kind})


# --- values used across sections --------------------------------------------------------------------

# (name, operator JSON, values a client sends; None = the parameter is absent)
STRING_OPERATORS: list[tuple[str, dict[str, Any], list[str | None]]] = [
    ("eq", {"equalTo": "abc"}, ["abc", "ABC", "abcd", None]),
    ("eq-ci", {"equalTo": "abc", "caseInsensitive": True}, ["ABC", "aBc", "abd"]),
    ("contains", {"contains": "bc"}, ["abcd", "ab", None]),
    ("not-contains", {"doesNotContain": "bc"}, ["xyz", "abc", None]),
    ("matches", {"matches": "[a-z]+-[0-9]{2}"}, ["abc-12", "abc-123", "ABC-12"]),
    ("matches-alt", {"matches": "(red|green)"}, ["red", "green", "blue"]),
    ("matches-partial", {"matches": "b"}, ["abc", "b"]),
    ("not-matches", {"doesNotMatch": "[0-9]+"}, ["12", "a1", None]),
    ("absent", {"absent": True}, [None, "x"]),
    ("not", {"not": {"equalTo": "prod"}}, ["dev", "prod", None]),
    ("and", {"and": [{"contains": "a"}, {"contains": "z"}]}, ["az", "a", "zza"]),
    ("or", {"or": [{"equalTo": "x"}, {"matches": "y+"}]}, ["x", "yyy", "z"]),
    ("before", {"before": "2024-01-01T00:00:00Z"}, ["2023-06-01T10:00:00Z", "2025-01-01T00:00:00Z"]),
    ("after", {"after": "2024-01-01T00:00:00Z"}, ["2023-06-01T10:00:00Z", "2025-01-01T00:00:00Z"]),
    ("eq-datetime", {"equalToDateTime": "2024-05-01T10:00:00Z"}, ["2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z"]),
    ("eq-number-text", {"equalTo": "10"}, ["10", "10.0"]),
    ("contains-ci-not", {"contains": "ABC"}, ["xabcx", "xABCx"]),
]

DOC = {
    "id": 7,
    "amount": 150000,
    "currency": "EUR",
    "active": True,
    "ratio": 0.5,
    "v": "5",
    "name": "Ada Lovelace",
    "tags": ["new", "vip"],
    "empty": [],
    "nothing": None,
    "customer": {"id": "c-1", "tier": "gold", "address": {"city": "Paris", "zip": "75001"}},
    "items": [
        {"sku": "a-1", "qty": 2, "price": 10.5, "tags": ["x"]},
        {"sku": "b-2", "qty": 1, "price": 99, "tags": []},
        {"sku": "c-3", "qty": 5, "price": 0.25, "gift": True},
    ],
}
ARRAY_DOC = [{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}, {"id": 3, "kind": "a"}]

JSONPATHS = [
    "$.id",
    "$.missing",
    "$.nothing",
    "$.empty",
    "$.tags",
    "$.tags[0]",
    "$.tags[5]",
    "$.customer.address.city",
    "$['customer']['tier']",
    "$.items[*].sku",
    "$.items[-1].sku",
    "$.items[0:2]",
    "$..city",
    "$..qty",
    "$.items.length()",
    "$.tags.size()",
    "$[?(@.amount > 100000)]",
    "$[?(@.amount > 200000)]",
    "$[?(@.active == true)]",
    "$[?(@.active == false)]",
    "$[?(@.v == '5')]",
    "$[?(@.v == 5)]",
    "$[?(@.currency =~ /eu.*/i)]",
    "$[?(@.currency =~ /eu.*/)]",
    "$[?(@.currency in ['EUR', 'USD'])]",
    "$[?(@.currency nin ['EUR', 'USD'])]",
    "$[?(@.tags size 2)]",
    "$[?(@.tags anyof ['vip'])]",
    "$[?(@.tags noneof ['vip'])]",
    "$[?(@.tags subsetof ['new', 'vip', 'old'])]",
    "$[?(@.empty empty true)]",
    "$[?(@.tags empty false)]",
    "$[?(@.customer.tier == 'gold')]",
    "$[?(@.missing)]",
    "$[?(@.name)]",
    "$.items[?(@.qty > 1)]",
    "$.items[?(@.qty > 1)].sku",
    "$.items[?(@.price < 1)]",
    "$.items[?(@.gift)]",
    "$.items[?(@.sku == 'b-2' && @.qty == 1)]",
    "$.items[?(@.sku == 'zzz' || @.qty == 5)].sku",
    "$.items[?(@.tags size 1)].sku",
    "$.items[?(!(@.qty > 1))].sku",
    "$.items[?(@.sku =~ /.*-[23]/)].sku",
    "$.items[?(@.sku in ['a-1', 'c-3'])].qty",
    "$.tags[?(@ == 'vip')]",
    "$.items[*].price.min()",
    "$.items[*].price.max()",
    "$.items[*].qty.sum()",
    "$.items[*].qty.avg()",
    "$.customer.keys()",
    "$.items[0]['sku','qty']",
    "$.items[?(@.qty >= 2)].length()",
]

ARRAY_PATHS = ["$[0].id", "$[?(@.kind == 'a')].id", "$[?(@.id > 1)]", "$.length()", "$[*].kind", "$[5]"]

JSONPATH_SUBMATCHERS: list[tuple[str, dict[str, Any]]] = [
    ("$.currency", {"equalTo": "EUR"}),
    ("$.currency", {"equalTo": "eur", "caseInsensitive": True}),
    ("$.amount", {"equalTo": "150000"}),
    ("$.ratio", {"equalTo": "0.5"}),
    ("$.active", {"equalTo": "true"}),
    ("$.name", {"contains": "Love"}),
    ("$.name", {"matches": "Ada .*"}),
    ("$.tags", {"contains": "vip"}),
    ("$.tags", {"equalToJson": '["new", "vip"]'}),
    ("$.customer", {"equalToJson": {"id": "c-1", "tier": "gold"}, "ignoreExtraElements": True}),
    ("$.items[*].sku", {"contains": "b-2"}),
    ("$.items[?(@.qty > 1)].sku", {"equalToJson": '["a-1", "c-3"]'}),
    ("$.missing", {"absent": True}),
    ("$.currency", {"absent": True}),
    ("$.items.length()", {"equalTo": "3"}),
    ("$.customer.address", {"equalToJson": '{"city": "Paris", "zip": "75001"}'}),
    ("$.nothing", {"absent": True}),
    ("$.id", {"matches": "[0-9]+"}),
    ("$.items[0].price", {"equalTo": "10.5"}),
    ("$.items", {"contains": "c-3"}),
    ("$.empty", {"equalToJson": "[]"}),
    ("$..city", {"equalTo": "Paris"}),
    ("$.customer.tier", {"or": [{"equalTo": "silver"}, {"equalTo": "gold"}]}),
    ("$.customer.tier", {"not": {"equalTo": "gold"}}),
]

XML_DOC = (
    "<order xmlns:m='http://meta'><id>7</id><customer tier='gold'>Ada</customer>"
    "<items><item sku='a'>1</item><item sku='b'>2</item></items><m:note>hi</m:note></order>"
)
XPATHS: list[tuple[str, dict[str, Any]]] = [
    ("/order/id", {}),
    ("/order/missing", {}),
    ("//item[@sku='b']", {}),
    ("count(//item)", {}),
    ("/order/customer/@tier", {}),
    ("//item[text()='2']", {}),
    ("/order/id[.=7]", {}),
    ("/order/id[.=8]", {}),
    ("//m:note", {"xPathNamespaces": {"m": "http://meta"}}),
]
XPATH_SUBMATCHERS: list[tuple[str, dict[str, Any]]] = [
    ("/order/id/text()", {"equalTo": "7"}),
    ("/order/customer", {"equalTo": "Ada"}),
    ("/order/customer/@tier", {"equalTo": "gold"}),
    ("//item", {"equalTo": "2"}),
    ("//item/@sku", {"matches": "[ab]"}),
    ("/order/items", {"contains": "sku"}),
    ("/order/id", {"absent": True}),
    ("count(//item)", {"equalTo": "2"}),
]

# (name, template, request extras): each rendered by both servers for the same request.
TEMPLATE_REQUEST = {
    "method": "POST",
    "query": "?page=2&tag=a&tag=b&q=hello%20world",
    "headers": {
        "X-Trace": "t-1",
        "Content-Type": "application/json",
        "Cookie": "sid=abc; theme=dark",
        "Accept": "application/json",
    },
    "json": {
        "order": {"id": 7, "total": 19.5, "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]},
        "name": "ada lovelace",
        "email": "Ada@Example.com",
        "when": "2024-03-05T10:15:30Z",
        "tags": ["x", "y", "z"],
        "n": 42,
        "flag": True,
        "none": None,
        "html": "<b>bold</b> text",
        "csv": "a,b,c",
    },
}

TEMPLATES: list[tuple[str, str]] = [
    # the request model
    ("path", "{{request.path}}"),
    ("url", "{{request.url}}"),
    ("path-segments", "{{request.pathSegments.[0]}}|{{request.pathSegments.[2]}}|{{request.path.[1]}}"),
    ("method", "{{request.method}}"),
    ("query", "{{request.query.page}}|{{request.query.tag}}|{{request.query.tag.[1]}}|{{request.query.q}}"),
    ("query-first-last", "{{request.query.tag.first}}|{{request.query.tag.last}}|{{request.query.nope}}"),
    ("query-join", "{{#each request.query.tag}}[{{this}}]{{/each}}"),
    ("headers", "{{request.headers.X-Trace}}|{{request.headers.x-trace}}|{{request.headers.[Content-Type]}}"),
    ("cookies", "{{request.cookies.sid}}|{{request.cookies.theme}}|{{request.cookies.nope}}"),
    ("body", "{{request.body}}"),
    ("base-url-scheme", "{{request.scheme}}|{{request.host}}"),
    ("body-b64", "{{request.bodyAsBase64}}"),
    ("params", "{{parameters.kind}}"),
    ("escaped-html", "{{jsonPath request.body '$.html'}}"),
    ("triple", "{{{jsonPath request.body '$.html'}}}"),
    # jsonPath
    ("jp-scalar", "{{jsonPath request.body '$.order.id'}}|{{jsonPath request.body '$.order.total'}}"),
    ("jp-string", "{{jsonPath request.body '$.name'}}"),
    ("jp-object", "{{jsonPath request.body '$.order.lines[0]'}}"),
    ("jp-array", "{{jsonPath request.body '$.tags'}}"),
    ("jp-missing", "[{{jsonPath request.body '$.missing'}}]"),
    ("jp-default", "{{jsonPath request.body '$.missing' default='dflt'}}"),
    ("jp-null", "[{{jsonPath request.body '$.none'}}]"),
    ("jp-bool", "{{jsonPath request.body '$.flag'}}"),
    ("jp-wild", "{{jsonPath request.body '$.order.lines[*].sku'}}"),
    ("jp-filter", "{{jsonPath request.body '$.order.lines[?(@.qty > 1)].sku'}}"),
    ("jp-root-filter", "{{jsonPath request.body '$[?(@.n > 40)].name'}}"),
    ("jp-length", "{{jsonPath request.body '$.tags.length()'}}"),
    ("jp-each", "{{#each (jsonPath request.body '$.order.lines') as |line|}}{{line.sku}}={{line.qty}};{{/each}}"),
    ("jp-each-this", "{{#each (jsonPath request.body '$.order.lines')}}{{this.sku}}{{@index}}{{/each}}"),
    (
        "jp-each-first-last",
        "{{#each (jsonPath request.body '$.tags')}}{{#if @first}}<{{/if}}{{this}}{{#if @last}}>{{/if}}{{/each}}",
    ),
    # conditionals and blocks
    ("if-else", "{{#if (eq request.query.page.[0] '2')}}two{{else}}other{{/if}}"),
    (
        "else-if",
        "{{#if (eq request.query.page.[0] '1')}}one{{else if (eq request.query.page.[0] '2')}}two{{else}}many{{/if}}",
    ),
    ("unless", "{{#unless request.query.nope}}none{{else}}some{{/unless}}"),
    ("with", "{{#with (jsonPath request.body '$.order')}}{{id}}/{{total}}{{/with}}"),
    ("each-map", '{{#each (parseJson \'{"a":1,"b":2}\')}}{{@key}}={{this}};{{/each}}'),
    ("each-else", "{{#each (jsonPath request.body '$.nope')}}x{{else}}empty{{/each}}"),
    ("each-block-params", "{{#each (array 'p' 'q') as |item idx|}}{{idx}}:{{item}} {{/each}}"),
    ("each-json", "[{{#each (jsonPath request.body '$.tags') as |t|}}\"{{t}}\"{{#unless @last}},{{/unless}}{{/each}}]"),
    ("eq", "{{eq 1 1}} {{eq 'a' 'b'}} {{neq 'a' 'b'}}"),
    ("cmp", "{{gt 3 2}} {{gte 2 2}} {{lt 1 2}} {{lte 3 2}}"),
    ("cmp-strings", "{{gt 'b' 'a'}} {{lt '10' '9'}}"),
    ("and-or-not", "{{and true false}} {{or false true}} {{not false}}"),
    ("eq-block", "{{#eq request.method 'POST'}}post{{else}}other{{/eq}}"),
    ("eq-method-string", "{{#if (eq request.method 'POST')}}y{{else}}n{{/if}}"),
    ("contains", "{{contains 'abc' 'b'}} {{contains (array 'a' 'b') 'b'}} {{contains request.path 'template'}}"),
    ("matches", "{{matches '123' '[0-9]+'}} {{matches 'abc' '[0-9]+'}}"),
    ("assign", "{{#assign 'who'}}Ada{{/assign}}hello {{who}}"),
    ("parse-json-block", '{{#parseJson \'obj\'}}{"a": {"b": 3}}{{/parseJson}}{{obj.a.b}}'),
    ("parse-json", "{{lookup (parseJson '{\"k\": \"v\"}') 'k'}}"),
    ("with-parse-json", "{{#with (parseJson request.body)}}{{name}}{{/with}}"),
    ("lookup", "{{lookup request.query 'page'}}"),
    ("val", "{{val request.query.nope default='d'}} {{val request.query.page}}"),
    ("val-or", "{{val request.query.nope or='fallback'}}"),
    # string helpers (Handlebars.java's StringHelpers)
    ("upper-lower", "{{upper 'abc'}} {{lower 'ABC'}}"),
    ("capitalize", "{{capitalize 'hello big world'}} {{capitalize 'hELLO' fully=true}}"),
    ("capitalize-first", "{{capitalizeFirst 'hello world'}}"),
    ("abbreviate", "{{abbreviate 'Truncate this long sentence' 12}}"),
    ("center", "[{{center 'ab' size=8}}] [{{center 'ab' size=8 pad='*'}}]"),
    ("ljust-rjust", "[{{ljust 'ab' size=6}}] [{{rjust 'ab' size=6 pad='0'}}]"),
    ("cut", "{{cut 'a b c' ' '}}"),
    ("default-if-empty", "{{defaultIfEmpty '' 'nothing'}} {{defaultIfEmpty 'x' 'nothing'}}"),
    ("join-helper", "{{join 'a' 'b' 'c' '-'}}"),
    ("slugify", "{{slugify 'Hello World, Again!'}}"),
    ("strip-tags", "{{stripTags '<p>Hi <b>there</b></p>'}}"),
    ("replace", "{{replace 'a-b-c' '-' '+'}}"),
    ("substring", "{{substring 'abcdef' 2}} {{substring 'abcdef' 1 3}}"),
    ("yesno", "{{yesno true}} {{yesno false}} {{yesno null}} {{yesno true yes='Y'}}"),
    ("word-wrap", "{{wordWrap 'the quick brown fox' 10}}"),
    ("string-format", "{{stringFormat '%s is %d years' 'Ada' 36}}"),
    ("string-format-float", "{{stringFormat '%.2f' 3.14159}}"),
    ("number-format", "{{numberFormat 1234567.891}} {{numberFormat 0.5 'percent'}} {{numberFormat 12.3456 '#.##'}}"),
    ("trim", "[{{trim '  pad  '}}]"),
    ("size", "{{size 'abcd'}} {{size (array 1 2 3)}} {{size request.query.tag}}"),
    ("split", "{{#each (split 'a,b,c' ',')}}<{{this}}>{{/each}}"),
    ("is-odd-even", "{{isOdd 3}} {{isEven 3}} {{isOdd 4}} {{isEven 4}}"),
    ("is-odd-block", "{{#isOdd 3}}odd{{else}}even{{/isOdd}}"),
    ("string-length", "{{stringLength 'abcd'}}"),
    # encoding
    ("base64", "{{base64 'hello'}} {{base64 'aGVsbG8=' decode=true}} {{base64 'hi' padding=false}}"),
    ("url-encode", "{{urlEncode 'a b&c=d/e'}} {{urlEncode 'a%20b' decode=true}}"),
    ("form-data", "{{#formData 'a=1&b=two&b=three' 'form'}}{{/formData}}{{form.a}} {{form.b}} {{form.b.1}}"),
    ("form-data-inline", "{{lookup (formData 'x=1&y=2') 'y'}}"),
    ("regex-extract", "{{regexExtract 'order-123-abc' '[0-9]+'}}"),
    ("regex-extract-groups", "{{regexExtract 'ab12cd34' '([a-z]+)([0-9]+)' 'parts'}}{{parts.0}}|{{parts.1}}"),
    ("regex-extract-default", "{{regexExtract 'abc' '[0-9]+' default='none'}}"),
    # math and numbers
    ("math-int", "{{math 1 '+' 2}} {{math 7 '-' 10}} {{math 3 '*' 4}} {{math 7 '/' 2}} {{math 7 '%' 3}}"),
    ("math-float", "{{math 1.5 '+' 1.5}} {{math 10 '/' 4}} {{math 2.5 '*' 2}}"),
    ("math-strings", "{{math '4' '+' '5'}}"),
    ("math-nested", "{{math (math 2 '*' 3) '+' 1}}"),
    ("math-json", "{{math (jsonPath request.body '$.order.total') '*' 2}}"),
    ("range", "{{#each (range 1 4)}}{{this}} {{/each}}"),
    ("array", "{{array 1 'two' 3}}"),
    ("array-empty", "{{array}}"),
    (
        "array-add",
        "{{arrayAdd (array 1 2) 3}} {{arrayAdd (array 1 2) 0 position=0}} {{arrayAdd (array 1 2) 9 position='end'}}",
    ),
    ("array-remove", "{{arrayRemove (array 1 2 3) position=1}} {{arrayRemove (array 1 2 3) position='end'}}"),
    ("array-join", "{{arrayJoin ',' (array 'a' 'b' 'c')}} {{arrayJoin ' - ' (array 1 2) prefix='[' suffix=']'}}"),
    ("array-join-block", "{{#arrayJoin ', ' (jsonPath request.body '$.order.lines') as |l|}}{{l.sku}}{{/arrayJoin}}"),
    ("pick-random", "{{pickRandom 'only'}}"),
    # JSON helpers
    ("to-json", "{{toJson (jsonPath request.body '$.order')}}"),
    ("format-json", '{{formatJson \'{"a":1,"b":[1,2]}\'}}'),
    ("format-json-compact", "{{formatJson '{ \"a\" : 1 }' format='compact'}}"),
    ("json-merge", '{{jsonMerge \'{"a":1,"b":{"c":2}}\' \'{"b":{"d":3},"e":null}\'}}'),
    ("json-merge-remove-nulls", '{{jsonMerge \'{"a":1,"b":2}\' \'{"b":null}\' removeNulls=true}}'),
    ("json-remove", '{{jsonRemove \'{"a":1,"b":{"c":2}}\' \'$.b.c\'}}'),
    ("json-remove-array", "{{jsonRemove '[1,2,3]' '$[1]'}}"),
    ("json-array-add", "{{jsonArrayAdd '[1,2]' '3'}} {{jsonArrayAdd '[1,2]' '[3,4]' flatten=true}}"),
    ("json-array-add-max", "{{jsonArrayAdd '[1,2,3]' '4' maxItems=3}}"),
    ("json-array-add-path", "{{jsonArrayAdd '{\"a\":{\"b\":[1]}}' '2' jsonPath='$.a.b'}}"),
    ("json-sort", "{{jsonSort '[3,1,2]' '$'}}"),
    ("json-sort-objects", '{{jsonSort \'[{"n":"b"},{"n":"a"}]\' \'$[*].n\'}}'),
    # XML
    ("xpath", "{{xPath '<a><b>1</b><b>2</b></a>' '/a/b/text()'}}|{{xPath '<a><b>1</b></a>' 'count(//b)'}}"),
    ("xpath-each", "{{#each (xPath '<a><b>1</b><b>2</b></a>' '/a/b') as |i|}}[{{i.text}}]{{/each}}"),
    ("xpath-attr", "{{xPath '<a x=\"7\"/>' '/a/@x'}}"),
    ("xpath-node", "{{xPath '<a><b><c>1</c></b></a>' '/a/b'}}"),
    (
        "soap-xpath",
        "{{soapXPath '<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope/\"><soap:Body><m:Ping xmlns:m=\"x\"><m:n>5</m:n></m:Ping></soap:Body></soap:Envelope>' '/Ping/n'}}",
    ),
    ("format-xml", "{{formatXml '<a><b>1</b></a>'}}"),
    # dates (fixed inputs: exact)
    ("date-fixed", "{{date (parseDate '2024-03-05T10:15:30Z') format='yyyy-MM-dd'}}"),
    ("date-fixed-default", "{{date (parseDate '2024-03-05T10:15:30Z')}}"),
    ("parse-date-default", "{{parseDate '2024-03-05T10:15:30Z'}}"),
    ("parse-date-format", "{{date (parseDate '05/03/2024' format='dd/MM/yyyy') format='yyyy-MM-dd'}}"),
    ("parse-date-offset", "{{date (parseDate '2024-03-05T10:15:30Z') offset='3 days' format='yyyy-MM-dd HH:mm'}}"),
    (
        "date-timezone",
        "{{date (parseDate '2024-03-05T10:15:30Z') timezone='America/New_York' format='yyyy-MM-dd HH:mm Z'}}",
    ),
    ("date-x-pattern", "{{date (parseDate '2024-03-05T10:15:30Z') format=\"yyyy-MM-dd'T'HH:mm:ssXXX\"}}"),
    ("date-x-single", "{{date (parseDate '2024-03-05T10:15:30Z') format='HH:mm X'}}"),
    (
        "date-epoch",
        "{{date (parseDate '2024-03-05T10:15:30Z') format='epoch'}} {{date (parseDate '2024-03-05T10:15:30Z') format='unix'}}",
    ),
    ("date-names", "{{date (parseDate '2024-03-05T10:15:30Z') format='EEEE d MMMM yyyy, EEE MMM'}}"),
    ("date-from-body", "{{date (parseDate (jsonPath request.body '$.when')) format='dd.MM.yyyy'}}"),
    ("truncate-date", "{{truncateDate (parseDate '2024-03-05T10:15:30Z') 'first day of month'}}"),
    (
        "truncate-date-year",
        "{{date (truncateDate (parseDate '2024-03-05T10:15:30Z') 'first day of next year') format='yyyy-MM-dd'}}",
    ),
    ("date-format-helper", "{{dateFormat (parseDate '2024-03-05T10:15:30Z') 'yyyy/MM/dd'}}"),
    ("parse-date-epoch", "{{date (parseDate '1709633730000' format='epoch') format='yyyy-MM-dd'}}"),
    ("parse-date-rfc", "{{date (parseDate 'Tue, 05 Mar 2024 10:15:30 GMT') format='yyyy-MM-dd HH:mm'}}"),
]

# Random or clock values: the same shape, not the same value.
SHAPED_TEMPLATES: list[tuple[str, str]] = [
    ("now", "{{now}}"),
    ("now-format", "{{now format='yyyy-MM-dd'}}"),
    ("now-offset", "{{now offset='-1 days' format='yyyy-MM-dd HH:mm'}}"),
    ("now-epoch", "{{now format='epoch'}}"),
    ("now-unix", "{{now format='unix'}}"),
    ("now-tz", "{{now timezone='Asia/Tokyo' format='HH:mm Z'}}"),
    ("now-x", "{{now format=\"yyyy-MM-dd'T'HH:mm:ssXXX\"}}"),
    ("now-millis", "{{now format=\"yyyy-MM-dd'T'HH:mm:ss.SSS\"}}"),
    ("random-alnum", "{{randomValue length=12}}"),
    ("random-alpha-upper", "{{randomValue length=8 type='ALPHABETIC' uppercase=true}}"),
    ("random-numeric", "{{randomValue length=6 type='NUMERIC'}}"),
    ("random-hex", "{{randomValue length=10 type='HEXADECIMAL'}}"),
    ("random-uuid", "{{randomValue type='UUID'}}"),
    ("random-int-range", "{{randomInt lower=5 upper=6}}"),
    ("random-int-negative", "{{randomInt lower=-9 upper=-8}}"),
    ("request-id", "{{request.id}}"),
]


def _template_step(cid: str, template_request: dict[str, Any], compare: str = "exact") -> dict[str, Any]:
    return r(
        template_request["method"],
        f"/d/{cid}/template/x{template_request['query']}",
        compare,
        headers=template_request["headers"],
        json=template_request["json"],
    )


def generate() -> list[Case]:
    c = Cases()

    # --- URL and method ---------------------------------------------------------------------------
    c.add("m-get", [stub({"method": "GET", "urlPath": "/d/m-get"})], [g("/d/m-get"), p("/d/m-get", "status")])
    c.add(
        "m-any",
        [stub({"method": "ANY", "urlPath": "/d/m-any"})],
        [g("/d/m-any"), r("DELETE", "/d/m-any"), r("PATCH", "/d/m-any"), r("OPTIONS", "/d/m-any")],
    )
    c.add(
        "m-head", [stub({"method": "HEAD", "urlPath": "/d/m-head"})], [r("HEAD", "/d/m-head"), g("/d/m-head", "status")]
    )
    c.add("m-lower", [stub({"method": "put", "urlPath": "/d/m-lower"})], [r("PUT", "/d/m-lower", "status")])
    c.add(
        "u-url",
        [stub({"url": "/d/u-url?a=1"})],
        [g("/d/u-url?a=1"), g("/d/u-url", "status"), g("/d/u-url?a=1&b=2", "status")],
    )
    c.add(
        "u-path",
        [stub({"urlPath": "/d/u-path"})],
        [g("/d/u-path?x=y"), g("/d/u-path/", "status"), g("/D/U-PATH", "status")],
    )
    c.add(
        "u-pattern",
        [stub({"urlPattern": "/d/u-pattern/[0-9]+\\?.*"})],
        [g("/d/u-pattern/12?x"), g("/d/u-pattern/12", "status")],
    )
    c.add(
        "u-path-pattern",
        [stub({"urlPathPattern": "/d/u-pp/([a-z]+)/[0-9]+"})],
        [g("/d/u-pp/abc/1?q=1"), g("/d/u-pp/ABC/1", "status")],
    )
    c.add(
        "u-template",
        [
            stub(
                {"urlPathTemplate": "/d/u-t/{kind}/{id}", "pathParameters": {"id": {"matches": "[0-9]+"}}},
                {"body": "{{request.path.kind}}/{{request.path.id}}", "transformers": TPL},
            )
        ],
        [g("/d/u-t/books/12"), g("/d/u-t/books/x", "status"), g("/d/u-t/books", "status")],
    )
    c.add(
        "u-template-plain",
        [stub({"urlPathTemplate": "/d/u-tp/{id}"}, {"body": "{{request.pathSegments.[2]}}", "transformers": TPL})],
        [g("/d/u-tp/9"), g("/d/u-tp/9/more", "status")],
    )
    c.add(
        "u-encoded", [stub({"urlPath": "/d/u-enc/a b"})], [g("/d/u-enc/a%20b", "status"), g("/d/u-enc/a+b", "status")]
    )
    c.add("u-encoded-url", [stub({"url": "/d/u-encu/a%20b?q=x%20y"})], [g("/d/u-encu/a%20b?q=x%20y", "status")])
    c.add("u-trailing", [stub({"urlPath": "/d/u-trail/"})], [g("/d/u-trail/", "status"), g("/d/u-trail", "status")])
    c.add(
        "u-priority",
        [
            stub({"urlPathPattern": "/d/u-prio/.*"}, {"body": "generic"}, priority=5),
            stub({"urlPath": "/d/u-prio/special"}, {"body": "special"}, priority=1),
        ],
        [g("/d/u-prio/special"), g("/d/u-prio/other")],
    )
    c.add(
        "u-newest",
        [stub({"urlPath": "/d/u-new"}, {"body": "old"}), stub({"urlPath": "/d/u-new"}, {"body": "new"})],
        [g("/d/u-new")],
    )
    c.add(
        "u-priority-low-wins",
        [
            stub({"urlPath": "/d/u-prl"}, {"body": "p10"}, priority=10),
            stub({"urlPath": "/d/u-prl"}, {"body": "p2"}, priority=2),
        ],
        [g("/d/u-prl")],
    )

    # --- the operator matrix: query, header, cookie, form, path parameter -------------------------
    for name, op, values in STRING_OPERATORS:
        for where in ("query", "header", "cookie", "form", "path"):
            cid = f"op-{where}-{name}"
            base = f"/d/{cid}"
            if where == "query":
                request = {"urlPath": base, "queryParameters": {"v": op}}
                steps = [g(base if v is None else f"{base}?v={_q(v)}", "status") for v in values]
            elif where == "header":
                request = {"urlPath": base, "headers": {"X-V": op}}
                steps = [g(base, "status", headers={} if v is None else {"X-V": v}) for v in values]
            elif where == "cookie":
                request = {"urlPath": base, "cookies": {"v": op}}
                # a fresh connection each: Jetty caches a connection's cookies and reuses them for a Cookie
                # header that differs only in case (a server quirk, not WireMock's matching)
                steps = [
                    g(base, "status", headers={"Connection": "close", **({} if v is None else {"Cookie": f"v={v}"})})
                    for v in values
                ]
            elif where == "form":
                request = {"method": "POST", "urlPath": base, "formParameters": {"v": op}}
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                steps = [p(base, "status", headers=form, body="x=1" if v is None else f"v={_q(v)}") for v in values]
            else:
                if any(v is None for v in values) or "absent" in op:
                    continue
                request = {"urlPathTemplate": base + "/{v}", "pathParameters": {"v": op}}
                steps = [g(f"{base}/{_q(v)}", "status") for v in values if v]
            c.add(cid, [stub(request)], steps)

    c.add(
        "q-has-exactly",
        [stub({"urlPath": "/d/q-hx", "queryParameters": {"id": {"hasExactly": [{"equalTo": "1"}, {"equalTo": "2"}]}}})],
        [g("/d/q-hx?id=2&id=1", "status"), g("/d/q-hx?id=1", "status"), g("/d/q-hx?id=1&id=2&id=3", "status")],
    )
    c.add(
        "q-includes",
        [
            stub(
                {
                    "urlPath": "/d/q-inc",
                    "queryParameters": {"id": {"includes": [{"equalTo": "1"}, {"matches": "[5-9]"}]}},
                }
            )
        ],
        [g("/d/q-inc?id=1&id=7&id=0", "status"), g("/d/q-inc?id=1", "status")],
    )
    c.add(
        "h-multi",
        [stub({"urlPath": "/d/h-multi", "headers": {"X-M": {"hasExactly": [{"equalTo": "a"}, {"equalTo": "b"}]}}})],
        [
            g("/d/h-multi", "status", headers=[("X-M", "a"), ("X-M", "b")]),
            g("/d/h-multi", "status", headers={"X-M": "a"}),
        ],
    )
    c.add(
        "h-name-case",
        [stub({"urlPath": "/d/h-case", "headers": {"x-lower-name": {"equalTo": "v"}}})],
        [g("/d/h-case", "status", headers={"X-LOWER-NAME": "v"})],
    )
    c.add(
        "q-multi-any",
        [stub({"urlPath": "/d/q-multi", "queryParameters": {"t": {"equalTo": "b"}}})],
        [g("/d/q-multi?t=a&t=b", "status"), g("/d/q-multi?t=a&t=c", "status")],
    )
    c.add(
        "q-empty-value",
        [stub({"urlPath": "/d/q-empty", "queryParameters": {"t": {"equalTo": ""}}})],
        [g("/d/q-empty?t=", "status"), g("/d/q-empty?t", "status"), g("/d/q-empty", "status")],
    )

    basic = "Basic " + base64.b64encode(b"user:secret").decode()
    c.add(
        "auth-basic",
        [stub({"urlPath": "/d/auth", "basicAuthCredentials": {"username": "user", "password": "secret"}})],
        [
            g("/d/auth", "status", headers={"Authorization": basic}),
            g("/d/auth", "status", headers={"Authorization": basic.replace("Basic", "basic")}),
            g("/d/auth", "status", headers={"Authorization": basic.replace("Basic", "BASIC")}),
            g("/d/auth", "status", headers={"Authorization": "Basic " + base64.b64encode(b"user:nope").decode()}),
            g("/d/auth", "status"),
        ],
    )
    c.add(
        "host-scheme-port",
        [
            stub({"urlPath": "/d/hsp", "host": {"equalTo": "localhost"}}),
            stub({"urlPath": "/d/hsp2", "scheme": "https"}),
        ],
        [
            g("/d/hsp", "status", headers={"Host": "localhost"}),
            g("/d/hsp", "status", headers={"Host": "example.org"}),
            g("/d/hsp2", "status"),
        ],
    )

    # --- body patterns ----------------------------------------------------------------------------
    text_body = [
        ("b-eq", {"equalTo": "hello"}, ["hello", "hello ", "HELLO"]),
        ("b-eq-ci", {"equalTo": "hello", "caseInsensitive": True}, ["HeLLo"]),
        ("b-contains", {"contains": "ell"}, ["hello", "world"]),
        ("b-not-contains", {"doesNotContain": "ell"}, ["hello", "world"]),
        ("b-matches", {"matches": "h.*o"}, ["hello", "hello\nworld", "line1\nhello"]),
        ("b-matches-multiline", {"matches": ".*world.*"}, ["hello\nworld\nagain", "nothing"]),
        ("b-matches-anchor", {"matches": "^a.*z$"}, ["abcz", "a\nz"]),
        ("b-not-matches", {"doesNotMatch": ".*secret.*"}, ["top\nsecret", "public"]),
        ("b-binary", {"binaryEqualTo": base64.b64encode(b"\x00\x01bin").decode()}, ["\x00\x01bin", "bin"]),
        ("b-absent-ish", {"absent": True}, ["", "x"]),
    ]
    for cid, op, bodies in text_body:
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [op]})],
            [p(f"/d/{cid}", "status", body=b) for b in bodies],
        )

    json_body = json.dumps(DOC)
    equal_to_json = [
        ("j-eq", {"equalToJson": DOC}, [DOC, {**DOC, "extra": 1}]),
        (
            "j-eq-string",
            {"equalToJson": json.dumps({"a": 1, "b": [1, 2]})},
            [{"b": [1, 2], "a": 1}, {"a": 1, "b": [2, 1]}],
        ),
        ("j-eq-order", {"equalToJson": {"a": [1, 2, 3]}, "ignoreArrayOrder": True}, [{"a": [3, 1, 2]}, {"a": [1, 2]}]),
        ("j-eq-extra", {"equalToJson": {"a": 1}, "ignoreExtraElements": True}, [{"a": 1, "b": 2}, {"b": 2}]),
        (
            "j-eq-both",
            {"equalToJson": {"a": [{"x": 1}]}, "ignoreArrayOrder": True, "ignoreExtraElements": True},
            [{"a": [{"y": 2}, {"x": 1, "z": 3}], "q": 1}, {"a": []}],
        ),
        ("j-eq-numbers", {"equalToJson": {"n": 1}}, [{"n": 1.0}, {"n": "1"}, {"n": 1}]),
        ("j-eq-null", {"equalToJson": {"n": None}}, [{"n": None}, {}]),
        ("j-ph-any-string", {"equalToJson": {"id": "${json-unit.any-string}"}}, [{"id": "x"}, {"id": 1}]),
        ("j-ph-any-number", {"equalToJson": {"n": "${json-unit.any-number}"}}, [{"n": 1.5}, {"n": "1"}]),
        ("j-ph-any-bool", {"equalToJson": {"b": "${json-unit.any-boolean}"}}, [{"b": False}, {"b": "true"}]),
        ("j-ph-regex", {"equalToJson": {"id": "${json-unit.regex}[a-z]+-[0-9]+"}}, [{"id": "ab-12"}, {"id": "ab12"}]),
        ("j-ph-ignore", {"equalToJson": {"id": "${json-unit.ignore}", "k": 1}}, [{"id": [1], "k": 1}, {"k": 1}]),
        (
            "j-ph-ignore-element",
            {"equalToJson": {"a": [1, "${json-unit.ignore-element}", 3]}},
            [{"a": [1, 99, 3]}, {"a": [1, 3]}],
        ),
        ("j-eq-array-root", {"equalToJson": [1, 2]}, [[1, 2], [2, 1]]),
        ("j-not-json", {"equalToJson": {"a": 1}}, ["not json"]),
    ]
    for cid, op, bodies in equal_to_json:
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [op]})],
            [p(f"/d/{cid}", "status", body=b if isinstance(b, str) else json.dumps(b)) for b in bodies],
        )

    for i, expr in enumerate(JSONPATHS):
        cid = f"jp-{i:02d}"
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [{"matchesJsonPath": expr}]})],
            [p(f"/d/{cid}", "status", body=json_body)],
        )
    for i, expr in enumerate(ARRAY_PATHS):
        cid = f"jpa-{i:02d}"
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [{"matchesJsonPath": expr}]})],
            [p(f"/d/{cid}", "status", body=json.dumps(ARRAY_DOC))],
        )
    for i, (expr, sub) in enumerate(JSONPATH_SUBMATCHERS):
        cid = f"jps-{i:02d}"
        c.add(
            cid,
            [
                stub(
                    {
                        "method": "POST",
                        "urlPath": f"/d/{cid}",
                        "bodyPatterns": [{"matchesJsonPath": {"expression": expr, **sub}}],
                    }
                )
            ],
            [p(f"/d/{cid}", "status", body=json_body)],
        )
    c.add(
        "jp-not-json",
        [stub({"method": "POST", "urlPath": "/d/jp-nj", "bodyPatterns": [{"matchesJsonPath": "$.a"}]})],
        [p("/d/jp-nj", "status", body="<a/>"), p("/d/jp-nj", "status", body="")],
    )
    c.add(
        "jp-two",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/jp-two",
                    "bodyPatterns": [{"matchesJsonPath": "$.a"}, {"matchesJsonPath": "$.b"}],
                }
            )
        ],
        [p("/d/jp-two", "status", json={"a": 1, "b": 2}), p("/d/jp-two", "status", json={"a": 1})],
    )
    c.add(
        "jp-scalar-doc",
        [stub({"method": "POST", "urlPath": "/d/jp-sd", "bodyPatterns": [{"matchesJsonPath": "$[?(@ > 5)]"}]})],
        [p("/d/jp-sd", "status", body="7"), p("/d/jp-sd", "status", body="[1, 9]")],
    )

    c.add(
        "schema",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/schema",
                    "bodyPatterns": [
                        {
                            "matchesJsonSchema": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        }
                    ],
                }
            )
        ],
        [
            p("/d/schema", "status", json={"id": 1, "tags": ["a"]}),
            p("/d/schema", "status", json={"id": "1"}),
            p("/d/schema", "status", json={"tags": []}),
            p("/d/schema", "status", body="nope"),
        ],
    )
    c.add(
        "schema-string",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/schema-s",
                    "bodyPatterns": [
                        {"matchesJsonSchema": json.dumps({"type": "array", "minItems": 2}), "schemaVersion": "V7"}
                    ],
                }
            )
        ],
        [p("/d/schema-s", "status", json=[1, 2]), p("/d/schema-s", "status", json=[1])],
    )

    xml_cases = [
        (
            "x-eq",
            {"equalToXml": "<a><b>1</b><c/></a>"},
            ["<a><b>1</b><c/></a>", "<a>\n  <b>1</b>\n  <c></c>\n</a>", "<a><c/><b>1</b></a>", "<a><b>2</b><c/></a>"],
        ),
        ("x-eq-order", {"equalToXml": "<a><b>1</b><c/></a>", "ignoreOrderOfSameNode": True}, ["<a><c/><b>1</b></a>"]),
        (
            "x-eq-ph",
            {"equalToXml": "<a><id>${xmlunit.ignore}</id><n>1</n></a>", "enablePlaceholders": True},
            ["<a><id>zz</id><n>1</n></a>", "<a><id>zz</id><n>2</n></a>"],
        ),
        ("x-eq-attrs", {"equalToXml": "<a x='1' y='2'/>"}, ["<a y='2' x='1'/>", "<a x='1'/>"]),
        (
            "x-eq-ns",
            {"equalToXml": "<p:a xmlns:p='urn:x'><p:b>1</p:b></p:a>"},
            ["<q:a xmlns:q='urn:x'><q:b>1</q:b></q:a>", "<a><b>1</b></a>"],
        ),
        ("x-not-xml", {"equalToXml": "<a/>"}, ["not xml", ""]),
    ]
    for cid, op, bodies in xml_cases:
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [op]})],
            [p(f"/d/{cid}", "status", body=b) for b in bodies],
        )
    for i, (expr, extra) in enumerate(XPATHS):
        cid = f"xp-{i:02d}"
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [{"matchesXPath": expr, **extra}]})],
            [p(f"/d/{cid}", "status", body=XML_DOC)],
        )
    for i, (expr, sub) in enumerate(XPATH_SUBMATCHERS):
        cid = f"xps-{i:02d}"
        c.add(
            cid,
            [
                stub(
                    {
                        "method": "POST",
                        "urlPath": f"/d/{cid}",
                        "bodyPatterns": [{"matchesXPath": {"expression": expr, **sub}}],
                    }
                )
            ],
            [p(f"/d/{cid}", "status", body=XML_DOC)],
        )

    dates = [
        ("dt-before-now", {"before": "now"}, ["2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"]),
        ("dt-after-offset", {"after": "now -1 days"}, ["2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"]),
        (
            "dt-format",
            {"equalToDateTime": "2024-05-01T00:00:00Z", "actualFormat": "dd/MM/yyyy"},
            ["01/05/2024", "02/05/2024"],
        ),
        (
            "dt-truncate",
            {"equalToDateTime": "2024-05-01T00:00:00Z", "truncateActual": "first day of month"},
            ["2024-05-17T10:11:12Z", "2024-06-01T00:00:00Z"],
        ),
        ("dt-local", {"before": "2024-05-01T00:00:00"}, ["2024-04-30T23:00:00", "2024-05-02"]),
        (
            "dt-offset-zone",
            {"equalToDateTime": "2024-05-01T10:00:00Z"},
            ["2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+02:00"],
        ),
        ("dt-rfc", {"after": "2024-01-01T00:00:00Z"}, ["Wed, 01 May 2024 10:00:00 GMT", "garbage"]),
    ]
    for cid, op, values in dates:
        c.add(
            cid,
            [stub({"urlPath": f"/d/{cid}", "headers": {"X-When": op}})],
            [g(f"/d/{cid}", "status", headers={"X-When": v}) for v in values],
        )

    mp = (
        b'--XyZ\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
        b'{"kind": "invoice"}\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello file\r\n--XyZ--\r\n"
    )
    mph = {"Content-Type": "multipart/form-data; boundary=XyZ"}
    c.add(
        "mp-any",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/mp-any",
                    "multipartPatterns": [
                        {
                            "matchingType": "ANY",
                            "headers": {"Content-Disposition": {"contains": 'name="file"'}},
                            "bodyPatterns": [{"equalTo": "hello file"}],
                        }
                    ],
                }
            )
        ],
        [p("/d/mp-any", "status", headers=mph, body=mp)],
    )
    c.add(
        "mp-all",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/mp-all",
                    "multipartPatterns": [
                        {"matchingType": "ALL", "headers": {"Content-Disposition": {"contains": "form-data"}}}
                    ],
                }
            )
        ],
        [p("/d/mp-all", "status", headers=mph, body=mp), p("/d/mp-all", "status", body="plain")],
    )
    c.add(
        "mp-json-part",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/mp-json",
                    "multipartPatterns": [{"bodyPatterns": [{"matchesJsonPath": "$[?(@.kind == 'invoice')]"}]}],
                }
            )
        ],
        [p("/d/mp-json", "status", headers=mph, body=mp)],
    )

    # --- responses --------------------------------------------------------------------------------
    c.add(
        "rs-status",
        [stub({"urlPath": "/d/rs-status"}, {"status": 418, "statusMessage": "Teapot"})],
        [g("/d/rs-status")],
    )
    c.add(
        "rs-headers",
        [
            stub(
                {"urlPath": "/d/rs-h"},
                {"headers": {"X-One": "1", "X-Many": ["a", "b"], "Content-Type": "text/csv"}, "body": "a,b"},
            )
        ],
        [g("/d/rs-h")],
    )
    c.add(
        "rs-json", [stub({"urlPath": "/d/rs-json"}, {"jsonBody": {"b": [1, {"c": None}], "a": "é"}})], [g("/d/rs-json")]
    )
    c.add(
        "rs-json-ct",
        [stub({"urlPath": "/d/rs-jct"}, {"jsonBody": [1, 2], "headers": {"Content-Type": "application/json"}})],
        [g("/d/rs-jct")],
    )
    c.add(
        "rs-b64",
        [stub({"urlPath": "/d/rs-b64"}, {"base64Body": base64.b64encode(b"bytes\x00\x01").decode()})],
        [g("/d/rs-b64")],
    )
    c.add("rs-file", [stub({"urlPath": "/d/rs-file"}, {"bodyFileName": "hello.txt"})], [g("/d/rs-file")])
    c.add(
        "rs-file-json",
        [stub({"urlPath": "/d/rs-fj"}, {"bodyFileName": "data.json", "headers": {"Content-Type": "application/json"}})],
        [g("/d/rs-fj")],
    )
    c.add("rs-file-missing", [stub({"urlPath": "/d/rs-fm"}, {"bodyFileName": "nope.txt"})], [g("/d/rs-fm", "status")])
    c.add(
        "rs-file-tpl",
        [stub({"urlPath": "/d/rs-ft"}, {"bodyFileName": "tpl.txt", "transformers": TPL})],
        [g("/d/rs-ft")],
    )
    c.add(
        "rs-file-tpl-name",
        [stub({"urlPath": "/d/rs-ftn"}, {"bodyFileName": "{{request.query.f}}.txt", "transformers": TPL})],
        [g("/d/rs-ftn?f=hello")],
    )
    c.add("rs-empty", [stub({"urlPath": "/d/rs-empty"}, {"status": 204})], [g("/d/rs-empty")])
    c.add("rs-no-response", [{"request": {"urlPath": "/d/rs-none"}}], [g("/d/rs-none")])
    c.add(
        "rs-delay",
        [stub({"urlPath": "/d/rs-delay"}, {"body": "slow", "fixedDelayMilliseconds": 20})],
        [g("/d/rs-delay")],
    )
    c.add(
        "rs-uniform",
        [
            stub(
                {"urlPath": "/d/rs-uni"},
                {"body": "u", "delayDistribution": {"type": "uniform", "lower": 1, "upper": 10}},
            )
        ],
        [g("/d/rs-uni")],
    )
    c.add(
        "rs-dribble",
        [
            stub(
                {"urlPath": "/d/rs-drib"},
                {"body": "dribbled body", "chunkedDribbleDelay": {"numberOfChunks": 3, "totalDuration": 30}},
            )
        ],
        [g("/d/rs-drib")],
    )
    for fault in ("CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK", "RANDOM_DATA_THEN_CLOSE"):
        cid = f"rs-fault-{fault.lower()}"
        c.add(cid, [stub({"urlPath": f"/d/{cid}"}, {"fault": fault})], [g(f"/d/{cid}", "fault")])
    c.add(
        "rs-header-tpl",
        [
            stub(
                {"urlPath": "/d/rs-htpl"},
                {
                    "headers": {"X-Echo": "{{request.headers.X-In}}", "Location": "/items/{{request.query.id}}"},
                    "transformers": TPL,
                },
            )
        ],
        [g("/d/rs-htpl?id=5", headers={"X-In": "in"})],
    )
    c.add(
        "rs-json-tpl",
        [
            stub(
                {"method": "POST", "urlPath": "/d/rs-jtpl"},
                {"jsonBody": {"id": "{{jsonPath request.body '$.id'}}", "n": 1}, "transformers": TPL},
            )
        ],
        [p("/d/rs-jtpl", json={"id": "abc"})],
    )
    c.add("rs-not-templated", [stub({"urlPath": "/d/rs-nt"}, {"body": "{{request.path}}"})], [g("/d/rs-nt")])
    c.add(
        "rs-tpl-params",
        [
            stub(
                {"urlPath": "/d/rs-tp"},
                {
                    "body": "{{parameters.a}}-{{parameters.b.c}}",
                    "transformers": TPL,
                    "transformerParameters": {"a": 1, "b": {"c": "x"}},
                },
            )
        ],
        [g("/d/rs-tp")],
    )

    # --- templating: every helper on one request ------------------------------------------------------
    for name, template in TEMPLATES:
        cid = f"t-{name}"
        c.add(
            cid,
            [
                stub(
                    {"urlPath": f"/d/{cid}/template/x"},
                    {"body": template, "transformers": TPL, "transformerParameters": {"kind": "k"}},
                )
            ],
            [_template_step(cid, TEMPLATE_REQUEST)],
        )
    c.add(
        "tr-random-decimal",
        [stub({"urlPath": "/d/tr-rd"}, {"body": "{{randomDecimal lower=1 upper=1.0001}}", "transformers": TPL})],
        [g("/d/tr-rd", "regex:1\\.0\\d*")],
    )
    c.add(
        "tr-random-int-default",
        [stub({"urlPath": "/d/tr-ri"}, {"body": "{{randomInt}}", "transformers": TPL})],
        [g("/d/tr-ri", "regex:-?\\d+")],
    )
    for name, template in SHAPED_TEMPLATES:
        cid = f"ts-{name}"
        c.add(
            cid,
            [stub({"urlPath": f"/d/{cid}/template/x"}, {"body": template, "transformers": TPL})],
            [_template_step(cid, TEMPLATE_REQUEST, "shape")],
        )
    c.add(
        "t-unknown-helper",
        [stub({"urlPath": "/d/t-unk"}, {"body": "{{noSuchHelper 'x'}}", "transformers": TPL})],
        [g("/d/t-unk", "status")],
    )
    c.add(
        "t-bad-syntax",
        [stub({"urlPath": "/d/t-bad"}, {"body": "{{#if true}}unclosed", "transformers": TPL})],
        [g("/d/t-bad", "status")],
    )
    c.add(
        "t-missing-path",
        [stub({"urlPath": "/d/t-miss"}, {"body": "[{{request.nothing.deeper}}]", "transformers": TPL})],
        [g("/d/t-miss")],
    )
    c.add(
        "t-jsonpath-bad-body",
        [
            stub(
                {"method": "POST", "urlPath": "/d/t-jbb"},
                {"body": "[{{jsonPath request.body '$.a'}}]", "transformers": TPL},
            )
        ],
        [p("/d/t-jbb", body="not json")],
    )

    # --- proxy with a templated base URL (each server proxies to itself) ---------------------------
    c.add(
        "px-templated",
        [
            stub({"urlPath": "/d/px/target"}, {"body": "target reached", "headers": {"X-Target": "1"}}),
            stub(
                {"urlPath": "/d/px/front"},
                {
                    "proxyBaseUrl": "{{request.baseUrl}}/d/px/target",
                    "proxyUrlPrefixToRemove": "/d/px/front",
                    "transformers": TPL,
                },
            ),
            stub(
                {"urlPathPattern": "/d/px2/.*"},
                {"proxyBaseUrl": "{{request.baseUrl}}/d/px", "proxyUrlPrefixToRemove": "/d/px2", "transformers": TPL},
            ),
        ],
        [g("/d/px/front?x=1"), g("/d/px/front"), g("/d/px2/target"), g("/d/px2/other", "status")],
    )

    # --- admin API, journal, scenarios (isolated: each after a reset) -----------------------------
    _admin_cases(c)
    generate_extra(c)
    return c.cases


def _q(v: str) -> str:
    from urllib.parse import quote

    return quote(v, safe="")


def _admin_cases(c: Cases) -> None:
    A = "/__admin"
    one = stub({"method": "GET", "urlPath": "/a/one"}, {"body": "one"}, name="one", metadata={"team": "pay", "n": 1})
    two = stub(
        {"method": "POST", "urlPath": "/a/two"},
        {"body": "two"},
        name="two",
        priority=1,
        metadata={"team": "ops", "tags": ["x"]},
    )
    three = stub({"urlPathPattern": "/a/.*"}, {"status": 202}, name="three", priority=9)
    four = stub({"method": "GET", "urlPath": "/a/one"}, {"body": "four"}, name="four", priority=3)
    many = [one, two, three, four]

    c.add("ad-list", many, [g(f"{A}/mappings", "json")], "isolated")
    c.add(
        "ad-list-page",
        many,
        [
            g(f"{A}/mappings?limit=2", "json"),
            g(f"{A}/mappings?limit=2&offset=1", "json"),
            g(f"{A}/mappings?offset=3", "json"),
        ],
        "isolated",
    )
    c.add(
        "ad-get",
        many,
        [
            g(f"{A}/mappings/" + _id("ad-get", 1), "json"),
            g(f"{A}/mappings/00000000-0000-0000-0000-000000000000", "status"),
        ],
        "isolated",
    )
    c.add(
        "ad-create-echo",
        [],
        [
            p(
                f"{A}/mappings",
                "json",
                json={
                    "request": {"urlPath": "/x", "queryParameters": {"a": {"equalTo": "1"}}},
                    "response": {"jsonBody": {"k": 1}, "headers": {"A": "b"}},
                    "priority": 2,
                    "metadata": {"m": True},
                },
            )
        ],
        "isolated",
    )
    c.add(
        "ad-create-bad",
        [],
        [
            p(f"{A}/mappings", "json", json={"request": {"urlPath": "/x"}, "response": {"status": "x"}}),
            p(f"{A}/mappings", "status", json={"request": {"urlPath": "/x"}, "respnse": {}}),
            p(f"{A}/mappings", "status", body="{not json"),
        ],
        "isolated",
    )
    c.add(
        "ad-put",
        many,
        [
            r(
                "PUT",
                f"{A}/mappings/" + _id("ad-put", 0),
                "json",
                json={"request": {"urlPath": "/a/changed"}, "response": {"body": "c"}},
            ),
            g("/a/changed"),
            g("/a/one", "status"),
        ],
        "isolated",
    )
    c.add(
        "ad-delete",
        many,
        [
            r("DELETE", f"{A}/mappings/" + _id("ad-delete", 0), "status"),
            g("/a/one"),
            r("DELETE", f"{A}/mappings/" + _id("ad-delete", 0), "status"),
        ],
        "isolated",
    )
    c.add("ad-delete-all", many, [r("DELETE", f"{A}/mappings", "status"), g(f"{A}/mappings", "json")], "isolated")
    c.add(
        "ad-find-meta",
        many,
        [
            p(
                f"{A}/mappings/find-by-metadata",
                "json",
                json={"matchesJsonPath": {"expression": "$.team", "equalTo": "pay"}},
            ),
            p(f"{A}/mappings/find-by-metadata", "json", json={"matchesJsonPath": "$[?(@.n == 1)]"}),
            p(f"{A}/mappings/find-by-metadata", "json", json={"matchesJsonPath": "$.tags[?(@ == 'x')]"}),
            p(f"{A}/mappings/find-by-metadata", "json", json={"equalToJson": {"team": "ops", "tags": ["x"]}}),
        ],
        "isolated",
    )
    c.add(
        "ad-remove-meta",
        many,
        [
            p(
                f"{A}/mappings/remove-by-metadata",
                "status",
                json={"matchesJsonPath": {"expression": "$.team", "equalTo": "ops"}},
            ),
            g(f"{A}/mappings", "json"),
        ],
        "isolated",
    )
    c.add(
        "ad-import",
        [],
        [p(f"{A}/mappings/import", "status", json={"mappings": [one, two]}), g(f"{A}/mappings", "json")],
        "isolated",
    )
    c.add("ad-unmatched-mappings", many, [g("/a/one"), g(f"{A}/mappings/unmatched", "json")], "isolated")

    traffic = [g("/a/one"), p("/a/two", body="b"), g("/nowhere?x=1"), r("PUT", "/a/three"), g("/also/nowhere")]
    c.add("jr-list", many, [*traffic, g(f"{A}/requests", "json")], "isolated")
    c.add("jr-list-limit", many, [*traffic, g(f"{A}/requests?limit=2", "json")], "isolated")
    c.add(
        "jr-unmatched",
        many,
        [*traffic, g(f"{A}/requests/unmatched", "json"), g(f"{A}/requests?unmatched=true", "json")],
        "isolated",
    )
    c.add("jr-near-misses", many, [*traffic, g(f"{A}/requests/unmatched/near-misses", "json")], "isolated")
    c.add(
        "jr-count",
        many,
        [
            *traffic,
            p(f"{A}/requests/count", "json", json={"method": "GET", "urlPathPattern": "/a/.*"}),
            p(f"{A}/requests/count", "json", json={"method": "ANY", "urlPattern": "/.*"}),
        ],
        "isolated",
    )
    c.add(
        "jr-find",
        many,
        [*traffic, p(f"{A}/requests/find", "json", json={"method": "POST", "urlPath": "/a/two"})],
        "isolated",
    )
    c.add(
        "jr-remove",
        many,
        [
            *traffic,
            p(f"{A}/requests/remove", "json", json={"method": "GET", "urlPath": "/a/one"}),
            g(f"{A}/requests", "json"),
        ],
        "isolated",
    )
    c.add("jr-reset", many, [*traffic, r("DELETE", f"{A}/requests", "status"), g(f"{A}/requests", "json")], "isolated")
    c.add(
        "jr-near-request",
        many,
        [p(f"{A}/near-misses/request", "json", json={"url": "/a/onf", "method": "GET"})],
        "isolated",
    )
    c.add(
        "jr-near-pattern",
        many,
        [*traffic, p(f"{A}/near-misses/request-pattern", "json", json={"url": "/a/tw", "method": "POST"})],
        "isolated",
    )
    c.add(
        "jr-404-closest",
        [stub({"urlPath": "/a/x1"}, name="x1"), stub({"urlPath": "/a/x2"}, name="x2")],
        [g("/a/x3")],
        "isolated",
    )
    c.add("jr-404-closest-many", many, [g("/a/onx"), p("/a/one"), g("/zzz")], "isolated")
    c.add("jr-serve-event", [one], [g("/a/one"), g(f"{A}/requests", "json")], "isolated")
    c.add(
        "jr-template-error",
        [stub({"urlPath": "/a/err"}, {"body": "{{math 1 '/' 0}}", "transformers": TPL})],
        [g("/a/err", "status"), g(f"{A}/requests", "json")],
        "isolated",
    )

    scen = [
        stub({"urlPath": "/s/cart"}, {"body": "empty"}, scenarioName="cart", requiredScenarioState="Started"),
        stub(
            {"method": "POST", "urlPath": "/s/cart"},
            {"status": 201},
            scenarioName="cart",
            requiredScenarioState="Started",
            newScenarioState="full",
        ),
        stub({"urlPath": "/s/cart"}, {"body": "one item"}, scenarioName="cart", requiredScenarioState="full"),
        stub({"urlPath": "/s/other"}, {"body": "o"}, scenarioName="other", newScenarioState="done"),
    ]
    c.add("sc-flow", scen, [g("/s/cart"), p("/s/cart"), g("/s/cart"), g(f"{A}/scenarios", "json")], "isolated")
    c.add(
        "sc-set",
        scen,
        [
            r("PUT", f"{A}/scenarios/cart/state", "status", json={"state": "full"}),
            g("/s/cart"),
            r("PUT", f"{A}/scenarios/cart/state", "json", json={"state": "no-such-state"}),
            r("PUT", f"{A}/scenarios/nope/state", "json", json={"state": "x"}),
            g("/s/cart"),
        ],
        "isolated",
    )
    c.add(
        "sc-reset",
        scen,
        [p("/s/cart"), g("/s/other"), p(f"{A}/scenarios/reset", "status"), g("/s/cart"), g(f"{A}/scenarios", "json")],
        "isolated",
    )
    c.add(
        "sc-wrong-state-404",
        scen,
        [r("PUT", f"{A}/scenarios/cart/state", "status", json={"state": "full"}), p("/s/cart", "exact")],
        "isolated",
    )

    c.add("ad-settings", [], [g(f"{A}/settings", "json")], "isolated")
    c.add("ad-health", [], [g(f"{A}/health", "status")], "isolated")
    c.add("ad-version", [], [g(f"{A}/version", "json")], "isolated")
    c.add("ad-not-found", [], [g(f"{A}/nope", "status"), r("PATCH", f"{A}/mappings", "status")], "isolated")
    c.add(
        "ad-reset",
        many,
        [g("/a/one"), p(f"{A}/reset", "status"), g(f"{A}/mappings", "json"), g(f"{A}/requests", "json")],
        "isolated",
    )
    c.add(
        "ad-files",
        [],
        [
            r("PUT", f"{A}/files/diff-x.txt", "status", body="file body"),
            g(f"{A}/files/diff-x.txt"),
            r("DELETE", f"{A}/files/diff-x.txt", "status"),
            g(f"{A}/files/diff-x.txt", "status"),
        ],
        "isolated",
    )


def _id(case_id: str, index: int) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/{index}"))


# --- a second batch, written after the first one passed: how a WireMock user's mapping folder looks ---------

ORDER = {
    "store": {
        "book": [
            {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
            {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99, "isbn": "0-553"},
            {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "price": 8.99, "isbn": "0-55"},
            {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord", "price": 22.99},
        ],
        "bicycle": {"color": "red", "price": 19.95},
    },
    "expensive": 10,
    "weird key": {"a.b": 1, "c-d": [1, 2, 3]},
}

EXTRA_JSONPATHS = [
    "$.store.book[*].author",
    "$..author",
    "$.store.*",
    "$.store..price",
    "$..book[2]",
    "$..book[-1:]",
    "$..book[0,1]",
    "$..book[:2]",
    "$..book[?(@.isbn)]",
    "$.store.book[?(@.price < 10)]",
    "$..book[?(@.price <= $['expensive'])]",
    "$..book[?(@.author =~ /.*REES/i)]",
    "$..*",
    "$..book.length()",
    "$['weird key']['a.b']",
    "$['weird key']['c-d'][1]",
    "$.store.book[?(@.category == 'fiction' && @.price > 20)].title",
    "$.store.book[?(@.category != 'fiction')].title",
    "$.store.bicycle[?(@.color == 'red')]",
    "$.store.book[1:3].title",
    "$.store.book[?(@.title in ['Sword', 'Moby Dick'])].price",
    "$.expensive",
    "$[?(@.expensive == 10)]",
    "$[?(@.expensive > '5')]",
    "$.store.book[?(@.price > 100)]",
    "$.nothing.deeper",
    "$.store.book[10].title",
    "$.store.book[*].isbn",
]

EXTRA_TEMPLATES: list[tuple[str, str]] = [
    (
        "x-json-body",
        '{\n  "id": "{{jsonPath request.body \'$.order.id\'}}",\n  "lines": [\n    {{#each (jsonPath request.body \'$.order.lines\') as |l|}}\n    {"sku": "{{l.sku}}", "n": {{l.qty}}}{{#unless @last}},{{/unless}}\n    {{/each}}\n  ]\n}',
    ),
    (
        "x-nested-each",
        "{{#each (jsonPath request.body '$.order.lines')}}{{#each (array 1 2)}}{{../sku}}{{this}}{{/each}};{{/each}}",
    ),
    ("x-each-index", "{{#each request.query.tag}}{{@index}}:{{this}}{{#if @first}}(first){{/if}} {{/each}}"),
    ("x-each-object-key", "{{#each (jsonPath request.body '$.order.lines.[0]')}}{{@key}}={{this}}|{{/each}}"),
    ("x-with-else", "{{#with request.query.nope}}has{{else}}none{{/with}}"),
    ("x-unless-else", "{{#unless (eq request.query.page.[0] '2')}}not two{{else}}two{{/unless}}"),
    ("x-if-and", "{{#if (and (eq request.query.page.[0] '2') (contains request.body 'ada'))}}both{{/if}}"),
    ("x-if-or-not", "{{#if (or (not true) (gt 3 1))}}yes{{/if}}"),
    ("x-headers-each", "{{#each request.headers}}{{#if (eq @key 'X-Trace')}}{{this}}{{/if}}{{/each}}"),
    ("x-header-missing", "[{{request.headers.X-Nope}}]"),
    ("x-query-encoded", "{{request.query.q}}|{{urlEncode request.query.q}}"),
    ("x-lookup-dynamic", "{{lookup request.query (lower 'PAGE')}}"),
    ("x-math-negative", "{{math -5 '+' 2}}|{{math 5 '-' 7.5}}|{{math 9 '%' 4}}|{{math 1 '/' 3}}"),
    ("x-math-strings-float", "{{math '2.50' '*' '2'}}"),
    ("x-size-query", "{{size request.query}}|{{size request.headers}}|{{size (jsonPath request.body '$.tags')}}"),
    ("x-string-null", "[{{upper request.query.nope}}][{{lower null}}][{{capitalize ''}}]"),
    ("x-default-if-empty", "{{defaultIfEmpty request.query.nope 'dflt'}}|{{defaultIfEmpty request.query.page 'dflt'}}"),
    (
        "x-json-object-field",
        "{{jsonPath request.body '$.order.lines[0].sku'}}-{{jsonPath request.body '$.order.lines[-1].qty'}}",
    ),
    ("x-json-count", "{{size (jsonPath request.body '$.order.lines')}}"),
    ("x-json-bool-if", "{{#if (jsonPath request.body '$.flag')}}on{{else}}off{{/if}}"),
    ("x-json-number-cmp", "{{#if (gt (jsonPath request.body '$.n') 40)}}big{{/if}}"),
    ("x-parse-json-lookup", '{{#with (parseJson \'{"a": {"b": [10, 20]}}\')}}{{a.b.[1]}}{{/with}}'),
    ("x-array-each", "{{#each (array 'x' 'y') as |v|}}{{v}}{{@index}}{{/each}}"),
    ("x-range-sum", "{{#each (range 3 5)}}{{math this '*' 2}} {{/each}}"),
    ("x-regex-multiple", "{{regexExtract 'a1b22c333' '[0-9]+'}}"),
    ("x-replace-chain", "{{replace (upper 'a-b') '-' '_'}}"),
    ("x-base64-roundtrip", "{{base64 (base64 'héllo') decode=true}}"),
    ("x-date-now-offset-format", "{{#with (now offset='0 days')}}ok{{/with}}"),
    ("x-date-parse-local", "{{date (parseDate '2024-03-05T10:15:30') format='yyyy'}}"),
    ("x-date-parse-offset", "{{date (parseDate '2024-03-05T10:15:30+02:00') format='HH:mm XXX'}}"),
    ("x-date-epoch-default", "{{date (parseDate '1709633730' format='unix')}}"),
    ("x-trim-block", "[{{#trim}}  spaced  {{/trim}}]"),
    ("x-format-json-block", '{{#formatJson}}{"z":1}{{/formatJson}}'),
    ("x-json-merge-block", '{{#jsonMerge \'{"a":1}\'}}{"b":2}{{/jsonMerge}}'),
    ("x-to-json-array", "{{toJson (array 1 'a' true)}}"),
    ("x-val-assign", "{{val 'v' assign='x'}}{{x}}"),
    ("x-pick-random-list", "{{pickRandom (array 'only')}}"),
    ("x-contains-block", "{{#contains 'hello' 'ell'}}yes{{/contains}}"),
    ("x-matches-block", "{{#matches '123' '[0-9]+'}}num{{/matches}}"),
    ("x-eq-numbers-strings", "{{eq 10 10.0}}|{{eq 'a' 'a'}}|{{neq 1 2}}|{{eq (jsonPath request.body '$.n') 42}}"),
    ("x-triple-json", "{{{jsonPath request.body '$.order'}}}"),
    ("x-comment-multi", "a{{!-- {{not rendered}} --}}b"),
    ("x-raw-braces", "\\{{request.path}} literal"),
    ("x-whitespace", "  {{request.method}}  \n\t{{request.query.page}}\n"),
    ("x-html", "<p>{{request.query.q}} & {{jsonPath request.body '$.html'}}</p>"),
]


def generate_extra(c: Cases) -> None:
    doc = json.dumps(ORDER)
    for i, expr in enumerate(EXTRA_JSONPATHS):
        cid = f"xjp-{i:02d}"
        c.add(
            cid,
            [stub({"method": "POST", "urlPath": f"/d/{cid}", "bodyPatterns": [{"matchesJsonPath": expr}]})],
            [p(f"/d/{cid}", "status", body=doc)],
        )
        tid = f"xjt-{i:02d}"
        c.add(
            tid,
            [
                stub(
                    {"method": "POST", "urlPath": f"/d/{tid}"},
                    {"body": "{{jsonPath request.body '" + expr + "'}}", "transformers": TPL},
                )
            ],
            [p(f"/d/{tid}", body=doc)],
        )
    for name, template in EXTRA_TEMPLATES:
        cid = f"xt-{name}"
        c.add(
            cid,
            [stub({"urlPath": f"/d/{cid}/template/x"}, {"body": template, "transformers": TPL})],
            [_template_step(cid, TEMPLATE_REQUEST)],
        )
    # a payments API as a mapping folder would describe it
    c.add(
        "x-payments",
        [
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/x-pay/charges",
                    "headers": {"Idempotency-Key": {"matches": "[a-f0-9-]{8,}"}},
                    "bodyPatterns": [{"matchesJsonPath": "$[?(@.amount > 0)]"}, {"matchesJsonPath": "$.currency"}],
                },
                {
                    "status": 201,
                    "headers": {
                        "Content-Type": "application/json",
                        "Location": "/charges/{{randomValue length=4 type='NUMERIC'}}",
                    },
                    "jsonBody": {"status": "succeeded", "amount": "{{jsonPath request.body '$.amount'}}"},
                    "transformers": TPL,
                },
            ),
            stub(
                {
                    "method": "POST",
                    "urlPath": "/d/x-pay/charges",
                    "bodyPatterns": [{"matchesJsonPath": "$[?(@.amount > 100000)]"}],
                },
                {"status": 402, "jsonBody": {"error": {"code": "card_declined"}}},
                priority=1,
            ),
            stub(
                {"method": "GET", "urlPathTemplate": "/d/x-pay/charges/{id}"},
                {"jsonBody": {"id": "{{request.path.id}}", "object": "charge"}, "transformers": TPL},
            ),
        ],
        [
            p(
                "/d/x-pay/charges",
                "status",
                headers={"Idempotency-Key": "abcdef12"},
                json={"amount": 500, "currency": "eur"},
            ),
            p(
                "/d/x-pay/charges",
                "exact",
                headers={"Idempotency-Key": "abcdef12"},
                json={"amount": 500000, "currency": "eur"},
            ),
            p("/d/x-pay/charges", "status", json={"amount": 500, "currency": "eur"}),
            p(
                "/d/x-pay/charges",
                "status",
                headers={"Idempotency-Key": "abcdef12"},
                json={"amount": 0, "currency": "eur"},
            ),
            g("/d/x-pay/charges/ch_123"),
        ],
    )
    c.add(
        "x-query-regex-url",
        [stub({"urlPattern": "/d/x-qr/items\\?page=[0-9]+(&size=[0-9]+)?"}, {"body": "paged"})],
        [g("/d/x-qr/items?page=2"), g("/d/x-qr/items?page=2&size=10"), g("/d/x-qr/items?size=10&page=2", "status")],
    )
    c.add(
        "x-header-json",
        [stub({"urlPath": "/d/x-hj", "headers": {"X-Meta": {"matchesJsonPath": "$.tenant"}}})],
        [
            g("/d/x-hj", "status", headers={"X-Meta": '{"tenant": "t1"}'}),
            g("/d/x-hj", "status", headers={"X-Meta": "{}"}),
        ],
    )
    c.add(
        "x-query-json",
        [stub({"urlPath": "/d/x-qj", "queryParameters": {"filter": {"equalToJson": {"a": 1}}}})],
        [g("/d/x-qj?filter=%7B%22a%22%3A%201%7D", "status"), g("/d/x-qj?filter=%7B%7D", "status")],
    )
    c.add(
        "x-body-json-and-contains",
        [
            stub(
                {
                    "method": "PUT",
                    "urlPath": "/d/x-bjc",
                    "bodyPatterns": [
                        {"contains": "Ada"},
                        {"equalToJson": {"name": "Ada"}, "ignoreExtraElements": True},
                    ],
                }
            )
        ],
        [
            r("PUT", "/d/x-bjc", "status", json={"name": "Ada", "x": 1}),
            r("PUT", "/d/x-bjc", "status", json={"name": "Bob", "n": "Ada"}),
        ],
    )
    c.add(
        "x-date-header-now",
        [stub({"urlPath": "/d/x-dhn", "headers": {"If-Modified-Since": {"before": "now +1 days"}}})],
        [
            g("/d/x-dhn", "status", headers={"If-Modified-Since": "Wed, 01 May 2024 10:00:00 GMT"}),
            g("/d/x-dhn", "status", headers={"If-Modified-Since": "Wed, 01 May 2999 10:00:00 GMT"}),
        ],
    )
    c.add(
        "x-unicode",
        [
            stub(
                {"method": "POST", "urlPath": "/d/x-uni", "bodyPatterns": [{"contains": "héllo"}]},
                {"body": "ünïcödé ✓"},
            )
        ],
        [p("/d/x-uni", body="say héllo"), p("/d/x-uni", "status", body="say hello")],
    )
    c.add(
        "x-status-messages",
        [
            stub({"urlPath": "/d/x-sm/" + str(code)}, {"status": code})
            for code in (201, 204, 301, 400, 401, 403, 409, 429, 502, 503)
        ],
        [g(f"/d/x-sm/{code}", "status") for code in (201, 204, 301, 400, 401, 403, 409, 429, 502, 503)],
    )
    A = "/__admin"
    base = [
        stub(
            {"method": "GET", "urlPath": "/x/a"}, {"body": "a"}, name="a", metadata={"k": "v", "nested": {"x": [1, 2]}}
        ),
        stub({"method": "GET", "urlPath": "/x/b"}, {"body": "b"}, name="b", priority=2),
    ]
    c.add(
        "xa-get-after-put",
        base,
        [
            r(
                "PUT",
                f"{A}/mappings/" + _id("xa-get-after-put", 0),
                "status",
                json={"request": {"urlPath": "/x/a2"}, "response": {"body": "a2"}, "name": "a2"},
            ),
            g(f"{A}/mappings/" + _id("xa-get-after-put", 0), "json"),
            g("/x/a2"),
        ],
        "isolated",
    )
    c.add(
        "xa-post-same-id",
        base,
        [
            p(
                f"{A}/mappings",
                "status",
                json={
                    "id": _id("xa-post-same-id", 0),
                    "request": {"urlPath": "/x/a"},
                    "response": {"body": "replaced"},
                },
            ),
            g("/x/a"),
            g(f"{A}/mappings", "json"),
        ],
        "isolated",
    )
    c.add(
        "xa-request-by-id",
        base,
        [g("/x/a"), r("DELETE", f"{A}/requests", "status"), g(f"{A}/requests", "json")],
        "isolated",
    )
    c.add(
        "xa-count-body",
        base,
        [
            p("/x/nope", body='{"k": 1}'),
            p("/x/nope", body='{"k": 2}'),
            p(
                f"{A}/requests/count",
                "json",
                json={"method": "POST", "bodyPatterns": [{"matchesJsonPath": "$[?(@.k > 1)]"}]},
            ),
        ],
        "isolated",
    )
    c.add(
        "xa-remove-by-id",
        base,
        [
            p(f"{A}/mappings/remove", "status", json={"id": _id("xa-remove-by-id", 1)}),
            g(f"{A}/mappings", "json"),
        ],
        "isolated",
    )
    c.add(
        "xa-meta-nested",
        base,
        [
            p(f"{A}/mappings/find-by-metadata", "json", json={"matchesJsonPath": "$.nested.x[?(@ == 2)]"}),
            p(
                f"{A}/mappings/find-by-metadata",
                "json",
                json={"matchesJsonPath": {"expression": "$.k", "equalTo": "v"}},
            ),
            p(f"{A}/mappings/find-by-metadata", "json", json={"matchesJsonPath": "$[?(@.k == 'zz')]"}),
        ],
        "isolated",
    )
    c.add(
        "xa-settings",
        [],
        [
            p(f"{A}/settings", "status", json={"fixedDelay": 5}),
            g(f"{A}/settings", "json"),
            p(f"{A}/settings", "status", json={}),  # no delay for what runs next on these servers
        ],
        "isolated",
    )
    c.add(
        "xa-scenario-three-states",
        [
            stub(
                {"urlPath": "/x/s"},
                {"body": "one"},
                scenarioName="flow",
                requiredScenarioState="Started",
                newScenarioState="two",
            ),
            stub(
                {"urlPath": "/x/s"},
                {"body": "two"},
                scenarioName="flow",
                requiredScenarioState="two",
                newScenarioState="three",
            ),
            stub({"urlPath": "/x/s"}, {"body": "three"}, scenarioName="flow", requiredScenarioState="three"),
        ],
        [
            g("/x/s"),
            g("/x/s"),
            g("/x/s"),
            g("/x/s"),
            g(f"{A}/scenarios", "json"),
            r("PUT", f"{A}/scenarios/flow/state", "status", json={"state": "Started"}),
            g("/x/s"),
        ],
        "isolated",
    )
    c.add("xa-unmatched-closest", base, [g("/x/c"), r("DELETE", "/x/a"), g("/x/b?q=1")], "isolated")
