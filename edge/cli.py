"""`storeedge`: the command line. A thin layer over the Python API; every error names the file/key.

storeedge run --config storeedge.toml          run the daemon until SIGTERM/SIGINT
storeedge config check storeedge.toml          validate a config (and its planogram), print the result
storeedge simulate --config storeedge.toml     run the simulated store's devices against the broker
storeedge demo [--duration 30]                 broker + daemon + simulators + a live summary
storeedge demo --stores 3 --central            three stores and central on a throwaway PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import EdgeError
from models import cli as models_cli
from routing import cli as routing_cli
from routing.errors import RoutingError
from sensors.errors import SensorError
from sync import cli as sync_cli

if TYPE_CHECKING:
    import asyncio

    from edge.config import Config

# Building the parser loads only argparse and the commands' option lists: every command imports what it
# runs (the daemon, onnxruntime, aiohttp, networkx, central) inside its function, so `storeedge --help`
# and `storeedge config check` start quickly. tests/test_cli_imports.py keeps it so; bench/cli_startup.py
# measures it.

EXAMPLES = {
    "run": "example: storeedge run --config storeedge.toml",
    "config check": "example: storeedge config check storeedge.toml",
    "simulate": "example: storeedge simulate --config storeedge.toml --duration 60 --fault-rate 0.02",
    "demo": "examples: storeedge demo --duration 30; storeedge demo --stores 3 --central",
    "route": "example: storeedge route --items milk,bread,ice-cream --from kiosk-2",
    "central": "example: storeedge central run --config central.toml",
    "models": "example: storeedge models evaluate --source completejourney --cutoff 2017-10-01",
    "models seed": "example: storeedge models seed --config storeedge.toml --households 300 --weeks 12",
    "kiosk": "example: storeedge kiosk --api http://127.0.0.1:8080 --scanner /dev/ttyUSB0",
    "privacy card-barcode": "example: storeedge privacy card-barcode --config storeedge.toml LOY-000201",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storeedge", description="Per-store edge runtime: sensors -> durable store -> API."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the store daemon", epilog=EXAMPLES["run"])
    run.add_argument("--config", type=Path, required=True, help="the storeedge.toml to use")
    run.set_defaults(handler=cmd_run)

    config = commands.add_parser("config", help="inspect configuration files")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_commands.add_parser(
        "check", help="validate a config and its planogram", epilog=EXAMPLES["config check"]
    )
    check.add_argument("path", type=Path, help="the storeedge.toml to check")
    check.set_defaults(handler=cmd_config_check)

    simulate = commands.add_parser(
        "simulate", help="run simulated devices against the configured broker", epilog=EXAMPLES["simulate"]
    )
    simulate.add_argument(
        "--config", type=Path, required=True, help="the daemon's storeedge.toml (broker, store, planogram)"
    )
    _simulation_options(simulate)
    simulate.add_argument(
        "--serial-link",
        type=Path,
        help="where to link the legacy controller's PTY (default: the config's first serial port)",
    )
    simulate.add_argument("--ground-truth", type=Path, help="write true shelf stock as JSON here")
    simulate.add_argument(
        "--till-receipts",
        action="store_true",
        help="tills wait for the daemon's receipt per basket and resend unconfirmed ones (needs a daemon)",
    )
    simulate.set_defaults(handler=cmd_simulate)

    demo = commands.add_parser(
        "demo", help="run a whole simulated store with a live summary", epilog=EXAMPLES["demo"]
    )
    demo.add_argument("--config", type=Path, help="base config (default: storeedge.example.toml's settings)")
    demo.add_argument(
        "--workdir",
        type=Path,
        help="databases, broker, configs and logs (default: var/demo, with --central var/demo-chain)",
    )
    _chain_options(demo)
    demo.add_argument(
        "--external-broker", action="store_true", help="use the config's broker instead of starting mosquitto"
    )
    demo.add_argument("--refresh", type=float, default=2.0, help="seconds between summary refreshes")
    _simulation_options(demo)
    demo.set_defaults(handler=cmd_demo)

    route = commands.add_parser(
        "route", help="plan the shortest walk through the store for a shopping list", epilog=EXAMPLES["route"]
    )
    routing_cli.configure_parser(route)
    route.set_defaults(handler=routing_cli.run)

    central = commands.add_parser(
        "central",
        help="the reference central sync service (pull stores, sign bundles)",
        epilog=EXAMPLES["central"],
    )
    sync_cli.configure_parser(central)
    central.set_defaults(handler=sync_cli.run)

    models = commands.add_parser(
        "models",
        help="train and evaluate the household and shelf prediction models",
        epilog=EXAMPLES["models"],
    )
    models_commands = models_cli.configure_parser(models, simulate=_simulate_history)
    models.set_defaults(handler=models_cli.run)
    seed = models_commands.add_parser(
        "seed",
        help="fill a store database with weeks of simulated loyalty purchases (for a demo kiosk)",
        description="Simulate the store's households for the past weeks and write their baskets as "
        f"purchases (no consent, nothing synced). {EXAMPLES['models seed']}",
    )
    _seed_options(seed)

    privacy = commands.add_parser("privacy", help="loyalty cards and keys (docs/customers.md)")
    privacy_commands = privacy.add_subparsers(dest="privacy_command", required=True, metavar="SUBCOMMAND")
    barcode = privacy_commands.add_parser(
        "card-barcode",
        help="what to print in a loyalty card's barcode: the number and its check code",
        epilog=EXAMPLES["privacy card-barcode"],
    )
    barcode.add_argument("--config", type=Path, required=True, help="a storeedge.toml with the chain's key")
    barcode.add_argument("cards", nargs="+", metavar="CARD", help="card numbers as printed")
    barcode.set_defaults(handler=cmd_card_barcode)

    # The kiosk is a separate app that only talks HTTP to the daemon. Its CLI module is light (Textual
    # loads only when a kiosk runs) and imported here, so `storeedge run` never loads kiosk code.
    from kiosk import cli as kiosk_cli

    kiosk = commands.add_parser(
        "kiosk",
        help="the in-store kiosk for shoppers and staff (a Textual app using the daemon's API)",
        epilog=EXAMPLES["kiosk"],
    )
    kiosk_cli.configure_parser(kiosk)
    kiosk.set_defaults(handler=kiosk_cli.run)
    return parser


def _simulate_history(path: Path, *, seed: int, households: int, days: int, start: date) -> None:
    """The `--source simulated` hook: models may not import simulators, the CLI may."""
    from simulators.household_history import write_simulated_history

    write_simulated_history(path, seed=seed, households=households, days=days, start=start)


def _seed_options(seed: argparse.ArgumentParser) -> None:
    seed.add_argument("--config", type=Path, required=True, help="the storeedge.toml whose database to seed")
    seed.add_argument("--households", type=int, default=300, help="simulated households (default 300)")
    seed.add_argument("--weeks", type=int, default=12, help="weeks of history up to yesterday (default 12)")
    seed.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    seed.add_argument(
        "--quiet", action="store_true", help="no progress display (shown on stderr only on a terminal)"
    )
    seed.set_defaults(handler=cmd_models_seed)


def _chain_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "--central",
        action="store_true",
        help="a chain: N stores (--stores, default 3) and central pulling their changes into a throwaway "
        "PostgreSQL (removed at exit); prints central's operations page and each store's staff API",
    )
    demo.add_argument(
        "--stores",
        type=int,
        metavar="N",
        help="stores in the chain, 1-8 (default 3); refused without --central (the plain demo runs one store)",
    )
    demo.add_argument(
        "--no-learning",
        action="store_true",
        help="with --central: leave out the learning loop (households shop, central retrains, an experiment "
        "walks its steps in simulated days to a verdict; docs/experiments.md)",
    )


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.01, help="fraction of malformed messages (default 0.01)"
    )


def _load(path: Path) -> Config:
    from edge.config import load_config
    from edge.logs import bind, configure_logging

    config = load_config(path)
    configure_logging(config.log.level, config.log.format)
    bind(store_id=config.store.id)
    return config


async def _until_signalled() -> asyncio.Event:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from edge.daemon import Daemon

    config = _load(args.config)
    daemon = Daemon(config)

    async def main() -> None:
        await daemon.run(await _until_signalled())

    asyncio.run(main())
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from routing import load_layout
    from sensors.planogram import load_planogram

    config = load_config(args.path)
    planogram = load_planogram(config.path(config.store.planogram))
    layout = load_layout(config.path(config.store.layout))
    print(
        f"{args.path}: ok (store {config.store.id!r}, {len(planogram.shelves)} shelves, "
        f"{len(planogram.fridges)} fridges, {len(planogram.zones)} zones, {len(planogram.tills)} tills, "
        f"{len(config.serial.ports)} serial ports, layout with {len(layout.nodes)} nodes)"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import asyncio

    from edge.catalog.load import store_catalog_file
    from simulators import SimulatorError, SimulatorSettings, run_simulation

    config = _load(args.config)
    link = args.serial_link or (config.path(config.serial.ports[0].path) if config.serial.ports else None)
    try:
        settings = SimulatorSettings(
            store_id=config.store.id,
            planogram_path=config.path(config.store.planogram),
            mqtt_host=config.mqtt.host,
            mqtt_port=config.mqtt.port,
            mqtt_username=config.mqtt.username,
            mqtt_password=config.mqtt.password,
            serial_link=link,
            seed=args.seed,
            speed=args.speed,
            fault_rate=args.fault_rate,
            duration_s=args.duration,
            ground_truth_path=args.ground_truth,
            till_receipts=args.till_receipts,
            catalog_path=store_catalog_file(config),
        )

    except (ValueError, SimulatorError) as exc:
        raise EdgeError(f"simulate: {exc}") from exc

    async def main() -> None:
        summary = await run_simulation(settings, await _until_signalled())
        print(summary)

    try:
        asyncio.run(main())
    except SimulatorError as exc:
        raise EdgeError(f"simulate: {exc}") from exc
    return 0


def cmd_models_seed(args: argparse.Namespace) -> int:
    from edge.demo.service import seed_demo_history
    from models.progress import progress_for

    config = _load(args.config)
    with progress_for(quiet=args.quiet) as progress:
        report = seed_demo_history(
            config, households=args.households, weeks=args.weeks, seed=args.seed, progress=progress
        )
    print(
        f"seeded {report.baskets} baskets ({report.lines} lines) of {report.households} households; "
        f"cards with a long history: {', '.join(report.cards)}"
    )
    return 0


def cmd_card_barcode(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.customers.privacy import CardCheck
    from edge.demo.seed import store_pseudonym_key

    config = load_config(args.config)
    p = config.privacy
    generated = config.path(config.database.path).with_name("pseudonym.key")
    if p.pseudonym_key is None and p.pseudonym_key_file is None and not generated.exists():
        # Never make up a key here: a code from a key no store has would verify nowhere.
        raise EdgeError(f"{args.config}: [privacy] pseudonym_key_file: set the chain's key to print barcodes")
    cards = CardCheck(store_pseudonym_key(config))
    for card in args.cards:
        print(cards.barcode(card))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    if args.central:
        from edge.demo.chain import run_chain

        args.stores = 3 if args.stores is None else args.stores
        args.workdir = args.workdir or Path("var/demo-chain")
        return asyncio.run(run_chain(args))
    if args.stores not in (None, 1):
        raise EdgeError("demo: --stores needs --central (a chain of stores syncs to central: add --central)")
    from edge.demo.service import run_demo

    args.workdir = args.workdir or Path("var/demo")
    return asyncio.run(run_demo(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (EdgeError, SensorError, RoutingError) as exc:
        print(f"storeedge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `storeedge route --json | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
