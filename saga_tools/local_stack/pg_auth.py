"""Who may log in to the local PostgreSQL, and with what: the services' passwords and the server's rules.

The rule: each service logs in as its own role with a password (SCRAM-SHA-256, on the Unix socket and on
TCP); the superuser `postgres` has no password and is reachable only through the Unix socket by the
operating-system user that runs the stack (peer authentication), for the stack's own setup. The
passwords are generated once and kept in a libpq password file (mode 0600) in the stack's state folder,
which the database URLs name (`passfile=`), so no URL, log line or record ever carries a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from common.services import SERVICES
from saga_tools.local_stack.private_files import write_private

SUPERUSER = "postgres"
# RFC 7677's minimum and PostgreSQL's default: what `ALTER ROLE … PASSWORD` would store.
SCRAM_ITERATIONS = 4096


def read_passwords(path: Path) -> dict[str, str]:
    """role → password, from a libpq password file (`host:port:database:user:password` lines)."""
    if not path.exists():
        return {}
    passwords: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            *_, user, password = line.split(":", 4)
            passwords[user] = password
    return passwords


def ensure_passwords(path: Path) -> dict[str, str]:
    """The services' passwords, generating the missing ones; the file is (re)written with mode 0600.

    A password file that libpq could read while others can too is refused by libpq, so it is created
    private rather than chmod-ed afterwards (no moment where it is readable by others).
    """
    passwords = read_passwords(path)
    roles = [spec.database_role for spec in SERVICES.values()]
    wanted = {role: passwords.get(role) or secrets.token_urlsafe(24) for role in roles}
    if wanted != passwords:
        # token_urlsafe never yields ':' or '\\', the two characters the file format would need escaped.
        lines = [
            "# The local stack's service passwords (saga_tools/local_stack/pg_auth.py); "
            "libpq reads this file."
        ]
        lines += [f"*:*:*:{role}:{password}" for role, password in wanted.items()]
        write_private(path, "\n".join(lines) + "\n")
    return wanted


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677).

    Computed here so that `ALTER ROLE … PASSWORD` sends only the verifier: the plain password never
    reaches the server, so it cannot appear in its log (a failed statement is logged with its text).
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def hba_conf(*, tls: bool) -> str:
    """pg_hba.conf: the superuser by peer on the socket only, everyone else by SCRAM password.

    With TLS, TCP connections must use it (`hostssl`); a plain TCP connection matches no line and is
    refused. The first matching line decides, so the superuser's line comes first: `postgres` from any
    other OS user, or over TCP, is refused rather than falling through to a password.
    """
    tcp = "hostssl" if tls else "host"
    return "\n".join(
        [
            "# Written by the local stack at every start (saga_tools/local_stack/pg_auth.py); "
            "edits are overwritten.",
            "# TYPE   DATABASE  USER      ADDRESS       METHOD",
            f"local    all       {SUPERUSER}                 peer map=stack",
            "local    all       all                     scram-sha-256",
            f"{tcp:<8} all       {SUPERUSER}  127.0.0.1/32  reject",
            f"{tcp:<8} all       all       127.0.0.1/32  scram-sha-256",
            "",
        ]
    )


def ident_conf(os_user: str) -> str:
    """pg_ident.conf: the OS user running the stack may be the superuser (and no one else may)."""
    return f"# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\nstack      {os_user}  {SUPERUSER}\n"
