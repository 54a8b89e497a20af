"""Loading the inventory file ``oewsctl.yaml`` and reporting every problem in it.

Path resolution: ``--config PATH``, then ``$OEWSCTL_CONFIG``, then ``./oewsctl.yaml``.
Every problem is reported with its path (``nodes[1].role: must be server or agent``)
and the command exits 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from oewsctl.configuration.schema import Config, cross_field_problems
from oewsctl.core.errors import UsageError

DEFAULT_CONFIG_NAME = "oewsctl.yaml"
CONFIG_ENV = "OEWSCTL_CONFIG"


def resolve_config_path(explicit: Path | None) -> Path:
    """Where the config is read from: flag, then environment, then the working directory."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: ``nodes[1].role: must be server or agent``."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        lines.append(f"{_location(tuple(item['loc']))}: {message}")
    return lines


def parse_config(text: str, source: str = DEFAULT_CONFIG_NAME) -> Config:
    """Parse and validate config text; UsageError with every problem on one line each."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping with cluster, nodes, app, ...", hint="run `oewsctl init` to write a commented example")
    problems = cross_field_problems(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc) + problems
    if problems:
        raise UsageError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))
    return config


def load_config(explicit: Path | None = None) -> Config:
    """Load the inventory from the resolved path (see module docstring)."""
    path = resolve_config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found", hint="run `oewsctl init` to create one, or pass --config PATH") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {exc.start} cannot be decoded)", hint="save it as UTF-8; `oewsctl init` writes a fresh one") from None
    return parse_config(text, source=str(path))
