"""The `ordo` command: serve the API, sign local tokens, operate an instance."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from adapters.auth import UnauthenticatedError, actor_from_claims, sign_token
from adapters.config import Settings
from adapters.heap import freeze_started_objects
from domain.actors import ROLES
from projections.folds import READ_MODEL_NAMES

T = TypeVar("T")
APP = "adapters.bootstrap:app_from_env"  # what `ordo serve` runs, imported in each worker


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` once the command has imported what it needs: those objects move out of
    the garbage collector's reach first (adapters.heap), so the full collections of a command
    that runs long (a follower, a rebuild, a verification, a batch) walk only what it makes."""
    freeze_started_objects()
    return asyncio.run(work)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ordo", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    serve.set_defaults(handler=_serve)

    token = commands.add_parser("token", help="print a signed bearer token (HS256, local use)")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--rpps")
    token.add_argument("--finess")
    token.add_argument("--ins")
    token.add_argument("--sub", help="subject (default: derived from the role and identity)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(handler=_token)

    project = commands.add_parser("project", help="follow the log into the read models")
    project.add_argument(
        "--metrics-port", type=int, help="serve /metrics on PORT (ORDO_METRICS_HOST)"
    )
    project.set_defaults(handler=_project)

    relay = commands.add_parser("relay", help="publish the event log to Kafka")
    relay.add_argument(
        "--metrics-port", type=int, help="serve /metrics on PORT (ORDO_METRICS_HOST)"
    )
    relay.set_defaults(handler=_relay)

    worker = commands.add_parser("worker", help="apply the Kafka topic to the read models")
    worker.add_argument(
        "--metrics-port", type=int, help="serve /metrics on PORT (ORDO_METRICS_HOST)"
    )
    worker.set_defaults(handler=_worker)

    _add_deliverers(commands)

    projections = commands.add_parser("projections", help="inspect or rebuild the read models")
    operations = projections.add_subparsers(required=True, metavar="OPERATION")
    operations.add_parser("status", help="position and lag of each view").set_defaults(
        handler=_status
    )
    rebuild = operations.add_parser("rebuild", help="rebuild from the start of the log")
    rebuild.add_argument(
        "view", nargs="?", choices=READ_MODEL_NAMES, help="one view (default: all)"
    )
    rebuild.set_defaults(handler=_rebuild)

    _add_document(commands)

    reconcile = commands.add_parser("reconcile", help="reconcile an insurer's invoices (NDJSON)")
    reconcile.add_argument("file", type=Path, help="one invoice per line (NDJSON)")
    reconcile.add_argument("--out", help="write the items there (- for stdout)")
    reconcile.add_argument("--format", choices=("ndjson", "csv"), help="default: from --out")
    reconcile.set_defaults(handler=_reconcile)

    catalogue = commands.add_parser("catalogue", help="the medicines catalogue (BDPM)")
    catalogue_operations = catalogue.add_subparsers(required=True, metavar="OPERATION")
    load = catalogue_operations.add_parser(
        "import", help="import the official BDPM files of DIR as the catalogue in force"
    )
    load.add_argument("directory", type=Path, metavar="DIR", help="the five CIS_*.txt files")
    load.add_argument(
        "--date",
        type=date.fromisoformat,
        help="the snapshot's date, YYYY-MM-DD (default: the newest file's modification day)",
    )
    load.add_argument(
        "--force", action="store_true", help="import even if the files are those in force"
    )
    load.set_defaults(handler=_catalogue_import)
    catalogue_operations.add_parser(
        "status", help="the snapshot in force and its counts"
    ).set_defaults(handler=_catalogue_status)
    _access_log_commands(commands)
    _integrity_commands(commands)
    return parser


def _integrity_commands(commands: Any) -> None:
    """Proving the log and keeping it: verify, receipt keys, backup and restore."""
    verify = commands.add_parser(
        "verify", help="recompute the log's hash chain and compare each read model with a rebuild"
    )
    verify.set_defaults(handler=_verify)
    keys = commands.add_parser("keys", help="the keys that sign receipts")
    keys_operations = keys.add_subparsers(required=True, metavar="OPERATION")
    keys_operations.add_parser(
        "rotate", help="sign with a new key from now on; the old ones stay published"
    ).set_defaults(handler=_rotate_keys)
    _backup_commands(commands)


def _add_document(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    document = commands.add_parser("document", help="write a prescription's PDF (A4)")
    document.add_argument("prescription_id", metavar="ID", help="the number under the QR code")
    document.add_argument("--out", type=Path, required=True, help="the PDF file to write")
    document.set_defaults(handler=_document)


def _access_log_commands(commands: Any) -> None:
    access_log = commands.add_parser("access-log", help="who called prescriptions' endpoints")
    operations = access_log.add_subparsers(required=True, metavar="OPERATION")
    operations.add_parser(
        "prune", help="delete entries older than ORDO_ACCESS_LOG_RETENTION_DAYS (default 3650)"
    ).set_defaults(handler=_access_log_prune)


def _backup_commands(commands: Any) -> None:
    backup = commands.add_parser(
        "backup", help="copy the instance's databases into DIR, consistently, while it runs"
    )
    backup.add_argument("directory", type=Path, metavar="DIR", help="where the backup goes")
    backup.set_defaults(handler=_backup)
    restore = commands.add_parser(
        "restore", help="restore the backup in DIR into an empty instance, checked first"
    )
    restore.add_argument("directory", type=Path, metavar="DIR", help="a backup's directory")
    restore.set_defaults(handler=_restore)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from adapters.serving import serve_workers  # noqa: PLC0415 - nor its supervisor

    settings = Settings.from_env()
    if args.workers > 1 and settings.database_url is None:
        print("ordo: several workers need PostgreSQL (ORDO_DATABASE_URL)", file=sys.stderr)
        return 2
    if settings.auth_secret_is_local and not is_loopback(args.host):
        # Anyone who can read ./var could mint any role's token: not beyond this machine.
        print(
            f"ordo serve: refusing to listen on {args.host} with the development secret; "
            "set ORDO_AUTH_PUBLIC_KEY (or ORDO_AUTH_SECRET) first",
            file=sys.stderr,
        )
        return 2
    print(f"ordo: serving on http://{args.host}:{args.port} (docs at /schema)", file=sys.stderr)
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "access_log": False,  # our own log line has the route template, not the raw path
        "log_level": "warning",
        "server_header": False,  # no banner naming the server software and its version
        # An idle keep-alive connection is closed after this; a slow body is answered 408 by
        # the app (ORDO_REQUEST_TIMEOUT_SECONDS), and h11 bounds the headers' size.
        "timeout_keep_alive": 5,
    }
    if args.workers > 1:
        try:
            serve_workers(uvicorn.Config(APP, workers=args.workers, **options))
        except OSError as error:  # the port is taken, or not ours to take
            print(f"ordo serve: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 1
    else:
        uvicorn.run(APP, **options)
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything


def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.auth_secret:
        print("ordo: token needs ORDO_AUTH_SECRET (HS256)", file=sys.stderr)
        return 2
    subject = args.sub or f"{args.role}:{args.rpps or 'local'}"
    identity = {"rpps": args.rpps, "finess": args.finess, "ins": args.ins}
    claims = {"sub": subject, "role": args.role, **{k: v for k, v in identity.items() if v}}
    try:  # the checks the API makes on every call: refuse to sign what it would refuse
        actor_from_claims(claims)
    except UnauthenticatedError as error:
        print(f"ordo token: {error}", file=sys.stderr)
        return 2
    print(
        sign_token(
            settings.auth_secret,
            role=args.role,
            subject=subject,
            ttl_seconds=args.ttl,
            rpps=args.rpps,
            finess=args.finess,
            ins=args.ins,
        )
    )
    return 0


def _project(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415 - keeps `ordo token` instant

    _run(operations.project(Settings.from_env(), args.metrics_port))
    return 0


def _relay(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415

    _run(operations.relay(Settings.from_env(), args.metrics_port))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415

    _run(operations.worker(Settings.from_env(), args.metrics_port))
    return 0


def _mailer(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415
    from adapters.mailer import cli  # noqa: PLC0415

    settings = Settings.from_env()
    if args.operation == "status":
        counts = _run(cli.status(settings, Console()))
        return 1 if counts["failed"] else 0
    _run(operations.mailer(settings, args.metrics_port))
    return 0


def _add_deliverers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ordo mailer` and `ordo webhooks`: the readers of the log that deliver outside."""
    mailer = commands.add_parser(
        "mailer", help="deliver the e-mails of MSSanté conversations (`status`: the outbox)"
    )
    mailer.add_argument("operation", nargs="?", choices=["status"], help="show the outbox")
    mailer.add_argument(
        "--metrics-port", type=int, help="serve /metrics on PORT (ORDO_METRICS_HOST)"
    )
    mailer.set_defaults(handler=_mailer)

    webhooks = commands.add_parser("webhooks", help="deliver the subscriptions' webhooks")
    webhooks.add_argument(
        "--metrics-port", type=int, help="serve /metrics on PORT (ORDO_METRICS_HOST)"
    )
    webhooks.set_defaults(handler=_webhooks)


def _webhooks(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415

    _run(operations.webhooks(Settings.from_env(), args.metrics_port))
    return 0


def _status(_: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415

    _run(operations.status(Settings.from_env(), Console()))
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from adapters import operations  # noqa: PLC0415

    views = [args.view] if args.view else list(READ_MODEL_NAMES)
    _run(operations.rebuild(Settings.from_env(), views, Console()))
    return 0


def _verify(_: argparse.Namespace) -> int:
    from adapters import verify  # noqa: PLC0415

    return 0 if _run(verify.verify(Settings.from_env(), Console())) else 1


def _rotate_keys(_: argparse.Namespace) -> int:
    from adapters.receipts import KeyRing  # noqa: PLC0415

    settings = Settings.from_env()
    kid = KeyRing(settings.data_dir, settings.receipt_key).rotate()
    Console().print(f"receipts are signed with the key {kid} from now on")
    return 0


def _document(args: argparse.Namespace) -> int:
    from adapters.document import cli  # noqa: PLC0415 - only the document needs reportlab

    return cli.write_document(Settings.from_env(), args.prescription_id, args.out)


def _reconcile(args: argparse.Namespace) -> int:
    from adapters.reconciliation import cli  # noqa: PLC0415 - only reconciling needs it

    if not args.file.is_file():
        print(f"ordo: no such file: {args.file}", file=sys.stderr)
        return 2
    console = Console(stderr=args.out == "-")
    settings = Settings.from_env()
    _run(cli.reconcile_file(settings, args.file, args.out, args.format, console))
    return 0


def _catalogue_import(args: argparse.Namespace) -> int:
    from adapters.catalogue import cli  # noqa: PLC0415 - only the catalogue needs it
    from adapters.catalogue.importer import MissingFiles  # noqa: PLC0415

    try:
        _run(
            cli.import_files(
                Settings.from_env(), args.directory, args.date, force=args.force, console=Console()
            )
        )
    except MissingFiles as error:
        print(f"ordo catalogue import: {error}", file=sys.stderr)
        return 2
    return 0


def _catalogue_status(_: argparse.Namespace) -> int:
    from adapters.catalogue import cli  # noqa: PLC0415

    _run(cli.show_status(Settings.from_env(), Console()))
    return 0


def _access_log_prune(_: argparse.Namespace) -> int:
    from adapters.access import cli  # noqa: PLC0415 - only pruning needs it

    settings = Settings.from_env()
    deleted = cli.prune(settings)
    days = settings.access_log_retention_days
    print(f"ordo access-log prune: {deleted} entries older than {days} days deleted")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from adapters import backup  # noqa: PLC0415 - only backups need it

    try:
        manifest = backup.backup(Settings.from_env(), args.directory)
    except backup.BackupError as error:
        print(f"ordo backup: {error}", file=sys.stderr)
        return 1
    print(
        f"ordo backup: {manifest.log.events} events up to position {manifest.log.head} "
        f"in {args.directory}"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from adapters import backup  # noqa: PLC0415

    try:
        manifest = backup.restore(Settings.from_env(), args.directory)
    except backup.BackupError as error:
        print(f"ordo restore: refused: {error}", file=sys.stderr)
        return 1
    print(
        f"ordo restore: {manifest.log.events} events up to position {manifest.log.head} "
        f"restored from {args.directory} and checked"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
