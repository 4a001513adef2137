"""The kiosk's screens, one module each (grouped by flow)."""
