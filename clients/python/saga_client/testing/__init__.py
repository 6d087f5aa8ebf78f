"""The pytest plugin's parts (`saga_client.pytest_plugin` wires them as fixtures)."""

from saga_client.testing.carrier import Carrier
from saga_client.testing.events import RecordedEvent, SagaEvents
from saga_client.testing.faults import Faults
from saga_client.testing.platform import SagaPlatform
from saga_client.testing.settings import PlatformSettings
from saga_client.testing.stock import StockFactory
from saga_client.testing.webhooks import ReceivedWebhook, SagaWebhooks

__all__ = [
    "Carrier",
    "Faults",
    "PlatformSettings",
    "ReceivedWebhook",
    "RecordedEvent",
    "SagaEvents",
    "SagaPlatform",
    "SagaWebhooks",
    "StockFactory",
]
