"""Bad input: WireMock's error status and a message naming the file or field; the other stubs keep serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from testbed.stubs import InvalidStubError, StubServer
from testbed.stubs.files import load_mappings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "mappings" / "nested").mkdir(parents=True)
    (tmp_path / "__files").mkdir()
    (tmp_path / "mappings" / "good.json").write_text(
        json.dumps({"request": {"method": "GET", "urlPath": "/good"}, "response": {"body": "good"}})
    )
    (tmp_path / "mappings" / "nested" / "many.json").write_text(
        json.dumps(
            {
                "mappings": [
                    {"request": {"method": "GET", "urlPath": "/one"}, "response": {"body": "1"}},
                    {"request": {"method": "GET", "urlPath": "/two"}, "response": {"body": "2"}},
                ]
            }
        )
    )
    (tmp_path / "mappings" / "comments.json").write_text(
        '// WireMock accepts comments\n{"request": {"urlPath": "/commented"}, /* here too */ "response": {}}'
    )
    (tmp_path / "mappings" / "syntax.json").write_text('{"request": {"urlPath": "/x"}, ')
    (tmp_path / "mappings" / "field.json").write_text(
        json.dumps({"request": {"urlPath": "/y"}, "response": {"fault": "EXPLODE"}})
    )
    return tmp_path


def test_bad_files_are_reported_and_the_rest_serve(root: Path) -> None:
    with StubServer(root_dir=root) as server:
        errors = {Path(e.source or "").name: e for e in server.load_errors}
        assert set(errors) == {"syntax.json", "field.json"}
        assert errors["field.json"].pointer == "/response/fault"
        assert "EXPLODE" in str(errors["field.json"]) and "CONNECTION_RESET_BY_PEER" in str(
            errors["field.json"]
        )
        assert "field.json" in str(errors["field.json"])
        assert "not valid JSON" in str(errors["syntax.json"])
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/good").text == "good"
            assert client.get("/two").text == "2"
            assert client.get("/commented").status_code == 200


@pytest.mark.parametrize(
    ("payload", "pointer", "words"),
    [
        (
            {"request": {"urlPath": "/x", "headers": {"A": {"equalsTo": "1"}}}, "response": {}},
            "/request/headers/A",
            "is not a valid match operation",
        ),
        (
            {"request": {"urlPath": "/x", "bodyPatterns": [{"matches": "("}]}, "response": {}},
            "/request/bodyPatterns/0/matches",
            "not a valid regular expression",
        ),
        (
            {"request": {"urlPath": "/x"}, "response": {"status": "two hundred"}},
            "/response/status",
            "must be a number",
        ),
        ({"request": {"urlPath": "/x", "url": "/y"}, "response": {}}, "/request", "only one of"),
        (
            {"request": {"urlPath": "/x"}, "response": {"delayDistribution": {"type": "gamma"}}},
            "/response/delayDistribution/type",
            "uniform, lognormal or fixed",
        ),
        (
            {
                "request": {"urlPathTemplate": "/o/{id}", "pathParameters": {"oid": {"equalTo": "1"}}},
                "response": {},
            },
            "/request/pathParameters/oid",
            "not in the template",
        ),
        # A misspelled key: WireMock refuses it too; served, it would be an empty 200 nobody asked for.
        ({"request": {"urlPath": "/x"}, "respnse": {"body": "b"}}, "/respnse", 'Did you mean "response"?'),
        ({"request": {"urlPath": "/x", "methd": "GET"}}, "/request/methd", 'Did you mean "method"?'),
        ({"request": {"urlPath": "/x"}, "response": {"bdy": "b"}}, "/response/bdy", 'Did you mean "body"?'),
        ({"request": {"urlPath": "/x"}, "priorty": 1}, "/priorty", 'Did you mean "priority"?'),
    ],
)
def test_bad_admin_payload_gets_422_naming_the_field(
    payload: dict[str, object], pointer: str, words: str
) -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        client.post("/__admin/mappings", json={"request": {"urlPath": "/ok"}, "response": {"body": "still"}})
        r = client.post("/__admin/mappings", json=payload)
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert error["source"]["pointer"] == pointer
        assert words in error["detail"]
        assert client.get("/ok").text == "still"
        assert client.post("/__admin/mappings", content=b"{not json").status_code == 422


def test_library_error_names_boundary_field_and_fix() -> None:
    with StubServer() as server, pytest.raises(InvalidStubError) as info:
        server.add_mapping({"request": {"urlPath": "/x", "queryParameters": {"a": "1"}}, "response": {}})
    text = str(info.value)
    assert text.startswith("[HTTP stub]") and "/request/queryParameters/a" in text and "equalTo" in text


def test_unsupported_template_helper_is_a_clear_500() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        server.add_mapping(
            {
                "request": {"urlPath": "/t"},
                "response": {
                    "body": "{{soapXPathh request.body '/a'}}",
                    "transformers": ["response-template"],
                },
            }
        )
        r = client.get("/t")
        assert r.status_code == 500
        assert "soapXPathh" in r.text and "do not have" in r.text


def test_cli_reports_bad_files_and_serves(root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.stubs", "--port", "0", "--root-dir", str(root), "--disable-banner"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, "the CLI exited before printing its port"
            lines.append(line)
            if line.startswith("skipped:") and "syntax.json" in line:
                break
        port = int(next(x for x in lines if x.startswith("port:")).split()[1])
        assert any("field.json" in x and "/response/fault" in x for x in lines)
        assert httpx.get(f"http://127.0.0.1:{port}/good").text == "good"
        assert httpx.post(f"http://127.0.0.1:{port}/__admin/shutdown").status_code == 200
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_files_recursive_and_bad_files_reported(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "one.json").write_text(json.dumps({"request": {"urlPath": "/1"}, "response": {}}))
    (tmp_path / "bad.json").write_text(json.dumps({"request": {"urlPath": 7}, "response": {}}))
    result = load_mappings(tmp_path)
    assert len(result.stubs) == 1
    assert result.errors[0].pointer == "/request/urlPath" and "bad.json" in str(result.errors[0])


def test_a_misspelled_key_in_a_mapping_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "typo.json").write_text(json.dumps({"request": {"urlPath": "/t"}, "respnse": {"status": 201}}))
    result = load_mappings(tmp_path)
    assert result.stubs == []
    (error,) = result.errors
    assert error.pointer == "/respnse" and "typo.json" in str(error) and 'Did you mean "response"?' in str(error)


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_a_deeply_nested_admin_payload_is_a_422_not_a_crash() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        for body in (
            _deep(200_000),
            b'{"request": {"urlPath": "/d"}, "metadata": ' + b'{"a":' * 200_000 + b"1" + b"}" * 200_001,
        ):
            r = client.post("/__admin/mappings", content=body)
            assert r.status_code == 422
            assert "nesting depth" in r.json()["errors"][0]["detail"]
        assert client.post("/__admin/requests/count", content=_deep(200_000)).status_code == 422
        assert server.errors == []
        assert client.get("/__admin/mappings").json()["meta"]["total"] == 0


def test_a_deeply_nested_request_body_is_just_not_json_to_the_matchers() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        for i, op in enumerate(
            [{"equalToJson": "[]"}, {"matchesJsonPath": "$[0]"}, {"matchesJsonSchema": '{"type": "array"}'}]
        ):
            server.add_mapping({"request": {"urlPath": f"/j{i}", "bodyPatterns": [op]}, "response": {}})
            assert client.post(f"/j{i}", content=_deep(200_000)).status_code == 404
        assert server.errors == []


def test_a_server_bug_answers_500_without_a_python_traceback() -> None:
    """The catch-all for our own bugs: the client sees what failed; the traceback goes to the test."""
    with StubServer() as server, httpx.Client(base_url=server.url) as client:

        def broken(request: object) -> object:
            raise KeyError("planted")

        server.admin.routes.insert(0, ("GET", __import__("re").compile("/broken"), broken))
        r = client.get("/__admin/broken")
        assert r.status_code == 500
        assert "KeyError" in r.text and "planted" in r.text and "Traceback" not in r.text
        assert any("Traceback" in e for e in server.errors)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{{range 1 100000000}}", ["range 1 100000000", "limit of 100,000 elements"]),
        ("{{randomValue length=100000000}}", ["randomValue length", "limit of 10,000,000 characters"]),
    ],
)
def test_a_runaway_template_from_the_admin_api_is_a_500_naming_the_limit(body: str, words: list[str]) -> None:
    with StubServer() as server, httpx.Client(base_url=server.url, timeout=30) as client:
        mapping = {"request": {"urlPath": "/big"}, "response": {"body": body, "transformers": ["response-template"]}}
        assert client.post("/__admin/mappings", json=mapping).status_code == 201
        r = client.get("/big")
        assert r.status_code == 500
        assert all(w in r.text for w in words), r.text
        assert client.get("/__admin/health").status_code == 200  # and the server is still fine
