"""The HTTP layer: the app factory, authorization (roles, session tokens, the guessing throttle), shared
response helpers and the staff routes over the store's state. Capabilities register their own routes."""
