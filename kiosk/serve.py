"""`storeedge kiosk --serve`: textual-serve, with a page that asks nothing of the internet, and the
page's font size for the large-text toggle.

textual-serve's page template links a Google web font. A store's network is often offline; the
browser then waits for the font, falls back to its own monospace font, and the map's box-drawing
lines come out dashed. textual-serve ships the same font (Roboto Mono) in its static files, so the
kiosk serves a copy of the template that loads it from the kiosk's own server instead.

Large text: the page draws the terminal with the font size in its `?fontsize=` (textual-serve's
default is 16 px). The copy of the template opens the kiosk's WebSocket at `/ws/<fontsize>`, and the
server starts that tab's kiosk process with `--page-font-size <fontsize>`, so the welcome screen
knows which way its toggle goes; the toggle reloads the page with the other size
(`App.open_url("?fontsize=N", new_tab=False)`).
"""

from __future__ import annotations

import re
import tempfile
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web
    from textual_serve.server import Server

__all__ = [
    "DEFAULT_FONT_SIZE",
    "EXTERNAL_URL",
    "FONT_SIZES",
    "PageFont",
    "large_font_size",
    "offline_templates",
    "page_font",
    "serve",
    "use_page_font",
]

_FONT_LINK = re.compile(r"<link\b[^>]*fonts\.googleapis\.com[^>]*>", re.DOTALL)
# An SVG namespace is a name, not a request; HTML5 does not need it on inline SVG.
_SVG_NAMESPACE = re.compile(r'\s+xmlns="http://www\.w3\.org/2000/svg"')
# Any URL the browser could fetch that is not the kiosk server itself.
EXTERNAL_URL = re.compile(r"(?:https?|wss?)://(?!(?:127\.0\.0\.1|localhost|\[::1\])[:/])[^\s\"'<>)]+")
_LOCAL_FONT = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: normal;
      }
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: italic;
      }
    </style>"""
_WEBSOCKET_URL = 'data-session-websocket-url="{{ app_websocket_url }}"'
_PAGE_WEBSOCKET_URL = 'data-session-websocket-url="{{ app_websocket_url }}/{{ font_size }}"'

DEFAULT_FONT_SIZE = 16  # px: textual-serve's default
FONT_SIZES = range(10, 49)  # px: what `--font-size` accepts
# Large text is a quarter larger: measured in headless Chromium (docs/kiosk.md), 20 px is the largest
# size at which a 1280x720 browser window (633 px high inside) still gives the kiosk 80x24 cells.
LARGE_TEXT_SCALE = 1.25


def large_font_size(normal: int) -> int:
    return round(normal * LARGE_TEXT_SCALE)


_PAGE_FONT_SIZES = range(FONT_SIZES.start, large_font_size(FONT_SIZES.stop - 1) + 1)


@dataclass(frozen=True, slots=True)
class PageFont:
    """The font size of the browser page this kiosk process draws in, and the store's normal size."""

    normal: int
    current: int

    @property
    def large(self) -> int:
        return large_font_size(self.normal)

    @property
    def is_large(self) -> bool:
        return self.current >= self.large

    def toggled_url(self) -> str:
        """The same page with the other size (relative: the browser keeps whatever address it used)."""
        return f"?fontsize={self.normal if self.is_large else self.large}"


_page_font: list[PageFont | None] = [None]


def use_page_font(font: PageFont | None) -> None:
    """Set once at start by a kiosk process that textual-serve started (`--page-font-size`)."""
    _page_font[0] = font


def page_font() -> PageFont | None:
    """The page's font, or None when the kiosk does not run in a page served by `--serve`."""
    return _page_font[0]


def page_font_size(asked: str | None, normal: int) -> int:
    """A page's `fontsize` as the server uses it: a number in range, else the store's normal size."""
    try:
        size = int(asked) if asked is not None else normal
    except ValueError:
        return normal
    return min(max(size, _PAGE_FONT_SIZES.start), _PAGE_FONT_SIZES.stop - 1)


def offline_templates(target: Path) -> Path:
    """Copies of textual-serve's templates in `target`, with the web font served locally and the
    page's font size in its WebSocket address."""
    import textual_serve  # noqa: PLC0415 - only the --serve path needs it

    source = Path(textual_serve.__file__).parent / "templates"
    for template in source.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        text = _SVG_NAMESPACE.sub("", _FONT_LINK.sub(lambda _: _LOCAL_FONT, text))
        if _WEBSOCKET_URL not in text:
            raise RuntimeError(f"textual-serve's {template.name} no longer has {_WEBSOCKET_URL}")
        text = text.replace(_WEBSOCKET_URL, _PAGE_WEBSOCKET_URL)
        (target / template.name).write_text(text, encoding="utf-8")
    return target


# The font size of the page whose WebSocket the server is answering (one aiohttp task per socket).
_SOCKET_FONT_SIZE: ContextVar[int | None] = ContextVar("socket_font_size", default=None)


def _kiosk_server(command: str, host: str, port: int, templates: Path, font_size: int) -> Server:
    """textual-serve's server, telling each tab's kiosk process its page's font size."""
    from textual_serve.server import Server  # noqa: PLC0415 - only the --serve path needs it

    class KioskServer(Server):
        @property
        def command(self) -> str:
            """The kiosk's command; for a tab's WebSocket, with the font size of the tab's page."""
            size = _SOCKET_FONT_SIZE.get()
            return self._kiosk_command if size is None else f"{self._kiosk_command} --page-font-size {size}"

        @command.setter
        def command(self, command: str) -> None:
            self._kiosk_command = command

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            asked = request.query.get("fontsize")
            size = page_font_size(asked, font_size)
            if asked != str(size):  # no size (the store's normal one), or one out of range
                request = request.clone(rel_url=request.rel_url.update_query(fontsize=size))
            return await super().handle_index(request)

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.router.add_get(r"/ws/{font_size:\d+}", self._handle_page_websocket)
            return app

        async def _handle_page_websocket(self, request: web.Request) -> web.WebSocketResponse:
            token = _SOCKET_FONT_SIZE.set(page_font_size(request.match_info["font_size"], font_size))
            try:
                return await self.handle_websocket(request)
            finally:
                _SOCKET_FONT_SIZE.reset(token)

    return KioskServer(command, host=host, port=port, title="storeedge kiosk", templates_path=templates)


def serve(command: str, host: str, port: int, font_size: int = DEFAULT_FONT_SIZE) -> None:
    """Serve `command` (one kiosk process per browser tab) until Ctrl+C; pages open at `font_size`."""
    with tempfile.TemporaryDirectory(prefix="storeedge-kiosk-page-") as folder:
        templates = offline_templates(Path(folder))
        _kiosk_server(command, host, port, templates, font_size).serve()
