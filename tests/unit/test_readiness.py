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


async def test_rounds_start_at_most_once_an_interval() -> None:
    probes = Probes()
    task = asyncio.create_task(_checks(probes, interval=0.1).run_forever())
    await asyncio.sleep(0.45)
    task.cancel()

    assert 2 * 3 <= probes.runs <= 2 * 5  # two checks a round, a round every 0.1 s


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
