"""Secrets plans as data: stages in order, the value in no description, detail or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oewsctl.configuration.loading import load_config
from oewsctl.core.plan import Step
from oewsctl.runbooks.secrets import SecretsEnv, rotate_plan, secret_data_hash, set_plan
from tests.fixtures.keyvault import write_config

SECRET = "sk-test-DO-NOT-LEAK-plan-51"
VALUES = {"OPENAI_API_KEY": ("OPENAI-API-KEY", SECRET)}


def _env(tmp_path: Path, **secrets: str) -> SecretsEnv:
    config = load_config(write_config(tmp_path / "oewsctl.yaml", **secrets))

    def no_vault() -> None:
        raise AssertionError("building a plan must not open the vault")

    return SecretsEnv(config, vault_factory=no_vault)  # type: ignore[arg-type]


def _descriptions(plan_steps: list[Step]) -> list[str]:
    return [step.description for step in plan_steps]


def test_azure_rotate_stages_in_order(tmp_path: Path) -> None:
    plan = rotate_plan(_env(tmp_path), VALUES)
    steps = _descriptions(plan.steps)
    order = ["check ExternalSecret", "check Deployment", "set OPENAI-API-KEY", "force-sync", "wait for ESO", "roll Deployment", "wait for the rollout"]
    assert [next(i for i, s in enumerate(steps) if key in s) for key in order] == list(range(len(order)))
    assert plan.mutating


@pytest.mark.parametrize("provider", ["azure-keyvault", "kubernetes"])
def test_no_value_in_any_shown_part_of_a_plan(tmp_path: Path, provider: str) -> None:
    env = _env(tmp_path, provider=provider)
    for plan in (set_plan(env, VALUES), rotate_plan(env, VALUES)):
        shown = json.dumps([step.as_dict() for step in plan.steps]) + repr(plan)
        assert SECRET not in shown


def test_kubernetes_set_is_one_write_and_rotate_adds_the_roll(tmp_path: Path) -> None:
    env = _env(tmp_path, provider="kubernetes")
    assert _descriptions(set_plan(env, VALUES).steps) == ["Secret oews/oews-api-secrets: write OPENAI_API_KEY"]
    steps = _descriptions(rotate_plan(env, VALUES).steps)
    assert steps[0].startswith("check Deployment") and "roll Deployment" in steps[-2] and "wait for the rollout" in steps[-1]
    assert not any("ESO" in s or "Key Vault" in s for s in steps)


def test_data_hash_ignores_key_order_and_sees_every_change() -> None:
    a = secret_data_hash({"A": "eA==", "B": "eQ=="})
    assert a == secret_data_hash({"B": "eQ==", "A": "eA=="})
    assert a != secret_data_hash({"A": "eA==", "B": "eg=="})
    assert a != secret_data_hash({"A": "eA=="})
