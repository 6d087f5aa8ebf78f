"""The three services' HTTP APIs as the console and the `saga` command call them, with errors an operator
can act on."""

from __future__ import annotations

from typing import Any

import httpx

from common.config import Service, Settings
from common.services import SERVICES


class ServiceUnavailable(Exception):
    """The service did not answer (not running, wrong URL, or failing)."""


class NotFound(Exception):
    """The service answered 404."""


class Refused(Exception):
    """The service answered 4xx with a reason (e.g. 409 not retryable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def bearer(api_key: str | None) -> dict[str, str]:
    """The Authorization header that sends `api_key` (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class ServiceApis:
    """The services' APIs, called with the operator's key (SAGA_OPERATOR_API_KEY, or the local stack's), or
    with `api_key` when given (the console: the key the operator signed in with)."""

    def __init__(self, settings: Settings, timeout: float = 10.0, api_key: str | None = None) -> None:
        self._settings = settings
        key = api_key if api_key is not None else settings.operator_api_key_value()
        self._http = httpx.Client(timeout=timeout, headers=bearer(key))

    def __enter__(self) -> ServiceApis:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def url(self, service: Service) -> str:
        return self._settings.base_url(service)

    def get(self, service: Service, path: str, **params: Any) -> Any:
        return self._call("GET", service, path, params)

    def post(self, service: Service, path: str, body: Any = None) -> Any:
        return self._call("POST", service, path, {}, body)

    def put(self, service: Service, path: str, body: Any = None) -> Any:
        return self._call("PUT", service, path, {}, body)

    def delete(self, service: Service, path: str) -> Any:
        return self._call("DELETE", service, path, {})

    def get_text(self, service: Service, path: str) -> str:
        """A plain-text answer (Prometheus' /metrics), with the same errors as `get`."""
        return str(self._call("GET", service, path, {}, as_text=True))

    def get_or_none(self, service: Service, path: str, **params: Any) -> Any:
        try:
            return self.get(service, path, **params)
        except NotFound:
            return None

    def _call(
        self,
        method: str,
        service: Service,
        path: str,
        params: dict[str, Any],
        body: Any = None,
        *,
        as_text: bool = False,
    ) -> Any:
        url = f"{self.url(service)}{path}"
        try:
            response = self._http.request(
                method, url, params={k: v for k, v in params.items() if v is not None}, json=body
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"the {service.value} service is not reachable at {self.url(service)} "
                f"({exc.__class__.__name__}); is it running? (`saga run`, or set"
                f" {SERVICES[service].url_variable})"
            ) from exc
        if response.status_code == 404:
            raise NotFound(_message(response))
        if response.status_code in (401, 403):
            raise Refused(
                response.status_code,
                f"{service.value} refused the API key: {_message(response)}. The saga command sends"
                " SAGA_OPERATOR_API_KEY (or the file SAGA_OPERATOR_API_KEY_FILE names), a key with the"
                " operator scope",
            )
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{service.value} answered {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise Refused(response.status_code, _message(response))
        return response.text if as_text else response.json()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "message" in body:
            return str(body["message"])
    return response.text[:200]
