"""HTTP edge shared by the services: JSON errors that say what is wrong, never a 500 for bad input.

Views are classes at module level, declared in a service's `Blueprint` (Faust's, bound to our typed
routes): `@blueprint.serve(SHOW)` checks a view against its `Route`s (common/openapi.py) as it is declared,
and `serve(app, documented, blueprint)` puts the blueprint's views on an app and their routes in its
OpenAPI document. A view reaches what it works with (the engine, a unit of work, a port) through one typed
accessor, `self.dependency(SomeType)`, of what the app's factory `provide`d.

Before a handler runs, `JsonView.dispatch` checks who is calling (the route's `access`: 401 without a
known key, 403 without one of its scopes, before anything else of the request is read), then validates
everything the route declares — path parameters, query, headers and JSON body, in that order — and
passes the results to the handler as keyword arguments: the path parameters by name (validated and
typed: a dead letter id arrives as an int), and `query`, `headers` and `body` as the route's pydantic
models. Bad input never reaches a handler, hence never SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Callable, Mapping, MutableSequence
from typing import Any, ClassVar, TypeVar
from weakref import WeakKeyDictionary

import faust.web
from aiohttp import web
from faust.types import AppT
from pydantic import BaseModel, ValidationError

from common.answer_json import answer_json
from common.api_keys import ApiKeys
from common.auth import Access, Caller, Decision, bearer_token, decide
from common.db import is_transient_database_error
from common.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from common.openapi import MAX_BODY_BYTES, MAX_JSON_DEPTH, Route
from common.params import InvalidParameters, Location, validate_parameters, wire_names
from common.tenancy import resolve
from common.write_health import DatabaseWrites

log = logging.getLogger(__name__)

# Requests answered 503 past their deadline whose work is still ending (see `JsonView.dispatch`).
_ABANDONED: set[asyncio.Future[Any]] = set()

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V", bound="JsonView")
T = TypeVar("T")

_HANDLER_METHODS = ("get", "post", "put", "patch", "delete", "options", "search")


class ApiError(Exception):
    """An answer other than success, with the HTTP status and a message for the caller."""

    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.extra}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(exc: ValidationError) -> ApiError:
    fields = [
        {"field": ".".join(str(part) for part in err["loc"]) or "<body>", "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return ApiError(422, "validation_failed", f"invalid request: {summary}", fields=fields)


def invalid_parameters(exc: InvalidParameters) -> ApiError:
    return ApiError(400, "invalid_parameter", str(exc), fields=exc.fields)


async def parse_body(request: Any, model: type[M]) -> M:
    """Read a JSON body into `model`: a body that is missing or not JSON is a 400 (413 when too large), a
    JSON body that breaks the model is a 422 naming the fields.

    Values are taken as JSON Schema reads them, the way the OpenAPI document describes them: `22.0` is
    the integer 22, but `"22"` and `false` are no integers, nor `1` a string (pydantic's strict mode).
    """
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes") from exc
    if not raw:
        raise ApiError(400, "empty_body", "the request needs a JSON body")
    document = _json_document(raw)
    if not isinstance(document, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object")
    try:
        return model.model_validate_json(json.dumps(whole_floats_as_ints(document)), strict=True)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            # Only an unpaired surrogate escape (`"\\ud800"`) survives json.loads and fails here.
            raise ApiError(400, "malformed_json", "the body's strings are not Unicode text") from exc
        raise validation_error(exc) from exc


def _json_document(raw: bytes) -> Any:
    """The parsed body; NaN and Infinity, which JSON does not have, are refused like any other defect, and
    so is a body nested deeper than MAX_JSON_DEPTH arrays and objects (no body of ours needs more than a
    few): everything after the parse — the models, the error answers — walks the document recursively."""
    too_deep = ApiError(400, "malformed_json", f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:  # deeper than the parser itself goes
        raise too_deep from exc
    except ValueError as exc:  # not UTF-8, not JSON, an integer of 5,000 digits
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if nested_deeper_than(document, MAX_JSON_DEPTH):
        raise too_deep
    return document


def nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether `document` has more than `limit` arrays and objects one inside the other (a scalar has
    none, `[]` one). Walked with a stack of its own, not recursion, and stops at the first too deep."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def whole_floats_as_ints(value: Any) -> Any:
    """`value` with every number that has no fractional part as an int: JSON Schema's integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_floats_as_ints(item) for item in value]
    return value


# The one place a use case's answer becomes an HTTP status.
STATUS_OF_DOMAIN_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unavailable: 503,
}


def status_of(error: DomainError) -> int:
    return next(status for kind, status in STATUS_OF_DOMAIN_ERROR.items() if isinstance(error, kind))


def _declared_values(model: type[BaseModel], getall: Callable[[str], list[str]]) -> dict[str, list[str]]:
    return {name: getall(name) for name in wire_names(model)}


def _validated(model: type[M], location: Location, given: Mapping[str, list[str]]) -> M:
    try:
        return validate_parameters(model, location, given)
    except InvalidParameters as exc:
        raise invalid_parameters(exc) from exc


