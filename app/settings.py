"""Process settings from the environment (prefix ``GATEWAY_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# viewer: reads, personal data masked; pii-reader: reads with personal data;
# operator: reads with personal data, and acts (replay, pause, mappings, decisions)
Role = Literal["viewer", "operator", "pii-reader"]
ROLES: tuple[str, ...] = get_args(Role)


class Settings(BaseSettings):
    # a bad value is not echoed back in the error: it may be (a typo of) a secret
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite+aiosqlite:///./var/gateway.db"
    redis_url: str | None = None
    config: str | None = Field(default=None, description="Path of the YAML config file")
    api_keys: str = Field(
        default="", description="key:role,… with roles viewer, pii-reader or operator"
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="webhook bodies")
    # operator API bodies (JSON), and CSV mapping imports, which have a cap of their own
    max_api_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # a request body must arrive within this long (a client sending 1 byte/s is cut off)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # Delivery engine knobs (tests shrink them; production keeps the defaults).
    worker_concurrency: int = 16
    lease_seconds: float = 60.0
    sweep_interval_seconds: float = 5.0
    # how often scheduled jobs (pollers, reconciliation, sale prices) check if they are due
    schedule_tick_seconds: float = 5.0
    # How often an arq worker looks for due jobs; it bounds the queueing delay of every order.
    worker_poll_seconds: float = 0.02
    # ... and how often once it has had nothing to do for a second (the first order after a
    # quiet spell may wait this long to start); worker_poll_seconds or less: always poll fast
    worker_idle_poll_seconds: float = 0.1
    # Postgres connections per process (no overflow beyond them)
    db_pool_size: int = 20
    # On SIGTERM a worker finishes deliveries in flight for up to this long, then hands the
    # rest back at once (keep it below your orchestrator's kill timeout).
    worker_grace_seconds: float = 20.0
    # The arq worker serves its own /metrics here (delivery outcomes, latency); unset: off.
    worker_metrics_port: int | None = None
    # serve and worker migrate a database that is behind instead of refusing to start
    auto_migrate: bool = False
    # Fernet key that encrypts the OAuth tokens connectors keep in the database (app/tokens.py);
    # unset: they are stored as plain JSON (a warning says so). Make one with
    # python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
    token_key: SecretStr | None = None

    @field_validator("redis_url", "config", "worker_metrics_port", "token_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("token_key")
    @classmethod
    def _a_fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Fernet(value.get_secret_value())
            except (ValueError, TypeError):  # binascii.Error is a ValueError
                raise ValueError(
                    "not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                    'python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"'
                ) from None
        return value

    def parsed_api_keys(self) -> dict[str, Role]:
        """Return ``{key: role}``; raise ValueError naming the bad entry."""
        keys: dict[str, Role] = {}
        for raw in self.api_keys.split(","):
            entry = raw.strip()
            if not entry:
                continue
            key, sep, role = entry.rpartition(":")
            if not sep or not key or role not in ROLES:
                raise ValueError(
                    f"GATEWAY_API_KEYS entry {entry[:4]}… must be key:viewer or key:operator "
                    "or key:pii-reader"
                )
            keys[key] = role  # type: ignore[assignment]
        return keys

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
