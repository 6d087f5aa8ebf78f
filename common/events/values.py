"""Value types shared by the payloads of several topics."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Frozen(BaseModel):
    """Base of every payload: immutable, and tolerant of fields added by newer producers.

    Schemas only grow by optional fields, so an older consumer ignores what it does not know.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")


class Money(Frozen):
    """An amount in integer minor units (cents) of one currency. Never a float."""

    amount_minor: int = Field(ge=0)
    currency: Currency


class OrderLine(Frozen):
    sku: Sku
    quantity: int = Field(gt=0, le=10_000)
    unit_price_minor: int = Field(ge=0)


class Address(Frozen):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class SkuShortage(Frozen):
    sku: Sku
    requested: int
    available: int
