"""An async test awaits events while the code under test publishes from the same event loop."""

from __future__ import annotations

import pytest


def test_expect_async_does_not_block_the_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n')
    pytester.makepyfile(test_a='''
import asyncio, json
import nats
import pytest

@pytest.mark.asyncio
async def test_the_app_publishes_in_the_same_loop(events, nats_url):
    events.listen("orders.created")
    nc = await nats.connect(nats_url)
    async def app():
        await asyncio.sleep(0.05)   # the app publishes later, on the test's own loop
        await nc.publish("orders.created", json.dumps({"orderId": "o-1"}).encode())
    task = asyncio.create_task(app())
    event = await events.expect_async("orders.created", match={"orderId": "o-1"}, timeout=5)
    assert event == {"orderId": "o-1"}
    await events.assert_none_async("orders.created", match={"orderId": "o-2"}, within=0.1)
    await task
    await nc.close()
''')
    pytester.runpytest_subprocess("-p", "no:randomly", "-W", "error").assert_outcomes(passed=1)
