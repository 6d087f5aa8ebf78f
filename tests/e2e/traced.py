"""Helpers of the trace tests: a checkout inside a sampled trace of the shop's, and waiting for a saga's
whole trace to reach the suite's receiver."""

from __future__ import annotations

import time
import uuid

from common.config import Service
from common.span_store import ReceivedSpan, SpanReceiver
from tests.e2e.conftest import Shop


def trace_with(
    receiver: SpanReceiver, saga_id: str, wanted: set[tuple[str, str]], timeout: float = 20.0
) -> list[ReceivedSpan]:
    """The saga's spans once every (service, span name) in `wanted` has arrived, and every span's parent
    (but the root's): a producer's span ends at the broker's acknowledgement, so it may be exported after
    its consumer's."""
    deadline = time.monotonic() + timeout
    spans: list[ReceivedSpan] = []
    while time.monotonic() < deadline:
        spans = receiver.store.saga_trace(saga_id)
        ids = {span.span_id for span in spans}
        roots = [span for span in spans if span.parent_id not in ids]
        if wanted <= {(span.service, span.name) for span in spans} and len(roots) == 1:
            return spans
        time.sleep(0.1)
    seen = sorted({(span.service, span.name) for span in spans})
    raise AssertionError(f"missing {sorted(wanted - set(seen))}; the trace has {seen}")


def traced_checkout(shop: Shop, sku: str) -> tuple[str, str, str]:
    """A checkout sent inside the shop's own sampled trace (the platform traces only those): the order
    id, the shop's trace id and its span id."""
    shops_trace, shops_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"),
        json=shop.checkout_body([(sku, 1)]),
        headers={"Idempotency-Key": uuid.uuid4().hex, "traceparent": f"00-{shops_trace}-{shops_span}-01"},
    )
    assert response.status_code == 202, response.text
    return response.json()["order_id"], shops_trace, shops_span
