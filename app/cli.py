"""The ``erp-gateway`` command: serve, worker, migrate, check-config, healthcheck, demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.config import ConfigError, GatewayConfig, load_config
from app.settings import Settings, get_settings
from app.startup import StartupError

if TYPE_CHECKING:
    from app.startup import Migration

ROOT = Path(__file__).resolve().parents[1]


def _print_config_error(source: str, problems: list[str]) -> None:
    print(f"config error in {source}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def _config_or_exit() -> GatewayConfig:
    """The config serve and worker start with, checked exactly as check-config checks it."""
    settings = get_settings()
    try:
        config = load_config(settings.config)
        settings.parsed_api_keys()
    except ConfigError as exc:
        _print_config_error(exc.source, exc.problems)
        raise SystemExit(2) from None
    except ValueError as exc:
        _print_config_error("the environment (GATEWAY_API_KEYS)", [str(exc)])
        raise SystemExit(2) from None
    return config


def _schema_or_exit(settings: Settings) -> None:
    """Stop (StartupError, one line) on a database that is unreachable or not migrated; with
    GATEWAY_AUTO_MIGRATE=1 migrate it first and log that."""
    from app.observability.logging import configure_logging, get_logger
    from app.startup import ensure_schema

    configure_logging(settings)
    if settings.log_level.upper() != "DEBUG":  # alembic's setup chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    migration = ensure_schema(settings)
    if migration is not None:
        get_logger("gateway.startup").info(
            migration.describe() + " (GATEWAY_AUTO_MIGRATE=1)",
            database=migration.database,
            from_revision=migration.before or "empty",
            to_revision=migration.after,
        )


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    _config_or_exit()
    settings = get_settings()
    if args.workers > 1 and settings.database_url.startswith("sqlite"):
        print(
            f"erp-gateway serve --workers {args.workers} needs PostgreSQL "
            "(GATEWAY_DATABASE_URL): SQLite takes one writer at a time; use --workers 1",
            file=sys.stderr,
        )
        raise SystemExit(2)
    _schema_or_exit(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        # each process accepts webhooks on the same socket; the database keeps them apart
        # (a webhook is one transaction, a delivery is claimed by one process)
        workers=args.workers,
        log_config=None,
        proxy_headers=True,
        access_log=False,
    )


def cmd_worker(_: argparse.Namespace) -> None:
    config = _config_or_exit()
    settings = get_settings()
    if not settings.redis_url:
        print(
            "erp-gateway worker needs GATEWAY_REDIS_URL (without Redis, `serve` delivers "
            "in process)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    _schema_or_exit(settings)
    from app.delivery.worker import run_arq_worker

    run_arq_worker(settings, config)


def migrate(database_url: str | None = None) -> Migration:
    """Upgrade the database (default: GATEWAY_DATABASE_URL) to the latest schema."""
    from app.startup import migrate as upgrade

    return upgrade(database_url or get_settings().database_url)


def cmd_migrate(_: argparse.Namespace) -> None:
    print(migrate(get_settings().database_url).describe())


def cmd_check_config(_: argparse.Namespace) -> None:
    settings = get_settings()
    if not settings.config:
        print("GATEWAY_CONFIG is not set: the gateway would start with no connections.")
        return
    config = _config_or_exit()
    print(f"{settings.config}: OK")
    for conn in config.connections:
        print(
            f"  connection {conn.id}: {conn.type} at {conn.base_url} "
            f"(credentials: {', '.join(sorted(conn.credentials)) or 'none'})"
        )
    for route in config.routes:
        print(f"  route {route.flow}: {route.from_} → {route.to}")
    for kind, per_conn in config.mappings.items():
        for conn_id, entries in per_conn.items():
            print(f"  mappings {kind}/{conn_id}: {len(entries)} entries")
    for warning in config.warnings:
        print(f"warning: {warning}")


def cmd_healthcheck(args: argparse.Namespace) -> None:
    """One line; exit 0 when healthy, 1 when not (for a container's healthcheck)."""
    from app.healthcheck import api_health, worker_health

    health = worker_health(get_settings()) if args.worker else api_health(args.url)
    print(health.line)
    raise SystemExit(0 if health.ok else 1)


def cmd_demo(args: argparse.Namespace) -> None:
    try:
        from simulators.demo import run_demo
    except ImportError:  # the production image leaves the simulators out
        raise SystemExit(
            "erp-gateway demo needs the simulators (simulators/), which only the source tree "
            "has: run `make run` from a checkout"
        ) from None

    run_demo(orders=args.orders, port=args.port, stay=not args.exit)


def _one_line(exc: BaseException) -> str:
    """An exception as one line: pydantic's settings errors name the variable."""
    if isinstance(exc, ValidationError):
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            if exc.title == "Settings":
                where = f"GATEWAY_{where.upper()}"
            problems.append(f"{where}: {err['msg']}")
        return "; ".join(problems)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _debug(args: argparse.Namespace) -> bool:
    level = os.environ.get("GATEWAY_LOG_LEVEL", "")
    return bool(getattr(args, "debug", False)) or level.strip().upper() == "DEBUG"


def _run(args: argparse.Namespace) -> None:
    """Run the command; a failure is one line on stderr and a non-zero exit (tracebacks only
    with --debug or GATEWAY_LOG_LEVEL=DEBUG)."""
    try:
        args.func(args)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except StartupError as exc:
        if _debug(args):
            raise
        print(f"erp-gateway {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except ValidationError as exc:  # the settings from the environment
        if _debug(args):
            raise
        print(f"erp-gateway {args.command}: {_one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        if _debug(args):
            raise
        print(
            f"erp-gateway {args.command}: {_one_line(exc)} (run with --debug to see where)",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: list[str] | None = None) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of a failure (also GATEWAY_LOG_LEVEL=DEBUG)",
    )
    parser = argparse.ArgumentParser(prog="erp-gateway", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run the API (and the in-process worker without Redis)", parents=[common]
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_at_least_one,
        default=1,
        help="API processes sharing the port, for machines with more cores (PostgreSQL only)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser(
        "worker", help="run an arq delivery worker (needs GATEWAY_REDIS_URL)", parents=[common]
    ).set_defaults(func=cmd_worker)
    sub.add_parser(
        "migrate", help="upgrade the database to the latest schema", parents=[common]
    ).set_defaults(func=cmd_migrate)
    sub.add_parser(
        "check-config", help="validate GATEWAY_CONFIG and the settings", parents=[common]
    ).set_defaults(func=cmd_check_config)
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when the API (or with --worker, this host's worker) is healthy, else 1",
        parents=[common],
    )
    health.add_argument(
        "--worker",
        action="store_true",
        help="check this host's delivery worker by its heartbeat in the database instead",
    )
    health.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the API (default %(default)s)"
    )
    health.set_defaults(func=cmd_healthcheck)
    demo = sub.add_parser("demo", help="gateway + simulators + sample orders", parents=[common])
    demo.add_argument("--orders", type=int, default=20)
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--exit", action="store_true", help="stop after the summary")
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    _run(args)


if __name__ == "__main__":
    main()
