"""Store state: from raw shelf weights, temperatures and counts to stock levels and alerts.

Pure logic (no I/O): `shelf_signal` turns a load cell's readings into settled item counts and
pick/put events; `alerts` decides which alerts open and close. `edge.apply` persists both.
"""
