"""runner = "existing" for the brokers: testbed uses a server it did not start (here one it starts itself,
standing in for a team's shared server) and removes only what its tests created there."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest

from testbed.engines import nats as nats_engine
from testbed.engines import rabbitmq as rabbitmq_engine
from testbed.engines import redis as redis_engine


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[redis_engine.RedisEndpoint]:
    with redis_engine.running() as server:
        yield server.endpoint()


def test_redis_existing_uses_only_databases_it_owns(pytester: pytest.Pytester,
                                                     shared_redis: redis_engine.RedisEndpoint) -> None:
    with shared_redis.client(3) as other:
        other.set("someone-elses", "data")  # database 3 is in use by somebody
    pytester.makepyprojecttoml(f'[tool.testbed.redis]\nrunner = "existing"\nurl = "{shared_redis.database_url(5)}"\n')
    pytester.makepyfile(test_r="""
def test_a(redis, redis_url):
    assert redis_url.endswith("/5")
    redis.set("k", "v")

def test_b(redis):
    assert redis.get("k") is None
""")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
    pytester.makepyprojecttoml(f'[tool.testbed.redis]\nrunner = "existing"\nurl = "{shared_redis.database_url(3)}"\n')
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*Redis database 3 at 127.0.0.1:* holds 1 keys that testbed did not write*"])
    with shared_redis.client(3) as other:
        assert other.get("someone-elses") == b"data"


def test_nats_existing_deletes_only_the_streams_a_test_created(pytester: pytest.Pytester) -> None:
    with nats_engine.running() as server:
        endpoint = server.endpoint()
        endpoint.jetstream_api("STREAM.CREATE.THEIRS", {"name": "THEIRS", "subjects": ["theirs.>"],
                                                         "storage": "memory"})
        pytester.makepyprojecttoml(f'[tool.testbed.nats]\nrunner = "existing"\nurl = "{endpoint.url}"\n')
        pytester.makepyfile(test_n="""
def test_creates(nats):
    nats.jetstream_api("STREAM.CREATE.MINE", {"name": "MINE", "subjects": ["mine.>"], "storage": "memory"})
    assert "MINE" in nats.stream_names()
""")
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        assert endpoint.stream_names() == {"THEIRS"}


def test_an_existing_broker_is_refused_to_several_xdist_workers(pytester: pytest.Pytester) -> None:
    # They would share the URL's account, and one worker's cleanup would delete the other's streams.
    with nats_engine.running() as server:
        endpoint = server.endpoint()
        pytester.makepyprojecttoml(f'[tool.testbed.nats]\nrunner = "existing"\nurl = "{endpoint.url}"\n')
        pytester.makepyfile(test_n="""
def test_one(nats):
    pass

def test_two(nats):
    pass
""")
        result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2")
        assert result.ret != 0
        assert "puts the 2 xdist workers in the URL's one account" in result.stdout.str()
        assert "Run the NATS tests without -n, or use runner = 'local'" in result.stdout.str()
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)  # one process: fine


def test_rabbitmq_existing_deletes_only_what_a_test_declared(pytester: pytest.Pytester) -> None:
    with rabbitmq_engine.running() as node:
        endpoint = node.endpoint()
        conn = pika.BlockingConnection(pika.URLParameters(endpoint.url))
        conn.channel().queue_declare("theirs", durable=True)
        conn.close()
        pytester.makepyprojecttoml(f'[tool.testbed.rabbitmq]\nrunner = "existing"\nurl = "{endpoint.url}"\n')
        pytester.makepyfile(test_q="""
def test_declares(rabbitmq_connection):
    rabbitmq_connection.channel().queue_declare("mine", durable=True)
""")
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        conn = pika.BlockingConnection(pika.URLParameters(endpoint.url))
        channel = conn.channel()
        channel.queue_declare("theirs", passive=True)  # still there
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="no queue 'mine'"):
            channel.queue_declare("mine", passive=True)
        conn.close()
        rabbitmq_engine.ENGINE.close()
