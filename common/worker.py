"""Starting a service's Faust worker from `python -m <service>`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import faust
from faust.worker import Worker

from common.api_keys import NoApiKeys
from common.auth import InvalidKeyEntry
from common.config import Settings
from common.gc_pauses import freeze_startup
from common.kafka import ensure_topics
from common.replication import ReplicationError


def run_worker(create_app: Callable[[Settings], faust.App], settings: Settings) -> None:
    """Build the app, declare the topics, then run the worker until SIGINT/SIGTERM (Faust handles both
    cleanly).

    A service nobody could call (no API keys, authentication on), a keys entry that does not parse, or a
    replication the cluster cannot give (SAGA_TOPIC_REPLICATION_FACTOR above its broker count, with a
    topic to create) stops it at once with the reason.
    """
    try:
        app = create_app(settings)
    except (NoApiKeys, InvalidKeyEntry) as exc:
        raise SystemExit(f"error: {exc}") from exc
    # Faust creates only the last level of its data directory.
    Path(app.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
    try:
        replication = asyncio.run(ensure_topics(settings))
    except ReplicationError as exc:
        raise SystemExit(f"error: {exc}") from exc
    app.conf.topic_replication_factor = replication.factor
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    ServiceWorker(app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()


class ServiceWorker(Worker):
    """Faust's worker, which freezes what startup built once the app runs (common/gc_pauses.py): the
    garbage collector's full passes then leave those objects alone instead of stopping the service for
    100-210 ms each."""

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        frozen = freeze_startup()
        logging.getLogger(__name__).info("froze %d objects built at startup", frozen)
