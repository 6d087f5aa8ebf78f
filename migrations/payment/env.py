"""Alembic environment of the payment service's database."""

from payment.models import metadata
from saga_tools.migrations import run_environment

run_environment(metadata)
