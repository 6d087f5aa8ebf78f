"""Typed request parameters: one pydantic declaration both validates a request and describes it in OpenAPI.

A route declares its path, query and header parameters as pydantic models (see `Route` in
common/openapi.py). `read_parameters` validates what a request carries against such a model before the
view runs, so no unchecked value reaches SQL; the same model's JSON schema is what the OpenAPI document
publishes, so the document and the check cannot drift apart.

Conventions (docs/shops/http-api.md, "Errors"):
- a bad path, query or header parameter is `400 invalid_parameter`, with a `fields` entry per problem
  named `path.<name>`, `query.<name>` or `header.<Name>`;
- query parameters the route does not declare are ignored; a declared one given twice is a 400;
- integers are plain decimal digits with an optional minus sign (no `+5`, ` 5`, `1_000` or `5.0`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from common.tenancy import REFERENCE_PATTERN, SAGA_ID_MAX_LENGTH

Location = Literal["path", "query", "header"]
P = TypeVar("P", bound=BaseModel)

_DECIMAL = re.compile(r"-?[0-9]+")
_MAX_DIGITS = 100  # far past any bound we declare, short enough to convert in no time
BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint: the largest id a table can hold


def decimal_digits(value: object) -> object:
    """Text that stands for an integer must be decimal digits with an optional leading minus."""
    if not isinstance(value, str):
        return value
    if not _DECIMAL.fullmatch(value):
        raise ValueError("must be a whole number written in decimal digits")
    if len(value.lstrip("-")) > _MAX_DIGITS:
        raise ValueError(f"is out of range (more than {_MAX_DIGITS} digits)")
    return int(value)


DIGITS = BeforeValidator(decimal_digits)
"""Last in an integer parameter's Annotated, after its bounds: `Annotated[int, Field(ge=1, le=500), DIGITS]`
(placed first, pydantic would publish the bounds under names JSON Schema does not know)."""

# Text free of control characters: PostgreSQL cannot store NUL, and no name or address needs a tab.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


PrintableText = Annotated[str, Field(pattern=PRINTABLE)]
"""Free text in a request body; give its length where it is declared: `name: PrintableText = Field(…)`."""


DeadLetterId = Annotated[int, Field(ge=1, le=BIGINT_MAX, description="a dead letter's id"), DIGITS]
Offset = Annotated[int, Field(ge=0, le=1_000_000_000, description="items to skip"), DIGITS]

# What a visible-ASCII header token looks like: no control characters, no spaces at either end.
VISIBLE_ASCII_TOKEN = r"^[!-~]([ -~]*[!-~])?$"

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=VISIBLE_ASCII_TOKEN,
        description="1 to 200 visible ASCII characters (inner spaces allowed), e.g. a UUID; the same key"
        " with the same body answers the first answer again",
    ),
]


class Parameters(BaseModel):
    """Base of every parameter model: immutable; a field's alias is its name on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)


class InvalidParameters(Exception):
    """The request's parameters break the route's declaration; `fields` says which and why."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = fields
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        super().__init__(f"invalid request parameters: {summary}")


def wire_names(model: type[BaseModel]) -> list[str]:
    """The names a model's fields have on the wire (their alias if they have one)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def single_values(location: Location, given: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """One value per declared name: a parameter given more than once is refused, not guessed at."""
    repeated = [name for name, values in given.items() if len(values) > 1]
    if repeated:
        raise InvalidParameters(
            [{"field": f"{location}.{name}", "message": "given more than once"} for name in repeated]
        )
    return {name: values[0] for name, values in given.items() if values}


def validate_parameters(model: type[P], location: Location, given: Mapping[str, Sequence[str]]) -> P:
    """`given` (wire name → the values the request carries) as `model`, or InvalidParameters."""
    values = single_values(location, given)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidParameters(_field_errors(location, exc)) from exc


def _field_errors(location: Location, exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join([location, *(str(part) for part in err["loc"])]), "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


def parameter_schemas(model: type[BaseModel]) -> dict[str, tuple[dict[str, Any], bool]]:
    """Each parameter's JSON schema (inlined, without the `null` an optional field allows) and whether it
    is required, by wire name: what the OpenAPI document says about the model."""
    document = model.model_json_schema(by_alias=True)
    definitions = document.get("$defs", {})
    required = set(document.get("required", []))
    return {
        name: (_inline(_without_null(schema), definitions), name in required)
        for name, schema in document.get("properties", {}).items()
    }


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An absent parameter is not sent at all; `null` is no value it can carry on the wire."""
    branches = schema.get("anyOf")
    if not branches:
        return {key: value for key, value in schema.items() if key != "title"}
    kept = [branch for branch in branches if branch != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "title", "default")}
    if schema.get("default") is not None:
        rest["default"] = schema["default"]
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {"anyOf": kept, **rest}


def _inline(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """`schema` with every local `$ref` replaced by the definition it points to (parameters are small)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = {k: v for k, v in definitions[ref.removeprefix("#/$defs/")].items() if k != "title"}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _inline({**target, **rest}, definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


# How a caller names an order: its own order id (`o-1`), or `owner:order_id` for a shop's order it may
# see (an operator any, a carrier the shops it serves; common/tenancy.py).
OrderReference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SAGA_ID_MAX_LENGTH,
        pattern=REFERENCE_PATTERN,
        description="your order id, or `owner:order_id` for a shop's order your key may see",
    ),
]


class OrderPath(Parameters):
    """The order a path names: `/orders/{order_id}`, `/payments/{order_id}`, `/shipments/{order_id}`."""

    order_id: OrderReference
