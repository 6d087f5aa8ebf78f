"""A small OpenAPI 3.1 document built from each service's route list and its pydantic models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None = None
    responses: dict[int, str] = field(default_factory=lambda: {200: "OK"})
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()


def build_openapi(title: str, description: str, routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "responses": {str(status): {"description": text} for status, text in route.responses.items()},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_parameters(route.path)
        ]
        parameters += [{"name": name, "in": "query", "schema": {"type": "string"}} for name in route.query]
        parameters += [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in route.headers
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.request is not None:
            schema = route.request.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[route.request.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{route.request.__name__}"}}
                },
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
