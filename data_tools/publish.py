"""Publish the MiniMind corpus on the Hugging Face Hub as a dataset repository.

Usage::

    python -m data_tools.publish push --repo-id USER/NAME [--data-dir DIR] [--private | --public]
                                  [--dry-run] [--revision BRANCH] [--license ID] [--no-jsonl]

Every stage becomes one dataset *config* (``pretrain``, ``sft``, ``lora``, ``dpo``) whose splits come
from the files present in the data directory::

    <stage>.jsonl             -> train
    <stage>.validation.jsonl  -> validation
    <stage>.test.jsonl        -> test

A config on the Hub must have the same columns in every split (``datasets`` refuses to push a
``DatasetDict`` whose splits differ, and ``load_dataset`` could not read one back). The held-out test
sets are parallel ``{"en", "zh"}`` records while ``sft.jsonl`` holds conversations, so a split whose
columns differ from the first split of its stage is pushed as a config of its own, named
``<stage>_<split>`` (for example ``sft_test``, split ``test``). The plan printed before the push says so.

The stage ``.jsonl`` files themselves go up too, under ``data/`` (``data/pretrain.jsonl``, ...), next to the
configs -- graders and course scripts download those files directly (``--no-jsonl`` leaves them out).
``--public`` makes the repository public, also one that already exists as private (courses ask for a
public dataset); ``--private`` creates it private.

The data card (``<data-dir>/card.md``, else ``<data-dir>/README.md``) is uploaded as the repository's
``README.md`` with a YAML header the Hub understands: ``configs`` with ``data_files`` for every split,
``license``, ``language`` (``en``, ``zh``), ``task_categories`` (``translation``) and ``size_categories``.
Keys already present in the card's own header are kept (``configs`` is always rewritten from the files).

Everything is read and checked before the first network call: the repo id, the data directory, every
line of every stage file (errors name ``file:line``), the card, and the token. The token comes from
``HF_TOKEN`` or the stored Hugging Face login (``huggingface_hub.get_token()``); it is handed to the Hub
client only and never printed, logged or written. ``--dry-run`` needs neither a token nor a network: it
prints what would be pushed and stops. After a successful push the dataset's address is written to
``<data-dir>/hf_link.txt``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import DatasetCard, HfApi

from minimind_hf.data.checks import BadRecord, check_record
from minimind_hf.data.layout import DATA_CARDS, DATA_STAGES, SPLITS, STAGE_RECORD_KINDS, split_file
from minimind_hf.hub.auth import HubInputError, check_repo_id
from minimind_hf.hub.runner import first_line, open_repo, repo_url, run_push
from minimind_hf.utils.jsonl import read_jsonl

if TYPE_CHECKING:  # datasets is imported lazily: it is slow to import and not needed for --help.
    from datasets import Dataset, DatasetDict

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = DATA_STAGES
"""Stage names, which are also the config names on the Hub."""

CARD_FILES: tuple[str, ...] = DATA_CARDS
"""Data card file names looked up in the data directory, first found wins."""

LINK_FILE = "hf_link.txt"
DEFAULT_LICENSE = "other"
LANGUAGES: tuple[str, ...] = ("en", "zh")
TASK_CATEGORIES: tuple[str, ...] = ("translation",)

_SIZE_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


@dataclass
class SplitData:
    """One stage file loaded as a split: where it came from and what it holds."""

    stage: str
    split: str
    path: Path
    dataset: Dataset
    nbytes: int
    blank_lines: int = 0

    @property
    def rows(self) -> int:
        """Number of records (non-blank lines) in the file."""
        return self.dataset.num_rows


@dataclass
class PushPlan:
    """Everything that a push sends, checked and loaded, with no network touched yet."""

    repo_id: str
    data_dir: Path
    configs: dict[str, list[SplitData]]
    readme: str
    card_source: Path | None
    private: bool = False
    public: bool = False
    upload_jsonl: bool = True
    revision: str | None = None
    ignored_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Web address of the dataset repository."""
        return repo_url(self.repo_id, "dataset")

    def dataset_dict(self, config: str) -> DatasetDict:
        """The :class:`datasets.DatasetDict` pushed as ``config``."""
        from datasets import DatasetDict

        return DatasetDict({part.split: part.dataset for part in self.configs[config]})

    @property
    def jsonl_files(self) -> list[str]:
        """Names of the stage files uploaded as they are, under ``data/``."""
        return [part.path.name for parts in self.configs.values() for part in parts]

    @property
    def total_rows(self) -> int:
        """Records over all configs and splits."""
        return sum(part.rows for parts in self.configs.values() for part in parts)

    def describe(self) -> str:
        """A human-readable table of what would be pushed."""
        visibility = "private" if self.private else "made public" if self.public else "public when created"
        lines = [
            f"repo: {self.url} (dataset, {visibility}, revision {self.revision or 'main'})",
            f"{'config':<16} {'split':<11} {'rows':>10} {'jsonl bytes':>14}  file",
        ]
        for config, parts in self.configs.items():
            for part in parts:
                lines.append(f"{config:<16} {part.split:<11} {part.rows:>10,} {part.nbytes:>14,}  {part.path.name}")
        total_bytes = sum(part.nbytes for parts in self.configs.values() for part in parts)
        lines.append(f"{'total':<28} {self.total_rows:>10,} {total_bytes:>14,}")
        source = self.card_source.name if self.card_source else "generated (no card.md or README.md found)"
        lines.append(
            f"card: {source} -> README.md, {len(self.readme.encode('utf-8')):,} bytes, "
            f"{len(self.configs)} configs in its YAML header"
        )
        if self.upload_jsonl:
            lines.append(f"jsonl: {', '.join(self.jsonl_files)} -> data/")
        lines.extend(f"note: {note}" for note in self.notes)
        if self.ignored_files:
            names = ", ".join(path.name for path in self.ignored_files)
            lines.append(
                f"not pushed ({len(self.ignored_files)} files, not named <stage>[.validation|.test].jsonl): {names}"
            )
        return "\n".join(lines)


