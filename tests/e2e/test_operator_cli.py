"""The operator's `saga` command on the real stack: the command as a process, the services as processes.

The module runs its own Kafka and PostgreSQL (topics are per broker, and a replay or a rebuild looks at
everything on them), some finished and some waiting sagas, then inspects, tails, parks, replays and
rebuilds — and cross-checks replays with Apache Kafka's own consumer-group tool.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from common.config import Service, load_settings
from common.services import SERVICES
from saga_client.testing.webhooks import SagaWebhooks
from saga_tools.local_stack.local_kafka import ensure_kafka_jars, kafka_tool_command
from saga_tools.local_stack.stack import LocalStack
from saga_tools.ops.groups import group_members, partition_states
from tests.carrier_steps import STEP_EVENTS
from tests.chaos.harness import produce_raw
from tests.e2e.conftest import Platform, Shop, running_platform
from tests.invariants import consumer_lag, wait_until_quiet
from tests.keys import SUITE_SHOP

SAGA = str(Path(sys.executable).with_name("saga"))
GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


@dataclass
class OpsWorld:
    stack: LocalStack
    platform: Platform
    orders: dict[str, str]  # what each order is for → order_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsWorld]:
    stack = LocalStack(load_settings(), state_dir=tmp_path_factory.mktemp("ops-stack"))
    stack.start()
    try:
        with running_platform(stack.environment(), tmp_path_factory.mktemp("ops-platform")) as platform:
            shop = Shop(platform)
            sku, empty = shop.stock(100), shop.stock(0)
            orders = {
                "completed": shop.checkout([(sku, 2)])["order_id"],
                "completed-2": shop.checkout([(sku, 1)])["order_id"],
                "out-of-stock": shop.checkout([(empty, 1)])["order_id"],
                "declined": shop.checkout([(sku, 1)], card="tok_declined")["order_id"],
                "cancelled": shop.checkout([(sku, 3)])["order_id"],
                "waiting": shop.checkout([(sku, 1)])["order_id"],
            }
            for name in ("completed", "completed-2"):
                shop.ship_and_deliver(orders[name])
                shop.wait_for(orders[name], "COMPLETED")
            shop.wait_for(orders["cancelled"], "SCHEDULED")
            shop.http.post(shop.url(Service.ORDER, f"/orders/{orders['cancelled']}/cancel"))
            shop.wait_for(orders["cancelled"], "REFUNDED")
            shop.wait_for(orders["out-of-stock"], "REFUNDED")
            shop.wait_for(orders["declined"], "REJECTED")
            shop.wait_for(orders["waiting"], "SCHEDULED")
            shop.http.close()
            # The rest settled; "waiting" stays SCHEDULED on purpose (the stuck-orders test reads it).
            settled = wait_until_quiet(
                platform.database_urls, platform.bootstrap, in_flight={operators_name(orders["waiting"])}
            )
            assert not settled.violations, settled.violations
            yield OpsWorld(stack, platform, orders)
    finally:
        stack.stop()


def operators_name(order_id: str) -> str:
    """How an operator names the suite's order: shop:order_id (the suite's key is the shop)."""
    return f"{SUITE_SHOP}:{order_id}"


def saga(world: OpsWorld, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    # No COLUMNS: output goes to a pipe, as it does for a script or `| less` (rich then uses 80 columns).
    environment = {**world.platform.environment, **env}
    environment.pop("COLUMNS", None)
    return subprocess.run(
        [SAGA, *args], env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def saga_json(world: OpsWorld, *args: str) -> Any:
    result = saga(world, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def group_tool(world: OpsWorld, *args: str) -> str:
    settings = load_settings()
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    command = kafka_tool_command(jars, GROUP_TOOL, "--bootstrap-server", world.platform.bootstrap, *args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tool_offsets(world: OpsWorld, service: Service) -> dict[tuple[str, int], int | None]:
    """CURRENT-OFFSET per partition, as Kafka's consumer-group tool describes the service's group."""
    spec = SERVICES[service]
    output = group_tool(world, "--describe", "--group", spec.group_id)
    offsets = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == spec.group_id and fields[1] in spec.consumed_topics:
            offsets[(fields[1], int(fields[2]))] = None if fields[3] == "-" else int(fields[3])
    assert offsets, f"no offsets in the tool's output:\n{output}"
    return offsets


def our_offsets(world: OpsWorld, service: Service) -> dict[tuple[str, int], int | None]:
    """The group's committed offset per partition (None: never committed), as `saga` reads it."""
    spec = SERVICES[service]
    states = asyncio.run(partition_states(world.platform.bootstrap, spec.group_id, spec.consumed_topics))
    return {(s.topic, s.partition): s.committed for s in states}


