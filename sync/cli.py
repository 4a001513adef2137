"""``storeedge central ...``: the reference central service and its bundle tools, as CLI subcommands.

`configure_parser` adds the subcommands to the parser it is given (the ``storeedge`` CLI wires it in under
``central``); `run` executes the parsed arguments and returns the exit code. ``python -m sync`` runs the
same commands on their own.

    storeedge central run --config central.toml
    storeedge central keygen --out keys/chain.key
    storeedge central sign-bundle --key keys/chain.key --kind model --version 3 --from models/out/ --config central.toml
    storeedge central status --config central.toml
    storeedge central retrain --config central.toml --key keys/chain.key --cutoff 2026-11-02

Errors go to stderr as one line naming the file and key at fault, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sync.errors import SyncError

if TYPE_CHECKING:
    from sync.central_db import StoreRow

# Each command imports what it runs (asyncpg, aiohttp, cryptography, the training stack) inside its
# function, so that `storeedge --help` and the store's own commands do not load central
# (tests/test_cli_imports.py; bench/cli_startup.py).

EXAMPLES = {
    "run": "example: storeedge central run --config central.toml",
    "keygen": "example: storeedge central keygen --out keys/chain.key",
    "sign-bundle": "example: storeedge central sign-bundle --key keys/chain.key --kind model --version 3"
    " --from build/model-v3/ --config central.toml",
    "status": "example: storeedge central status --config central.toml",
    "retrain": "example: storeedge central retrain --config central.toml --key keys/chain.key --cutoff 2026-11-02",
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add central's subcommands (run, keygen, sign-bundle, status, retrain) to ``parser``."""
    commands = parser.add_subparsers(dest="central_command", required=True, metavar="SUBCOMMAND")

    run_cmd = commands.add_parser(
        "run",
        help="pull every store's changes into PostgreSQL ([central] dsn) and serve bundles until SIGTERM/SIGINT",
        epilog=EXAMPLES["run"],
    )
    run_cmd.add_argument(
        "--config",
        type=Path,
        required=True,
        help="central's TOML config, [central] dsn among it (docs/sync.md)",
    )

    keygen = commands.add_parser(
        "keygen", help="make the chain's Ed25519 signing key; print its public key", epilog=EXAMPLES["keygen"]
    )
    keygen.add_argument("--out", type=Path, required=True, help="where to write the private key (PEM, 0600)")

    sign = commands.add_parser(
        "sign-bundle", help="build and sign a bundle from a directory", epilog=EXAMPLES["sign-bundle"]
    )
    sign.add_argument("--key", type=Path, required=True, help="the chain's private key (from keygen)")
    sign.add_argument("--kind", required=True, help="model, catalog, layout, promotions or experiment")
    sign.add_argument("--version", type=int, required=True, help="an integer greater than every earlier one")
    sign.add_argument("--from", dest="source", type=Path, required=True, help="the directory to bundle")
    where = sign.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="publish into this central config's bundle_dir")
    where.add_argument("--out", type=Path, help="publish into this bundle directory")
    sign.add_argument("--notes", default="", help="free text shown with the bundle")

    status = commands.add_parser(
        "status", help="per-store lag from central's PostgreSQL ([central] dsn)", epilog=EXAMPLES["status"]
    )
    status.add_argument("--config", type=Path, required=True, help="central's TOML config")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    retrain = commands.add_parser(
        "retrain",
        help="retrain the models on the chain's purchases before --cutoff; if the candidate is not worse than"
        " the current models, publish a signed experiment for it (exit 0; 1 when worse, 2 on failure)",
        epilog=EXAMPLES["retrain"],
    )
    retrain.add_argument(
        "--config", type=Path, required=True, help="central's TOML config ([central] dsn, bundle_dir)"
    )
    retrain.add_argument("--key", type=Path, required=True, help="the chain's private key (from keygen)")
    retrain.add_argument(
        "--cutoff", required=True, type=_date, help="train before it, test after it (YYYY-MM-DD)"
    )
    retrain.add_argument("--timezone", default="UTC", help="the IANA time zone of the days (default UTC)")
    retrain.add_argument(
        "--models-dir",
        type=Path,
        help="where the candidate's models stay (default: [central] candidates_dir)",
    )
    retrain.add_argument(
        "--replace-running",
        action="store_true",
        help="publish even while the newest experiment is still running (it is replaced on every store)",
    )
    retrain.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the parsed central subcommand; returns the exit code (2 with one line on stderr on error)."""
    handlers = {
        "run": _cmd_run,
        "keygen": _cmd_keygen,
        "sign-bundle": _cmd_sign,
        "status": _cmd_status,
        "retrain": _cmd_retrain,
    }
    try:
        return handlers[args.central_command](args)
    except SyncError as exc:
        print(f"storeedge central: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="storeedge central", description="The reference central sync service."
    )
    configure_parser(parser)
    return run(parser.parse_args(argv))


# -- commands ------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from sync.central import Central  # noqa: PLC0415
    from sync.central_config import load_central_config  # noqa: PLC0415

    config = load_central_config(args.config)
    configure_logging(config.log.level, config.log.format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Central(config).run_until(stop)

    asyncio.run(main())
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from sync.bundle_signing import generate_key  # noqa: PLC0415

    if args.out.exists():
        raise SyncError(f"{args.out}: already exists; refusing to overwrite a signing key")
    public = generate_key(args.out)
    public_path = args.out.with_suffix(".pub")
    public_path.write_text(public + "\n")
    print(f"private key: {args.out} (keep it off the stores)")
    print(f"public key:  {public}   (also in {public_path}; set it as [sync] public_key in every store)")
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from sync.bundle_signing import load_private_key, publish_bundle  # noqa: PLC0415
    from sync.central_config import load_central_config  # noqa: PLC0415

    out = args.out
    if args.config is not None:
        config = load_central_config(args.config)
        out = config.path(config.central.bundle_dir)
    manifest = publish_bundle(
        load_private_key(args.key), args.kind, args.version, args.source, out, notes=args.notes
    )
    print(
        f"{manifest.kind} v{manifest.version}: {manifest.size} bytes, sha256 {manifest.sha256},"
        f" published in {out / manifest.kind / str(manifest.version)}"
    )
    return 0


async def _read_store_rows(dsn: str, origin: str) -> list[StoreRow]:
    from sync.central_db import store_rows  # noqa: PLC0415
    from sync.central_pool import CentralDb  # noqa: PLC0415

    db = CentralDb(dsn, origin)
    await db.open()  # errors name [central] dsn and the server
    try:
        return await db.run(store_rows)
    finally:
        await db.close()


def _cmd_status(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from sync.central_config import load_central_config  # noqa: PLC0415

    config = load_central_config(args.config)
    rows = {r.store: r for r in asyncio.run(_read_store_rows(config.central.dsn, config.origin))}
    now = int(time.time() * 1000)
    report = []
    for store in config.stores:
        r = rows.get(store.id)
        report.append(
            {
                "store": store.id,
                "cursor": r.cursor if r else 0,
                "head": r.head if r else 0,
                "behind": max(0, r.head - r.cursor) if r else None,
                "changes": r.changes if r else 0,
                "last_applied_s_ago": round((now - r.last_applied_ms) / 1000, 1)
                if r and r.last_applied_ms
                else None,
                "gaps": r.gaps if r else 0,
                "bundles": r.bundles if r else {},
            }
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'store':<16} {'cursor':>10} {'head':>10} {'behind':>8} {'changes':>10} {'applied':>10} gaps")
        for item in report:
            ago = item["last_applied_s_ago"]
            print(
                f"{item['store']:<16} {item['cursor']:>10} {item['head']:>10} {item['behind'] if item['behind'] is not None else '-':>8}"
                f" {item['changes']:>10} {f'{ago}s ago' if ago is not None else 'never':>10} {item['gaps']}"
            )
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _cmd_retrain(args: argparse.Namespace) -> int:
    """`sync.central_retrain.retrain` with the config's database and bundle directory; prints its report."""
    import asyncio  # noqa: PLC0415

    import msgspec  # noqa: PLC0415

    from sync.bundle_signing import load_private_key  # noqa: PLC0415
    from sync.central_config import load_central_config  # noqa: PLC0415
    from sync.central_pool import CentralDb  # noqa: PLC0415
    from sync.central_retrain import RetrainReport, retrain  # noqa: PLC0415  (imports the training stack: slow)

    config = load_central_config(args.config)
    key = load_private_key(args.key)
    bundle_dir = config.path(config.central.bundle_dir)
    models_dir = args.models_dir or config.path(config.central.candidates_dir)

    async def main() -> RetrainReport:
        db = CentralDb(config.central.dsn, config.origin, config.central.connect_timeout_s)
        await db.open()
        try:
            return await retrain(
                db.run,
                bundle_dir,
                key,
                args.cutoff,
                models_dir=models_dir,
                timezone=args.timezone,
                replace_running=args.replace_running,
            )
        finally:
            await db.close()

    report = asyncio.run(main())
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(report)).decode())
    elif report.decision == "failed":
        print(f"storeedge central: error: retrain: {report.reason}", file=sys.stderr)
    else:
        print(f"retrain {report.cutoff}: {report.decision}: {report.reason} ({report.seconds} s)")
        for name, figures in (("candidate", report.candidate_figures), ("current", report.current_figures)):
            if figures is not None:
                print(f"  {name:<9} recall@10 {figures.recall_at_10:.4f}  brier_7d {figures.brier_7d:.4f}")
        if report.models_dir:
            print(f"  candidate models: {report.models_dir}")
    return {"published": 0, "worse": 1}.get(report.decision, 2)


# -- logs ------------------------------------------------------------------------------------------


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class _Formatter(logging.Formatter):
    """One event per line, logfmt or JSON, fields from ``extra={...}`` (as the daemon's logs)."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self._json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self._json:
            return json.dumps(fields, default=str)
        return " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())


def _logfmt(value: Any) -> str:
    text = str(value)
    return text if text and not any(c in text for c in ' "=\n\t') else json.dumps(text)


def configure_logging(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
