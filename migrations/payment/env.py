"""Alembic environment of the payment service's database."""

from common.migrations import run_environment
from payment.models import metadata

run_environment(metadata)
