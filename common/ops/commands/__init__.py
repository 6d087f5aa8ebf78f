"""The operator commands of `saga`, one module each (registered by `common/ops/cli.py`)."""
