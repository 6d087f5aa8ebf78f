"""The OpenAPI documents are the contract: a fuzzer (schemathesis) with every check on finds nothing,
with a key of every scope, with a shop's key, and without one.

Each service's `/openapi.json` is fuzzed on the running platform with `schemathesis run --checks all`: its
coverage phase (boundary and invalid values of every parameter and body field, unsupported methods,
missing headers, wrong content types), its fuzzing phase (generated valid and invalid requests) and its
stateful phase (sequences along the links it infers from the response schemas). What every answer must
satisfy: no 5xx; a status, content type, headers and body the document declares; valid data accepted
(2xx, or a documented 404/409) and invalid data rejected with a 4xx; 405 with Allow for a method the
path does not have; every answer within MAX_RESPONSE_SECONDS. Authenticated (the suite's key has every
scope), `ignored_auth` also sends each operation the document protects without the key and with a wrong
one, and expects the documented 401. Unauthenticated, every protected operation must answer the 401 it
documents, and nothing reaches a handler. use_after_free checks that a deleted webhook endpoint is gone;
ensure_resource_availability runs on the inferred links.

The budget is small and the generation deterministic (same requests every run), so CI stays fast and a
failure reproduces. CI fuzzes as one shop: a second shop's key has the same scopes, so the same
deterministic requests would take the same paths (one shop kept from another's orders is
tests/e2e/test_tenants.py's); `FUZZ_EVERY_SHOP=1` fuzzes as each of `SHOPS`. Without a key, every
protected operation stops at the 401 before any parsing, so that run has a quarter of the budget.

The fuzzer writes to the shared platform (checkouts with random carts, stock for
random SKUs, cancels): afterwards every order it left waiting for the carrier is shipped and delivered,
and the invariants of every end-to-end test must hold, so it leaves the platform as it found it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest

from common.config import Service
from tests.carrier_steps import CARRIER_STEPS
from tests.e2e.conftest import Platform
from tests.invariants import wait_until_quiet
from tests.keys import SHOPS, shop_keys, suite_headers, suite_key

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
# Per operation and phase; with the coverage phase's own cases, about 550-700 requests per service and
# mode. FUZZ_MAX_EXAMPLES raises it for a longer run (RELIABILITY.md has one).
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
MAX_EXAMPLES_WITHOUT_A_KEY = max(5, MAX_EXAMPLES // 4)
FUZZED_SHOPS = SHOPS if os.environ.get("FUZZ_EVERY_SHOP") == "1" else SHOPS[:1]
MAX_RESPONSE_SECONDS = 10


def fuzz(url: str, workdir: Path, *, api_key: str | None) -> subprocess.CompletedProcess[str]:
    """Run schemathesis with every check against the document at `url`, sending `api_key` on every
    request when given; its report is in the output."""
    max_examples = MAX_EXAMPLES if api_key else MAX_EXAMPLES_WITHOUT_A_KEY
    command = [
        SCHEMATHESIS,
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--generation-deterministic",
        "--max-response-time",
        str(MAX_RESPONSE_SECONDS),
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--no-color",
        *(["--header", f"Authorization: Bearer {api_key}"] if api_key else []),
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.e2e.contract_hooks",
    }
    return subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240 + 20 * MAX_EXAMPLES,
        check=False,
    )


KEYS = {
    "with-a-key-of-every-scope": suite_key,
    **{f"as-{shop}": (lambda shop=shop: shop_keys()[shop]) for shop in FUZZED_SHOPS},
    "without-a-key": lambda: None,
}
FUZZ_TEST = "test_the_fuzzer_with_every_check_finds_nothing_against_the_document"


class FuzzRuns:
    """The fuzzer's runs the session selected, two at a time, never two on one service at once.

    A run waits on the platform much of its time (schemathesis used 13-18 s of CPU in runs of 18-27 s),
    so two at once keep both cores busy: the nine runs took about 150 s one after the other. Not two on
    one service: one run's listing could lead it to delete the webhook endpoint the other just created,
    and the other's use_after_free check would fail on a deletion it did not make. Each run is its own
    process, with its own deterministic requests, as before (schemathesis' own `--workers` shares one
    process between threads, and its generation is not thread-safe: it failed with an AST SystemError)."""

    def __init__(self, platform: Platform, workdir: Path, wanted: Sequence[tuple[Service, str]]) -> None:
        self._calls = {key: (platform.url(key[0]), KEYS[key[1]]()) for key in wanted}
        self._workdir = workdir
        self._waiting = list(wanted)  # in the order the tests ask for them
        self._busy: set[Service] = set()
        self._results: dict[tuple[Service, str], Future[subprocess.CompletedProcess[str]]] = {
            key: Future() for key in wanted
        }
        self._turn = threading.Condition()
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(2)]
        for worker in self._workers:
            worker.start()

    def result(self, service: Service, caller: str) -> subprocess.CompletedProcess[str]:
        return self._results[(service, caller)].result()

    def close(self) -> None:
        """Start no more runs (a test stopped the session early); wait for those under way."""
        with self._turn:
            self._waiting.clear()
            self._turn.notify_all()
        for worker in self._workers:
            worker.join()

    def _next(self) -> tuple[Service, str] | None:
        with self._turn:
            while self._waiting:
                key = next((key for key in self._waiting if key[0] not in self._busy), None)
                if key is not None:
                    self._waiting.remove(key)
                    self._busy.add(key[0])
                    return key
                self._turn.wait()
            return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            url, api_key = self._calls[key]
            workdir = self._workdir / f"{key[0].value}-{key[1]}"
            workdir.mkdir()
            try:
                self._results[key].set_result(fuzz(url, workdir, api_key=api_key))
            except BaseException as error:  # handed to the test that asks for this run
                self._results[key].set_exception(error)
            finally:
                with self._turn:
                    self._busy.discard(key[0])
                    self._turn.notify_all()


@pytest.fixture(scope="module")
def fuzz_runs(
    platform: Platform, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzRuns]:
    """Every run of the fuzzer this session selected, started as soon as the first test asks: a test
    run alone (`pytest path::test[id]`) starts only its own."""
    wanted = [
        (item.callspec.params["service"], item.callspec.params["caller"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == FUZZ_TEST
    ]
    runs = FuzzRuns(platform, tmp_path_factory.mktemp("fuzz"), wanted)
    yield runs
    runs.close()


@pytest.mark.parametrize("caller", list(KEYS))
@pytest.mark.parametrize("service", list(Service), ids=[service.value for service in Service])
def test_the_fuzzer_with_every_check_finds_nothing_against_the_document(
    fuzz_runs: FuzzRuns, service: Service, caller: str
) -> None:
    result = fuzz_runs.result(service, caller)
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, f"schemathesis found failures in the {service.value} API:\n{report}"
    assert " passed" in result.stdout, report
    print(_summary(result.stdout))  # requests and operations, for the run's record (-rA / RELIABILITY.md)


def _summary(output: str) -> str:
    """Schemathesis' report from its summary on: operations tested, phases, test cases, the outcome."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "SUMMARY" in line), max(0, len(lines) - 40))
    return "\n".join(lines[start:])


