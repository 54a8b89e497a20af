"""oewsctl: the k3s home-cluster runbook for oews-api as safe, repeatable commands."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oews")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
