"""The delivery service: wiring of its agent, optional auto-progress and HTTP API."""

from __future__ import annotations

from datetime import timedelta

import faust

from common.app import create_service
from common.config import Service, Settings, load_settings
from common.scheduling import on_wake
from common.web import serve
from delivery import api, models
from delivery.handlers import HANDLERS
from delivery.shipping import auto_progress


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or load_settings()
    app, context = create_service(
        Service.DELIVERY,
        settings,
        tables=models.messaging,
        handlers=HANDLERS,
        description="Reserves stock all-or-nothing, releases it on cancel, and ships and delivers orders.",
    )
    if settings.auto_progress_seconds is not None:
        after = timedelta(seconds=settings.auto_progress_seconds)

        async def progress_shipments() -> None:
            await auto_progress(context.unit_of_work, after)

        # Swept after each consumer commit (with no delay, what it scheduled is due at once), and on a
        # timer for shipments that come due later or were scheduled by another worker: at half the delay
        # (between 50 ms and 1 s), or every second with no delay.
        delay = settings.auto_progress_seconds
        timer = max(0.05, min(1.0, delay / 2)) if delay > 0 else 1.0
        context.commit_listeners.append(on_wake(app, timer, progress_shipments))
    serve(app, context.routes, api.blueprint)
    return app
