"""The dead-letter endpoints every service has: list, show, retry (with the letters of the same order
parked behind it) and discard. Thin views over `common/messaging/dead_letters.py` and the runner; routes
and answers are declared in `common/shared_api.py`."""

from __future__ import annotations

from typing import Any

import faust

from common import shared_api
from common.context import ServiceContext
from common.db import reading
from common.errors import NotFound
from common.messaging import dead_letters
from common.web import JsonView, serve


def attach_dead_letter_api(app: faust.App, context: ServiceContext) -> None:
    table, runner, engine, documented = (
        context.tables.dead_letters,
        context.runner,
        context.engine,
        context.routes,
    )

    @serve(app, documented, shared_api.DEAD_LETTERS)
    class DeadLetters(JsonView):
        async def get(self, request: Any, query: shared_api.DeadLetterQuery) -> Any:
            status = None if query.status is shared_api.LetterStatusFilter.ALL else query.status.value
            async with reading(engine) as conn:
                rows = await dead_letters.listing(
                    conn,
                    table,
                    status=status,
                    order_id=query.order_id,
                    limit=query.limit,
                    offset=query.offset,
                )
            items = [dead_letters.describe(row) for row in rows]
            return self.json({"items": items, "limit": query.limit, "offset": query.offset})

    @serve(app, documented, shared_api.DEAD_LETTER)
    class DeadLetter(JsonView):
        async def get(self, request: Any, dead_letter_id: int) -> Any:
            async with reading(engine) as conn:
                row = await dead_letters.load(conn, table, dead_letter_id)
            if row is None:
                raise NotFound(f"dead letter {dead_letter_id} not found")
            return self.json(dead_letters.describe(row))

    @serve(app, documented, shared_api.RETRY_DEAD_LETTER)
    class RetryDeadLetter(JsonView):
        async def post(self, request: Any, dead_letter_id: int) -> Any:
            results = await runner.retry_dead_letter(dead_letter_id)
            return self.json({"results": [{"id": i, "outcome": o.value} for i, o in results]})

    @serve(app, documented, shared_api.DISCARD_DEAD_LETTER)
    class DiscardDeadLetter(JsonView):
        async def post(self, request: Any, dead_letter_id: int) -> Any:
            async with engine.begin() as conn:
                await dead_letters.discard(conn, table, dead_letter_id)
            return self.json({"id": dead_letter_id, "status": dead_letters.DISCARDED})
