"""pytester: nothing a test writes to Redis, NATS/JetStream or RabbitMQ is seen by the next test,
whatever the order, and xdist workers never share state (servers per worker, or handed over by the
controller when [tool.testbed] services lists them: a Redis database, NATS account and RabbitMQ vhost
per worker)."""

from __future__ import annotations

import pytest

# Every test checks the brokers are clean for it, then dirties them: any leak fails whichever runs next.
CHECK = '''
import os
import pika


def check_then_dirty(redis, nats_url, testbed_nats_server, rabbitmq_url, testbed_rabbitmq_server):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"server-pids-{worker}.txt", "w") as f:  # which servers this worker used
        f.write(f"{redis.connection_pool.connection_kwargs['port']} {testbed_nats_server.pid} "
                f"{testbed_rabbitmq_server.pid}")

    assert redis.dbsize() == 0, redis.keys()
    redis.set("written-by", worker)

    ep = testbed_nats_server
    assert ep.stream_names() == set()
    ep.jetstream_api("STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"})

    vhost = pika.URLParameters(rabbitmq_url).virtual_host
    assert testbed_rabbitmq_server.queues(vhost) == []
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    conn.channel().queue_declare("orders", durable=True)
    conn.close()
'''
FIXTURES = "redis, nats_url, testbed_nats_server, rabbitmq_url, testbed_rabbitmq_server"
TEST = '''
@pytest.mark.parametrize("n", range({count}))
def test_{name}(n, {fixtures}):
    check_then_dirty({fixtures})
'''


def write_suite(pytester: pytest.Pytester, count: int = 3) -> None:
    """test_forward.py runs test_one then test_two; test_backward.py the reverse order."""
    pytester.makeconftest(CHECK)
    head = "import pytest\nfrom conftest import check_then_dirty\n"
    one, two = (TEST.format(count=count, name=name, fixtures=FIXTURES) for name in ("one", "two"))
    pytester.makepyfile(test_forward=head + one + two, test_backward=head + two + one)


def test_each_test_starts_clean_in_either_order(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=12)
    ran = [line.split(" ")[0] for line in result.outlines if "::test_" in line and "PASSED" in line]

    def order(module: str) -> list[str]:
        return [r.split("::")[1].split("[")[0] for r in ran if r.startswith(module)]

    assert order("test_forward") == ["test_one"] * 3 + ["test_two"] * 3
    assert order("test_backward") == ["test_two"] * 3 + ["test_one"] * 3


@pytest.mark.parametrize("listed", [False, True], ids=["not-listed", "listed-in-services"])
def test_xdist_workers_never_share_state(pytester: pytest.Pytester, listed: bool) -> None:
    write_suite(pytester, count=2)
    if listed:
        pytester.makepyprojecttoml('[tool.testbed]\nservices = ["redis", "nats", "rabbitmq"]\n')
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=8)
    used = {p.name: p.read_text().split() for p in pytester.path.glob("server-pids-gw*.txt")}
    assert len(used) == 2, used  # both workers ran tests
    redis_ports, nats_pids, rabbit_pids = ({u[i] for u in used.values()} for i in range(3))
    # One server per engine for the whole run (started by the controller when a test first needs it),
    # separated per worker inside it; workers never start their own.
    assert (len(redis_ports), len(nats_pids), len(rabbit_pids)) == (1, 1, 1), used


def test_a_run_that_selects_no_service_test_starts_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed]\nservices = ["redis", "nats", "rabbitmq"]\n')
    pytester.makepyfile(test_unit="def test_pure():\n    assert 1 + 1 == 2\n",
                        test_service="def test_redis(redis):\n    redis.ping()\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "test_unit.py")
    result.assert_outcomes(passed=1)
    assert "testbed services" not in result.stdout.str()
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*testbed services*", "Redis *"])
    assert "NATS" not in result.stdout.str() and "RabbitMQ" not in result.stdout.str()


def test_a_leak_is_caught_the_check_can_fail(pytester: pytest.Pytester) -> None:
    # The same check against a key written outside the per-test reset must fail: the test can fail.
    pytester.makepyfile(test_leak='''
def test_writes_behind_the_fixtures_back(testbed_redis_server, redis):
    testbed_redis_server.client(redis.connection_pool.connection_kwargs["db"]).set("leak", 1)

def test_sees_it_only_if_reset_is_missing(testbed_redis_server):
    assert testbed_redis_server.client(0).dbsize() == 0
''')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)  # the `redis` fixture flushed db 0 after the first test
    pytester.makepyfile(test_leak='''
def test_writes_without_the_redis_fixture(testbed_redis_server):
    testbed_redis_server.client(0).set("leak", 1)

def test_sees_the_leak(testbed_redis_server):
    assert testbed_redis_server.client(0).dbsize() == 0
''')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)


def test_a_server_the_controller_cannot_start_fails_the_tests_that_need_it_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml('[tool.testbed]\nservices = ["redis"]\n[tool.testbed.redis]\nversion = "99"\n')
    pytester.makepyfile(test_r="""
def test_needs_redis(redis):
    pass

def test_does_not(tmp_path):
    pass
""")
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*[[]redis] Redis 99 requested, but found only:*"])


def test_a_worker_asks_early_for_the_engines_its_selected_tests_need(pytester: pytest.Pytester) -> None:
    # Right after collection an xdist worker asks the controller for these (the controller starts or adopts
    # the server while the workers are scheduled): never for an engine no selected test needs.
    from testbed.plugin.xdist import engines_needed

    pytester.makepyfile(test_a="import pytest\n\ndef test_unit():\n    pass\n\ndef test_sql(db):\n    pass\n\n"
                               "def test_cache(redis):\n    pass\n\n"
                               "@pytest.mark.skip\ndef test_nats(nats):\n    pass\n\n"
                               "@pytest.mark.skipif(True, reason='not here')\ndef test_s3(s3):\n    pass\n")
    items, _ = pytester.inline_genitems()
    by_name = {item.name: item for item in items}
    config = items[0].config
    assert engines_needed([by_name["test_unit"]], config) == []
    assert engines_needed([by_name["test_unit"], by_name["test_sql"]], config) == ["postgres"]
    assert sorted(engines_needed(items, config)) == ["postgres", "redis"]  # skipped tests need nothing
