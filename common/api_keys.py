"""The API keys a service accepts, read from its settings (the rules are in common/auth.py).

Entries come from SAGA_API_KEYS (inline) and SAGA_API_KEYS_FILE, both together. The file is read again
when it changes (checked at most once a second), so a key is added or revoked without a restart; a file
that no longer parses keeps the keys read before, and says why in the log. With neither set a service
refuses to start, unless SAGA_DISABLE_AUTHENTICATION turns authentication off for development — which it
then announces at start and on /readyz.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from common.auth import ANONYMOUS, Caller, InvalidKeyEntry, KeyEntry, identify, parse_entries
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
        self._file_stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        if file is not None:
            self._from_file = parse_entries(file.read_text(), str(file))
            self._file_stamp = _stamp(file)
            self._checked_at = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """The keys the settings name; NoApiKeys when there are none and authentication is on."""
        inline = parse_entries(settings.api_keys or "")
        try:
            keys = cls(inline, settings.api_keys_file, disabled=settings.disable_authentication)
        except OSError as exc:
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

    def _reload_if_changed(self) -> None:
        if self._file is None or time.monotonic() - self._checked_at < _RECHECK_SECONDS:
            return
        self._checked_at = time.monotonic()
        try:
            stamp = _stamp(self._file)
            if stamp == self._file_stamp:
                return
            self._from_file = parse_entries(self._file.read_text(), str(self._file))
            self._file_stamp = stamp
            log.info("API keys reloaded from %s: %d entries", self._file, len(self._from_file))
        except (OSError, InvalidKeyEntry) as exc:
            log.error("API keys file %s not reloaded, the keys read before stay: %s", self._file, exc)


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size
