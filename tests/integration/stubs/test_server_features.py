"""Server features beyond matching: proxying, saving mappings, global settings, the CLI's HTTPS, HEAD."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from testbed.stubs import StubServer, get, post


def test_proxy_passes_requests_through_to_the_real_service() -> None:
    with StubServer() as upstream, StubServer() as server:
        upstream.add_mapping(
            post("/api/echo").will_return(201, body="from upstream", headers={"X-Up": "1"}).to_json()
        )
        server.add_mapping(
            {
                "request": {"urlPathPattern": "/svc/.*"},
                "response": {
                    "proxyBaseUrl": upstream.url,
                    "proxyUrlPrefixToRemove": "/svc",
                    "additionalProxyRequestHeaders": {"X-Via": "testbed"},
                },
            }
        )
        r = httpx.post(server.url + "/svc/api/echo?x=1", content=b"payload", headers={"X-Client": "c"})
        assert (r.status_code, r.text, r.headers["X-Up"]) == (201, "from upstream", "1")
        assert r.headers["Matched-Stub-Id"] == upstream.stubs()[0].id  # the upstream's, passed through
        seen = upstream.events()[0].request
        assert seen.url == "/api/echo?x=1" and seen.body == b"payload"
        assert seen.header("X-Client") == "c" and seen.header("X-Via") == "testbed"


def test_save_writes_mapping_files_and_reset_reloads_them(tmp_path: Path) -> None:
    with StubServer(root_dir=tmp_path) as server, httpx.Client(base_url=server.url) as client:
        client.post(
            "/__admin/mappings",
            json={"name": "Saved Stub", "request": {"urlPath": "/saved"}, "response": {"body": "kept"}},
        )
        assert client.post("/__admin/mappings/save").status_code == 200
        files = list((tmp_path / "mappings").glob("*.json"))
        assert len(files) == 1 and files[0].name.startswith("saved-stub-")
        assert json.loads(files[0].read_text())["request"]["urlPath"] == "/saved"
        client.delete("/__admin/mappings")
        assert client.get("/saved").status_code == 404
        client.post("/__admin/reset")
        assert client.get("/saved").text == "kept"


def test_global_fixed_delay_setting() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        server.add_mapping(get("/d").will_return(body="d").to_json())
        assert client.post("/__admin/settings", json={"fixedDelay": 300}).json()["fixedDelay"] == 300
        assert client.get("/__admin/settings").json()["settings"]["fixedDelay"] == 300
        try:
            client.get("/d", timeout=0.1)
        except httpx.ReadTimeout:
            pass
        else:
            raise AssertionError("the global delay did not apply")
        client.post("/__admin/settings", json={"fixedDelay": 0})
        assert client.get("/d", timeout=2).text == "d"


def test_head_and_status_only_responses() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        server.add_mapping({"request": {"method": "ANY", "urlPath": "/h"}, "response": {"body": "12345"}})
        r = client.head("/h")
        assert r.status_code == 200 and r.headers["content-length"] == "5" and r.content == b""
        assert client.get("/h").text == "12345"  # the connection is still in sync after HEAD


def test_chunked_request_bodies_and_expect_continue() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        server.add_mapping(post("/up").with_body({"equalTo": "abcdef"}).will_return(body="ok").to_json())
        r = client.post("/up", content=iter([b"abc", b"def"]))  # an iterator: sent chunked
        assert r.text == "ok"
        assert server.events()[0].request.header("transfer-encoding") == "chunked"


def test_global_response_templating_flag() -> None:
    with StubServer(global_response_templating=True) as server:
        server.add_mapping({"request": {"urlPath": "/g"}, "response": {"body": "{{request.path}}"}})
        assert httpx.get(server.url + "/g").text == "/g"


def test_cli_https_port_and_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.stubs",
            "--port",
            "0",
            "--https-port",
            "0",
            "--ca-bundle-out",
            str(bundle),
            "--global-response-templating",
            "--verbose",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = {}
        for line in proc.stdout:
            key, _, value = line.partition(":")
            info[key] = value.strip()
            if key == "serving":
                break
        https_port = int(info["https-port"])
        ctx = ssl.create_default_context(cafile=str(bundle))
        httpx.post(
            f"http://127.0.0.1:{info['port']}/__admin/mappings",
            json={"request": {"urlPath": "/t"}, "response": {"body": "{{request.scheme}}"}},
        )
        assert httpx.get(f"https://localhost:{https_port}/t", verify=ctx).text == "https"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_concurrent_requests_see_each_scenario_state_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with StubServer() as server:
        server.add_mapping(
            get("/once").will_return(body="first").in_scenario("s", when="Started", then="done").to_json()
        )
        server.add_mapping(get("/once").will_return(body="later").in_scenario("s", when="done").to_json())

        def call(_: int) -> str:
            return httpx.get(server.url + "/once", timeout=5).text

        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(call, range(24)))
        assert bodies.count("first") == 1 and bodies.count("later") == 23


def test_malformed_chunked_body_gets_400_and_the_server_keeps_serving() -> None:
    import socket

    with StubServer() as server:
        server.add_mapping(get("/ok").will_return(body="ok").to_json())
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
        assert httpx.get(server.url + "/ok").text == "ok"
        assert server.errors == []


def test_http_stub_loads_mapping_files_and_names_a_bad_one(tmp_path: Path) -> None:
    import pytest

    from testbed.stubs import HttpStub, InvalidStubError

    (tmp_path / "good.json").write_text(
        json.dumps(
            {
                "mappings": [
                    {"request": {"urlPath": "/a"}, "response": {"body": "a"}},
                    {"request": {"urlPath": "/b"}, "response": {"body": "b"}},
                ]
            }
        )
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bad.json").write_text(json.dumps({"request": {"urlPath": "/c", "cookies": []}}))
    with StubServer() as server:
        stub = HttpStub(server)
        assert [s.request.url.value for s in stub.load(tmp_path / "good.json")] == ["/a", "/b"]
        assert httpx.get(stub.url + "/b").text == "b"
        with pytest.raises(InvalidStubError, match=r"bad\.json.*/request/cookies"):
            stub.load(tmp_path / "bad")


def test_admin_files_without_a_root_dir_use_a_temporary_one() -> None:
    with StubServer() as server, httpx.Client(base_url=server.url) as client:
        assert client.put("/__admin/files/a/b.json", content=b'{"x": 1}').json() == "eyJ4IjogMX0="
        assert client.get("/__admin/files").json() == ["a/b.json"]
        server.add_mapping({"request": {"urlPath": "/b"}, "response": {"bodyFileName": "a/b.json"}})
        assert client.get("/b").json() == {"x": 1}
        assert client.put("/__admin/files/..%2Fescape.txt", content=b"no").status_code == 422
        root = server.root_dir
        assert root is not None and root.name.startswith("testbed-stub-root-")
    assert not root.exists()


def test_snapshot_turns_proxied_traffic_into_saved_stubs(tmp_path: Path) -> None:
    with StubServer() as upstream, StubServer(root_dir=tmp_path) as server:
        upstream.add_mapping(get("/v1/rates").will_return(json={"eur": 1.1}).to_json())
        server.add_mapping(
            {"request": {"urlPathPattern": "/v1/.*"}, "response": {"proxyBaseUrl": upstream.url}}
        )
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/v1/rates").json() == {"eur": 1.1}
            mappings = client.post("/__admin/recordings/snapshot", json={}).json()["mappings"]
        assert [(m["name"], m["request"], m["response"]["body"]) for m in mappings] == [
            ("v1_rates", {"url": "/v1/rates", "method": "GET"}, '{"eur":1.1}')
        ]
        saved = list((tmp_path / "mappings").glob("v1_rates-*.json"))
        assert len(saved) == 1
    with StubServer(root_dir=tmp_path) as replay:  # the upstream is gone: the saved stub answers
        assert httpx.get(replay.url + "/v1/rates").json() == {"eur": 1.1}


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_webhook_from_the_builder_and_the_legacy_form() -> None:
    with StubServer() as receiver, StubServer() as server:
        receiver.add_mapping({"request": {"method": "ANY"}, "response": {"status": 200}})
        server.add_mapping(
            post("/pay")
            .will_return(202)
            .with_webhook(
                receiver.url + "/hook", body={"paid": True}, headers={"X-Kind": "paid"}, delay_ms=10
            )
            .to_json()
        )
        server.add_mapping(
            {
                "request": {"urlPath": "/legacy"},
                "response": {},
                "postServeActions": {"webhook": {"method": "GET", "url": receiver.url + "/old"}},
            }
        )
        assert httpx.post(server.url + "/pay").status_code == 202
        httpx.get(server.url + "/legacy")
        _wait(lambda: len(receiver.events()) == 2)
        seen = {e.request.url: e.request for e in receiver.events()}
        assert seen["/hook"].body == b'{"paid": true}' and seen["/hook"].header("X-Kind") == "paid"
        assert seen["/old"].method == "GET"


def test_undeliverable_webhook_is_reported_not_raised() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with StubServer() as server:
        server.add_mapping(
            get("/x").will_return(body="ok").with_webhook(f"http://127.0.0.1:{dead_port}/").to_json()
        )
        assert httpx.get(server.url + "/x").text == "ok"
        _wait(lambda: bool(server.webhook_errors))
        assert "webhook" in server.webhook_errors[0] and str(dead_port) in server.webhook_errors[0]


def test_unknown_post_serve_action_is_rejected() -> None:
    import pytest

    from testbed.stubs import InvalidStubError

    with StubServer() as server, pytest.raises(InvalidStubError, match='only the "webhook" action'):
        server.add_mapping({"request": {}, "response": {}, "postServeActions": [{"name": "custom-thing"}]})


def test_remote_server_process_with_https_and_the_admin_api(tmp_path: Path) -> None:
    from testbed.stubs import HttpStub
    from testbed.stubs.client import RemoteStubServer

    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "bad.json").write_text("{oops")
    with RemoteStubServer.spawn(root_dir=tmp_path, https=True) as remote:
        assert remote.load_errors and "bad.json" in str(remote.load_errors[0])
        stub = HttpStub(remote)
        stub.stub_for(get("/secure").will_return(json={"ok": True}).named("secure"))
        assert httpx.get(stub.https_url + "/secure", verify=stub.ssl_context).json() == {"ok": True}
        assert httpx.get(stub.url + "/nope").status_code == 404
        assert [e.request.url for e in stub.unmatched] == ["/nope"]
        assert "closest stub 'secure'" in stub.unmatched_report()
        stub.verify(1, get("/secure"))
        stub.reset()
        assert stub.requests == [] and remote.stubs() == []
        pid = remote._process.pid if remote._process else None
    assert pid is not None
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the stub server process outlived its context")


def test_own_process_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import time

    from testbed.runners.reaper import reap_stale_runs

    runs = tmp_path / "runs"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from testbed.stubs.client import RemoteStubServer\n"
            "import sys, time\nr = RemoteStubServer.spawn()\nprint(r.port, r.log_path, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TESTBED_RUNS_DIR": str(runs)},
    )
    try:
        assert parent.stdout is not None
        port_text, log_path = parent.stdout.readline().split()
        port = int(port_text)
        assert httpx.get(f"http://127.0.0.1:{port}/__admin/health").status_code == 200
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the orphaned stub server kept listening")
        # The parent's folder for the server's log is left behind, but recorded: the next run reaps it.
        assert Path(log_path).exists()
        os.environ["TESTBED_RUNS_DIR"] = str(runs)
        try:
            reap_stale_runs()
        finally:
            del os.environ["TESTBED_RUNS_DIR"]
        assert not Path(log_path).parent.exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_dead_own_process_server_is_named_with_its_pid_and_last_log_lines() -> None:
    import os
    import signal

    from testbed.errors import ServerDiedError
    from testbed.stubs.client import RemoteStubServer

    with RemoteStubServer.spawn() as remote:
        remote.reset()
        assert remote.pid is not None and remote.alive()
        os.kill(remote.pid, signal.SIGKILL)
        with pytest.raises(ServerDiedError) as info:
            remote.reset()  # what the http_stub fixture does before the next test
        text = str(info.value)
        assert text.startswith("[HTTP stub]")
        assert f"pid {remote.pid}" in text and f"port {remote.port}" in text and "no longer running" in text
        assert "serving: http://127.0.0.1:" in text  # its log tail: the lines it printed
        assert not remote.alive()


def test_sigkilled_standalone_server_leaves_its_tls_folder_to_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from testbed.runners.reaper import reap_stale_runs

    monkeypatch.setenv("TESTBED_RUNS_DIR", str(tmp_path / "runs"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.stubs", "--port", "0", "--https-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = {}
        for line in proc.stdout:
            key, _, value = line.partition(":")
            info[key] = value.strip()
            if key == "serving":
                break
        tls_dir = Path(info["ca-bundle"]).parent
        assert tls_dir.is_dir() and tls_dir.name.startswith("testbed-stub-tls-")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert tls_dir.is_dir()  # SIGKILL: no clean-up ran
    cleaned = reap_stale_runs()  # what the next run does first
    assert not tls_dir.exists()
    assert any(str(tls_dir) in line for line in cleaned)
    assert os.listdir(tmp_path / "runs") == []


def test_serving_plain_stubs_imports_no_xml_jsonpath_or_templating(tmp_path: Path) -> None:
    """The standalone server's start is mostly imports: what plain stubs do not use stays unimported."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "a.json").write_text(
        json.dumps({"request": {"method": "GET", "urlPath": "/a", "headers": {"X": {"equalTo": "1"}}},
                    "response": {"jsonBody": {"ok": 1}}})
    )
    script = f"""
import sys, urllib.request
import testbed.stubs.__main__
from testbed.stubs.server import StubServer
with StubServer(root_dir={str(tmp_path)!r}) as s:
    req = urllib.request.Request(s.url + "/a", headers={{"X": "1"}})
    assert urllib.request.urlopen(req).read() == b'{{"ok":1}}'
lazy = ["lxml", "jsonpath_ng", "jsonschema", "testbed.stubs.templating", "testbed.stubs.json_operators",
        "testbed.stubs.xml_operators", "testbed.stubs.dates", "testbed.stubs.admin", "testbed.stubs.near_miss"]
print([m for m in lazy if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
