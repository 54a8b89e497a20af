"""Errors that end a command with a one-line message, a hint, and a DESIGN exit code.

Exit codes (DESIGN.md, "The operation model"): 0 ok, 1 operation failed,
2 usage/config error, 3 another oewsctl holds the lock.
"""

from __future__ import annotations


class OewsctlError(Exception):
    """An operation failed; ``hint`` tells the operator what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(OewsctlError):
    """Bad flags, a bad config file or a missing input file (exit 2)."""

    exit_code = 2


class LockHeldError(OewsctlError):
    """Another oewsctl run holds the cluster lock (exit 3)."""

    exit_code = 3
