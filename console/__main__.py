"""`python -m console`: serve the saga console on SAGA_HTTP_HOST:CONSOLE_HTTP_PORT."""

from aiohttp import web

from common.config import load_settings
from console.app import create_app


def main() -> None:
    settings = load_settings()
    web.run_app(
        create_app(settings), host=settings.http_host, port=settings.console_http_port, access_log=None
    )


if __name__ == "__main__":
    main()
