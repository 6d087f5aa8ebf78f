"""Each service's OpenAPI 3.1 document, built from its route list: the contract a generated client follows.

A `Route` declares everything a request may carry (path, query and header parameters as pydantic models,
a JSON body) and every answer it can get, each with a schema. The views validate requests with the same
models (common/web.py), so what the document says is what the service does. Besides the answers a route
lists, every route documents the ones the HTTP edge gives on its own:
- 400 `invalid_parameter` / `empty_body` / `malformed_json` when it has parameters or a body;
- 413 `body_too_large` and 422 `validation_failed` when it takes a body;
- 503 `unavailable` (with Retry-After) when it reads or writes the database;
- 401 `unauthenticated` (with WWW-Authenticate) unless it is public, and 403 `forbidden` when some scope
  may not call it. Each operation's `security` names the scopes that may (common/auth.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from common.auth import ALL_SCOPES, Access, Scope
from common.params import parameter_schemas, wire_names

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
MAX_BODY_BYTES = 1024**2  # aiohttp's limit on a request body, which Faust keeps
MAX_JSON_DEPTH = 32  # arrays and objects one inside the other a JSON body may have (ours need a few)
SECURITY_SCHEME = "apiKey"
OPERATORS_ONLY = Access.of(Scope.OPERATOR)  # a route that names no access: the strictest


class FieldError(BaseModel):
    """One invalid part of a request: where it is, and what is wrong with it."""

    field: str = Field(description="e.g. `query.limit`, `header.Idempotency-Key`, `lines.0.quantity`")
    message: str


class ErrorBody(BaseModel):
    """Every error answer: a stable machine-readable code, a message for people, and the fields at fault."""

    error: str = Field(description="a stable code, e.g. not_found, invalid_parameter, validation_failed")
    message: str
    fields: list[FieldError] | None = Field(default=None, description="present on validation errors")


@dataclass(frozen=True)
class Link:
    """Where an answer leads (an OpenAPI link): the route (or the operationId of one declared further
    down), and runtime expressions for its parameters, e.g.
    `Link(PAYMENT, {"order_id": "$response.body#/order_id"})`. Clients and the fuzzer's stateful phase
    follow them."""

    target: Route | str
    parameters: Mapping[str, str]

    def document(self) -> dict[str, Any]:
        operation_id = self.target if isinstance(self.target, str) else self.target.operation_id
        return {"operationId": operation_id, "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class Answer:
    """One documented answer: its description, the schema of its body, the headers it always carries and
    the links it offers.

    `body` is a response model, a raw JSON schema, or None for the JSON error body.
    """

    description: str
    body: type[BaseModel] | Mapping[str, Any] | None = None
    media_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, Link] = field(default_factory=dict)


UNAVAILABLE = Answer(
    "unavailable: the database, or a service the answer needs, cannot be reached; retry after the given"
    " seconds",
    headers={"Retry-After": "seconds to wait before retrying"},
)


@dataclass(frozen=True)
class Route:
    """One operation: method and path, what it accepts, and every answer it can give.

    `responses` maps a status to an Answer, or to a description alone for an error answer (the JSON
    error body). Path parameters in `path` must be exactly the fields of `path_params`. `access` says
    who may call it; a route that names none is for operators.
    """

    method: str
    path: str
    summary: str
    responses: Mapping[int, Answer | str]
    request: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    uses_database: bool = True
    access: Access = OPERATORS_ONLY

    def __post_init__(self) -> None:
        declared = wire_names(self.path_params) if self.path_params else []
        if sorted(path_parameters(self.path)) != sorted(declared):
            raise ValueError(f"{self.method} {self.path}: path_params declares {declared}")
        for status, answer in self.responses.items():
            if status < 400 and not isinstance(answer, Answer):
                raise ValueError(f"{self.method} {self.path}: answer {status} needs a body schema")

    @property
    def takes_parameters(self) -> bool:
        return any(model is not None for model in (self.path_params, self.query, self.headers))

    def answers(self) -> dict[int, Answer]:
        """Every answer of this route: the declared ones and those of the HTTP edge (module docstring)."""
        edge: dict[int, Answer] = {}
        if self.takes_parameters or self.request is not None:
            edge[400] = Answer(_bad_request(self))
        if self.request is not None:
            edge[413] = Answer(f"body_too_large: the body is larger than {MAX_BODY_BYTES} bytes")
            edge[422] = Answer("validation_failed: the JSON body breaks the schema or a rule it states")
        if self.uses_database:
            edge[503] = UNAVAILABLE
        if not self.access.public:
            edge[401] = UNAUTHENTICATED
            if self.access.scopes != ALL_SCOPES:
                edge[403] = Answer(f"forbidden: the API key has no scope of {_scopes_text(self.access)}")
        declared = {status: _as_answer(answer) for status, answer in self.responses.items()}
        return dict(sorted({**edge, **declared}.items()))

    @property
    def operation_id(self) -> str:
        return f"{self.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', self.path.lower()).strip('_')}"


UNAUTHENTICATED = Answer(
    "unauthenticated: no `Authorization: Bearer <key>`, or a key that is not (or no longer) active",
    headers={"WWW-Authenticate": "the scheme to use: Bearer"},
)


def _scopes_text(access: Access) -> str:
    return " or ".join(f"`{scope}`" for scope in sorted(access.scopes))


def _bad_request(route: Route) -> str:
    reasons = []
    if route.takes_parameters:
        reasons.append("invalid_parameter: a path, query or header parameter breaks its schema")
    if route.request is not None:
        too_deep = f"nested deeper than {MAX_JSON_DEPTH} levels"
        reasons.append(f"empty_body / malformed_json: the body is missing, not JSON, or {too_deep}")
    return "; ".join(reasons)


def _as_answer(answer: Answer | str) -> Answer:
    return answer if isinstance(answer, Answer) else Answer(answer)


def path_parameters(path: str) -> list[str]:
    """The names of a path template's parameters: `/orders/{order_id}` → `["order_id"]`."""
    return re.findall(r"\{([^{}/]+)\}", path)


