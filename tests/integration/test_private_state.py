"""The local stack's data and logs are its owner's alone, and nothing above the state folder is opened
up for them (saga_tools/local_stack/private_files.py, saga_tools/local_stack/postgres.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg

from common.config import Service
from saga_tools.local_stack.postgres import PostgresServer
from saga_tools.local_stack.stack import LocalStack
from saga_tools.supervisor import ServiceProcess

_OTHERS = 0o077  # any permission for the group or for others


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ancestors(path: Path) -> dict[Path, int]:
    return {folder: _mode(folder) for folder in path.resolve().parents}


def test_the_stack_s_data_folders_and_logs_are_closed_to_group_and_others(local_stack: LocalStack) -> None:
    assert local_stack.kafka is not None and local_stack.postgres is not None
    kafka, postgres = local_stack.kafka, local_stack.postgres
    private = [
        kafka.state_dir,
        *(kafka.log_path(index).parent for index in range(kafka.nodes)),
        *(kafka.log_path(index) for index in range(kafka.nodes)),
        postgres.state_dir,
        postgres.data_dir,
        postgres.socket_dir,
        postgres.log_path,
        local_stack.state_dir / "stack.json",
    ]
    for path in private:
        assert _mode(path) & _OTHERS == 0, f"{path} is {oct(_mode(path))}"
    # pytest makes the state folder's parent for its owner alone, and no start opened it up.
    assert _mode(local_stack.state_dir.parent) & _OTHERS == 0


def test_postgres_runs_as_another_user_without_opening_a_folder_above_the_state_folder(
    tmp_path: Path,
) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    state = closed / "state" / "postgres"
    before = _ancestors(state.parent)

    server = PostgresServer(state)
    server.start()
    try:
        with psycopg.connect(server.database_url(Service.ORDER).replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.restart()  # and again, as after a crash or `saga run` the next day
        with psycopg.connect(server.database_url(Service.ORDER).replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()

    assert _ancestors(state.parent) == before
    assert _mode(closed) == 0o700
    for path in (state, server.data_dir, server.socket_dir, server.log_path):
        assert _mode(path) & _OTHERS == 0, f"{path} is {oct(_mode(path))}"


def test_a_service_log_and_its_folder_are_the_owner_s_alone_also_when_an_older_start_made_them(
    tmp_path: Path,
) -> None:
    log = tmp_path / "logs" / "payment.log"
    log.parent.mkdir(mode=0o755)
    log.write_text("an older start's lines\n")
    log.chmod(0o644)

    process = ServiceProcess(
        Service.PAYMENT, env=dict(os.environ), log_path=log, base_url="http://127.0.0.1:9"
    )
    process.start()
    process.kill()

    assert _mode(log.parent) == 0o700 and _mode(log) == 0o600
    assert log.read_text().startswith("an older start's lines")
