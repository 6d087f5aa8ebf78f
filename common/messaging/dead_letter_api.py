"""The dead-letter endpoints every service has: list, show, retry (with the letters of the same order
parked behind it) and discard. Thin views over `common/messaging/dead_letters.py` and the runner, reached
through the service's `ServiceContext`; routes and answers are declared in `common/shared_api.py`."""

from __future__ import annotations

from faust.web import Request, Response

from common import shared_api
from common.context import ServiceContext
from common.db import reading
from common.errors import NotFound
from common.messaging import dead_letters
from common.web import Blueprint, JsonView, caller_of, saga_of

blueprint = Blueprint("dead-letters")


@blueprint.serve(shared_api.DEAD_LETTERS)
class DeadLetters(JsonView):
    async def get(self, request: Request, query: shared_api.DeadLetterQuery) -> Response:
        context = self.dependency(ServiceContext)
        status = None if query.status is shared_api.LetterStatusFilter.ALL else query.status.value
        async with reading(context.engine) as conn:
            rows = await dead_letters.listing(
                conn,
                context.tables.dead_letters,
                status=status,
                order_id=None if query.order_id is None else saga_of(request, query.order_id),
                limit=query.limit,
                offset=query.offset,
            )
        items = [dead_letters.describe(row) for row in rows]
        return self.json({"items": items, "limit": query.limit, "offset": query.offset})


@blueprint.serve(shared_api.DEAD_LETTER)
class DeadLetter(JsonView):
    async def get(self, request: Request, dead_letter_id: int) -> Response:
        context = self.dependency(ServiceContext)
        async with reading(context.engine) as conn:
            row = await dead_letters.load(conn, context.tables.dead_letters, dead_letter_id)
        if row is None:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        return self.json(dead_letters.describe(row))


@blueprint.serve(shared_api.RETRY_DEAD_LETTER)
class RetryDeadLetter(JsonView):
    async def post(self, request: Request, dead_letter_id: int) -> Response:
        context = self.dependency(ServiceContext)
        results = await context.runner.retry_dead_letter(dead_letter_id)
        async with context.engine.begin() as conn:
            retried = [letter for letter, _ in results]
            await dead_letters.record_retrier(
                conn, context.tables.dead_letters, retried, caller_of(request).name
            )
        return self.json({"results": [{"id": i, "outcome": o.value} for i, o in results]})


@blueprint.serve(shared_api.DISCARD_DEAD_LETTER)
class DiscardDeadLetter(JsonView):
    async def post(self, request: Request, dead_letter_id: int) -> Response:
        context = self.dependency(ServiceContext)
        async with context.engine.begin() as conn:
            await dead_letters.discard(
                conn, context.tables.dead_letters, dead_letter_id, by=caller_of(request).name
            )
        return self.json({"id": dead_letter_id, "status": dead_letters.DISCARDED})
