"""Merge a k3s server's ``k3s.yaml`` into the operator's kubeconfig as context ``cluster.name``.

k3s writes one cluster, user and context all called ``default`` with the server at
``https://127.0.0.1:6443``. We rename all three to the cluster name, point the server at
the server node's address, replace only those entries in the operator's file, keep every
other context, keep a timestamped backup of the old file, and write the result 0600.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from oewsctl.core.errors import OewsctlError
from oewsctl.core.files import replace_with_backup

LOOPBACK = re.compile(r"^(https?://)(127\.0\.0\.1|localhost|\[::1\])(:\d+)?")


def adapt(fetched: dict[str, Any], name: str, server_host: str) -> dict[str, Any]:
    """k3s.yaml with its entries renamed to ``name`` and the server URL on ``server_host``."""
    try:
        cluster = copy.deepcopy(fetched["clusters"][0]["cluster"])
        user = copy.deepcopy(fetched["users"][0]["user"])
    except (KeyError, IndexError, TypeError):
        raise OewsctlError("the server's /etc/rancher/k3s/k3s.yaml has no cluster or user entry", hint="is k3s running on the server node? see `oewsctl cluster status`") from None
    host = f"[{server_host}]" if ":" in server_host else server_host
    cluster["server"] = LOOPBACK.sub(lambda m: f"{m[1]}{host}{m[3] or ''}", str(cluster.get("server", "")))
    return {
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }


def merge(existing: dict[str, Any] | None, entry: dict[str, Any], name: str) -> dict[str, Any]:
    """``existing`` with the ``name`` cluster/user/context replaced by ``entry``'s (others kept)."""
    merged: dict[str, Any] = copy.deepcopy(existing) if existing else {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    for section in ("clusters", "users", "contexts"):
        kept = [item for item in merged.get(section) or [] if item.get("name") != name]
        merged[section] = kept + entry[section]
    if not merged.get("current-context"):
        merged["current-context"] = name
    return merged


def read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError) as exc:
        raise OewsctlError(f"cannot read kubeconfig {path}: {exc}", hint="fix or move that file, then run `oewsctl cluster kubeconfig`") from None
    return data if isinstance(data, dict) else None


def write(path: Path, data: dict[str, Any]) -> Path | None:
    """Write ``data`` 0600 atomically; return the backup of the previous file, if there was one."""
    return replace_with_backup(path, yaml.safe_dump(data, sort_keys=False), 0o600)
