"""Sign-in sessions and CSRF tokens: pure, no I/O.

The rule: the operator's API key never leaves the server. The browser holds only an opaque session id
(256 random bits) in an HttpOnly, SameSite=Strict cookie; the key sits in this process's memory next to
the id, with a per-session CSRF token every form sends back. A session ends when the operator signs out,
when it has been idle for `idle_seconds`, or when the process restarts (then one signs in again).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "saga_console_session"
# Before sign-in there is no session: the sign-in form is protected by a double-submit token instead
# (this cookie must equal the form's field), so another site cannot sign a browser in with its own key.
SIGN_IN_COOKIE = "saga_console_sign_in"
CSRF_FIELD = "csrf_token"
IDLE_SECONDS = 8 * 3600.0
# A bound on sessions kept: sign-ins beyond it push out the least recently used (memory stays bounded).
MAX_SESSIONS = 1000


def new_token() -> str:
    """A fresh unguessable token (session id, CSRF token)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Whether a presented token is the expected one; compared in constant time, and never equal when
    either is missing or empty."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def cookie_attributes(secure: bool) -> dict[str, object]:
    """How the session cookies are set: unreadable by scripts, never sent with another site's request,
    for the whole console, and Secure when the console is served over https."""
    return {"httponly": True, "samesite": "Strict", "path": "/", "secure": secure}


@dataclass
class Session:
    """A signed-in operator: the key the services accepted, and this session's CSRF token."""

    api_key: str
    csrf_token: str = field(default_factory=new_token)
    last_seen: float = 0.0
    notices: list[str] = field(default_factory=list)

    def take_notices(self) -> list[str]:
        """The messages of the last actions, shown once."""
        taken, self.notices = self.notices, []
        return taken


class SessionStore:
    """Sessions by opaque id, in memory; an idle one expires, the oldest goes when there are too many."""

    def __init__(
        self,
        idle_seconds: float = IDLE_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._idle = idle_seconds
        self._max = max_sessions
        self._clock = clock

    def start(self, api_key: str) -> tuple[str, Session]:
        """A new session for a key the services accepted: its id (for the cookie) and the session."""
        while len(self._sessions) >= self._max:
            oldest = min(self._sessions, key=lambda sid: self._sessions[sid].last_seen)
            del self._sessions[oldest]
        session_id = new_token()
        session = Session(api_key, last_seen=self._clock())
        self._sessions[session_id] = session
        return session_id, session

    def find(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's id, or None (unknown, or idle too long: then it is dropped)."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str | None) -> None:
        """Sign out: the id no longer finds anything."""
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)
