"""`python -m order`: run the order service (Faust worker + HTTP API)."""

from common.config import load_settings
from common.worker import run_worker
from order.app import create_app


def main() -> None:
    settings = load_settings()
    run_worker(create_app, settings)


if __name__ == "__main__":
    main()
