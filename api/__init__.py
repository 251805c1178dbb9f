"""api role (see the open issue for this package)."""