def effects(world: OpsWorld) -> dict[str, Any]:
    """Every effect a replay must not repeat: charges, refunds, stock, orders, emitted events, inbox."""
    urls = {
        name: url.replace("postgresql+psycopg://", "postgresql://")
        for name, url in world.platform.database_urls.items()
    }
    queries = {
        "payment": [
            "SELECT order_id, status, amount_minor FROM payments ORDER BY order_id",
            "SELECT payment_id, status, attempts FROM refunds ORDER BY payment_id",
            "SELECT count(*) FROM processed_events",
        ],
        "delivery": [
            "SELECT sku, on_hand, reserved, shipped FROM stock ORDER BY sku",
            "SELECT order_id, status FROM shipments ORDER BY order_id",
            "SELECT count(*) FROM processed_events",
        ],
        "order": [
            "SELECT order_id, status, cancel_reason FROM orders ORDER BY order_id",
            "SELECT count(*) FROM order_timeline",
            "SELECT count(*) FROM processed_events",
        ],
    }
    snapshot: dict[str, Any] = {}
    for name, statements in queries.items():
        with psycopg.connect(urls[name]) as conn:
            snapshot[name] = [conn.execute(statement).fetchall() for statement in statements]
    ends = asyncio.run(partition_states(world.platform.bootstrap, "nobody", [s.value for s in Service]))
    snapshot["topic_ends"] = {(s.topic, s.partition): s.end for s in ends}
    return snapshot


def inbox_counts(world: OpsWorld, service: Service) -> tuple[int, int]:
    """(events the service applied, redelivered events it recognised as duplicates)."""
    url = world.platform.database_urls[service.value].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        applied = conn.execute("SELECT count(*) FROM processed_events").fetchone()
        counted = conn.execute(
            "SELECT duplicates FROM consumer_counters WHERE consumer = %s", (service.value,)
        ).fetchone()
    assert applied is not None
    return int(applied[0]), int(counted[0]) if counted else 0


