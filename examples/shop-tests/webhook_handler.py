"""This shop's webhook handler: what its web framework's route for `POST /saga-hooks` calls."""

from collections.abc import Sequence

from saga_client import webhooks
from saga_client.webhooks import WebhookEvent

SECRET = "whsec_…"  # the secret `POST /webhooks` answered once; kept in the shop's secret store
handled: set[str] = set()  # the shop's own table of event ids it has acted on


def tell_the_customer(event: WebhookEvent) -> None:
    print(f"order {event.order.order_id}: {event.type}")


def handle(body: bytes, signature: str, secrets: Sequence[str] = (SECRET,)) -> int:
    """Verify, act once per event, answer 200 (anything else, or no answer in 10 s, is sent again)."""
    event = webhooks.verify(body, signature, secrets)  # raises InvalidSignature: answer 400
    if str(event.id) in handled:
        return 200  # a retry of an event already acted on
    if event.type in ("order.shipped", "order.refunded"):
        tell_the_customer(event)
    handled.add(str(event.id))
    return 200
