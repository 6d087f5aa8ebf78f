"""The API keys a service accepts, read from its settings (the rules are in common/auth.py).

Entries come from SAGA_API_KEYS (inline) and SAGA_API_KEYS_FILE, both together. With neither set a
service refuses to start, unless SAGA_DISABLE_AUTHENTICATION turns authentication off for development —
which it then announces at start and on /readyz.

The keys file fails closed. At start a file that cannot be read or parsed stops the service with the
reason. Later the file is read again at most once a second and its content compared by digest (not by
mtime and size, which a rewrite can keep); a file that has gone, cannot be read or no longer parses
gives NO key from then on — the inline entries still count — until it is fixed, and `problem()` says
why (for /readyz and the log). Revoking a key by editing the file therefore never leaves it valid
because the edit went wrong. Replace the file atomically (write another, rename it over): a half-written
file is read as it is, for up to a second.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from common.auth import (
    ANONYMOUS,
    DIGEST_PREFIX,
    KEY_PREFIX,
    Caller,
    InvalidKeyEntry,
    KeyEntry,
    identify,
    parse_entries,
)
from common.config import Settings

log = logging.getLogger(__name__)

_RECHECK_SECONDS = 1.0


class NoApiKeys(RuntimeError):
    """Authentication is on and no key is configured: nobody could call the service."""


class ApiKeys:
    """Identifies the caller of a request from its key."""

    def __init__(
        self, inline: list[KeyEntry], file: Path | None, *, disabled: bool = False, source: str = ""
    ) -> None:
        self._inline = inline
        self._file = file
        self.disabled = disabled
        self._from_file: list[KeyEntry] = []
        self._file_digest: bytes | None = None
        self._problem: str | None = None
        self._checked_at = 0.0
        if file is not None:
            # At start a bad file raises (OSError, InvalidKeyEntry): the service refuses to start.
            content = file.read_bytes()
            self._from_file = parse_entries(content.decode(), str(file))
            self._file_digest = hashlib.sha256(content).digest()
            self._checked_at = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """The keys the settings name; NoApiKeys when there are none and authentication is on."""
        inline = parse_entries(settings.api_keys or "")
        try:
            keys = cls(inline, settings.api_keys_file, disabled=settings.disable_authentication)
        except (OSError, UnicodeDecodeError) as exc:
            raise NoApiKeys(f"SAGA_API_KEYS_FILE cannot be read: {exc}") from exc
        if not keys.disabled and not keys.entries():
            raise NoApiKeys(
                "no API keys are configured, so no one could call this service: set SAGA_API_KEYS_FILE"
                " or SAGA_API_KEYS (`saga keys new` makes a key and its entry), or set"
                " SAGA_DISABLE_AUTHENTICATION=true to run without authentication (development only)"
            )
        return keys

    def entries(self) -> list[KeyEntry]:
        self._reload_if_changed()
        return [*self._inline, *self._from_file]

    def caller(self, key: str | None) -> Caller | None:
        """Who `key` belongs to (None: nobody); everyone is ANONYMOUS with authentication off."""
        if self.disabled:
            return ANONYMOUS
        return identify(self.entries(), key)

    def problem(self) -> str | None:
        """Why the keys file gives no key right now (for readiness), or None when it is fine."""
        self._reload_if_changed()
        return self._problem

    def _reload_if_changed(self) -> None:
        if self._file is None or time.monotonic() - self._checked_at < _RECHECK_SECONDS:
            return
        self._checked_at = time.monotonic()
        try:
            content = self._file.read_bytes()
        except OSError as exc:
            self._fail(f"the keys file {self._file} cannot be read: {exc.strerror or exc}")
            return
        digest = hashlib.sha256(content).digest()
        if digest == self._file_digest:
            return
        try:
            entries = parse_entries(content.decode(), str(self._file))
        except UnicodeDecodeError:
            self._fail(f"the keys file {self._file} is not UTF-8 text")
        except InvalidKeyEntry as exc:
            self._fail(f"the keys file does not parse: {_without_secrets(str(exc), content.decode())}")
        else:
            self._from_file, self._file_digest, self._problem = entries, digest, None
            log.info("API keys reloaded from %s: %d entries", self._file, len(self._from_file))
            return
        # The broken content's digest is kept: it is not parsed (and reported) again every second.
        self._file_digest = digest

    def _fail(self, reason: str) -> None:
        """No key from the file from now on; said once in the log, and by problem() until it is fixed."""
        problem = f"{reason}; no key from it is accepted"
        self._from_file, self._file_digest = [], None
        if problem != self._problem:
            log.error("API keys: %s", problem)
        self._problem = problem


def _without_secrets(message: str, content: str) -> str:
    """`message` without any field of `content` that could be a key or a digest (one pasted in the wrong
    place is echoed by a parse error naming the field): those are never repeated in a problem or a log."""
    for field in set(content.replace(";", " ").split()):
        if field.startswith((KEY_PREFIX, DIGEST_PREFIX)) or len(field) >= 32:
            message = message.replace(field, "***")
    return message
