"""Typer command groups, one module per runbook group; each exposes ``register(app)``."""
