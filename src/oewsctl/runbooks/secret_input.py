"""Reading secret values from stdin or a file, and naming them, without ever echoing one.

One NAME: the whole input is the value (one trailing newline dropped, so
``printf 'v\\n' | oewsctl secrets set X --from-stdin`` stores ``v``). Several NAMEs:
one ``NAME=value`` line per name. On a terminal, stdin is read with a hidden prompt.
Error messages name the variable or the line number, never the text of the input.
"""

from __future__ import annotations

import getpass
import re
import sys
from pathlib import Path
from typing import TextIO

from oewsctl.configuration.schema import Config, SecretsConfig
from oewsctl.core.errors import UsageError

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NO_ARGV_HINT = "values are read from --from-stdin or --from-file FILE, never from the command line"


def app_secret_names(secrets: SecretsConfig, names: list[str]) -> dict[str, str]:
    """Map each NAME (app variable or vault secret name) to ``{app variable: vault name}``.

    With ``secrets.keys`` empty (plain ``provider: kubernetes`` setups), any valid
    environment variable name is its own key.
    """
    keys = secrets.keys
    by_vault = {vault: app for app, vault in keys.items()}
    out: dict[str, str] = {}
    for name in names:
        if name in keys:
            out[name] = keys[name]
        elif name in by_vault:
            out[by_vault[name]] = name
        elif not keys and ENV_NAME_RE.match(name):
            out[name] = name
        else:
            known = ", ".join(sorted(keys)) or "(none)"
            raise UsageError(
                f"{name!r} is not one of the app's secrets (secrets.keys in the config has: {known})",
                hint="fix the spelling, or add `NAME: VAULT-NAME` under secrets.keys in oewsctl.yaml",
            )
    if len(out) != len(names):
        raise UsageError("the same secret is named twice", hint="give each NAME once")
    return out


def _read_input(from_stdin: bool, from_file: Path | None, stdin: TextIO) -> str:
    if from_stdin == (from_file is not None):
        raise UsageError("give exactly one of --from-stdin or --from-file FILE", hint=NO_ARGV_HINT)
    if from_file is not None:
        try:
            return from_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--from-file {from_file}: no such file", hint="check the path (relative paths start in the current directory)") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UsageError(f"--from-file {from_file}: cannot read it ({reason})") from None
    return stdin.read()


def _prompt(names: list[str]) -> dict[str, str]:
    """Hidden prompts on a terminal, one per name."""
    return {name: getpass.getpass(f"value for {name} (hidden): ") for name in names}


def read_values(names: list[str], *, from_stdin: bool, from_file: Path | None, stdin: TextIO | None = None) -> dict[str, str]:
    """``{NAME: value}`` for exactly the names given, from the chosen input."""
    stream = stdin if stdin is not None else sys.stdin
    if from_stdin and from_file is None and stream.isatty():
        values = _prompt(names)
    else:
        text = _read_input(from_stdin, from_file, stream)
        values = {names[0]: _strip_newline(text)} if len(names) == 1 else _parse_lines(text, names)
    for name, value in values.items():
        if not value:
            raise UsageError(f"the value for {name} is empty", hint="check the input you piped or the file you named")
    return values


def values_for(config: Config, names: list[str], from_stdin: bool, from_file: Path | None) -> dict[str, tuple[str, str]]:
    """``{app variable: (vault name, value)}``: names checked before any value is read."""
    mapping = app_secret_names(config.secrets, names)
    given = read_values(names, from_stdin=from_stdin, from_file=from_file)
    by_given = dict(zip(names, mapping.items(), strict=True))
    return {app: (vault, given[name]) for name, (app, vault) in by_given.items()}


def _strip_newline(text: str) -> str:
    return text.removesuffix("\n").removesuffix("\r")


def _parse_lines(text: str, names: list[str]) -> dict[str, str]:
    """``NAME=value`` lines (blank lines and ``#`` comments allowed) for several names."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not ENV_NAME_RE.match(key):
            raise UsageError(f"input line {number} is not NAME=value", hint=f"with several names give one NAME=value line each for: {', '.join(names)}")
        if key not in names:
            raise UsageError(f"input line {number} sets {key}, which is not among the names given ({', '.join(names)})")
        if key in values:
            raise UsageError(f"input sets {key} twice (line {number})")
        values[key] = value
    missing = [n for n in names if n not in values]
    if missing:
        raise UsageError(f"input has no NAME=value line for {', '.join(missing)}", hint=f"give one line each for: {', '.join(names)}")
    return values
