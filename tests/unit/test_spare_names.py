"""A kept server's keeper creates, renames and drops databases by name: only testbed's names get through."""

from __future__ import annotations

import pytest

from testbed.engines.postgres_spares import _checked
from testbed.errors import ConfigError


@pytest.mark.parametrize("name", ["testbed_r1a2b3c4_main", "testbed_tpl_8d59e54920f030f09073",
                                  "testbed_r1a2b3c4__replica-1_gw0", "testbed_spare_12"])
def test_testbeds_own_names_pass(name: str) -> None:
    assert _checked(name) == name


@pytest.mark.parametrize("name", ["postgres", "app", 'testbed_x"; DROP DATABASE app; --', "testbed_", "",
                                  "testbed_" + "x" * 60, "testbed_a b"])
def test_anything_else_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="refusing database name"):
        _checked(name)
