"""The YAML config: connections, routes, mappings, rules.

Loaded once at start. Errors name the field and the line so an operator can fix the file
without guessing; ``${VAR}`` pulls secrets from the environment so the file itself can be
committed.

The code lives in ``app.configuration`` (``models``, ``loading``, ``checks``, ``problems``);
this module is where the rest of the gateway imports it from.
"""

from __future__ import annotations

from app.configuration.checks import connector_problems, option_warnings, reference_problems
from app.configuration.loading import load_config, parse_config
from app.configuration.models import (
    FLOWS,
    ConnectionConfig,
    DeliveryPolicy,
    Flow,
    GatewayConfig,
    PollConfig,
    Route,
)
from app.configuration.problems import ConfigError, Problem

__all__ = [
    "FLOWS",
    "ConfigError",
    "ConnectionConfig",
    "DeliveryPolicy",
    "Flow",
    "GatewayConfig",
    "PollConfig",
    "Problem",
    "Route",
    "connector_problems",
    "load_config",
    "option_warnings",
    "parse_config",
    "reference_problems",
]
