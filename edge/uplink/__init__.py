"""The daemon's side of sync with central: the changes feed and acks, bundle activation, the live layout."""
