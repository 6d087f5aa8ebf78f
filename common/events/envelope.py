"""The envelope every message on every topic carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.tenancy import SAGA_ID_MAX_LENGTH, saga_id, split_saga_id


class Envelope(BaseModel):
    """Who said what, about which order, because of which earlier event.

    `type` is an explicit, stable name (never a Python class path); `version` lets consumers accept
    older schemas and park newer ones they cannot read. `causation_id` links an event to the one that
    caused it, so an order's timeline can be followed across services.

    `order_id` is the saga id, `owner:order_id` (common/tenancy.py), also the Kafka key; `owner` names
    the shop whose order it is. An event written before owners existed has neither: it is read as one
    of `legacy`'s orders, as the migrations renamed their rows.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: str = Field(min_length=1)
    version: int = Field(ge=1)
    order_id: str = Field(min_length=1, max_length=SAGA_ID_MAX_LENGTH)
    owner: str = Field(min_length=1, max_length=64)
    occurred_at: datetime
    causation_id: UUID | None = None
    producer: str = Field(min_length=1)
    payload: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _owned(cls, data: Any) -> Any:
        """The owner from the saga id (a legacy event's id gets `legacy:`); a stated owner must match."""
        if not isinstance(data, dict) or not isinstance(data.get("order_id"), str):
            return data
        owner, order_id = split_saga_id(data["order_id"])
        if data.setdefault("owner", owner) != owner:
            raise ValueError(f"owner {data['owner']!r} is not the owner of the order {data['order_id']!r}")
        return {**data, "order_id": saga_id(owner, order_id)}
