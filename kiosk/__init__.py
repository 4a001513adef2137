"""The in-store kiosk: a Textual app for shoppers and staff that talks to the daemon over HTTP only.

    from kiosk.app import build_app
    from kiosk.settings import KioskSettings

    build_app(KioskSettings(api="http://127.0.0.1:8080", token="...")).run()

This package file stays empty on purpose: `storeedge` imports `kiosk.cli` to build its parser, and
Textual should load only when a kiosk actually runs. See docs/kiosk.md.
"""
