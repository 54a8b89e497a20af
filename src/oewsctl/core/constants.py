"""Plain constants the CLI needs at import time (option defaults, help text).

Kept here, free of heavy imports, so that ``oewsctl --help`` does not load the
runbook modules (kubernetes, paramiko, pydantic, ...) just to build its options.
"""

from __future__ import annotations

#: Seconds `cluster install` waits for every node to be Ready (re-exported by oewsctl.runbooks.cluster).
READY_TIMEOUT = 300.0

#: How `init --node` is written (re-exported by oewsctl.configuration.init).
NODE_SPEC_HELP = "NAME=USER@HOST/ARCH (USER@ and /ARCH optional), e.g. machine1=203.0.113.10 or raspberrypi=pi@203.0.113.12/arm64"
