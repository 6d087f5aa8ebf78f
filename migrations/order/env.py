"""Alembic environment of the order service's database."""

from order.models import metadata
from saga_tools.migrations import run_environment

run_environment(metadata)