@dataclass(frozen=True)
class Callout:
    """A request the service makes to its callers (OpenAPI 3.1's `webhooks`): the body it POSTs, the
    headers it sends, and what the receiver should answer."""

    name: str
    summary: str
    body: type[BaseModel]
    headers: Mapping[str, str]
    answer: str


def build_openapi(
    title: str, description: str, routes: Iterable[Route], callouts: Iterable[Callout] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (every parameter typed, every answer with its schema), and of
    the requests the service sends out (`webhooks`)."""
    routes, callouts = list(routes), list(callouts)
    refs, schemas = _component_schemas(routes, [callout.body for callout in callouts])
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    webhooks = {callout.name: {"post": _callout(callout, refs)} for callout in callouts}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        **({"webhooks": webhooks} if webhooks else {}),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key, `Authorization: Bearer <key>`. Its scopes: `shop` (checkout,"
                    " read orders and payments, cancel), `carrier` (ship, deliver), `operator` (stock"
                    " writes, refund retry, dead letters, and every read of `shop`).",
                }
            },
        },
    }


def _component_schemas(
    routes: list[Route], sent: Sequence[type[BaseModel]] = ()
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    """The schema of every request and answer model, and of every body the service sends out, named in
    components (one pass, so names agree)."""
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    models.update(((model, "serialization"), None) for model in sent)
    for route in routes:
        if route.request is not None:
            models[(route.request, "validation")] = None
        for answer in route.answers().values():
            if isinstance(answer.body, type):
                models[(answer.body, "serialization")] = None
    refs, definitions = models_json_schema(list(models), ref_template=REF_TEMPLATE)
    return {key: refs[key] for key in models}, dict(definitions.get("$defs", {}))


def _operation(
    route: Route, refs: Mapping[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": "Public: no key needed."
        if route.access.public
        else f"Needs an API key with the scope {_scopes_text(route.access)}.",
        "security": _security(route.access),
        "responses": {str(status): _response(answer, refs) for status, answer in route.answers().items()},
    }
    parameters = [
        *_parameters(route.path_params, "path"),
        *_parameters(route.query, "query"),
        *_parameters(route.headers, "header"),
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": refs[(route.request, "validation")]}},
        }
    return operation


def _callout(
    callout: Callout, refs: Mapping[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "operationId": f"webhook_{callout.name.replace('.', '_')}",
        "summary": callout.summary,
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in callout.headers.items()
        ],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": refs[(callout.body, "serialization")]}},
        },
        "responses": {"2XX": {"description": callout.answer}},
    }


def _security(access: Access) -> list[dict[str, list[str]]]:
    """The operation's security requirements: any one of them suffices (one per scope; none if public)."""
    return [] if access.public else [{SECURITY_SCHEME: [scope.value]} for scope in sorted(access.scopes)]


def _parameters(
    model: type[BaseModel] | None, location: Literal["path", "query", "header"]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    entries = []
    for name, (schema, required) in parameter_schemas(model).items():
        entry: dict[str, Any] = {"name": name, "in": location, "required": required or location == "path"}
        if "description" in schema:
            entry["description"] = schema.pop("description")
        entry["schema"] = schema
        entries.append(entry)
    return entries


def _response(
    answer: Answer, refs: Mapping[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
) -> dict[str, Any]:
    if answer.body is None:
        schema: Mapping[str, Any] = refs[(ErrorBody, "serialization")]
    elif isinstance(answer.body, type):
        schema = refs[(answer.body, "serialization")]
    else:
        schema = answer.body
    response: dict[str, Any] = {
        "description": answer.description,
        "content": {answer.media_type: {"schema": schema}},
    }
    if answer.headers:
        response["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    if answer.links:
        response["links"] = {name: link.document() for name, link in answer.links.items()}
    return response
