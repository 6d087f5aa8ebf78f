"""`make run` as the README documents it: `saga run` with nothing configured, then the README's own curl,
and the example shop suite (examples/shop-tests) pointed at it, as a shop would run its tests against a
platform it did not start.

The checkout's headers and body are read from README.md, so the documented order is the tested order.
"""

from __future__ import annotations

import json
import re
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.config import Service
from saga_tools.local_stack.pg_auth import read_passwords
from tests.e2e.readme_platform import ReadmePlatform, saga_run, user_environment

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _shop_key(folder: Path) -> str:
    """The key the README's `SHOP_KEY=$(cat <file>)` reads, from where `make run` ran (`folder`)."""
    line = re.search(r"^SHOP_KEY=\$\(cat (\S+)\)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert line is not None, "the README no longer says where the shop's key is"
    return (folder / line[1]).read_text().strip()


def _curl_headers(words: list[str], folder: Path) -> dict[str, str]:
    headers = dict(
        words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H" and i + 1 < len(words)
    )
    return {name: value.replace("$SHOP_KEY", _shop_key(folder)) for name, value in headers.items()}


def readme_checkout(folder: Path) -> tuple[str, dict[str, str], str]:
    """The URL, headers and body of the README's `curl … /checkout` command, read from README.md, with
    the shop's key it names read from where `make run` ran."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("curl -si -X POST")
    end = readme.index("\ncurl -s ", start)
    words = shlex.split(readme[start:end].replace("\\\n", " "))
    url = next(word for word in words if word.startswith("http"))
    body = words[words.index("-d") + 1]
    return url, _curl_headers(words, folder), body


def readme_order_request(order_id: str, folder: Path) -> tuple[str, dict[str, str]]:
    """The URL and headers of the README's `curl -s … /orders/<order_id>` for `order_id`."""
    line = re.search(r"^curl -s (.+/orders/<order_id>)", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert line is not None, "the README no longer shows how to read an order"
    words = shlex.split(line[1])
    url = next(word for word in words if word.startswith("http"))
    return url.replace("<order_id>", order_id), _curl_headers(words, folder)


@pytest.fixture(scope="module")
def readme_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmePlatform]:
    """One `saga run`, as `make run` starts it, for the tests of this module."""
    with saga_run(tmp_path_factory.mktemp("make-run")) as platform:
        yield platform


def test_make_run_is_saga_run() -> None:
    recipe = re.search(r"^run:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe is not None and recipe[1] == "$(BIN)/saga run"


def test_the_readme_order_completes_on_the_platform_make_run_starts(readme_platform: ReadmePlatform) -> None:
    url, headers, body = readme_checkout(readme_platform.folder)
    assert headers["Authorization"].startswith("Bearer saga_")
    with httpx.Client(timeout=10) as http:
        accepted = http.post(url, headers=headers, content=body)
        assert accepted.status_code == 202, accepted.text
        order_id = accepted.json()["order_id"]
        # "shipments progress on their own after two seconds": the demo order completes by itself.
        deadline = time.monotonic() + 60
        order_url, order_headers = readme_order_request(order_id, readme_platform.folder)
        while (order := http.get(order_url, headers=order_headers).json()).get("status") != "COMPLETED":
            assert time.monotonic() < deadline, order
            time.sleep(0.5)
        again = http.post(url, headers=headers, content=body)  # the same Idempotency-Key: the same answer
        assert again.status_code == 202 and again.json()["order_id"] == order_id


def test_make_run_starts_the_console_prints_its_url_and_lets_the_operator_key_in(
    readme_platform: ReadmePlatform,
) -> None:
    url = readme_platform.console_url
    assert re.search(rf"saga console\s*│\s*{re.escape(url)}", readme_platform.output.read_text()), (
        readme_platform.tail()
    )
    with httpx.Client(base_url=url, timeout=10) as browser:
        form = browser.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token is not None
        signed = browser.post(
            "/sign-in", data={"csrf_token": token[1], "api_key": readme_platform.demo_key("operator")}
        )
        assert signed.status_code == 303 and signed.headers["Location"] == "/", signed.text
        overview = browser.get("/")
        assert overview.status_code == 200 and "Sagas by status" in overview.text


def test_make_run_draws_a_sagas_trace_on_the_console_without_any_collector(
    readme_platform: ReadmePlatform,
) -> None:
    url, headers, body = readme_checkout(readme_platform.folder)
    with httpx.Client(timeout=10) as http:
        accepted = http.post(url, headers={**headers, "Idempotency-Key": "trace-1"}, content=body)
        assert accepted.status_code == 202, accepted.text
        order_url, order_headers = readme_order_request(accepted.json()["order_id"], readme_platform.folder)
        deadline = time.monotonic() + 60
        while (order := http.get(order_url, headers=order_headers).json()).get("status") != "COMPLETED":
            assert time.monotonic() < deadline, order
            time.sleep(0.5)
    with httpx.Client(base_url=readme_platform.console_url, timeout=10) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/sign-in").text)
        assert token is not None
        browser.post(
            "/sign-in", data={"csrf_token": token[1], "api_key": readme_platform.demo_key("operator")}
        )
        page = f"/orders/{order['owner']}:{order['order_id']}"
        spans = (
            "POST /checkout",
            "publish PaymentCompleted",
            "delivery process OrderPlaced",
            "order process Delivered",
        )
        deadline = time.monotonic() + 15  # the services export their spans every second
        while True:
            story = browser.get(page).text
            if all(span in story for span in spans):
                break
            assert time.monotonic() < deadline, story[-3000:]
            time.sleep(0.5)
        assert 'id="trace"' in story


def test_no_password_or_api_key_in_what_saga_run_prints_records_logs_or_answers(
    readme_platform: ReadmePlatform,
) -> None:
    """After a saga has run: the roles' passwords are in the stack's password file (0600), the API keys
    each in its own file (0600), and none of them anywhere in `saga run`'s output, the stack record, the
    services' and PostgreSQL's logs, or their answers (read with the operator's key, as an operator
    would)."""
    state = readme_platform.folder / ".state"
    password_file = state / "postgres" / "passwords"
    passwords = read_passwords(password_file)
    assert set(passwords) == {s.value for s in Service}
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    key_files = sorted((state / "api-keys").glob("*.key"))
    assert [path.stem for path in key_files] == [
        "demo-carrier",
        "demo-operator",
        "demo-shop",
        "order-service",
    ]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in key_files)
    secrets = {**passwords, **{path.stem: path.read_text().strip() for path in key_files}}
    operator = {"Authorization": f"Bearer {secrets['demo-operator']}"}
    texts = {path.name: path.read_text(errors="replace") for path in (state / "logs").glob("*.log")}
    texts |= {"saga run output": readme_platform.output.read_text(errors="replace")}
    texts |= {"stack.json": (state / "stack.json").read_text()}
    texts |= {"postgres.log": (state / "postgres" / "postgres.log").read_text(errors="replace")}
    with httpx.Client(timeout=10, headers=operator) as http:
        for service in Service:
            for path in ("/metrics", "/readyz", "/healthz", "/dead-letters", "/openapi.json"):
                texts[f"{service.value} {path}"] = http.get(readme_platform.url(service) + path).text
    assert len(texts) >= 3 + 3 + 15
    # Compared with everything but the passwords' own alphabet removed: a password wrapped across the
    # lines of a table would still be found.
    squeezed = {name: re.sub(r"[^A-Za-z0-9_-]", "", text) for name, text in texts.items()}
    leaks = [
        (name, holder) for name, text in squeezed.items() for holder, pw in secrets.items() if pw in text
    ]
    assert leaks == []


def test_no_shipping_address_in_the_service_logs(readme_platform: ReadmePlatform) -> None:
    """The README's order travels with a shipping address in its events; the services log at info level
    (saga run's default) without it. Run on the platform where that order ran (the test above)."""
    _, _, body = readme_checkout(readme_platform.folder)
    address = json.loads(body)["shipping_address"]
    logs = {
        path.name: path.read_text(errors="replace")
        for path in (readme_platform.folder / ".state" / "logs").glob("*.log")
    }
    assert {f"{service.value}.log" for service in Service} <= set(logs)
    assert all("[INFO]" in logs[f"{service.value}.log"] for service in Service)  # logged at info level
    found = [
        (name, field) for name, text in logs.items() for field in ("line1", "city") if address[field] in text
    ]
    assert found == []


def test_the_example_shop_suite_runs_unchanged_against_the_platform_make_run_starts(
    readme_platform: ReadmePlatform, tmp_path: Path
) -> None:
    """What docs/shops/testing-your-shop.md says: the same suite, pointed at a running
    platform by environment variables, with the demo keys `saga run` made, one a role; its fault tests
    skip, saying why."""
    keys = readme_platform.folder / ".state" / "api-keys"
    env = {
        **user_environment(),
        **{f"SAGA_{s.value.upper()}_URL": readme_platform.url(s) for s in Service},
        "SAGA_BOOTSTRAP_SERVERS": ",".join(readme_platform.brokers),
        **{
            variable: (keys / f"demo-{role}.key").read_text().strip()
            for variable, role in (
                ("SAGA_API_KEY", "shop"),
                ("SAGA_CARRIER_API_KEY", "carrier"),
                ("SAGA_OPERATOR_API_KEY", "operator"),
            )
        },
    }
    suite = ROOT / "examples" / "shop-tests"
    options = ["-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", "-rs"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )

    (tmp_path / "shop-tests.out").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    # Every test of the suite but the three that inject faults into the plugin's own processes.
    assert re.search(r"\b9 passed, 3 skipped\b", run.stdout), run.stdout[-3000:]
    assert run.stdout.count("saga_faults needs a platform the plugin started") == 3
    assert "saga platform (already running)" in run.stdout
