"""HTTP stubs: testbed vs the WireMock 3.13.2 jar vs pytest-httpserver, side by side, interleaved.

    .venv/bin/python bench/stubs.py [--quick]

Measures, for a matched stub among 100 mappings and an httpx client:
  start-to-ready  process start (or constructor) to the first 200 from the stub
  RSS             resident memory of the server process once ready (own-process variants)
  latency         sequential requests on one keep-alive client: median and p99
  throughput      8 client threads, each with its own httpx.Client, for a fixed time (bounded count)
Servers: testbed in the benchmark's own process (as the `http_stub` fixture runs it) and as its own
process (`python -m testbed.stubs`), WireMock (JVM), pytest-httpserver in-process and in its own process.
Child processes run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed from their environment), as an
installed package does: otherwise every start would compile testbed's sources again.
Last line: RESULT key=value ... (ratios are testbed / peer; the plain keys use the fixture's default mode,
in-process; the *_proc keys compare own-process testbed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
JAR = Path(
    os.environ.get(
        "TESTBED_WIREMOCK_JAR",
        REPO / ".cache/wiremock/node_modules/wiremock/build/wiremock-standalone-3.13.2.jar",
    )
)
N_MAPPINGS = 100
TARGET = "/api/resource/57"
BODY = {"id": 42, "status": "ok", "items": [1, 2, 3]}

PHS_SCRIPT = r"""
import sys, json
from pytest_httpserver import HTTPServer
s = HTTPServer(host="127.0.0.1", port=0)
for i in range(N_MAPPINGS):
    s.expect_request(f"/api/resource/{i}", method="GET").respond_with_json(BODY)
s.start()
print("port:", s.port, flush=True)
sys.stdin.read()
s.stop()
""".replace("N_MAPPINGS", str(N_MAPPINGS)).replace("BODY", json.dumps(BODY))


def write_root(root: Path) -> None:
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "__files").mkdir(exist_ok=True)
    for i in range(N_MAPPINGS):
        mapping = {
            "request": {"method": "GET", "urlPath": f"/api/resource/{i}"},
            "response": {"status": 200, "jsonBody": BODY, "headers": {"Content-Type": "application/json"}},
        }
        (root / "mappings" / f"m{i:03d}.json").write_text(json.dumps(mapping))


def rss_mb(pid: int) -> float:
    total = 0
    pids = [pid]
    try:  # include children (none expected, but be fair to wrappers)
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def wait_ready(url: str, deadline_s: float = 60) -> None:
    """Poll with the stdlib client: an httpx.Client per poll costs ~20 ms (its SSL context)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        conn = http.client.HTTPConnection(host, int(port), timeout=1)
        try:
            conn.request("GET", TARGET)
            r = conn.getresponse()
            if r.status == 200 and json.loads(r.read()) == BODY:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.005)
    raise RuntimeError(f"{url} not ready")


@dataclass
class Running:
    url: str
    stop: Callable[[], None]
    pid: int | None = None


@dataclass
class Kind:
    name: str
    start: Callable[[Path], Running]
    starts_ms: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)  # once ready
    rss_loaded: list[float] = field(default_factory=list)  # after the latency and throughput rounds
    lat_median: list[float] = field(default_factory=list)
    lat_p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)


def _read_port(proc: subprocess.Popen[str], prefix: str = "port:") -> int:
    assert proc.stdout is not None
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith(prefix):
            return int(line.split()[1])
    raise RuntimeError("server did not print its port")


def _stop_proc(proc: subprocess.Popen[str]) -> Callable[[], None]:
    def stop() -> None:
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

    return stop


def start_testbed_inproc(root: Path) -> Running:
    from testbed.stubs import StubServer

    server = StubServer(root_dir=root).start()
    return Running(server.url, server.stop)


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start_testbed_proc(root: Path) -> Running:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.stubs", "--port", "0", "--root-dir", str(root), "--disable-banner"],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    port = _read_port(proc)
    return Running(f"http://127.0.0.1:{port}", _stop_proc(proc), proc.pid)


