"""Ingest: the MQTT and serial loops (transports -> decoder -> the store's writer) and till receipts."""
