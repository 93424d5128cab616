"""The ``erp-gateway`` command: serve, worker, migrate, check-config, demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.config import ConfigError, load_config
from app.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]


def _alembic_root() -> Path:
    """Where alembic.ini lives: the source tree, or the working dir of an installed image."""
    for candidate in (ROOT, Path.cwd()):
        if (candidate / "alembic.ini").exists():
            return candidate
    raise SystemExit("alembic.ini not found: run from the erp-gateway directory")


def _config_or_exit() -> None:
    settings = get_settings()
    try:
        load_config(settings.config)
    except ConfigError as exc:
        print(f"config error in {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    _config_or_exit()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        access_log=False,
    )


def cmd_worker(_: argparse.Namespace) -> None:
    from arq.worker import run_worker

    from app.delivery.worker import use_uvloop, worker_settings
    from app.main import load_runtime_inputs

    _config_or_exit()
    settings, config = load_runtime_inputs()
    if not settings.redis_url:
        print(
            "erp-gateway worker needs GATEWAY_REDIS_URL (without Redis, `serve` delivers "
            "in process)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    use_uvloop()
    run_worker(type("WorkerSettings", (), worker_settings(settings, config)))


def migrate(database_url: str | None = None) -> None:
    from alembic.config import Config

    from alembic import command

    root = _alembic_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    cfg.attributes["configure_logger"] = False
    if database_url:
        cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, "head")


def cmd_migrate(_: argparse.Namespace) -> None:
    settings = get_settings()
    migrate(settings.database_url)
    print(f"database is at the latest schema ({settings.database_url.split('://', 1)[0]})")


def cmd_check_config(_: argparse.Namespace) -> None:
    settings = get_settings()
    if not settings.config:
        print("GATEWAY_CONFIG is not set: the gateway would start with no connections.")
        return
    try:
        config = load_config(settings.config)
        settings.parsed_api_keys()
    except (ConfigError, ValueError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        print(f"config error in {settings.config}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None
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


def cmd_demo(args: argparse.Namespace) -> None:
    from app.demo import run_demo

    run_demo(orders=args.orders, port=args.port, stay=not args.exit)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="erp-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (and the in-process worker without Redis)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)
    sub.add_parser(
        "worker", help="run an arq delivery worker (needs GATEWAY_REDIS_URL)"
    ).set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="upgrade the database to the latest schema").set_defaults(
        func=cmd_migrate
    )
    sub.add_parser("check-config", help="validate GATEWAY_CONFIG and the settings").set_defaults(
        func=cmd_check_config
    )
    demo = sub.add_parser("demo", help="gateway + simulators + sample orders")
    demo.add_argument("--orders", type=int, default=20)
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--exit", action="store_true", help="stop after the summary")
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
