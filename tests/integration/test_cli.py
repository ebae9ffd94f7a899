from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg


def test_doctor_says_what_it_found_and_would_use(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.testbed.postgres]\nversion = "16"\n')
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "--root", str(tmp_path), "doctor"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "data dirs:" in out.stdout and ("tmpfs" in out.stdout or "disk" in out.stdout)
    assert "would use:" in out.stdout and "(16." in out.stdout
    # every engine of the registry, each with what it would run and as whom
    for label in ("PostgreSQL [postgres]", "MariaDB/MySQL [mysql]", "Redis [redis]", "NATS [nats]",
                  "RabbitMQ [rabbitmq]"):
        assert label in out.stdout, out.stdout
    assert out.stdout.count("would use:") >= 5
    assert "servers run as:" in out.stdout and "cache:" in out.stdout and "stale runs:" in out.stdout


def test_up_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.testbed]\n")
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        argv = [sys.executable, "-m", "testbed.cli", "--root", str(tmp_path), "up", "postgres", "nats"]
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("url:") < 2:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        urls = [part.split()[0] for part in log.read_text().split("url:")[1:]]
        with psycopg.connect(urls[0]) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert urls[1].startswith("nats://") and "@127.0.0.1:" in urls[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
