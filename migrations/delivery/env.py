"""Alembic environment of the delivery service's database."""

from common.migrations import run_environment
from delivery.models import metadata

run_environment(metadata)
