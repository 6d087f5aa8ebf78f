"""`saga stack up | status | down`: the local Kafka and PostgreSQL as an operator starts and stops them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from saga_tools.local_stack.pg_auth import read_passwords
from saga_tools.local_stack.ports import is_listening

SAGA = str(Path(sys.executable).with_name("saga"))


def saga(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SAGA, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_stack_up_runs_until_stack_down_stops_it_and_status_tells_where_it_is(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_DATABASE_URL") and key != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["SAGA_STATE_DIR"] = str(tmp_path)
    record = tmp_path / "stack.json"
    assert saga(env, "stack", "down").returncode == 3  # nothing to stop yet

    up = subprocess.Popen(
        [SAGA, "stack", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not record.exists():
            assert up.poll() is None, up.communicate()
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        status = saga(env, "stack", "status")
        assert status.returncode == 0, status.stderr
        recorded = json.loads(status.stdout)
        recorded_text = record.read_text()
        # What `stack up` prints and records is enough to connect: the URL names the password file.
        url = recorded["environment"]["ORDER_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            exported_url_worked = conn.execute("SELECT current_user").fetchone() == ("order",)
        bootstrap = recorded["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
        host, port = bootstrap.split(",")[0].split(":")
        assert is_listening(int(port), host)

        down = saga(env, "stack", "down")
        assert down.returncode == 0, down.stderr
        stdout, _ = up.communicate(timeout=60)
        assert up.returncode == 0
        assert "export KAFKA_BOOTSTRAP_SERVERS=" in stdout and "export ORDER_DATABASE_URL=" in stdout
        assert not record.exists()
        # The services' passwords are in the stack's private password file, and nowhere else.
        passwords = read_passwords(tmp_path / "postgres" / "passwords")
        assert set(passwords) == {"payment", "order", "delivery"}
        shown = [
            stdout,
            status.stdout,
            status.stderr,
            recorded_text,
            (tmp_path / "postgres" / "postgres.log").read_text(),
        ]
        assert not [password for password in passwords.values() if any(password in text for text in shown)]
        assert exported_url_worked
        assert not is_listening(int(port), host)
    finally:
        if up.poll() is None:
            up.kill()