def read_stage_file(path: Path, stage: str, split: str) -> SplitData:
    """Read one jsonl stage file into a :class:`datasets.Dataset`, checking every line.

    Raises :class:`HubInputError` naming ``file:line`` for a line that is not UTF-8, not JSON, not a
    JSON object or not a record of the stage; for a file with no records; or for a column whose values
    mix types. Blank lines are skipped and counted.
    """
    from datasets import Dataset

    columns: dict[str, list[Any]] = {}
    rows = blank = 0
    for lineno, record in read_jsonl(path, error=HubInputError, with_blank_lines=True, progress=f"read {path.name}"):
        if record is None:
            blank += 1
            continue
        try:
            check_record(record, STAGE_RECORD_KINDS[stage])  # the checks the training loaders apply
        except BadRecord as bad:
            raise HubInputError(f"{path}:{lineno}: not a {stage} record: {bad.message}") from None
        for key in record:
            if key not in columns:  # a key first seen here: earlier records lack it
                columns[key] = [None] * rows
        for key, values in columns.items():
            values.append(record.get(key))
        rows += 1
    if rows == 0:
        raise HubInputError(f"{path}: no records (an empty split cannot be pushed; remove the file)")
    try:
        dataset = Dataset.from_dict(columns, split=split)
    except (ValueError, TypeError) as err:  # pyarrow's ArrowInvalid / ArrowTypeError derive from these
        raise HubInputError(
            f"{path}: cannot build a table, a column mixes value types ({first_line(err)}); columns: {sorted(columns)}"
        ) from None
    return SplitData(
        stage=stage, split=split, path=path, dataset=dataset, nbytes=path.stat().st_size, blank_lines=blank
    )


def default_data_dir() -> Path:
    """``data`` when it holds stage files (``make data`` built the corpus), else the committed sample."""
    full = Path("data")
    return full if full.is_dir() and stage_files(full)[0] else Path("data/sample")


def stage_files(data_dir: Path) -> tuple[list[tuple[str, str, Path]], list[Path]]:
    """The stage files present in ``data_dir`` as ``(stage, split, path)``, and the other jsonl files."""
    found: list[tuple[str, str, Path]] = []
    for stage in STAGES:
        for split in SPLITS:
            path = data_dir / split_file(stage, split)
            if path.is_file():
                found.append((stage, split, path))
    used = {path.name for _, _, path in found}
    ignored = sorted(path for path in data_dir.glob("*.jsonl*") if path.name not in used)
    return found, ignored


