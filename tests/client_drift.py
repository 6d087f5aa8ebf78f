"""Whether the Python client (`clients/python`) still speaks the services' OpenAPI documents.

A schema is reduced to its shape: the field names, which are required, the types (with their format),
the enum values, nested alike through `$ref`s; titles, descriptions, defaults and bounds are left out
(the server checks bounds, the client only reads). Every operation of the client's table must exist in
its service's document, answer its status, with a schema of the same shape as the client's model, and
send the key of a role the document's `security` allows (one requirement per allowed scope; none, `[]`
or absent, means public, and the client then sends no key); the checkout request the client sends must
have the shape of the one the server accepts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from saga_client import models
from saga_client.operations import ALL, Operation

REF = "#/components/schemas/{model}"
IGNORED = {"title", "description", "default", "examples"}


def shape(schema: dict[str, Any], definitions: dict[str, Any]) -> Any:
    """The part of a JSON schema that a client and a server must agree on."""
    if "$ref" in schema:
        return shape(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        shapes = [shape(option, definitions) for option in options]
        nullable = {"type": "null"} in shapes
        shapes = [s for s in shapes if s != {"type": "null"}]
        if shapes and all("enum" in s for s in shapes):
            merged: dict[str, Any] = {"enum": sorted({v for s in shapes for v in s["enum"]})}
        elif len(shapes) == 1:
            merged = dict(shapes[0])
        else:
            merged = {"anyOf": sorted(shapes, key=repr)}
        return {**merged, "nullable": True} if nullable else merged
    if "enum" in schema or "const" in schema:
        return {"enum": sorted(schema.get("enum", [schema.get("const")]))}
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        result: dict[str, Any] = {
            "type": "object",
            "properties": {
                name: shape(sub, definitions) for name, sub in schema.get("properties", {}).items()
            },
            "required": sorted(schema.get("required", [])),
        }
        if isinstance(schema.get("additionalProperties"), dict):
            result["additionalProperties"] = shape(schema["additionalProperties"], definitions)
        return result
    if kind == "array":
        return {"type": "array", "items": shape(schema.get("items", {}), definitions)}
    return {key: value for key, value in schema.items() if key in ("type", "format")}


def model_shape(model: type[BaseModel], mode: str = "serialization") -> Any:
    schema = model.model_json_schema(mode=mode, ref_template=REF)  # type: ignore[arg-type]
    return shape(schema, schema.get("$defs", {}))


def documented_shape(document: dict[str, Any], operation: Operation[Any]) -> Any:
    """The shape of the answer `document` gives to `operation` at its status (KeyError if it has none)."""
    answer = document["paths"][operation.path][operation.method.lower()]["responses"][str(operation.status)]
    schema = answer["content"]["application/json"]["schema"]
    return shape(schema, document["components"]["schemas"])


def drifts(documents: dict[str, dict[str, Any]]) -> list[str]:
    """Where the client and the documents (by service name) disagree; empty when they agree."""
    found = []
    for operation in ALL:
        services = [operation.service.value] if operation.service else list(documents)
        for service in services:
            where = f"{service}: {operation.method} {operation.path} {operation.status}"
            try:
                expected = documented_shape(documents[service], operation)
            except KeyError as missing:
                found.append(f"{where}: not in the document ({missing})")
                continue
            actual = model_shape(operation.answer)
            if actual != expected:
                found.append(
                    f"{where}: the client's {operation.answer.__name__} is\n  {actual}\n"
                    f"the document says\n  {expected}"
                )
            found.extend(_role_drift(where, operation, documents[service]))
    body = documents["payment"]["paths"]["/checkout"]["post"]["requestBody"]["content"]["application/json"]
    accepted = shape(body["schema"], documents["payment"]["components"]["schemas"])
    sent = model_shape(models.CheckoutRequest, mode="validation")
    if _names_and_required(sent) != _names_and_required(accepted):
        found.append(f"POST /checkout body: the client sends {sent}\nthe server accepts {accepted}")
    return found


def allowed_scopes(document: dict[str, Any], operation: Operation[Any]) -> set[str]:
    """The scopes the document lets call `operation` (empty: it is public)."""
    requirements = document["paths"][operation.path][operation.method.lower()].get("security") or []
    return {scope for requirement in requirements for scopes in requirement.values() for scope in scopes}


def _role_drift(where: str, operation: Operation[Any], document: dict[str, Any]) -> list[str]:
    """Whether the key the client sends fits the document: a role it allows, and no key when public."""
    allowed = allowed_scopes(document, operation)
    role = operation.role
    if role is None and allowed:
        return [f"{where}: the client sends no key; the document needs one of {sorted(allowed)}"]
    if role is not None and not allowed:
        return [f"{where}: the client sends the {role.value} key; the document says it is public"]
    if role is not None and role.value not in allowed:
        return [f"{where}: the client sends the {role.value} key; the document allows {sorted(allowed)}"]
    return []


def _names_and_required(schema: Any) -> Any:
    """Field names and required fields, nested: what a request must agree on (the server owns bounds)."""
    if isinstance(schema, dict) and schema.get("type") == "object":
        return {
            "required": schema["required"],
            "properties": {name: _names_and_required(sub) for name, sub in schema["properties"].items()},
        }
    if isinstance(schema, dict) and schema.get("type") == "array":
        return {"items": _names_and_required(schema["items"])}
    return None
