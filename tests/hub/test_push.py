"""``minimind push``, offline.

``HfApi`` is replaced at its boundary by a fake that checks every call against the installed library's real signature
and writes the commit's files into a directory.
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard, constants

from minimind_hf.cli import main as cli
from minimind_hf.hub import runner as hub_runner
from tests.paths import FIXTURES

REPO_ID = "someone/minimind-test"


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root, self.calls, self.tokens, self.fail_on = root, [], [], None

    def __call__(self, token: Any = None, **kwargs: Any) -> FakeHub:  # used as the HfApi class
        self.tokens.append(token)
        return self

    def _record(self, name: str, repo_id: str, kwargs: dict[str, Any]) -> None:
        inspect.signature(getattr(huggingface_hub.HfApi, name)).bind(None, repo_id, **kwargs)
        self.tokens.append(kwargs.get("token"))
        self.calls.append((name, repo_id, {k: v for k, v in kwargs.items() if k != "token"}))
        if self.fail_on == name:
            raise RuntimeError(f"simulated Hub failure in {name}")

    def create_repo(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_repo", repo_id, kwargs)

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_branch", repo_id, kwargs)

    def create_commit(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_commit", repo_id, kwargs)
        for op in kwargs["operations"]:
            target = self.root / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = op.path_or_fileobj
            target.write_bytes(source if isinstance(source, bytes) else Path(source).read_bytes())


@pytest.fixture
def hub(tmp_path, monkeypatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub_repo")
    monkeypatch.setattr(hub_runner, "HfApi", fake)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run with HF_HUB_OFFLINE=1
    return fake


@pytest.fixture
def secret_token(monkeypatch) -> str:
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    return token


@pytest.fixture
def trained(saved_tiny) -> Path:
    """A checkpoint with what a stage leaves next to the model."""
    (saved_tiny / "checkpoint-2").mkdir()
    (saved_tiny / "checkpoint-2" / "optimizer.pt").write_bytes(b"x" * 10)
    (saved_tiny / "runs").mkdir()
    (saved_tiny / "runs" / "events.out").write_bytes(b"y")
    (saved_tiny / "training_args.bin").write_bytes(b"z")
    (saved_tiny / "stage_complete.json").write_text(json.dumps({"stage": "sft", "metrics": {"eval_loss": 2.0}}))
    return saved_tiny


@pytest.fixture
def adapter(trained, tmp_path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(trained), LoraConfig(r=2, target_modules=["q_proj"]))
    model.save_pretrained(tmp_path / "lora")
    return tmp_path / "lora"


def test_push_model_uploads_what_loads_and_the_card(trained, hub, secret_token, tmp_path):
    assert (
        cli(
            [
                "push",
                str(trained),
                "--repo-id",
                REPO_ID,
                "--private",
                "--base-model",
                "someone/minimind-base",
                "--datasets",
                "someone/corpus",
            ]
        )
        == 0
    )
    names = [c[0] for c in hub.calls]
    assert names == ["create_repo", "create_commit"]
    assert hub.calls[0][2]["private"] is True and hub.calls[0][2]["repo_type"] == "model"
    uploaded = {p.relative_to(hub.root).as_posix() for p in hub.root.rglob("*") if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "stage_complete.json"} <= uploaded
    assert not {n for n in uploaded if n.startswith(("checkpoint-", "runs")) or n == "training_args.bin"}
    card = ModelCard.load(hub.root / "README.md")
    assert card.data.base_model == "someone/minimind-base" and card.data.datasets == ["someone/corpus"]
    assert f'from_pretrained("{REPO_ID}")' in card.text
    from transformers import AutoModelForCausalLM

    back = AutoModelForCausalLM.from_pretrained(hub.root)  # what was pushed loads
    original = AutoModelForCausalLM.from_pretrained(trained)
    assert all(
        torch.equal(a, b) for a, b in zip(back.state_dict().values(), original.state_dict().values(), strict=True)
    )


def test_adapter_needs_the_base_models_hub_name(adapter, hub, secret_token, capsys):
    assert cli(["push", str(adapter), "--repo-id", REPO_ID]) == 2
    assert "--base-model" in capsys.readouterr().err and hub.calls == []
    assert cli(["push", str(adapter), "--repo-id", REPO_ID, "--base-model", "someone/minimind-sft"]) == 0
    pushed = json.loads((hub.root / "adapter_config.json").read_text())
    assert pushed["base_model_name_or_path"] == "someone/minimind-sft"
    local = json.loads((adapter / "adapter_config.json").read_text())
    assert local["base_model_name_or_path"] != "someone/minimind-sft"  # the local file is unchanged
    card = ModelCard.load(hub.root / "README.md")
    assert card.data.library_name == "peft" and card.data.base_model == "someone/minimind-sft"


@pytest.mark.parametrize("fail_on", [None, "create_commit"])
def test_token_never_printed_logged_or_written(trained, hub, secret_token, tmp_path, capsys, caplog, fail_on):
    caplog.set_level(logging.DEBUG)
    hub.fail_on = fail_on
    assert cli(["push", str(trained), "--repo-id", REPO_ID]) == (0 if fail_on is None else 1)
    out, err = capsys.readouterr()
    assert secret_token in hub.tokens  # it was used ...
    for where, text in (("stdout", out), ("stderr", err), ("logs", caplog.text)):
        assert secret_token not in text, f"token leaked to {where}"  # ... and never shown
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret_token.encode() not in path.read_bytes(), f"token written to {path}"
    if fail_on:
        assert "simulated Hub failure" in err


def test_missing_token_offline_and_dry_run(trained, hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert cli(["push", str(trained), "--repo-id", REPO_ID]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err
    assert cli(["push", str(trained), "--repo-id", REPO_ID, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "README.md" in out and "dry run" in out
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert cli(["push", str(trained), "--repo-id", REPO_ID]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert cli(["push", str(trained), "--repo-id", "not a repo"]) == 2
    assert hub.calls == []


def test_model_and_corpus_pushes_share_one_runner(trained, hub, secret_token, tmp_path, capsys, monkeypatch):
    """``minimind push`` and ``python -m data_tools.publish push`` share :mod:`minimind_hf.hub.runner`.

    Both get their client, repository and branch from it (the only ``HfApi`` replaced here) and report a failure the
    same way.
    """
    import shutil

    from data_tools import publish

    corpus = shutil.copytree(FIXTURES / "hub", tmp_path / "corpus")
    hub.fail_on = "create_branch"
    assert cli(["push", str(trained), "--repo-id", REPO_ID, "--revision", "v1"]) == 1
    assert publish.main(["push", "--repo-id", "someone/corpus", "--data-dir", str(corpus), "--revision", "v1"]) == 1
    assert [(name, repo, kwargs["repo_type"]) for name, repo, kwargs in hub.calls] == [
        ("create_repo", REPO_ID, "model"),
        ("create_branch", REPO_ID, "model"),
        ("create_repo", "someone/corpus", "dataset"),
        ("create_branch", "someone/corpus", "dataset"),
    ]
    assert capsys.readouterr().err.splitlines() == [
        f"error: push to {repo} failed: RuntimeError: simulated Hub failure in create_branch"
        for repo in (REPO_ID, "someone/corpus")
    ]
