from __future__ import annotations

from dataclasses import replace

import pytest

from testbed.errors import BinaryNotFoundError
from testbed.services import kafka


def test_kafka_without_a_binary_says_where_it_looked_and_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(kafka, "SPEC", replace(kafka.SPEC, system_globs=("/nonexistent/bin/kafka-server-start.sh",)))
    with pytest.raises(BinaryNotFoundError) as info:
        kafka.choose_binary()
    text = str(info.value)
    assert text.startswith("[kafka] no Kafka server binary found. Looked for kafka-server-start.sh")
    assert "https://kafka.apache.org/downloads" in text
