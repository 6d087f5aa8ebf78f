"""The carrier's steps and the happy path they make, read from the declarations (`delivery/lifecycle.py`,
`order/saga.py`), so that the tests which walk a parcel to the end name no step and no status by hand: a
step added to the lifecycle is walked, awaited and expected by every one of them."""

from __future__ import annotations

from delivery.lifecycle import STEPS, CarrierStep
from order.handlers import INPUT_OF
from order.saga import OrderStatus, Outcome, decide
from order.webhooks.events import entered

# The carrier's steps in the order a parcel goes through them, and the event each one emits.
CARRIER_STEPS = tuple(CarrierStep)
STEP_EVENTS = tuple(rules.emits.value for rules in STEPS.values())
# The events of a saga that goes well, in order, up to the last one the order service consumes.
HAPPY_EVENTS = ("PaymentCompleted", "DeliveryScheduled", *STEP_EVENTS)


def steps_through(last: CarrierStep) -> tuple[CarrierStep, ...]:
    """The steps a carrier makes to take a scheduled parcel through `last`, in order."""
    return CARRIER_STEPS[: CARRIER_STEPS.index(last) + 1]


def steps_before(step: CarrierStep) -> tuple[CarrierStep, ...]:
    """The steps a carrier makes on a scheduled parcel before `step`, in order."""
    return CARRIER_STEPS[: CARRIER_STEPS.index(step)]


def steps_after(step: CarrierStep) -> tuple[CarrierStep, ...]:
    """The steps that take a parcel from where `step` left it to the end, in order."""
    return CARRIER_STEPS[CARRIER_STEPS.index(step) + 1 :]


def happy_statuses() -> list[OrderStatus]:
    """The statuses a saga that goes well moves through, as the order saga decides them on its happy
    events (PLACED first, COMPLETED last)."""
    statuses: list[OrderStatus] = []
    for event in HAPPY_EVENTS:
        decision = decide(statuses[-1] if statuses else None, INPUT_OF[event])
        assert decision.outcome is Outcome.APPLIED and decision.new_status is not None, (event, decision)
        statuses.append(decision.new_status)
    return statuses


def happy_webhooks() -> list[str]:
    """The webhook event types a shop receives for a saga that goes well, in order."""
    return [entered(status).value for status in happy_statuses()]
