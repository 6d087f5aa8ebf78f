"""Kafka's JVMs map a class-data archive once a broker has left one next to the jars."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from saga_tools.local_stack.local_kafka import class_archive, kafka_tool_command


@pytest.fixture()
def jars(tmp_path: Path) -> Path:
    if shutil.which("java") is None:
        pytest.skip("java is not installed: there is no archive to name")
    (tmp_path / "jars").mkdir()
    return tmp_path / "jars"


def test_a_tool_maps_the_archive_once_there_is_one_and_starts_without_it_before(jars: Path) -> None:
    archive = class_archive(jars)
    assert archive is not None and archive.parent == jars.parent

    before = kafka_tool_command(jars, "Tool")
    archive.write_bytes(b"written by a broker as it exited")
    after = kafka_tool_command(jars, "Tool")

    assert not [arg for arg in before if "SharedArchiveFile" in arg]
    assert f"-XX:SharedArchiveFile={archive}" in after
    assert "-Xlog:cds=off,cds+dynamic=off" in after  # a JVM that cannot use it says so on stdout otherwise
    assert after[-1] == "Tool" and after.index(f"-XX:SharedArchiveFile={archive}") < after.index("-cp")
