"""`storeedge kiosk`: the in-store kiosk (a Textual app) against a running daemon's API.

storeedge kiosk --api http://127.0.0.1:8080 --token KIOSK_TOKEN --scanner /dev/ttyUSB0
storeedge kiosk --api http://127.0.0.1:8080 --staff         # a staff handheld
storeedge kiosk --api http://127.0.0.1:8080 --serve --port 8000   # in a browser
storeedge kiosk --api http://127.0.0.1:8080 --serve --font-size 24   # in a browser, larger text
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tomllib
from pathlib import Path

from kiosk.errors import KioskError
from routing.errors import RoutingError

__all__ = ["configure_parser", "run"]

_EXAMPLES = """\
examples:
  %(prog)s --config var/demo/storeedge.toml          # beside `make demo`
  %(prog)s --api http://127.0.0.1:8080 --token "$STOREEDGE_KIOSK_TOKEN"
  %(prog)s --api http://127.0.0.1:8080 --scanner /dev/ttyUSB0 --from kiosk-1
  %(prog)s --api http://127.0.0.1:8080 --staff
  %(prog)s --api http://127.0.0.1:8080 --serve --port 8000
  %(prog)s --api http://127.0.0.1:8080 --serve --font-size 24   # a 1920x1080 screen
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the kiosk's options to `parser` (a fresh parser or a sub-command's)."""
    if parser.description is None:
        parser.description = (
            "The in-store kiosk: loyalty card -> shopping list, route and offers; staff mode."
        )
    if parser.epilog is None:
        parser.epilog = _EXAMPLES
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--api",
        default=None,
        metavar="URL",
        help="the store daemon's HTTP API (default: http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="on the daemon's own box: take the API address and kiosk token from its storeedge.toml",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the kiosk token ([http] kiosk_token; default: $STOREEDGE_KIOSK_TOKEN)",
    )
    parser.add_argument(
        "--scanner", metavar="PORT", help="serial port of a barcode scanner, e.g. /dev/ttyUSB0"
    )
    parser.add_argument("--staff", action="store_true", help="start at the staff login (a staff handheld)")
    parser.add_argument(
        "--layout",
        type=Path,
        metavar="FILE",
        help="store layout for the map (default: the daemon's, from GET /api/v1/kiosk/layout)",
    )
    parser.add_argument("--from", dest="start", metavar="NODE", help="where this kiosk stands, e.g. kiosk-1")
    parser.add_argument("--idle", type=float, metavar="S", help="override the daemon's [kiosk] idle_s")
    parser.add_argument("--countdown", type=float, metavar="S", help="override [kiosk] countdown_s (>= 20)")
    parser.add_argument(
        "--private", action="store_true", help="a staff-only device: allow the command palette"
    )
    parser.add_argument(
        "--language",
        default="en",
        metavar="CODE",
        help="the shopper's language: a file in kiosk/locales (en, de; default: en)",
    )
    parser.add_argument(
        "--currency",
        metavar="ISO",
        help="the store's currency for prices, e.g. EUR, GBP (default: the daemon's, else EUR)",
    )
    parser.add_argument("--serve", action="store_true", help="serve the kiosk to a browser (textual-serve)")
    parser.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="with --serve: port to listen on")
    parser.add_argument(
        "--font-size",
        type=int,
        metavar="PX",
        help="with --serve: the page's text size in px, 10..48 (default 16; large text is a quarter larger)",
    )
    # Given by the --serve server to each tab's kiosk process: the font size of that tab's page.
    parser.add_argument("--page-font-size", type=int, help=argparse.SUPPRESS)


def daemon_address(config: Path) -> tuple[str, str | None]:
    """`[http] host`, `port` and `kiosk_token` from a daemon config, as (API URL, kiosk token)."""
    try:
        http = tomllib.loads(config.read_text(encoding="utf-8")).get("http", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KioskError(f"--config {config}: {exc}") from exc
    host = str(http.get("host", "127.0.0.1"))
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: the kiosk on the box uses loopback
        host = "127.0.0.1"
    token = http.get("kiosk_token")
    return f"http://{host}:{int(http.get('port', 8080))}", str(token) if token else None


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("STOREEDGE_KIOSK_TOKEN") or None
    if args.config is not None:
        try:
            url, config_token = daemon_address(args.config)
        except KioskError as exc:
            print(f"storeedge kiosk: error: {exc}", file=sys.stderr)
            return 2
        args.api = args.api or url
        token = token or config_token
    args.api = args.api or "http://127.0.0.1:8080"
    args.token = token
    if args.countdown is not None and args.countdown < 20:
        print("storeedge kiosk: --countdown must be at least 20 s (WCAG 2.2.1)", file=sys.stderr)
        return 2
    from kiosk.strings import languages  # noqa: PLC0415 - cheap, but only a running kiosk needs it

    if args.language not in languages():
        print(
            f"storeedge kiosk: --language {args.language}: not one of {', '.join(languages())}",
            file=sys.stderr,
        )
        return 2
    font_error = _font_size_error(args)
    if font_error is not None:
        print(f"storeedge kiosk: {font_error}", file=sys.stderr)
        return 2
    if args.serve:
        return _serve(args)
    # Textual loads only when a kiosk actually runs, not whenever `storeedge` builds its parser.
    from kiosk.app import build_app  # noqa: PLC0415
    from kiosk.settings import KioskSettings  # noqa: PLC0415

    if args.page_font_size is not None:
        from kiosk.serve import DEFAULT_FONT_SIZE, PageFont, use_page_font  # noqa: PLC0415

        use_page_font(PageFont(args.font_size or DEFAULT_FONT_SIZE, args.page_font_size))
    settings = KioskSettings(
        api=args.api,
        token=token,
        scanner=args.scanner,
        staff=args.staff,
        layout=args.layout,
        start_node=args.start,
        idle_s=args.idle,
        countdown_s=args.countdown,
        public=not args.private,
        language=args.language,
        currency=args.currency,
    )
    try:
        app = build_app(settings)
    except (RoutingError, OSError) as exc:
        print(f"storeedge kiosk: error: --layout: {exc}", file=sys.stderr)
        return 2
    try:
        result = app.run()
    except KioskError as exc:
        print(f"storeedge kiosk: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


def _font_size_error(args: argparse.Namespace) -> str | None:
    from kiosk.serve import FONT_SIZES  # noqa: PLC0415 - cheap, but only a running kiosk needs it

    if args.font_size is None:
        return None
    if args.font_size not in FONT_SIZES:
        return f"--font-size {args.font_size}: must be {FONT_SIZES.start}..{FONT_SIZES.stop - 1} (px)"
    if not args.serve and args.page_font_size is None:
        return (
            "--font-size: only with --serve; in a terminal the terminal's own font sets the text size "
            "(docs/kiosk.md)"
        )
    return None


def _serve(args: argparse.Namespace) -> int:
    """Each browser tab gets its own kiosk process running the same command without --serve."""
    from kiosk.serve import DEFAULT_FONT_SIZE, serve  # noqa: PLC0415

    argv = [sys.executable, "-m", "edge", "kiosk", "--api", args.api]
    for flag, value in (("--scanner", args.scanner), ("--layout", args.layout), ("--from", args.start),
                        ("--idle", args.idle), ("--countdown", args.countdown),
                        ("--language", args.language), ("--currency", args.currency),
                        ("--font-size", args.font_size)):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    argv += [flag for flag, on in (("--staff", args.staff), ("--private", args.private)) if on]
    # The token goes through the environment, not the command line other users can read.
    if args.token:
        os.environ["STOREEDGE_KIOSK_TOKEN"] = args.token
    serve(shlex.join(argv), host=args.host, port=args.port, font_size=args.font_size or DEFAULT_FONT_SIZE)
    return 0
