"""``minimind push``: a checkpoint (a full model or a PEFT adapter) to a Hub model repository, with its card.

    minimind push out/sft --repo-id USER/minimind-sft [--private] [--base-model USER/minimind-pretrain]
    minimind push out/lora --repo-id USER/minimind-lora --base-model USER/minimind-sft
    minimind push out/dpo --repo-id USER/minimind-dpo --dry-run

What goes up, in one commit: the files that load the model (weights, config, model code, tokenizer,
generation config), its ``stage_complete.json``, ``model_card.json``, loss curve and evaluation reports,
and the model card rendered for the Hub (:func:`minimind_hf.hub.model_card.card_for_push`): the repo's own
name in the loading code, ``base_model`` and ``datasets`` when given. Trainer checkpoints
(``checkpoint-*``), TensorBoard logs (``runs/``) and pickled training arguments stay local.

An adapter records its base model as a local path, which nobody else can load; pushing one needs
``--base-model`` (the base model's Hub name), which replaces that path in the uploaded
``adapter_config.json`` (the local file is not changed).

The rules of :mod:`minimind_hf.hub.auth` hold: everything is checked before the first network call, the token
comes from ``HF_TOKEN`` or the stored login and is never printed, logged or written; ``--dry-run`` needs
neither a token nor a network. The command runs through the push runner it shares with the corpus's
``data_tools.publish`` (:mod:`minimind_hf.hub.runner`).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi

from .auth import HubInputError, check_repo_id
from .model_card import card_for_push, is_hub_id
from .runner import open_repo, repo_url, run_push

logger = logging.getLogger(__name__)

IGNORED = (
    "checkpoint-*",
    "checkpoint-*/*",
    "runs",
    "runs/*",
    "training_args.bin",
    "*.pt",
    "*.pth",
    "optimizer*",
    "scheduler*",
    "rng_state*",
    "README.md",
    ".*",
    "adapter_base.json",
)  # the base's local path and fingerprint: meaningful on this machine only
ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class ModelPushPlan:
    """What :func:`push_model` sends: files (local path -> path in the repo), extra bytes, the card."""

    checkpoint: Path
    repo_id: str
    kind: str
    files: dict[str, Path] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    private: bool = False
    revision: str | None = None

    @property
    def url(self) -> str:
        return repo_url(self.repo_id, "model")

    def describe(self) -> str:
        lines = [f"push {self.checkpoint} ({self.kind}) -> {self.url}" + (" (private)" if self.private else "")]
        for name, path in sorted(self.files.items()):
            lines.append(f"  {name:<40} {path.stat().st_size:>12,} bytes")
        for name, data in sorted(self.contents.items()):
            lines.append(f"  {name:<40} {len(data):>12,} bytes (written for the Hub)")
        return "\n".join(lines)


def _ignored(relative: str) -> bool:
    parts = relative.split("/")
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(parts[0], p) for p in IGNORED)


def plan_model_push(
    checkpoint: str | Path,
    repo_id: str,
    *,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    private: bool = False,
    revision: str | None = None,
) -> ModelPushPlan:
    """Check ``checkpoint`` and build the plan; raises :class:`HubInputError` naming what is wrong."""
    check_repo_id(repo_id)
    directory = Path(checkpoint)
    if not directory.is_dir():
        raise HubInputError(f"{directory}: not a checkpoint directory")
    is_adapter = (directory / ADAPTER_CONFIG).is_file()
    if not is_adapter and not (directory / "config.json").is_file():
        raise HubInputError(f"{directory}: holds neither config.json (a model) nor {ADAPTER_CONFIG} (a PEFT adapter)")
    for name in [base_model, *(datasets or [])]:
        if name is not None:
            check_repo_id(name)
    plan = ModelPushPlan(
        directory, repo_id, "peft-adapter" if is_adapter else "model", private=private, revision=revision
    )
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if not _ignored(relative):
            plan.files[relative] = path
    if not any(n.endswith((".safetensors", ".bin")) for n in plan.files):
        raise HubInputError(f"{directory}: no weights (*.safetensors) to push")
    if is_adapter:
        adapter = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        recorded = adapter.get("base_model_name_or_path")
        if base_model is None and not is_hub_id(recorded):
            raise HubInputError(
                f"{directory / ADAPTER_CONFIG}: the adapter's base model is the local path {recorded!r}; push the base "
                "model first and pass its Hub name with --base-model USER/NAME"
            )
        if base_model is not None:
            adapter["base_model_name_or_path"] = base_model
            plan.files.pop(ADAPTER_CONFIG, None)
            plan.contents[ADAPTER_CONFIG] = (json.dumps(adapter, indent=2, sort_keys=True) + "\n").encode("utf-8")
        base_model = base_model or recorded
    plan.contents["README.md"] = card_for_push(directory, repo_id, base_model=base_model, datasets=datasets).encode(
        "utf-8"
    )
    return plan


def push_model(plan: ModelPushPlan, token: str, api: HfApi | None = None) -> str:
    """Create the repository (if needed) and upload the plan in one commit; returns the model's address."""
    api = open_repo(plan.repo_id, "model", token, api=api, private=plan.private, revision=plan.revision)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in plan.files.items()]
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in plan.contents.items()]
    api.create_commit(
        plan.repo_id,
        operations=operations,
        commit_message=f"Upload {plan.checkpoint.name} ({plan.kind})",
        repo_type="model",
        revision=plan.revision,
        token=token,
    )
    logger.info("uploaded %d files", len(operations))
    return plan.url


def add_push_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", help="checkpoint directory (a full model or a PEFT adapter)")
    parser.add_argument("--repo-id", required=True, help="model repository, USER/NAME or ORG/NAME")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--base-model",
        default=None,
        help="Hub name of the parent model (the card's base_model; required for an adapter)",
    )
    parser.add_argument(
        "--datasets", nargs="*", default=None, help="Hub names of the training data (the card's datasets)"
    )
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing; default: main)")
    parser.add_argument(
        "--dry-run", action="store_true", help="check and print what would be pushed; no network, no token"
    )
    return parser


def run_push_command(args: argparse.Namespace) -> int:
    """``minimind push``; returns the exit status (0 ok, 2 bad input, 1 push failed)."""
    return run_push(
        args.repo_id,
        dry_run=args.dry_run,
        plan=lambda: plan_model_push(
            args.model,
            args.repo_id,
            base_model=args.base_model,
            datasets=args.datasets,
            private=args.private,
            revision=args.revision,
        ),
        send=push_model,
    )
