"""The kiosk's shopper texts, one TOML catalogue per language (read by `kiosk.strings`)."""