def start_wiremock(root: Path) -> Running:
    proc = subprocess.Popen(
        [
            "java",
            "-jar",
            str(JAR),
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            str(root),
            "--disable-banner",
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = _read_port(proc)
    threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
    return Running(f"http://127.0.0.1:{port}", _stop_proc(proc), proc.pid)


def start_phs_inproc(root: Path) -> Running:
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    for i in range(N_MAPPINGS):
        server.expect_request(f"/api/resource/{i}", method="GET").respond_with_json(BODY)
    server.start()

    def stop() -> None:
        server.clear()
        server.stop()

    return Running(f"http://127.0.0.1:{server.port}", stop)


def start_phs_proc(root: Path) -> Running:
    proc = subprocess.Popen(
        [sys.executable, "-c", PHS_SCRIPT],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=CHILD_ENV,
    )  # werkzeug logs every request to stderr
    port = _read_port(proc)
    return Running(f"http://127.0.0.1:{port}", _stop_proc(proc), proc.pid)


def measure_start(kind: Kind, root: Path) -> None:
    t0 = time.perf_counter()
    running = kind.start(root)
    wait_ready(running.url)
    kind.starts_ms.append((time.perf_counter() - t0) * 1000)
    if running.pid is not None:
        kind.rss.append(rss_mb(running.pid))
    running.stop()


def measure_latency(url: str, n: int, warmup: int) -> tuple[float, float]:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(warmup):
            client.get(TARGET)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            r = client.get(TARGET)
            samples.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: status {r.status_code}")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def measure_throughput(url: str, threads: int, seconds: float, cap: int = 200_000) -> float:
    counts = [0] * threads
    errors = [0]
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            client.get(TARGET)  # connection open before the clock
            barrier.wait()
            while time.perf_counter() < stop_at[0] and counts[i] < cap:
                if client.get(TARGET).status_code == 200:
                    counts[i] += 1
                else:
                    errors[0] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 3600  # set properly once everyone is connected
    barrier.wait()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors[0]:
        raise RuntimeError(f"{url}: {errors[0]} errors under load")
    return sum(counts) / elapsed


def main() -> int:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # pytest-httpserver logs every request otherwise
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions; finishes in under 60 s")
    args = ap.parse_args()
    start_reps, rounds, n_seq, seconds = (3, 2, 500, 1.0) if args.quick else (7, 3, 2000, 5.0)
    if not JAR.is_file() or shutil.which("java") is None:
        print(f"WireMock jar not found at {JAR} (run `make wiremock`) or java missing", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="testbed-bench-stubs-"))
    try:
        write_root(root)
        kinds = [
            Kind("testbed_inproc", start_testbed_inproc),
            Kind("testbed_proc", start_testbed_proc),
            Kind("wiremock", start_wiremock),
            Kind("phs_inproc", start_phs_inproc),
            Kind("phs_proc", start_phs_proc),
        ]
        rng = random.Random(4)
        # warm-up: one untimed start of each (imports, JVM class data, page cache)
        for k in kinds:
            r = k.start(root)
            wait_ready(r.url)
            r.stop()
        for _ in range(start_reps):
            order = kinds[:]
            rng.shuffle(order)
            for k in order:
                measure_start(k, root)
        running = {k.name: k.start(root) for k in kinds}
        try:
            for k in kinds:
                wait_ready(running[k.name].url)
                measure_latency(running[k.name].url, 300, 200)  # warm-up (the JVM's JIT above all)
                measure_throughput(running[k.name].url, 8, 0.3 if args.quick else 1.0)
            for _ in range(rounds):
                order = kinds[:]
                rng.shuffle(order)
                for k in order:
                    med, p99 = measure_latency(running[k.name].url, n_seq, 50)
                    k.lat_median.append(med)
                    k.lat_p99.append(p99)
                    k.rps.append(measure_throughput(running[k.name].url, 8, seconds))
            for k in kinds:
                if running[k.name].pid is not None:
                    k.rss_loaded.append(rss_mb(running[k.name].pid))
        finally:
            for r in running.values():
                r.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    print(
        f"{'server':<16}{'start ms':>10}{'RSS MB rdy/load':>16}{'seq median ms':>15}{'seq p99 ms':>12}"
        f"{'req/s (8 thr)':>15}"
    )
    for k in kinds:
        rss = f"{med(k.rss):.0f}/{max(k.rss_loaded):.0f}" if k.rss else "-"
        print(
            f"{k.name:<16}{med(k.starts_ms):>10.0f}{rss:>16}{med(k.lat_median):>15.3f}{med(k.lat_p99):>12.3f}"
            f"{med(k.rps):>15.0f}"
        )
    by = {k.name: k for k in kinds}
    tb, tp, wm, pi, pp = (
        by[n] for n in ("testbed_inproc", "testbed_proc", "wiremock", "phs_inproc", "phs_proc")
    )
    res = {
        "start_ms": med(tp.starts_ms),
        "inproc_start_ms": med(tb.starts_ms),
        "wiremock_start_ms": med(wm.starts_ms),
        "start_ratio": med(tp.starts_ms) / med(wm.starts_ms),
        "rss_mb": med(tp.rss),
        "wiremock_rss_mb": med(wm.rss),
        "rss_ratio": med(tp.rss) / med(wm.rss),
        "rss_loaded_ratio": max(tp.rss_loaded) / max(wm.rss_loaded),
        "latency_ms": med(tb.lat_median),
        "wiremock_latency_ms": med(wm.lat_median),
        "latency_ratio": med(tb.lat_median) / med(wm.lat_median),
        "rps": med(tb.rps),
        "wiremock_rps": med(wm.rps),
        "rps_ratio": med(tb.rps) / med(wm.rps),
        "phs_latency_ratio": med(tb.lat_median) / med(pi.lat_median),
        "phs_rps_ratio": med(tb.rps) / med(pi.rps),
        "latency_ratio_proc": med(tp.lat_median) / med(wm.lat_median),
        "rps_ratio_proc": med(tp.rps) / med(wm.rps),
        "phs_latency_ratio_proc": med(tp.lat_median) / med(pp.lat_median),
        "phs_rps_ratio_proc": med(tp.rps) / med(pp.rps),
    }
    print(
        "RESULT "
        + " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) and v < 100 else f"{k}={v:.0f}" for k, v in res.items()
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
