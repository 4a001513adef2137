"""`storeedge kiosk --serve`: textual-serve, with a page that asks nothing of the internet.

textual-serve's page template links a Google web font. A store's network is often offline; the
browser then waits for the font, falls back to its own monospace font, and the map's box-drawing
lines come out dashed. textual-serve ships the same font (Roboto Mono) in its static files, so the
kiosk serves a copy of the template that loads it from the kiosk's own server instead.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

__all__ = ["EXTERNAL_URL", "offline_templates", "serve"]

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


def offline_templates(target: Path) -> Path:
    """Copies of textual-serve's templates in `target`, with the web font served locally."""
    import textual_serve  # noqa: PLC0415 - only the --serve path needs it

    source = Path(textual_serve.__file__).parent / "templates"
    for template in source.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        text = _SVG_NAMESPACE.sub("", _FONT_LINK.sub(lambda _: _LOCAL_FONT, text))
        (target / template.name).write_text(text, encoding="utf-8")
    return target


def serve(command: str, host: str, port: int) -> None:
    """Serve `command` (one kiosk process per browser tab) until Ctrl+C."""
    from textual_serve.server import Server  # noqa: PLC0415 - only the --serve path needs it

    with tempfile.TemporaryDirectory(prefix="storeedge-kiosk-page-") as folder:
        templates = offline_templates(Path(folder))
        Server(command, host=host, port=port, title="storeedge kiosk", templates_path=templates).serve()
