"""The operator commands of `saga`, one module each (registered by `saga_tools/ops/operator_cli.py`)."""
