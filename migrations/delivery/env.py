"""Alembic environment of the delivery service's database."""

from delivery.models import metadata
from saga_tools.migrations import run_environment

run_environment(metadata)
