"""TLS for the local PostgreSQL: a private CA and a server certificate for 127.0.0.1 and localhost.

Generated once with openssl into `<state>/postgres/tls/` and reused; clients verify the server against
`ca.crt` with `sslmode=verify-full` (the name they connect to must be in the certificate). The CA's key
stays with the user who runs the stack; the server's key belongs to the server's user, mode 0600, as
PostgreSQL requires.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CERTIFICATE_DAYS = 825
SERVER_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1"


class TlsSetupError(RuntimeError):
    """The certificates could not be made; the message says why."""


@dataclass(frozen=True)
class ServerTls:
    """Where the server's certificate and key are, and the CA clients trust."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def ensure_server_tls(folder: Path, *, owner: tuple[int, int] | None = None) -> ServerTls:
    """The CA and server certificate in `folder`, made on first use; `owner` (uid, gid) gets the key."""
    tls = ServerTls(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    if not all(path.exists() for path in (tls.ca_file, tls.cert_file, tls.key_file)):
        _generate(folder, tls)
    if owner is not None:
        os.chown(tls.key_file, *owner)
        os.chown(tls.cert_file, *owner)
    return tls


def _generate(folder: Path, tls: ServerTls) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsSetupError("openssl was not found on PATH; it makes the local PostgreSQL's certificates")
    folder.mkdir(parents=True, exist_ok=True)
    # Traversable, not listable: the server (another user when we are root) must reach its key.
    folder.chmod(0o711)
    ca_key, request = folder / "ca.key", folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text(f"{SERVER_NAMES}\nextendedKeyUsage=serverAuth\n")
    days = str(CERTIFICATE_DAYS)
    ca, key, cert = str(tls.ca_file), str(tls.key_file), str(tls.cert_file)
    new_key = ["-newkey", "rsa:2048", "-nodes", "-keyout"]
    steps = [
        ["req", "-x509", *new_key, str(ca_key), "-out", ca, "-subj", "/CN=saga local PostgreSQL CA"],
        ["req", *new_key, key, "-out", str(request), "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", str(request), "-CA", ca, "-CAkey", str(ca_key), "-CAcreateserial"],
    ]
    steps[0] += ["-days", days]
    steps[2] += ["-out", cert, "-days", days, "-extfile", str(extensions)]
    for step in steps:
        result = subprocess.run([openssl, *step], capture_output=True, text=True)
        if result.returncode != 0:
            raise TlsSetupError(f"openssl failed ({' '.join(step[:2])}…):\n{result.stderr}")
    for private in (ca_key, tls.key_file):
        private.chmod(0o600)
    # The CA certificate is what clients need: readable by whoever runs them.
    tls.ca_file.chmod(0o644)
    tls.cert_file.chmod(0o644)
    request.unlink()
    extensions.unlink()
