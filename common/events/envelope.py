"""The envelope every message on every topic carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """Who said what, about which order, because of which earlier event.

    `type` is an explicit, stable name (never a Python class path); `version` lets consumers accept
    older schemas and park newer ones they cannot read. `causation_id` links an event to the one that
    caused it, so an order's timeline can be followed across services.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: str = Field(min_length=1)
    version: int = Field(ge=1)
    order_id: str = Field(min_length=1, max_length=64)
    occurred_at: datetime
    causation_id: UUID | None = None
    producer: str = Field(min_length=1)
    payload: dict[str, Any]
