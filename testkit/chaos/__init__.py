"""Chaos drivers: whole stacks of real processes killed and restarted on purpose, shared by
the chaos tests and ``bench/chaos.py``."""
