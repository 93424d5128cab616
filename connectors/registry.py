"""Connector type name → class."""

from __future__ import annotations

import httpx

from app.config import ConnectionConfig
from connectors.base import Connector


def _registry() -> dict[str, type[Connector]]:
    # Imported lazily: connectors import app.config, which validates types against this.
    from connectors.custom.connector import CustomConnector
    from connectors.netsuite.connector import NetSuiteConnector
    from connectors.shopify.connector import ShopifyConnector
    from connectors.tryton.connector import TrytonConnector

    return {
        cls.type_name: cls
        for cls in (ShopifyConnector, NetSuiteConnector, CustomConnector, TrytonConnector)
    }


def connector_types() -> dict[str, type[Connector]]:
    return _registry()


def build_connector(config: ConnectionConfig, http: httpx.AsyncClient) -> Connector:
    return _registry()[config.type](config, http)