BAD_REQUESTS = [
    pytest.param(Service.ORDER, "POST", "/orders/%00/cancel", 400, id="nul-order-to-cancel"),
    pytest.param(Service.PAYMENT, "GET", "/payments/%00", 400, id="nul-payment"),
    pytest.param(Service.DELIVERY, "GET", "/inventory/%00", 400, id="nul-sku"),
    pytest.param(Service.DELIVERY, "GET", "/shipments/%FF", 400, id="non-utf-8-shipment"),
    pytest.param(
        Service.ORDER, "GET", "/dead-letters/99999999999999999999", 400, id="dead-letter-id-past-bigint"
    ),
    pytest.param(Service.ORDER, "GET", "/orders?limit=10&limit=20", 400, id="limit-twice"),
    pytest.param(Service.PAYMENT, "GET", "/dead-letters?order_id=%00", 400, id="nul-in-query"),
    pytest.param(Service.ORDER, "GET", "/no-such-path", 404, id="unknown-path"),
    pytest.param(Service.ORDER, "DELETE", "/orders", 405, id="unknown-method"),
]


@pytest.mark.parametrize(("service", "method", "path", "status"), BAD_REQUESTS)
def test_bad_requests_get_a_json_4xx_with_a_message(
    platform: Platform, service: Service, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, f"{platform.url(service)}{path}", timeout=15, headers=suite_headers())

    assert response.status_code == status, response.text
    assert response.json()["message"]
    if status == 405:
        assert response.headers["Allow"] == "GET,HEAD"


def test_what_the_fuzzer_left_settles_and_keeps_every_invariant(platform: Platform) -> None:
    with httpx.Client(timeout=15, headers=suite_headers()) as http:
        waiting = http.get(
            f"{platform.url(Service.ORDER)}/orders", params={"status": "SCHEDULED", "limit": 500}
        ).json()["items"]
        for order in waiting:  # every shop's: the suite's key sees every shop, and names each order by it
            for step in CARRIER_STEPS:
                saga = f"{order['owner']}:{order['order_id']}"
                http.post(f"{platform.url(Service.DELIVERY)}/shipments/{saga}/{step}")
    wait_until_quiet(platform.database_urls, platform.bootstrap, timeout=60).assert_clean()
