"""The platform's database crashes (only on a platform the plugin started: elsewhere this test is
skipped). A checkout meanwhile is refused with 503 and Retry-After, never a 500 or a hang; sent again
with its key once the database is back, it is one order, and the saga already on its way ends."""

import pytest

from saga_client import RetryPolicy, Unavailable


def test_a_checkout_refused_while_the_database_is_down_is_sent_again_and_every_saga_completes(
    checkout, saga, saga_stock, saga_carrier, saga_faults, assert_saga_consistent
):
    book = saga_stock(5)
    first = checkout((book, 1))
    brief = saga.with_options(retry=RetryPolicy(attempts=2))  # 503 comes with Retry-After: 1

    # PostgreSQL SIGKILLed inside the block, started again after it.
    with saga_faults.database_down(), pytest.raises(Unavailable) as refused:
        checkout((book, 1), client=brief)
    brief.close()
    refusal = refused.value
    # Sent again as it was (the same cart, order id and key): one order, however often it is sent.
    again = checkout((book, 1), order_id=refusal.order_id, idempotency_key=refusal.idempotency_key)

    assert refusal.last_cause.http_status == 503  # never a 500, never a hang
    for accepted in (first, again):
        saga_carrier.deliver(accepted.order_id)
        assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    assert saga.stock(book).shipped == 2  # the services carried on: no restart, nothing lost or doubled
    assert_saga_consistent()
