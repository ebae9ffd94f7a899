from __future__ import annotations

import re

from testbed.events.names import nodeid_token, scoped_name


def test_names_differ_per_worker_and_per_test() -> None:
    a = scoped_name("orders.created", worker="gw0", nodeid="tests/t.py::test_one")
    b = scoped_name("orders.created", worker="gw1", nodeid="tests/t.py::test_one")
    c = scoped_name("orders.created", worker="gw0", nodeid="tests/t.py::test_two")
    assert len({a, b, c}) == 3
    assert a.startswith("orders.created.gw0.test_one-")


def test_same_test_name_in_two_files_gets_two_names() -> None:
    assert nodeid_token("a/test_x.py::test_same") != nodeid_token("b/test_x.py::test_same")


def test_parametrized_ids_become_broker_safe_tokens() -> None:
    token = nodeid_token("tests/t.py::test_publish[nats-order.created *> x]")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
    assert len(token) <= 40


def test_without_xdist_the_worker_part_is_main() -> None:
    assert scoped_name("q", worker=None, nodeid="t.py::test_a", sep="_").startswith("q_main_test_a-")