async def route_arguments(route: Route, request: Any) -> dict[str, Any]:
    """What the handler of `route` is called with, all validated: path parameters by name, then `query`,
    `headers` and `body`. Raises ApiError (400, 413 or 422) at the first part that is wrong."""
    arguments: dict[str, Any] = {}
    if route.path_params is not None:
        given = {name: [value] for name, value in request.match_info.items()}
        arguments.update(_validated(route.path_params, "path", given).model_dump())
    if route.query is not None:
        arguments["query"] = _validated(
            route.query, "query", _declared_values(route.query, lambda name: request.query.getall(name, []))
        )
    if route.headers is not None:
        arguments["headers"] = _validated(
            route.headers,
            "header",
            _declared_values(route.headers, lambda name: request.headers.getall(name, [])),
        )
    if route.request is not None:
        arguments["body"] = await parse_body(request, route.request)
    return arguments


# Where a request keeps who called it, once authorised (`caller_of`); None on a public route.
CALLER: web.RequestKey[Caller | None] = web.RequestKey("saga.caller")


def caller_of(request: Any) -> Caller:
    """Who made `request` (a view of a route that is not public only runs once the caller is known)."""
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        raise LookupError("this request has no authenticated caller (a public route?)")
    return caller


def saga_of(request: Any, reference: str) -> str:
    """The saga id the caller of `request` means by `reference`: its own order id, or `owner:order_id`
    (one in nobody's namespace when it may not see that owner: answered as an id that does not exist)."""
    return resolve(caller_of(request), reference)


class JsonView(faust.web.View):
    """Base of every endpoint: lets in only the callers its routes allow (401/403), validates what they
    declare, maps ApiError and the use cases' DomainErrors to their status, a database outage to 503,
    bugs to 500 (logged)."""

    routes: ClassVar[Mapping[str, Route]] = {}

    def dependency(self, kind: type[T]) -> T:
        """What this view's app was provided of type `kind` (its engine, a unit of work, a port...)."""
        return dependency(self.app, kind)

    def answer(self, body: BaseModel, *, status: int = 200) -> faust.web.Response:
        """The answer model `body` as the JSON response (`common/answer_json.py`): the model the route
        documents is the one the view sends."""
        return self.json(answer_json(body), status=status)

    def access(self, route: Route) -> Access:
        """Who may call `route` on this view (its declared access; a view may open it by a setting)."""
        return route.access

    def _authorised_caller(self, request: Any, route: Route) -> Caller | None:
        """The caller, if `route` lets them in; ApiError 401 or 403 otherwise. The key is never logged."""
        keys = self.dependency(ApiKeys)
        access = self.access(route)
        caller = keys.caller(bearer_token(request.headers.get("Authorization")))
        decision = decide(access, caller)
        if decision is Decision.UNAUTHENTICATED:
            raise ApiError(
                401,
                "unauthenticated",
                "send an active API key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": 'Bearer realm="saga"'},
            )
        if decision is Decision.FORBIDDEN:
            needed = " or ".join(sorted(access.scopes))
            raise ApiError(403, "forbidden", f"this API key may not do this: it needs the scope {needed}")
        return caller

    def get_methods(self) -> set[str]:
        """The methods the view implements; HEAD only where there is a GET to answer it."""
        methods = set(super().get_methods())
        if "GET" not in methods:
            methods.discard("HEAD")
        return methods

    async def dispatch(self, request: Any) -> Any:
        """The answer, or a 503 once the app's answer deadline has passed (`HttpLimits.answer_seconds`).

        The work is not awaited past the deadline: a statement sent to a database that stopped answering
        (a frozen server, packets dropped) waits for TCP to give up, minutes later, and so would the
        cancelled work's own rollback. It is cancelled and left to end on its own. A write it had already
        sent may still commit; the caller retries as after any lost answer (a checkout with the same
        Idempotency-Key gets the first answer)."""
        limits = getattr(self.app, "http_limits", None)
        if limits is None:
            return await self._answer_or_error(request)
        work = asyncio.ensure_future(self._answer_or_error(request))
        done, _ = await asyncio.wait({work}, timeout=limits.answer_seconds)
        if work in done:
            return work.result()
        work.cancel()
        _ABANDONED.add(work)  # referenced until it ends, so it is not collected mid-cleanup
        work.add_done_callback(_ABANDONED.discard)
        seconds = limits.answer_seconds
        log.warning("no answer to %s %s within %.1f s: 503", request.method, request.path, seconds)
        return self.json(
            {
                "error": "unavailable",
                "message": f"no answer within {limits.answer_seconds:g} s (its database, or a service it"
                " needs, is not answering); retry later",
            },
            status=503,
            headers={"Retry-After": "1"},
        )

    async def _answer_or_error(self, request: Any) -> Any:
        try:
            return await self._answer(request)
        except ApiError as exc:
            return self.json(exc.body(), status=exc.status, headers=dict(exc.headers or {}) or None)
        except DomainError as exc:
            status = status_of(exc)
            headers = {"Retry-After": "1"} if status == 503 else None
            return self.json(exc.body(), status=status, headers=headers)
        except Exception as exc:
            if is_transient_database_error(exc):
                log.warning("database unavailable during %s %s: %r", request.method, request.path, exc)
                with contextlib.suppress(LookupError):  # a service's app has one; readiness reads it
                    self.dependency(DatabaseWrites).failed(exc)
                return self.json(
                    {"error": "unavailable", "message": "the database is unavailable; retry later"},
                    status=503,
                    headers={"Retry-After": "1"},
                )
            log.exception("unexpected error in %s %s", request.method, request.path)
            return self.json({"error": "internal", "message": "unexpected server error"}, status=500)

    async def _answer(self, request: Any) -> Any:
        """Validate the request against its route, then call the handler (Faust's request sensors around)."""
        method = request.method.upper()
        route = self.routes.get("GET" if method == "HEAD" else method)
        if route is None:
            return await super().dispatch(request)
        request[CALLER] = self._authorised_caller(request, route)
        arguments = await route_arguments(route, request)
        handler = self.methods[method.lower()]
        sensors = self.app.sensors
        state = sensors.on_web_request_start(self.app, request, view=self)
        response = None
        try:
            response = await handler(request, **arguments)
        finally:
            sensors.on_web_request_end(self.app, request, response, state, view=self)
        return response


