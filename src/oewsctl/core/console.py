"""The one shared Rich console: colors and spinners only on a TTY.

Human-facing progress and messages go to stderr so that stdout stays clean for
``--output json`` and for commands whose output is data (``render``).
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def interactive() -> bool:
    """True when progress bars and spinners make sense (stderr is a terminal)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
