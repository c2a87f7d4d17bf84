"""A batched numpy driving simulator (see sim.py)."""
