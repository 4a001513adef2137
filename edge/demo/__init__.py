"""`storeedge demo`: the simulated store, the mosquitto runner (also used by tests and benches), seeding."""
