"""Reading secret values: stdin or a file, one value or NAME=value lines; errors never echo input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from oewsctl.configuration.schema import SecretsConfig
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.secret_input import app_secret_names, read_values

SECRET = "sk-test-DO-NOT-LEAK-9f3a"
KEYS = SecretsConfig(provider="kubernetes", keys={"OPENAI_API_KEY": "OPENAI-API-KEY", "AZURE_AI_API_KEY": "AZURE-AI-API-KEY"})


def test_single_value_from_stdin_drops_one_trailing_newline() -> None:
    assert read_values(["OPENAI_API_KEY"], from_stdin=True, from_file=None, stdin=io.StringIO(SECRET + "\n")) == {"OPENAI_API_KEY": SECRET}


def test_several_values_from_a_file_as_name_value_lines(tmp_path: Path) -> None:
    env = tmp_path / "new.env"
    env.write_text(f"# rotated 2am\nOPENAI_API_KEY={SECRET}\n\nAZURE_AI_API_KEY=abc=def\n")
    values = read_values(["OPENAI_API_KEY", "AZURE_AI_API_KEY"], from_stdin=False, from_file=env)
    assert values == {"OPENAI_API_KEY": SECRET, "AZURE_AI_API_KEY": "abc=def"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"OPENAI_API_KEY={SECRET}\n", "no NAME=value line for AZURE_AI_API_KEY"),
        (f"{SECRET}\n", "line 1 is not NAME=value"),
        (f"OPENAI_API_KEY={SECRET}\nAZURE_AI_API_KEY=x\nOTHER=y\n", "line 3 sets OTHER"),
        (f"OPENAI_API_KEY={SECRET}\nOPENAI_API_KEY=x\nAZURE_AI_API_KEY=y\n", "sets OPENAI_API_KEY twice"),
        ("OPENAI_API_KEY=\nAZURE_AI_API_KEY=y\n", "value for OPENAI_API_KEY is empty"),
    ],
)
def test_bad_multi_input_names_the_line_never_the_value(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        read_values(["OPENAI_API_KEY", "AZURE_AI_API_KEY"], from_stdin=True, from_file=None, stdin=io.StringIO(text))
    assert expected in info.value.message
    assert SECRET not in info.value.message + (info.value.hint or "")


def test_exactly_one_input_source(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="exactly one of --from-stdin or --from-file"):
        read_values(["X"], from_stdin=False, from_file=None, stdin=io.StringIO(""))
    with pytest.raises(UsageError, match="no such file"):
        read_values(["X"], from_stdin=False, from_file=tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="value for X is empty"):
        read_values(["X"], from_stdin=True, from_file=None, stdin=io.StringIO("\n"))


def test_names_resolve_app_variable_or_vault_name() -> None:
    assert app_secret_names(KEYS, ["OPENAI_API_KEY"]) == {"OPENAI_API_KEY": "OPENAI-API-KEY"}
    assert app_secret_names(KEYS, ["AZURE-AI-API-KEY"]) == {"AZURE_AI_API_KEY": "AZURE-AI-API-KEY"}
    with pytest.raises(UsageError) as info:
        app_secret_names(KEYS, ["OPENAI_API_KY"])
    assert "AZURE_AI_API_KEY, OPENAI_API_KEY" in info.value.message
    with pytest.raises(UsageError, match="named twice"):
        app_secret_names(KEYS, ["OPENAI_API_KEY", "OPENAI-API-KEY"])


def test_without_keys_any_env_name_is_its_own_key() -> None:
    plain = SecretsConfig(provider="kubernetes")
    assert app_secret_names(plain, ["MY_TOKEN"]) == {"MY_TOKEN": "MY_TOKEN"}
    with pytest.raises(UsageError):
        app_secret_names(plain, ["not a name"])
