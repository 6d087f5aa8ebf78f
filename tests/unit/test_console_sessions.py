"""The console's sessions and CSRF tokens: the operator key stays on the server, the browser holds an
opaque id in a cookie no script and no other site's request can use."""

from __future__ import annotations

from console.actions import local_path
from console.sessions import SessionStore, cookie_attributes, tokens_match


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_id_is_opaque_and_finds_the_key_kept_on_the_server() -> None:
    store = SessionStore()
    session_id, session = store.start("the-operator-key")
    assert "the-operator-key" not in session_id and len(session_id) >= 40
    found = store.find(session_id)
    assert found is session and found.api_key == "the-operator-key"
    assert store.find("a-guessed-id") is None and store.find(None) is None


def test_each_session_gets_its_own_csrf_token() -> None:
    store = SessionStore()
    _, first = store.start("k")
    _, second = store.start("k")
    assert first.csrf_token and first.csrf_token != second.csrf_token


def test_a_session_idle_too_long_expires_and_use_keeps_it_alive() -> None:
    clock = Clock()
    store = SessionStore(idle_seconds=60, clock=clock)
    session_id, _ = store.start("k")
    clock.now += 50
    assert store.find(session_id) is not None  # used: idle time starts again
    clock.now += 50
    assert store.find(session_id) is not None
    clock.now += 61
    assert store.find(session_id) is None
    assert len(store) == 0


def test_signing_out_ends_the_session() -> None:
    store = SessionStore()
    session_id, _ = store.start("k")
    store.end(session_id)
    assert store.find(session_id) is None


def test_a_full_store_drops_the_least_recently_used_session() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=2, clock=clock)
    old, _ = store.start("a")
    clock.now += 1
    recent, _ = store.start("b")
    clock.now += 1
    store.find(old)  # used again: now the most recent
    clock.now += 1
    newest, _ = store.start("c")
    assert store.find(recent) is None
    assert store.find(old) is not None and store.find(newest) is not None


def test_tokens_match_only_when_equal_and_present() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)
    assert not tokens_match(None, None)
    assert not tokens_match("", "")


def test_cookies_are_httponly_samesite_strict_and_secure_only_over_https() -> None:
    assert cookie_attributes(secure=False) == {
        "httponly": True,
        "samesite": "Strict",
        "path": "/",
        "secure": False,
    }
    assert cookie_attributes(secure=True)["secure"] is True


def test_a_notice_is_shown_once() -> None:
    _, session = SessionStore().start("k")
    session.notices.append("retried")
    assert session.take_notices() == ["retried"]
    assert session.take_notices() == []


def test_an_action_goes_back_only_to_a_page_of_the_console() -> None:
    assert local_path("/orders/acme:1", "/") == "/orders/acme:1"
    for elsewhere in (
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "orders",
        None,
        "/a\r\nb",
    ):
        assert local_path(elsewhere, "/dead-letters") == "/dead-letters"
