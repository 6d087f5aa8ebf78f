"""The Python client (clients/python) against the documents the running services serve at /openapi.json."""

from __future__ import annotations

from common.config import Service
from tests.client_drift import drifts
from tests.e2e.conftest import Shop


def test_the_client_models_match_the_documents_the_services_serve(shop: Shop) -> None:
    documents = {
        service.value: shop.http.get(shop.url(service, "/openapi.json")).raise_for_status().json()
        for service in Service
    }

    assert drifts(documents) == []
