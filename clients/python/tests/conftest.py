"""The plugin's own tests: `pytester` runs inner sessions; the platform is the plugin's (`saga_platform`)."""

from __future__ import annotations

import pytest

from saga_client.testing import PlatformSettings

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def saga_platform_settings() -> PlatformSettings:
    """A session may change how the plugin starts the platform: here refunds give up after two tries, and
    each service reaches the broker through a link `saga_faults` can cut."""
    return PlatformSettings(refund_max_attempts=2, broker_links=True)