def group_configs(parts: Sequence[SplitData]) -> tuple[dict[str, list[SplitData]], list[str]]:
    """Group loaded splits into Hub configs, one per stage, splitting off splits with other columns.

    Splits of one stage with the same column set share the stage's config (columns are put in the
    same order and, where only the types differ, cast to the first split's features). A split with
    other columns becomes config ``<stage>_<split>``. Returns the configs and notes on what was split off.
    """
    configs: dict[str, list[SplitData]] = {}
    notes: list[str] = []
    for part in parts:
        base = configs.get(part.stage, [None])[0]
        if base is None:
            configs[part.stage] = [part]
            continue
        if set(part.dataset.column_names) != set(base.dataset.column_names):
            name = f"{part.stage}_{part.split}"
            configs[name] = [part]
            notes.append(
                f"{part.path.name} has columns {sorted(part.dataset.column_names)}, {base.path.name} has "
                f"{sorted(base.dataset.column_names)}: pushed as config {name!r} (split {part.split!r})"
            )
            continue
        dataset = part.dataset.select_columns(base.dataset.column_names)
        if dataset.features != base.dataset.features:
            try:
                dataset = dataset.cast(base.dataset.features)
            except (ValueError, TypeError) as err:
                raise HubInputError(
                    f"{part.path}: column types differ from {base.path} and cannot be cast ({first_line(err)})"
                ) from None
        part.dataset = dataset
        configs[part.stage].append(part)
    return configs, notes


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` label for a dataset of ``rows`` records."""
    for bound, label in _SIZE_CATEGORIES:
        if rows < bound:
            return label
    return "n>1B"


def _generated_card_body(repo_id: str, configs: dict[str, list[SplitData]]) -> str:
    lines = [
        f"# {repo_id.split('/', 1)[1]}",
        "",
        "English to Traditional Chinese (zh-TW) corpus for the MiniMind model, one config per training stage.",
        "",
        "| config | split | rows |",
        "|---|---|---:|",
    ]
    lines += [f"| {config} | {part.split} | {part.rows} |" for config, parts in configs.items() for part in parts]
    return "\n".join(lines) + "\n"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def build_readme(
    card_text: str, configs: dict[str, list[SplitData]], license: str | None = None, source: str = "card"
) -> str:
    """The repository ``README.md``: ``card_text`` with its YAML header completed for the Hub.

    ``configs`` is rewritten to match the pushed files (``<config>/<split>-*``, the layout that
    ``push_to_hub(config_name=...)`` writes); ``language`` and ``task_categories`` gain ``en``/``zh``
    and ``translation``; ``license`` is ``license`` if given, else the card's, else ``other``;
    ``size_categories`` is filled in when missing. Other header keys are kept as they are.
    """
    if not card_text.startswith("---"):
        card_text = "---\n{}\n---\n" + card_text  # an empty header, so the card parses without a warning
    try:
        card = DatasetCard(card_text)
    except Exception as err:  # yaml errors and the Hub's own metadata checks
        raise HubInputError(f"{source}: the YAML header cannot be read ({first_line(err)})") from None
    data = card.data
    if license:
        data.license = license
    elif not getattr(data, "license", None):
        data.license = DEFAULT_LICENSE
    data.language = list(dict.fromkeys(_as_list(getattr(data, "language", None)) + list(LANGUAGES)))
    data.task_categories = list(dict.fromkeys(_as_list(getattr(data, "task_categories", None)) + list(TASK_CATEGORIES)))
    if not getattr(data, "size_categories", None):
        total = sum(part.rows for parts in configs.values() for part in parts)
        data.size_categories = [size_category(total)]
    data.configs = [
        {
            "config_name": config,
            "data_files": [{"split": part.split, "path": f"{config}/{part.split}-*"} for part in parts],
        }
        for config, parts in configs.items()
    ]
    return str(card)


def plan_push(
    data_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    public: bool = False,
    upload_jsonl: bool = True,
    revision: str | None = None,
    license: str | None = None,
) -> PushPlan:
    """Check and load everything a push would send, without touching the network.

    Raises :class:`HubInputError` for a bad repo id or revision, a missing data directory, a directory
    without stage files, a bad line in a stage file (naming ``file:line``) or an unreadable card.
    """
    check_repo_id(repo_id)
    if private and public:
        raise HubInputError("--private and --public contradict each other; give one")
    if revision is not None and not revision.strip():
        raise HubInputError("--revision must name a branch, got an empty string")
    root = Path(data_dir)
    if not root.is_dir():
        raise HubInputError(f"data directory {str(root)!r} does not exist (build it first, or pass --data-dir)")
    found, ignored = stage_files(root)
    if not found:
        expected = ", ".join(f"{stage}.jsonl" for stage in STAGES)
        raise HubInputError(
            f"{root}: no stage files found (expected some of {expected}, with optional .validation/.test); "
            "name the folder that has them with --data-dir (the committed sample: --data-dir data/sample)"
        )
    parts = [read_stage_file(path, stage, split) for stage, split, path in found]
    configs, notes = group_configs(parts)
    for part in parts:
        if part.blank_lines:
            notes.append(f"{part.path.name}: skipped {part.blank_lines} blank line(s)")
    card_path = next((root / name for name in CARD_FILES if (root / name).is_file()), None)
    if card_path is None:
        notes.append("no card.md or README.md in the data directory: a minimal card is generated")
        card_text = _generated_card_body(repo_id, configs)
    else:
        try:
            card_text = card_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise HubInputError(f"{card_path}: not UTF-8 text ({err.reason})") from None
    readme = build_readme(card_text, configs, license=license, source=str(card_path or "generated card"))
    return PushPlan(
        repo_id=repo_id,
        data_dir=root,
        configs=configs,
        readme=readme,
        card_source=card_path,
        private=private,
        public=public,
        upload_jsonl=upload_jsonl,
        revision=revision,
        ignored_files=ignored,
        notes=notes,
    )


def push(plan: PushPlan, token: str, api: HfApi | None = None) -> str:
    """Send ``plan`` to the Hub and write ``<data-dir>/hf_link.txt``; returns the dataset's address.

    ``api`` is the :class:`huggingface_hub.HfApi` to use (one is made with ``token`` if omitted). The
    card goes up first so that each ``DatasetDict.push_to_hub`` merges its ``dataset_info`` into it
    instead of replacing it.
    """
    repo_id = plan.repo_id
    api = open_repo(
        repo_id, "dataset", token, api=api, private=plan.private, public=plan.public, revision=plan.revision
    )
    api.upload_file(
        path_or_fileobj=plan.readme.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        revision=plan.revision,
        commit_message="Upload data card",
        token=token,
    )
    logger.info("uploaded README.md (%d bytes)", len(plan.readme.encode("utf-8")))
    for config, parts in plan.configs.items():
        plan.dataset_dict(config).push_to_hub(
            repo_id,
            config_name=config,
            private=plan.private or None,
            token=token,
            revision=plan.revision,
            commit_message=f"Upload {config} config",
        )
        logger.info("pushed config %s: %s", config, ", ".join(f"{p.split} {p.rows:,} rows" for p in parts))
    if plan.upload_jsonl:
        api.upload_folder(
            folder_path=str(plan.data_dir),
            path_in_repo="data",
            allow_patterns=plan.jsonl_files,
            repo_id=repo_id,
            repo_type="dataset",
            revision=plan.revision,
            commit_message="Upload the stage jsonl files",
            token=token,
        )
        logger.info("uploaded %s under data/", ", ".join(plan.jsonl_files))
    link_path = plan.data_dir / LINK_FILE
    link_path.write_text(plan.url + "\n", encoding="utf-8")
    logger.info("wrote %s", link_path)
    return plan.url


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m data_tools.publish`` command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.publish", description="Publish the MiniMind corpus on the Hugging Face Hub."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser(
        "push",
        help="push the stage files as dataset configs, with the data card as README.md",
        description="Push <data-dir>/<stage>[.validation|.test].jsonl as configs pretrain/sft/lora/dpo.",
    )
    sub.add_argument("--repo-id", required=True, help="dataset repository, USER/NAME or ORG/NAME")
    sub.add_argument(
        "--data-dir",
        default=None,
        help="directory with the stage files and card (default: data when `make data` has built it, "
        "else the committed sample, data/sample)",
    )
    sub.add_argument("--private", action="store_true", help="create the repository as private")
    sub.add_argument(
        "--public",
        action="store_true",
        help="make the repository public, also an existing private one (courses grade a public repo)",
    )
    sub.add_argument(
        "--no-jsonl",
        action="store_true",
        help="do not upload the stage .jsonl files under data/ (the configs are pushed either way)",
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="check and print what would be pushed; no network, no token"
    )
    sub.add_argument("--revision", default=None, help="branch to push to (created if missing; default: main)")
    sub.add_argument(
        "--license",
        default=None,
        help=f"licence id for the card header (default: the card's own, else {DEFAULT_LICENSE!r})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status (0 ok, 2 bad input, 1 push failed)."""
    args = build_parser().parse_args(argv)
    if args.data_dir is None:
        args.data_dir = default_data_dir()
        print(
            f"data: {args.data_dir}"
            + (
                " (the committed sample; `make data` builds the full corpus in data/)"
                if args.data_dir == Path("data/sample")
                else ""
            )
        )
    return run_push(
        args.repo_id,
        dry_run=args.dry_run,
        plan=lambda: plan_push(
            args.data_dir,
            args.repo_id,
            private=args.private,
            public=args.public,
            upload_jsonl=not args.no_jsonl,
            revision=args.revision,
            license=args.license,
        ),
        send=push,
        done=lambda plan, url: f"pushed: {url} (address written to {plan.data_dir / LINK_FILE})",
    )


if __name__ == "__main__":
    sys.exit(main())
