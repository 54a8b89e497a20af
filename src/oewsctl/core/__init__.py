"""Shared mechanics every runbook uses: plans, the runner, its context, state, lock, audit, errors, console."""
