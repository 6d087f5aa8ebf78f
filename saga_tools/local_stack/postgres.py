"""A private PostgreSQL server: `initdb` once, then `postgres` on a free port with data under a state folder.

One database per service, each owned by a role of the same name that logs in with its own password
(saga_tools/local_stack/pg_auth.py) and may connect to no other database: `REVOKE CONNECT … FROM PUBLIC` on
every database, so only its owner (and the superuser, for the stack's setup) gets in. Optionally the server
speaks TLS and TCP clients must use it (saga_tools/local_stack/pg_tls.py). The server runs as a direct child
(not daemonized by pg_ctl) so it can be stopped, killed for fault tests, and dies with its parent.
PostgreSQL refuses to run as root; when we are root, it runs as the `postgres` system user.

Its folder is the server user's alone (0700, its log 0600), and nothing above the state folder is
opened up for it: a folder like /root or pytest's tmp stays closed to other users, the `postgres` user
included. So, as root, the server never walks a path from `/` to its files. It inherits an open handle
on its data folder (opened while still root) and is told the folder is `/proc/self/fd/<n>`, a link
whose target is reached without searching the folders above; it makes that its working folder at
start, and the other files are in it (pg_hba.conf) or named relative to it (`../socket`). Its backends
are forks that inherit the working folder. (Starting it *in* the folder is not enough: PostgreSQL 15 looks
for its own binary by leaving its working folder and returning to it by its full path.) Clients run as
the stack's user and reach the socket by its full path.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from common.services import SERVICES, Service
from saga_tools.local_stack.pg_auth import SUPERUSER, ensure_passwords, hba_conf, ident_conf, scram_verifier
from saga_tools.local_stack.pg_tls import ServerTls, ensure_server_tls
from saga_tools.local_stack.ports import free_port, is_listening
from saga_tools.local_stack.private_files import open_private_log, private_dir, write_private
from saga_tools.local_stack.process import die_with_parent

READY_TIMEOUT_SECONDS = 60.0
# Databases every role could connect to by default; the services' roles have no business there.
SHARED_DATABASES = ("postgres", "template1")


class PostgresSetupError(RuntimeError):
    """PostgreSQL cannot be found or started; the message says what to do."""


def find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise PostgresSetupError(
        f"`{name}` was not found on PATH or under /usr/lib/postgresql/*/bin. Install the PostgreSQL server "
        "(e.g. `apt-get install postgresql-15`) or set PAYMENT_DATABASE_URL, ORDER_DATABASE_URL and "
        "DELIVERY_DATABASE_URL to databases of your own."
    )


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresSetupError(
            "running as root, PostgreSQL needs an unprivileged user: create one with `useradd postgres`"
        ) from exc


class PostgresServer:
    def __init__(
        self,
        state_dir: Path,
        *,
        durable: bool = False,
        tls: bool = False,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`durable=False` turns off fsync: safe against process kills (our fault tests), not power loss.
        `tls=True` makes the server speak TLS, refuse plain TCP, and hands out URLs that verify it.
        `settings` are server settings on top of ours (the bench's statement counters)."""
        self.state_dir = state_dir
        self.data_dir = state_dir / "data"
        # Absolute: libpq takes a `host` that starts with "/" as a socket directory, and the URLs name the
        # password file and the CA, which must be found from any working directory.
        self.socket_dir = (state_dir / "socket").resolve()
        self.password_file = (state_dir / "passwords").resolve()
        self.log_path = state_dir / "postgres.log"
        self.durable = durable
        self.tls_enabled = tls
        self.tls: ServerTls | None = None
        self.extra_settings = dict(settings or {})
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _run_as()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    # Clients on this machine connect through the server's Unix socket, not TCP on 127.0.0.1: the same
    # statement costs about a sixth less client CPU and a third less server CPU (bench/README.md). TCP
    # stays open on 127.0.0.1 for tools that want a port.
    #
    # The URL names the role and the password file, never the password: libpq reads it from the file, so
    # the URL can be printed, logged and recorded as it is. With TLS the services connect over TCP to
    # 127.0.0.1, the address the server listens on and its certificate names, and verify it against the
    # stack's CA (the socket cannot carry TLS; `localhost` could resolve to ::1 first, tried in vain).
    def database_url(self, service: Service) -> str:
        spec = SERVICES[service]
        role, database = spec.database_role, spec.database
        passfile = quote(str(self.password_file))
        if self.tls is not None:
            return (
                f"postgresql+psycopg://{role}@127.0.0.1:{self.port}/{database}?sslmode=verify-full"
                f"&sslrootcert={quote(str(self.tls.ca_file.resolve()))}&passfile={passfile}"
            )
        return (
            f"postgresql+psycopg://{role}@/{database}?host={quote(str(self.socket_dir))}&port={self.port}"
            f"&passfile={passfile}"
        )

    def passwords(self) -> dict[str, str]:
        """role → password of the services' roles (for tests and tools that build their own conninfo)."""
        return ensure_passwords(self.password_file)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        return make_conninfo(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=dbname)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.prepare()
        self.launch()
        self.wait_ready()

    def prepare(self) -> None:
        """The one-shot steps before the server runs: its folder, and initdb (first time only). They leave
        no process behind, so they may run in any thread (`LocalStack` overlaps them)."""
        private_dir(self.state_dir)
        if self._user is not None:
            os.chown(self.state_dir, self._user.pw_uid, self._user.pw_gid)
        first_start = not (self.data_dir / "PG_VERSION").exists()
        if first_start:
            self._initdb()
        ensure_passwords(self.password_file)
        self._write_access_rules()

    def launch(self) -> None:
        """Start the prepared server, from a thread that outlives it (see `KafkaCluster.launch`)."""
        self.port = self._choose_port()
        self._launch()

    def wait_ready(self) -> None:
        """Return once the launched server accepts connections and has the services' databases."""
        self._wait_ready()
        self._create_databases()
        self._restrict_roles()
        (self.state_dir / "server.json").write_text(json.dumps({"port": self.port}))

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as a crash would; the next start runs crash recovery."""
        if self._process is not None and self._process.poll() is None:
            backends = _children(self._process.pid)
            # The whole process group, and each backend (each is a session of its own): orphaned backends
            # would otherwise keep the old shared memory busy for a moment, failing a quick restart.
            os.killpg(self._process.pid, signal.SIGKILL)
            _signal_each(backends, signal.SIGKILL)
            self._process.wait()
        self._process = None

    @property
    def running(self) -> bool:
        """Whether the launched server is alive (paused counts: its processes exist)."""
        return self._process is not None and self._process.poll() is None

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend, as a frozen VM would: connections stay open, statements
        wait, new connections are not answered. The postmaster first, so that it forks no backend after
        the list of them is taken."""
        if self.running:
            assert self._process is not None
            os.kill(self._process.pid, signal.SIGSTOP)
            _signal_each(_children(self._process.pid), signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause` (harmless on a server that was not paused)."""
        if self.running:
            assert self._process is not None
            _signal_each(_children(self._process.pid), signal.SIGCONT)
            os.kill(self._process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self._launch()
        self._wait_ready()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------
    def _server_path(self, path: Path) -> str:
        """`path` as the server names it: relative to its data folder when it runs as another user."""
        if self._user is None:
            return str(path.resolve())
        return os.path.relpath(path.resolve(), self.data_dir.resolve())

    @contextlib.contextmanager
    def _on_data_dir(self) -> Iterator[tuple[list[str], dict[str, Any]]]:
        """The `-D` arguments and the subprocess options that start a PostgreSQL program on the data
        folder; as the server's user, through an inherited handle (the module's docstring says why)."""
        if self._user is None:
            yield ["-D", str(self.data_dir.resolve())], {}
            return
        handle = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            options = {"pass_fds": (handle,), "cwd": "/", **self._subprocess_user()}
            yield ["-D", f"/proc/self/fd/{handle}"], options
        finally:
            os.close(handle)

    def _subprocess_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        initdb = find_binary("initdb")
        # Made here (empty, 0700, the server user's) so initdb can be started inside it.
        private_dir(self.data_dir)
        if self._user is not None:
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        with self._on_data_dir() as (data_dir, options):
            result = subprocess.run(
                [
                    initdb,
                    *data_dir,
                    "-U",
                    SUPERUSER,
                    # Only until the first launch: `_write_access_rules` replaces initdb's rules with ours.
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                **options,
            )
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise PostgresSetupError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _choose_port(self) -> int:
        saved = self.state_dir / "server.json"
        if saved.exists():
            port = int(json.loads(saved.read_text())["port"])
            if not is_listening(port):
                return port
        return free_port()

    def _launch(self) -> None:
        private_dir(self.socket_dir)  # clients are the stack's user (or root): they need no way in
        if self._user is not None:
            os.chown(self.socket_dir, self._user.pw_uid, self._user.pw_gid)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self._server_path(self.socket_dir),
            "max_connections": 200,
            "shared_buffers": "128MB",
            "fsync": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "logging_collector": "off",
            "password_encryption": "scram-sha-256",
            **self.extra_settings,
        }
        if self.tls is not None:
            settings |= {
                "ssl": "on",
                "ssl_cert_file": self._server_path(self.tls.cert_file),
                "ssl_key_file": self._server_path(self.tls.key_file),
            }
        command = [find_binary("postgres")]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open_private_log(self.log_path) as log, self._on_data_dir() as (data_dir, options):
            self._process = subprocess.Popen(
                [*command, *data_dir],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                **options,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                break
            try:
                with psycopg.connect(self.admin_conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(0.1)
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        self.stop()
        raise PostgresSetupError(f"PostgreSQL did not accept connections ({last_error}). Log tail:\n{tail}")

    def _create_databases(self) -> None:
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            for spec in SERVICES.values():
                role, database = sql.Identifier(spec.database_role), sql.Identifier(spec.database)
                if not conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.database_role,)
                ).fetchone():
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
                if not conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (spec.database,)
                ).fetchone():
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))

    def _restrict_roles(self) -> None:
        """Each service's role: its current password, and no way into any database but its own.

        Run at every start, so a stack created before roles had passwords is brought up to the rule, and a
        deleted password file means new passwords rather than a stack no service can log in to.
        """
        passwords = ensure_passwords(self.password_file)
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            for spec in SERVICES.values():
                role = sql.Identifier(spec.database_role)
                verifier = sql.Literal(scram_verifier(passwords[spec.database_role]))
                conn.execute(
                    sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                        role, verifier
                    )
                )
            for database in [*(spec.database for spec in SERVICES.values()), *SHARED_DATABASES]:
                conn.execute(
                    sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
                )

    def _write_access_rules(self) -> None:
        """pg_hba.conf and pg_ident.conf (ours, replacing initdb's at every start, in the data folder where
        the server finds them by its name for the folder), and the TLS certificates when asked for;
        readable by the server's user only."""
        if self.tls_enabled:
            owner = (self._user.pw_uid, self._user.pw_gid) if self._user is not None else None
            self.tls = ensure_server_tls(self.state_dir / "tls", owner=owner)
        os_user = pwd.getpwuid(os.geteuid()).pw_name
        for name, text in (
            ("pg_hba.conf", hba_conf(tls=self.tls_enabled)),
            ("pg_ident.conf", ident_conf(os_user)),
        ):
            path = self.data_dir / name
            write_private(path, text)
            if self._user is not None:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)


def _children(parent: int) -> list[int]:
    """The processes `parent` forked (a postmaster's backends, each a session of its own, so a signal to
    the postmaster's process group does not reach them): from /proc, or `pgrep -P` where there is none."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in found.stdout.split()]
    children = []
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
            if int(fields[1]) == parent:
                children.append(int(stat.parent.name))
    return children


def _signal_each(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