@web.middleware
async def json_routing_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> Any:
    """The router's own answers in our error format: 404 for a path no route has, 405 (with Allow) for a
    method the path does not have."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if exc.content_type == "application/json":  # already ours
            raise
        error = "not_found" if exc.status == 404 else "method_not_allowed"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = f"no route {request.path}" if exc.status == 404 else f"{request.method} is not allowed here"
        return web.json_response({"error": error, "message": message}, status=exc.status, headers=headers)


def implemented_methods(view: type[faust.web.View]) -> set[str]:
    """The HTTP methods a view class defines a handler for."""
    return {
        name.upper() for name in _HANDLER_METHODS if getattr(view, name) is not getattr(faust.web.View, name)
    }


def handler_arguments(route: Route) -> set[str]:
    """The keyword arguments the handler of `route` is called with."""
    names = set(wire_names(route.path_params)) if route.path_params is not None else set()
    extras = {"query": route.query, "headers": route.headers, "body": route.request}
    return names | {name for name, model in extras.items() if model is not None}


def check_view(view: type[faust.web.View], routes: Mapping[str, Route]) -> None:
    """The view implements exactly the declared methods, each taking exactly its route's arguments: the
    document and the code cannot disagree without the service refusing to start."""
    if implemented_methods(view) != set(routes):
        raise TypeError(f"{view.__name__} implements {implemented_methods(view)}, declared {set(routes)}")
    for method, route in routes.items():
        handler = getattr(view, method.lower())
        taken = set(list(inspect.signature(handler).parameters)[2:])  # after self and request
        if taken != handler_arguments(route):
            raise TypeError(
                f"{view.__name__}.{method.lower()} takes {sorted(taken)}; {route.method} {route.path}"
                f" passes {sorted(handler_arguments(route))}"
            )


class Blueprint(faust.web.Blueprint):
    """Faust's blueprint of module-level JsonViews, each bound to its typed Routes as it is declared."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.documented: list[Route] = []

    def serve(self, *routes: Route) -> Callable[[type[V]], type[V]]:
        """Declare the decorated view at the routes' path: it must implement exactly their methods, each
        taking exactly its route's arguments, and its requests are validated against them."""
        paths = {route.path for route in routes}
        if len(paths) != 1:
            raise ValueError(f"one view serves one path, got {sorted(paths)}")
        [path] = paths
        by_method = {route.method.upper(): route for route in routes}

        def declare(view: type[V]) -> type[V]:
            check_view(view, by_method)
            view.routes = by_method
            self.documented.extend(routes)
            self.route(path, name=view.__name__)(view)
            return view

        return declare


def serve(app: faust.App, documented: MutableSequence[Route], blueprint: Blueprint) -> None:
    """Serve the blueprint's views on `app`, and add their routes to its OpenAPI document (`documented`) in
    the order they were declared."""
    documented.extend(blueprint.documented)
    blueprint.register(app)


# What each app's views work with, by type; an app that is gone takes its entry with it.
_PROVIDED: WeakKeyDictionary[AppT, dict[type, object]] = WeakKeyDictionary()


def provide(app: AppT, *dependencies: object) -> None:
    """Make each of `dependencies` reachable by its type from the app's views (`JsonView.dependency`)."""
    _PROVIDED.setdefault(app, {}).update((type(given), given) for given in dependencies)


def dependency(app: AppT, kind: type[T]) -> T:
    """What `app` was provided of type `kind`; LookupError if its factory provided none."""
    found = _PROVIDED.get(app, {}).get(kind)
    if not isinstance(found, kind):
        raise LookupError(f"no {kind.__name__} was provided to this app")
    return found