def wait_until_group_empty(world: OpsWorld, service: Service, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while asyncio.run(group_members(world.platform.bootstrap, SERVICES[service].group_id)):
        assert time.monotonic() < deadline, f"{service.value}'s group did not empty after its workers stopped"
        time.sleep(0.3)


def wait_for_lag_zero(world: OpsWorld, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while any(asyncio.run(consumer_lag(world.platform.bootstrap)).values()):
        assert time.monotonic() < deadline, "consumer lag did not reach zero"
        time.sleep(0.5)


# ─── inspecting ──────────────────────────────────────────────────────────────────────────────────────


def test_order_shows_the_whole_story_of_a_cancelled_order(world: OpsWorld) -> None:
    order_id = operators_name(world.orders["cancelled"])
    story = saga_json(world, "order", order_id)
    assert story["order"]["status"] == "REFUNDED"
    assert story["order"]["cancel_reason"] == "customer"
    assert story["payment"]["status"] == "REFUNDED"
    assert story["payment"]["refund"]["status"] == "SUCCEEDED"
    assert story["shipment"]["status"] == "RELEASED"
    assert story["dead_letters"] == {"payment": [], "order": [], "delivery": []}
    assert story["pending"] == []
    kinds = [(e["kind"], e["event_type"]) for e in story["order"]["timeline"]]
    assert ("requested", "CANCEL_REQUESTED") in kinds and ("emitted", "OrderCancelled") in kinds

    human = saga(world, "order", order_id)
    assert human.returncode == 0, human.stderr
    assert "REFUNDED" in human.stdout and "OrderCancelled" in human.stdout


def test_an_unknown_order_is_exit_code_5_with_a_message(world: OpsWorld) -> None:
    result = saga(world, "order", "no-such-order")
    assert result.returncode == 5
    assert "no service knows order no-such-order" in result.stderr


def test_stuck_orders_are_the_idle_non_terminal_ones_with_what_they_wait_for(world: OpsWorld) -> None:
    time.sleep(1.5)
    listing = saga_json(world, "orders", "--stuck", "--older-than", "1s")
    stuck = {item["order_id"]: item for item in listing["items"]}
    assert set(stuck) == {world.orders["waiting"]}
    assert STEP_EVENTS[0] in stuck[world.orders["waiting"]]["waiting_for"]  # the carrier's first step
    assert stuck[world.orders["waiting"]]["parked"] == []
    assert saga_json(world, "orders", "--stuck", "--older-than", "1h")["items"] == []
    human = saga(world, "orders", "--stuck", "--older-than", "1s")  # 80 columns: the id stays whole
    waiting = operators_name(world.orders["waiting"])
    assert human.returncode == 0 and waiting in human.stdout.split(), human.stdout

    bad = saga(world, "orders", "--stuck", "--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_tail_prints_one_decoded_line_per_event_of_one_order(world: OpsWorld) -> None:
    order_id = operators_name(world.orders["completed"])
    result = saga(world, "tail", "order", "--from-beginning", "--order", order_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[2] for line in lines] == ["OrderPlaced", "OrderCompleted"]
    assert all(f"order={order_id}" in line for line in lines)

    everything = saga(world, "tail", "delivery", "--since", "1h")
    assert "OutOfStock" in everything.stdout and "Delivered" in everything.stdout


# ─── dead letters ────────────────────────────────────────────────────────────────────────────────────


def test_dead_letters_are_listed_shown_retried_and_discarded(world: OpsWorld) -> None:
    asyncio.run(produce_raw(world.platform.bootstrap, [("payment", b"poison-1", b"\x00not json")]))
    deadline = time.monotonic() + 30
    while not (letters := saga_json(world, "dead-letters", "order", "list")["items"]):
        assert time.monotonic() < deadline, "the poison message was not parked"
        time.sleep(0.3)
    [letter] = letters
    assert letter["key"] == "poison-1" and letter["status"] == "parked"
    assert letter["error"].startswith("undecodable: not JSON")

    shown = saga(world, "dead-letters", "order", "show", str(letter["id"]))
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == letter["id"]
    story = saga_json(world, "order", "legacy:poison-1")  # a key from before owners: legacy's
    assert [d["id"] for d in story["dead_letters"]["order"]] == [letter["id"]]

    retried = saga(world, "dead-letters", "order", "retry", str(letter["id"]))
    assert retried.returncode == 4, retried.stdout  # still garbage: parked again, and the exit code says so
    assert "parked" in retried.stdout

    assert saga(world, "dead-letters", "order", "retry").returncode == 2  # neither an id nor --all
    assert saga(world, "dead-letters", "order", "discard", "999999").returncode == 5

    discarded = saga(world, "dead-letters", "order", "discard", str(letter["id"]))
    assert discarded.returncode == 0 and "discarded" in discarded.stdout
    assert saga_json(world, "dead-letters", "order", "list")["items"] == []
    assert saga(world, "dead-letters", "order", "retry", "--all").returncode == 0  # nothing left to retry


# ─── replays ─────────────────────────────────────────────────────────────────────────────────────────


def test_replay_refuses_while_the_workers_run_and_a_dry_run_changes_nothing(world: OpsWorld) -> None:
    before = our_offsets(world, Service.PAYMENT)
    refused = saga(world, "replay", "payment", "--topic", "order", "--to-beginning")
    assert refused.returncode == 6
    assert "workers are running" in refused.stderr

    dry = saga(world, "replay", "payment", "--topic", "order", "--to-beginning", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    total = sum(offset or 0 for offset in before.values())
    assert f"{total} event(s) will be seen again" in dry.stdout
    assert our_offsets(world, Service.PAYMENT) == before

    wrong = saga(world, "replay", "payment", "--topic", "delivery", "--to-beginning")
    assert wrong.returncode == 2 and "does not read delivery" in wrong.stderr
    forward = saga(world, "replay", "payment", "--topic", "order", "--shift", "5")
    assert forward.returncode == 2


def test_replay_rewinds_the_group_as_kafka_tool_sees_it_and_causes_no_second_effect(world: OpsWorld) -> None:
    platform = world.platform
    before = effects(world)
    assert our_offsets(world, Service.PAYMENT) == tool_offsets(world, Service.PAYMENT)
    applied, duplicates_before = inbox_counts(world, Service.PAYMENT)

    platform.processes[Service.PAYMENT].stop()
    replay = subprocess.Popen(
        [
            SAGA,
            "replay",
            "payment",
            "--topic",
            "order",
            "--to-beginning",
            "--wait-for-stop",
            "30",
            "--timeout",
            "120",
        ],
        env=platform.environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while any(our_offsets(world, Service.PAYMENT).values()):
        assert replay.poll() is None, replay.communicate()
        assert time.monotonic() < deadline, "the replay did not rewind the group"
        time.sleep(0.3)
    # Rewound: Kafka's own tool reads the same offsets (all at the beginning) before anyone consumes.
    assert set(tool_offsets(world, Service.PAYMENT).values()) == {0}

    platform.processes[Service.PAYMENT].start()  # the replay follows the lag down while the workers catch up
    platform.processes[Service.PAYMENT].wait_ready()
    stdout, stderr = replay.communicate(timeout=150)
    assert replay.returncode == 0, stdout + stderr
    assert "has caught up (lag 0)" in stdout

    wait_for_lag_zero(world)
    # Every event payment had applied came back and was recognised; nothing else was done with it.
    assert inbox_counts(world, Service.PAYMENT) == (applied, duplicates_before + applied)
    assert effects(world) == before  # no second charge or refund, nothing emitted
    assert our_offsets(world, Service.PAYMENT) == tool_offsets(world, Service.PAYMENT)


def test_a_rewind_done_with_kafka_tool_is_handled_as_safely_as_our_replay(world: OpsWorld) -> None:
    platform = world.platform
    before = effects(world)
    applied, duplicates_before = inbox_counts(world, Service.DELIVERY)
    platform.processes[Service.DELIVERY].stop()
    wait_until_group_empty(world, Service.DELIVERY)
    group_tool(
        world,
        "--reset-offsets",
        "--group",
        SERVICES[Service.DELIVERY].group_id,
        "--topic",
        "order",
        "--to-earliest",
        "--execute",
    )
    assert set(our_offsets(world, Service.DELIVERY).values()) == {0}  # we read what the tool wrote
    platform.processes[Service.DELIVERY].start()
    platform.processes[Service.DELIVERY].wait_ready()
    wait_for_lag_zero(world)
    assert inbox_counts(world, Service.DELIVERY) == (applied, duplicates_before + applied)
    assert effects(world) == before  # no second reservation or release, nothing emitted
    assert our_offsets(world, Service.DELIVERY) == tool_offsets(world, Service.DELIVERY)


# ─── rebuild ─────────────────────────────────────────────────────────────────────────────────────────


def test_rebuild_reproduces_the_live_order_state_and_a_dry_run_leaves_the_target_untouched(
    world: OpsWorld,
) -> None:
    postgres = world.stack.postgres
    if postgres is None:
        pytest.skip("the databases are external (ORDER_DATABASE_URL set): no server to create a target in")
    with psycopg.connect(postgres.admin_conninfo(), autocommit=True) as admin:
        admin.execute('CREATE DATABASE order_rebuild OWNER "order"')
    # Order's role owns the target; it logs in with its password, from the stack's password file.
    passfile = quote(str(postgres.password_file))
    target = f"postgresql://order@127.0.0.1:{postgres.port}/order_rebuild?passfile={passfile}"
    live_orders = len(world.orders)

    dry = saga_json(world, "rebuild", "order", "--into", target, "--dry-run")
    assert dry["committed"] is False
    assert (dry["only_live"], dry["only_rebuilt"], dry["different"]) == ([], [], [])
    assert dry["same"] == live_orders
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

    real = saga_json(world, "rebuild", "order", "--into", target)
    assert real["committed"] is True and real["same"] == live_orders and real["different"] == []
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (live_orders,)
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)  # nothing to publish again

    again = saga(world, "rebuild", "order", "--into", target)
    assert again.returncode == 6 and "already holds orders" in again.stderr
    payment = saga(world, "rebuild", "payment", "--into", target)
    assert payment.returncode == 2 and "cannot be rebuilt" in payment.stderr


# ─── errors ──────────────────────────────────────────────────────────────────────────────────────────


def test_an_unreachable_broker_or_service_is_exit_code_3_with_what_was_tried(world: OpsWorld) -> None:
    no_broker = saga(world, "tail", "order", "--from-beginning", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    assert no_broker.returncode == 3 and "127.0.0.1:9" in no_broker.stderr
    no_service = saga(world, "order", "x", ORDER_URL="http://127.0.0.1:9")
    assert no_service.returncode == 3 and "order service is not reachable" in no_service.stderr
    no_database = saga(world, "rebuild", "order", "--into", "postgresql://order@127.0.0.1:9/nowhere")
    assert no_database.returncode == 3 and "database is not reachable" in no_database.stderr


def test_an_operator_adds_a_shops_endpoint_sends_it_the_past_and_sees_disables_and_removes_it(
    world: OpsWorld,
) -> None:
    with SagaWebhooks() as receiver:
        added = saga(world, "webhooks", "add", receiver.url, "--shop", SUITE_SHOP)
        assert added.returncode == 0, added.stderr
        secret = added.stdout.split("shown once, give it to the shop): ")[1].split()[0]
        receiver.secrets.append(secret)
        [endpoint] = [e for e in saga_json(world, "webhooks", "list", "--shop", SUITE_SHOP)]
        assert endpoint["url"] == receiver.url and endpoint["created_by"] != SUITE_SHOP
        webhook_id = endpoint["id"]

        resent = saga(world, "webhooks", "resend", webhook_id, "--since", "1h")
        assert resent.returncode == 0 and resent.stdout.split()[0] != "0", resent.stdout + resent.stderr
        completed = world.orders["completed"]
        receiver.wait_for(completed, "order.completed")
        receiver.assert_in_order(completed)
        receiver.assert_all_verified()

        shown = saga_json(world, "webhooks", "show", webhook_id)
        assert shown["attempts"] and all(a["delivered"] for a in shown["attempts"])
        assert "secret" not in json.dumps(shown).replace('"secret_rotation_ends_at"', "")
        listed = saga(world, "webhooks", "attempts", webhook_id)
        assert listed.returncode == 0 and "ok" in listed.stdout

        disabled = saga(world, "webhooks", "disable", webhook_id)
        assert disabled.returncode == 0 and "disabled (disabled by request)" in disabled.stdout
        assert saga(world, "webhooks", "enable", webhook_id).stdout.strip().endswith("pending")
        assert saga(world, "webhooks", "delete", webhook_id, "--yes").returncode == 0
        gone = saga(world, "webhooks", "show", webhook_id)
        assert gone.returncode == 5, gone.stdout + gone.stderr  # not found
