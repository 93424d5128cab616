"""Connector types, found through the ``erp_gateway.connectors`` entry-point group.

A connector can ship as its own package: it declares, in its ``pyproject.toml``,

    [project.entry-points."erp_gateway.connectors"]
    mysystem = "mysystem_connector:MySystemConnector"

The built-in ones register the same way (this project's ``pyproject.toml``).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from kernel.contract import Connector

GROUP = "erp_gateway.connectors"


class RegistryError(Exception):
    """An installed connector is broken (cannot be imported, or does not keep the contract)."""


@cache
def connector_types() -> dict[str, type[Connector]]:
    """Every installed connector type: ``type_name`` → class."""
    found: dict[str, type[Connector]] = {}
    for point in entry_points(group=GROUP):
        try:
            cls = point.load()
        except Exception as exc:  # one clear line at start-up, not a traceback
            raise RegistryError(
                f"connector {point.name!r} ({point.value}) cannot be loaded: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise RegistryError(f"entry point {point.name!r} ({point.value}) is not a Connector")
        if cls.type_name != point.name:
            raise RegistryError(
                f"entry point {point.name!r} names {cls.__name__}, whose type_name is "
                f"{cls.type_name!r}: they must be the same"
            )
        found[cls.type_name] = cls
    return found
