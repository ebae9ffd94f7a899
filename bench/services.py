"""Brokers: testbed's Redis, NATS and RabbitMQ start vs their pytest peers, and expect() vs a sleep loop.

    .venv/bin/python bench/services.py [--quick]

start-to-ready  constructor to "a real client can talk to it", then stop, same binary on both sides:
                Redis     testbed RedisServer            vs pytest-redis RedisExecutor (mirakuru)
                NATS      testbed NatsServer (JetStream) vs pytest-nats _ServerProcess (JetStream)
                RabbitMQ  testbed RabbitMQServer         vs pytest-rabbitmq RabbitMqExecutor (mirakuru)
                Interleaved (testbed, peer, testbed, ...) after one warm-up of each; medians.
                Peers run as the current user (root here: none of them refuses it); testbed drops to its
                server user as it always does. The RabbitMQ peer gets a private epmd (ERL_EPMD_PORT) and
                HOME, and an empty config file: as shipped it reads /etc/rabbitmq/rabbitmq.conf, whose listener
                on 5672 collides with the machine's own RabbitMQ (its node crashed with eaddrinuse here).
                testbed isolates its node from all of these by design.
expect          event round trip on a real NATS server: the test triggers a "service" thread that
                publishes, then waits with events' expect() vs a hand-written loop that checks the
                captured messages and sleeps 100 ms between checks. Interleaved; medians.
Last line: RESULT key=value ... ; every ratio is testbed / peer (below 1 = testbed faster):
<engine>_ratio for start-to-ready, expect_vs_sleep = expect() median / sleep-loop median;
rabbitmq_cpu_ratio compares the CPU time each node spent until ready (wall time of a multi-second
Erlang boot swings by +-50% when other jobs share the 2 cores). The peer's private epmd is started
before its timer starts (its usual setup finds the system's epmd running); testbed's is inside.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.events.capture import EventCapture
from testbed.events.nats import NatsBackend
from testbed.runners.ports import free_port
from testbed.runners.process import LocalProcess
from testbed.services import nats as nats_service
from testbed.services import rabbitmq as rabbitmq_service
from testbed.services import redis as redis_service


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, with reaped children) of a process and its live descendants."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / TICK
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
                total += cpu_seconds(int(child))
    except OSError:
        pass
    return total


RABBITMQ_CPU: dict[str, list[float]] = {"testbed": [], "peer": []}  # CPU seconds of the node at ready


# -- testbed ---------------------------------------------------------------------------------------
def testbed_redis() -> float:
    t0 = time.perf_counter()
    server = redis_service.RedisServer(ServiceSettings(engine="redis")).start()
    took = ms_since(t0)
    server.stop()
    return took


def testbed_nats() -> float:
    t0 = time.perf_counter()
    server = nats_service.NatsServer(ServiceSettings(engine="nats")).start()
    took = ms_since(t0)
    server.stop()
    return took


def testbed_rabbitmq() -> float:
    t0 = time.perf_counter()
    server = rabbitmq_service.RabbitMQServer(ServiceSettings(engine="rabbitmq")).start()
    took = ms_since(t0)
    assert server.process is not None
    RABBITMQ_CPU["testbed"].append(cpu_seconds(server.process.pid))
    server.stop()
    return took


# -- peers -----------------------------------------------------------------------------------------
def peer_redis(binary: str) -> Callable[[], float]:
    from pytest_redis.executor import RedisExecutor

    def run() -> float:
        datadir = Path(tempfile.mkdtemp(prefix="bench-pytest-redis-"))
        t0 = time.perf_counter()
        executor = RedisExecutor(binary, databases=8, redis_timeout=30, loglevel="notice", host="127.0.0.1",
                                 port=free_port(), datadir=datadir)
        executor.start()
        took = ms_since(t0)
        executor.stop()
        shutil.rmtree(datadir, ignore_errors=True)
        return took

    return run


def peer_nats(binary: str) -> Callable[[], float]:
    from pytest_nats import Local
    from pytest_nats._runtime import _ServerProcess  # what its nats_server_fixture runs, minus pytest

    def run() -> float:
        t0 = time.perf_counter()
        process = _ServerProcess(Local(binary), Path.cwd(), jetstream=True, max_memory_store=256 << 20,
                                 max_file_store=1 << 30, startup_timeout=10.0)
        process.__enter__()
        took = ms_since(t0)
        process.__exit__(None, None, None)
        return took

    return run


def peer_rabbitmq(script: str) -> Callable[[], float]:
    from pytest_rabbitmq.factories.executor import RabbitMqExecutor

    def run() -> float:
        base = Path(tempfile.mkdtemp(prefix="bench-pytest-rabbitmq-"))
        (base / "plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text("")  # else it reads /etc/rabbitmq and collides with the system node
        (base / "logs").mkdir()
        epmd_port = free_port()
        epmd = LocalProcess("bench-epmd", [rabbitmq_service.find_epmd(), "-port", str(epmd_port)],
                            log_path=base / "epmd.log").start()
        private = {"ERL_EPMD_PORT": str(epmd_port), "HOME": str(base), "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
                   "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf")}
        saved = {k: os.environ.get(k) for k in private}
        os.environ.update(private)
        try:
            port = free_port()
            t0 = time.perf_counter()
            executor = RabbitMqExecutor(script, "127.0.0.1", port, free_port(),
                                        str(Path(script).with_name("rabbitmqctl")), logpath=base / "logs",
                                        path=base, plugin_path=base)
            executor.start()
            took = ms_since(t0)
            RABBITMQ_CPU["peer"].append(cpu_seconds(executor.process.pid))
            executor.stop()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            epmd.stop()
            shutil.rmtree(base, ignore_errors=True)
        return took

    return run


# -- expect() vs a sleep loop ----------------------------------------------------------------------
class PublishingService:
    """Stands in for the code under test: publishes on its own thread when triggered."""

    def __init__(self, url: str, topic: str) -> None:
        self.backend = NatsBackend(url)
        self.topic = topic
        self.triggers: queue.Queue[int | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (i := self.triggers.get()) is not None:
            self.backend.publish(self.topic, json.dumps({"orderId": i}).encode())

    def close(self) -> None:
        self.triggers.put(None)
        self.thread.join(5)
        self.backend.close()


def round_trips(rounds: int) -> tuple[list[float], list[float]]:
    topic = "orders.created"
    with nats_service.running() as server:
        listener = NatsBackend(server.url)
        capture = EventCapture(topic, "nats", listener.source)
        listener.subscribe(capture)
        service = PublishingService(server.url, topic)
        expect_ms: list[float] = []
        sleep_ms: list[float] = []
        try:
            for i in range(rounds + 1):
                order = 2 * i
                t0 = time.perf_counter()
                service.triggers.put(order)
                capture.expect({"orderId": order}, timeout=5)
                if i >= 1:  # the first round is the warm-up
                    expect_ms.append(ms_since(t0))

                order += 1
                t0 = time.perf_counter()
                service.triggers.put(order)
                deadline = time.monotonic() + 5
                while not any(m.payload == {"orderId": order} for m in capture.messages):
                    if time.monotonic() > deadline:
                        raise AssertionError("sleep loop: message never arrived")
                    time.sleep(0.1)
                if i >= 1:
                    sleep_ms.append(ms_since(t0))
        finally:
            service.close()
            listener.close()
    return expect_ms, sleep_ms


def interleaved(ours: Callable[[], float], peer: Callable[[], float], reps: int) -> tuple[list[float], list[float]]:
    ours()  # warm-up: discovery, page cache, RabbitMQ's database cache
    peer()
    a: list[float] = []
    b: list[float] = []
    for _ in range(reps):
        a.append(ours())
        b.append(peer())
    return a, b


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions; finishes in under 60 s")
    args = ap.parse_args()
    reps, rabbit_reps, rounds = (5, 2, 20) if args.quick else (15, 5, 60)

    redis_bin = redis_service.choose_binary(ServiceSettings(engine="redis")).path
    nats_bin = nats_service.choose_binary(ServiceSettings(engine="nats")).path
    rabbit_script = rabbitmq_service.choose_binary(ServiceSettings(engine="rabbitmq")).path
    rows: list[tuple[str, str, list[float], list[float]]] = []
    results: dict[str, Any] = {}
    for engine, ours, peer, name, n in (
        ("redis", testbed_redis, peer_redis(redis_bin), "pytest-redis", reps),
        ("nats", testbed_nats, peer_nats(nats_bin), "pytest-nats", reps),
        ("rabbitmq", testbed_rabbitmq, peer_rabbitmq(rabbit_script), "pytest-rabbitmq", rabbit_reps),
    ):
        t, p = interleaved(ours, peer, n)
        rows.append((engine, name, t, p))
        results[f"{engine}_testbed_ms"] = round(statistics.median(t), 1)
        results[f"{engine}_peer_ms"] = round(statistics.median(p), 1)
        results[f"{engine}_ratio"] = round(statistics.median(t) / statistics.median(p), 3)
    cpu_t, cpu_p = (statistics.median(RABBITMQ_CPU[k][1:]) for k in ("testbed", "peer"))  # [0]: warm-up
    results.update(rabbitmq_testbed_cpu_s=round(cpu_t, 2), rabbitmq_peer_cpu_s=round(cpu_p, 2),
                   rabbitmq_cpu_ratio=round(cpu_t / cpu_p, 3))
    expect_ms, sleep_ms = round_trips(rounds)

    print(f"{'start-to-ready (median ms)':30} {'testbed':>10} {'peer':>10}  ratio  peer")
    for engine, name, t, p in rows:
        print(f"{engine:30} {statistics.median(t):10.1f} {statistics.median(p):10.1f}  "
              f"{statistics.median(t) / statistics.median(p):5.3f}  {name} (n={len(t)})")
    print(f"{'rabbitmq CPU to ready (s)':30} {cpu_t:10.2f} {cpu_p:10.2f}  {cpu_t / cpu_p:5.3f}  "
          "the node's CPU time: steadier than wall time on a shared machine")
    e, s = statistics.median(expect_ms), statistics.median(sleep_ms)
    print(f"{'event round trip (median ms)':30} {e:10.2f} {s:10.2f}  {e / s:5.3f}  "
          f"100 ms sleep loop (n={len(expect_ms)}); expect() is {s / e:.0f}x faster")
    results.update(expect_ms=round(e, 3), sleep_loop_ms=round(s, 1), expect_vs_sleep=round(e / s, 4))
    keys = ["redis_ratio", "nats_ratio", "rabbitmq_ratio", "expect_vs_sleep"]
    keys += [k for k in results if k not in keys]
    print("RESULT " + " ".join(f"{k}={results[k]}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
