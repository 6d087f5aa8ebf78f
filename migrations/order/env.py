"""Alembic environment of the order service's database."""

from common.migrations import run_environment
from order.models import metadata

run_environment(metadata)
