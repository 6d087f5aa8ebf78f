"""`stop_all` stops services at once: each is asked to stop before any has finished stopping."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from saga_tools.supervisor import ServiceProcess, stop_all

# A service that takes a while to stop cleanly, as a Faust worker leaving its group does: it records when
# SIGTERM came and when it exits.
SLOW_TO_STOP = """
import pathlib, signal, sys, time
record = pathlib.Path(sys.argv[0]).with_name(f"{__import__('os').getpid()}.record")
def on_term(*_):
    record.write_text(record.read_text() + f"term {time.monotonic()}\\n")
    time.sleep(0.5)
    record.write_text(record.read_text() + f"exit {time.monotonic()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
record.write_text("ready\\n")
while True:
    time.sleep(0.05)
"""


def test_every_service_is_asked_to_stop_before_any_has_stopped_and_each_exits_cleanly(tmp_path: Path) -> None:
    (tmp_path / "slow_to_stop.py").write_text(SLOW_TO_STOP)
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    processes = [
        ServiceProcess("slow_to_stop", env=env, log_path=tmp_path / "logs" / f"{n}.log", base_url="http://-")
        for n in range(3)
    ]
    for process in processes:
        process.start()
    records = []
    for process in processes:
        assert process.process is not None
        record = tmp_path / f"{process.process.pid}.record"
        deadline = time.monotonic() + 30
        while not (record.exists() and record.read_text().startswith("ready")):
            assert time.monotonic() < deadline, process.log_tail()
            time.sleep(0.05)
        records.append(record)

    stop_all(processes)

    events = [dict(line.split() for line in record.read_text().splitlines()[1:]) for record in records]
    assert all(set(lines) == {"term", "exit"} for lines in events), events
    assert max(float(lines["term"]) for lines in events) < min(float(lines["exit"]) for lines in events)
    assert [process.process.returncode for process in processes if process.process] == [0, 0, 0]
    assert not any(process.running for process in processes)
