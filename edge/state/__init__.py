"""Store state: from raw shelf weights, temperatures and counts to stock levels and alerts.

`shelf_signal` turns a load cell's readings into settled item counts and pick/put events (pure logic);
`rules` says when a shelf, fridge or zone deserves an alert; `alerts` opens, deduplicates, acks and
resolves them (SQL over a connection); `silence` finds sensors that went quiet; `bus` fans committed
alert changes out to WebSockets and MQTT. `edge.store.apply` persists state and alerts in its batch.
"""
