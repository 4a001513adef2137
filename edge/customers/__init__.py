"""Customers: pseudonyms and card checks, consent, the access log, feedback and "forget me", offers,
and the shopper-facing routes (kiosk sessions, consent, lists, offers)."""
