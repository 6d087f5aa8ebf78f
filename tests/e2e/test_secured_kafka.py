"""A saga on the secured local broker: each service connects as its own SCRAM principal over TLS, within
its ACLs, and no password shows in any service log, answer or `saga` command's output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import Service, load_settings
from saga_tools.local_stack.local_kafka_security import PRINCIPALS
from saga_tools.local_stack.stack import LocalStack
from tests.e2e.conftest import Platform, Shop, running_platform


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Platform, Path]]:
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: this test starts its own secured broker")
    state = tmp_path_factory.mktemp("secured")
    stack = LocalStack(settings, state_dir=state / "stack", kafka_secure=True)
    stack.start()
    try:
        with running_platform(
            stack.environment(), state / "services", service_env=stack.service_environments()
        ) as platform:
            yield stack, platform, state
    finally:
        stack.stop()


def test_a_saga_completes_with_each_service_as_its_own_principal_and_no_password_leaks(
    secured: tuple[LocalStack, Platform, Path],
) -> None:
    stack, platform, state = secured
    shop = Shop(platform)
    sku = shop.stock(5)
    order_id = shop.checkout([(sku, 2)])["order_id"]
    shop.ship_and_deliver(order_id)
    order = shop.wait_for(order_id, "COMPLETED")
    answers = [str(order), str(shop.payment(order_id))]
    for service in Service:
        answers.append(shop.http.get(f"{platform.url(service)}/metrics").text)
        answers.append(shop.http.get(f"{platform.url(service)}/readyz").text)

    # The operator's commands, as an operator next to the stack runs them (the stack record has the rest).
    env = {**os.environ, **stack.environment(), "SAGA_STATE_DIR": str(stack.state_dir)}
    saga = [str(Path(sys.executable).with_name("saga"))]
    tail = subprocess.run(
        [*saga, "tail", "payment", "--from-beginning"], env=env, capture_output=True, text=True, timeout=60
    )
    assert tail.returncode == 0, tail.stderr
    assert "PaymentCompleted" in tail.stdout and order_id in tail.stdout
    status = subprocess.run([*saga, "stack", "status"], env=env, capture_output=True, text=True, timeout=60)
    answers += [tail.stdout, tail.stderr, status.stdout, status.stderr]

    security = stack.kafka_security
    assert security is not None
    texts = answers + [path.read_text(errors="replace") for path in state.rglob("*.log")]
    texts.append((stack.state_dir / "stack.json").read_text())
    for principal in PRINCIPALS:
        secret = security.password(principal).get_secret_value()
        assert not [text[:200] for text in texts if secret in text], f"{principal}'s password leaked"
