"""The config's schema: connections (with their delivery policy and polling), routes,
initial mappings and rules, as pydantic models that refuse unknown keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.configuration.checks import reference_problems
from app.configuration.maintenance import MaintenanceWindow
from app.configuration.monitoring import MonitoringConfig
from app.configuration.problems import DEFER_REFERENCES, dotted
from app.configuration.retention import RetentionConfig

Flow = Literal["orders", "inventory", "products", "customers", "shipments", "returns"]
FLOWS: tuple[str, ...] = ("orders", "inventory", "products", "customers", "shipments", "returns")


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _max_attempts_replaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_attempts" in data:
            raise ValueError(
                "max_attempts was replaced by retry_window_seconds: transient failures are "
                "retried for a time (default 72 h), not a count, and never while the "
                "destination is down"
            )
        return data

    retry_window_seconds: float = Field(
        default=72 * 3600,
        gt=0,
        description="how long transient failures of one delivery are retried (72 h, like the "
        "stores' own webhook retries) while its destination otherwise works; a destination "
        "that is down (breaker open) never dead-letters what waits for it",
    )
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1, description="failures in a row that open")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, description="open → half-open")
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(
        default=4, ge=1, description="calls in flight to this destination, per worker process"
    )
    max_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="calls per second to this destination, per worker process (unset: no cap)",
    )


class PollConfig(BaseModel):
    """Scheduled reading of changes from a system (ERPs without webhooks, or as a safety net)."""

    model_config = ConfigDict(extra="forbid")

    streams: list[str] = Field(min_length=1, description="e.g. inventory, customers, shipments")
    interval_seconds: float = Field(default=300.0, gt=0, description="time between polls")
    page_size: int = Field(default=200, ge=1, le=1000, description="rows per request")
    max_pages: int = Field(default=50, ge=1, description="pages per run; the rest next run")


class ConnectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    type: str
    base_url: str = Field(pattern=r"^https?://")
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    delivery: DeliveryPolicy | None = None
    poll: PollConfig | None = None
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list,
        description="when the system is down for maintenance: deliveries to it wait (no "
        "attempt used) and its polls are skipped until the window ends",
    )

    @field_validator("credentials", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        # YAML reads `account_id: 1234567` as a number; a credential is always text.
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, int | float) else v for k, v in value.items()}
        return value

    def secret(self, key: str) -> str:
        """The credential ``key``; KeyError names the connection so the message is useful."""
        try:
            return self.credentials[key].get_secret_value()
        except KeyError:
            raise KeyError(f"connection {self.id!r} has no credential {key!r}") from None


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    flow: Flow
    from_: str = Field(alias="from")
    to: str


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionConfig] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    # kind → connection id → our key → their key
    mappings: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    rules: dict[str, Any] = Field(default_factory=dict)
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    # what real traffic will need that the options leave out (check-config prints them)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> GatewayConfig:
        if info.context and info.context.get(DEFER_REFERENCES):
            return self  # the loader checks them itself, so each problem names its line
        problems = reference_problems(self)
        if problems:
            raise ValueError("; ".join(f"{dotted(path)}: {msg}" for path, msg in problems))
        return self

    def connection(self, connection_id: str) -> ConnectionConfig | None:
        return next((c for c in self.connections if c.id == connection_id), None)

    def routes_from(self, connection_id: str, flow: str) -> list[Route]:
        return [r for r in self.routes if r.from_ == connection_id and r.flow == flow]

    def policy_for(self, connection_id: str) -> DeliveryPolicy:
        conn = self.connection(connection_id)
        return conn.delivery if conn and conn.delivery else self.delivery
