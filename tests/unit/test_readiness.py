"""Readiness is checked in the background, at most once a second, and `/readyz` reads it from memory;
why a check fails is told to operators only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import faust
import pytest
from aiohttp.test_utils import make_mocked_request

from common import readiness
from common.api_keys import ApiKeys
from common.auth import Caller, Scope, entry_for, new_key
from common.operations_api import Ready
from common.readiness import Check, ReadinessChecks, sees_reasons
from common.web import provide

SECRET_DETAIL = "connection to server at 10.1.2.3, port 5432 failed: role payment_rw"


class Probes:
    """Checks that count how often they run: the database fails, the broker is fine."""

    def __init__(self) -> None:
        self.runs = 0

    async def database(self) -> Check:
        self.runs += 1
        raise OSError(SECRET_DETAIL)

    async def broker(self) -> Check:
        self.runs += 1
        return Check("ok")


def _checks(probes: Probes, interval: float = 1.0) -> ReadinessChecks:
    return ReadinessChecks({"database": probes.database, "broker": probes.broker}, interval=interval)


async def test_results_gone_stale_are_not_answered_the_ask_waits_for_a_fresh_round() -> None:
    probes, now = Probes(), [100.0]
    checks = ReadinessChecks(
        {"database": probes.database, "broker": probes.broker}, interval=1.0, clock=lambda: now[0]
    )
    await checks.current()
    now[0] += 60  # a quiet minute: nobody asked

    await checks.current()

    assert probes.runs == 2 * 2  # the second ask waited for its own round, not the minute-old one


async def test_before_the_first_round_the_service_is_not_ready() -> None:
    checks = _checks(Probes())

    assert not checks.ready
    assert checks.shown(with_reasons=False) == {"database": "pending", "broker": "pending"}


async def test_a_failing_check_says_why_only_when_reasons_are_asked_for() -> None:
    checks = _checks(Probes())
    await checks.refresh()

    assert not checks.ready
    assert checks.shown(with_reasons=False) == {"database": "failed", "broker": "ok"}
    assert checks.shown(with_reasons=True) == {
        "database": f"failed: OSError('{SECRET_DETAIL}')",
        "broker": "ok",
    }


def test_only_an_operator_is_shown_the_reasons() -> None:
    assert sees_reasons(Caller("ops", frozenset({Scope.OPERATOR})))
    assert not sees_reasons(Caller("shop-1", frozenset({Scope.SHOP, Scope.CARRIER})))
    assert not sees_reasons(None)


async def test_a_check_that_hangs_fails_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "CHECK_TIMEOUT_SECONDS", 0.05)

    async def hangs() -> Check:
        await asyncio.sleep(60)
        return Check("ok")

    checks = ReadinessChecks({"broker": hangs})
    await asyncio.wait_for(checks.refresh(), 1.0)

    assert checks.shown(with_reasons=True) == {"broker": "failed: TimeoutError()"}


async def test_a_round_starts_only_when_asked_and_at_most_once_an_interval() -> None:
    probes, now = Probes(), [100.0]
    checks = ReadinessChecks(
        {"database": probes.database, "broker": probes.broker}, interval=1.0, clock=lambda: now[0]
    )
    await asyncio.sleep(0.05)
    assert probes.runs == 0  # nobody asked: no round

    first = (await checks.current()).shown(with_reasons=False)  # nothing fresh yet: waits for the round
    for _ in range(20):
        await checks.current()
    now[0] += 0.5
    await checks.current()  # half a second later: the same round's results
    assert probes.runs == 2
    now[0] += 0.6
    await checks.current()  # a second after the first round started: the next one, in the background
    await asyncio.sleep(0.05)

    assert first == {"database": "failed", "broker": "ok"}
    assert probes.runs == 2 * 2  # two checks a round, two rounds
    assert checks.shown(with_reasons=False) == {"database": "failed", "broker": "ok"}
    await checks.close()


def _ready_view(checks: ReadinessChecks, operator_key: str) -> Ready:
    app = faust.App("readiness-unit", autodiscover=False)
    keys = ApiKeys([entry_for("ops", [Scope.OPERATOR], operator_key)], None)
    provide(app, checks, keys)
    return Ready(app, web=app.web)


async def _get(view: Ready, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response: Any = await view.dispatch(make_mocked_request("GET", "/readyz", headers=headers))
    return response.status, json.loads(response.body)


async def test_readyz_answers_from_memory_and_tells_the_reason_to_an_operator_only() -> None:
    probes, operator_key = Probes(), new_key()
    checks = _checks(probes)
    await checks.refresh()
    view = _ready_view(checks, operator_key)

    anonymous = [await _get(view, {}) for _ in range(20)]
    operator = await _get(view, {"Authorization": f"Bearer {operator_key}"})
    wrong_key = await _get(view, {"Authorization": f"Bearer {new_key()}"})

    assert probes.runs == 2  # the one round above; twenty-two answers ran no check
    assert (
        anonymous[0]
        == wrong_key
        == (503, {"ready": False, "checks": {"database": "failed", "broker": "ok"}, "authentication": "on"})
    )
    assert SECRET_DETAIL not in json.dumps(anonymous)
    assert operator[0] == 503 and SECRET_DETAIL in operator[1]["checks"]["database"]
