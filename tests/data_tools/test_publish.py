"""Tests for ``data_tools.publish``: pushing the corpus to the Hub, offline.

``HfApi`` is replaced by :class:`FakeHub` and ``DatasetDict.push_to_hub`` by its recorder; the fake keeps
what would have been uploaded in a local folder laid out like the Hub repository, so the pushed configs
can be read back with ``datasets.load_dataset``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import pytest
import yaml
from huggingface_hub import constants

from data_tools import publish
from minimind_hf.hub import runner as hub_runner
from tests.paths import FIXTURES, ROOT

FIXTURE = FIXTURES / "hub"
REPO_ID = "someone/minimind-corpus"
REAL_PUSH_TO_HUB = datasets.DatasetDict.push_to_hub  # kept before the tests replace it

# Where each fixture file is expected to go. sft.test.jsonl holds {"en","zh"} records while sft.jsonl
# holds conversations, so it gets a config of its own; lora's three files share their columns.
EXPECTED_LAYOUT = {
    "pretrain.jsonl": ("pretrain", "train"),
    "pretrain.validation.jsonl": ("pretrain", "validation"),
    "sft.jsonl": ("sft", "train"),
    "sft.validation.jsonl": ("sft", "validation"),
    "sft.test.jsonl": ("sft_test", "test"),
    "lora.jsonl": ("lora", "train"),
    "lora.validation.jsonl": ("lora", "validation"),
    "lora.test.jsonl": ("lora", "test"),
    "dpo.jsonl": ("dpo", "train"),
}


def count_records(path: Path) -> int:
    """Non-blank lines of a jsonl file, counted independently of the code under test."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def expected_rows(data_dir: Path) -> dict[tuple[str, str], int]:
    return {layout: count_records(data_dir / name) for name, layout in EXPECTED_LAYOUT.items()}


def front_matter(readme: str) -> tuple[dict[str, Any], str]:
    """Split a README into its YAML header (parsed) and body."""
    assert readme.startswith("---\n"), readme[:80]
    header, body = readme[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


class FakeHub:
    """Stands in for ``HfApi`` and ``DatasetDict.push_to_hub``; writes uploads under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.tokens: list[Any] = []
        self.fail_on: str | None = None

    def _record(self, name: str, repo_id: str, kwargs: dict[str, Any]) -> None:
        if name not in ("upload_file", "upload_folder"):  # the call must fit the installed library's real signature
            real = REAL_PUSH_TO_HUB if name == "push_to_hub" else getattr(huggingface_hub.HfApi, name)
            inspect.signature(real).bind(None, repo_id, **kwargs)
        self.tokens.append(kwargs.pop("token", None))
        self.calls.append((name, repo_id, kwargs))
        if self.fail_on == name:
            raise RuntimeError(f"simulated Hub failure in {name}")

    def __call__(self, token: Any = None, **kwargs: Any) -> FakeHub:  # used as the HfApi class
        self.tokens.append(token)
        return self

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self._record("create_repo", repo_id, kwargs)
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_branch", repo_id, kwargs)

    def upload_file(self, *, path_or_fileobj: bytes, path_in_repo: str, repo_id: str, **kwargs: Any) -> None:
        inspect.signature(huggingface_hub.HfApi.upload_file).bind(
            None, path_or_fileobj=path_or_fileobj, path_in_repo=path_in_repo, repo_id=repo_id, **kwargs
        )
        self._record("upload_file", repo_id, dict(kwargs, path_in_repo=path_in_repo))
        target = self.root / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path_or_fileobj)

    def push_to_hub(self, dataset_dict: datasets.DatasetDict, repo_id: str, **kwargs: Any) -> None:
        config = kwargs["config_name"]
        self._record("push_to_hub", repo_id, kwargs)
        kwargs["rows"] = {split: ds.num_rows for split, ds in dataset_dict.items()}
        kwargs["features"] = {split: ds.features for split, ds in dataset_dict.items()}
        for split, ds in dataset_dict.items():  # the layout push_to_hub(config_name=...) writes
            ds.to_parquet(str(self.root / config / f"{split}-00000-of-00001.parquet"))

    def update_repo_settings(self, repo_id: str, **kwargs: Any) -> None:
        self._record("update_repo_settings", repo_id, kwargs)

    def upload_folder(self, *, folder_path: str, path_in_repo: str, repo_id: str, **kwargs: Any) -> None:
        inspect.signature(huggingface_hub.HfApi.upload_folder).bind(
            None, folder_path=folder_path, path_in_repo=path_in_repo, repo_id=repo_id, **kwargs
        )
        self._record("upload_folder", repo_id, dict(kwargs, folder_path=folder_path, path_in_repo=path_in_repo))
        for name in kwargs["allow_patterns"]:
            target = self.root / path_in_repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((Path(folder_path) / name).read_bytes())

    def named(self, name: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] == name]


def patch_push_to_hub(monkeypatch: pytest.MonkeyPatch, fake: FakeHub) -> None:
    """Route ``DatasetDict.push_to_hub`` to ``fake``."""
    monkeypatch.setattr(
        datasets.DatasetDict, "push_to_hub", lambda self, repo_id, **kw: fake.push_to_hub(self, repo_id, **kw)
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub_repo")
    monkeypatch.setattr(hub_runner, "HfApi", fake)
    patch_push_to_hub(monkeypatch, fake)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run with HF_HUB_OFFLINE=1
    monkeypatch.setattr(constants, "ENDPOINT", "https://huggingface.co")
    return fake


@pytest.fixture
def no_stored_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


@pytest.fixture
def secret_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    return token


def _explode(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("this path must not touch the Hub")


def run_cli(*args: str | Path) -> int:
    return publish.main([str(arg) for arg in args])


# --- the push itself ------------------------------------------------------------------------------


def test_push_sends_configs_card_and_writes_link(data_dir: Path, fake_hub: FakeHub, secret_token: str) -> None:
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 0

    names = [call[0] for call in fake_hub.calls]
    assert names[0] == "create_repo"
    assert names.index("upload_file") < names.index("push_to_hub"), "card must go up before the data"
    (create,) = fake_hub.named("create_repo")
    assert create[1] == REPO_ID
    assert create[2]["repo_type"] == "dataset" and create[2]["exist_ok"] is True
    assert not fake_hub.named("create_branch")

    (upload,) = fake_hub.named("upload_file")
    assert upload[1] == REPO_ID
    assert upload[2]["path_in_repo"] == "README.md" and upload[2]["repo_type"] == "dataset"

    pushed = {call[2]["config_name"]: call for call in fake_hub.named("push_to_hub")}
    assert set(pushed) == {"pretrain", "sft", "sft_test", "lora", "dpo"}
    got_rows = {(config, split): n for config, call in pushed.items() for split, n in call[2]["rows"].items()}
    assert got_rows == expected_rows(FIXTURE)
    for config, call in pushed.items():
        assert call[1] == REPO_ID
        features = list(call[2]["features"].values())
        assert all(f == features[0] for f in features), f"{config}: splits differ in features"

    assert (data_dir / "hf_link.txt").read_text(encoding="utf-8") == f"https://huggingface.co/datasets/{REPO_ID}\n"
    assert all(token == secret_token for token in fake_hub.tokens if token is not None)
    assert secret_token in fake_hub.tokens, "the token must reach the Hub client"


def test_uploaded_readme_header_and_body(data_dir: Path, fake_hub: FakeHub, secret_token: str) -> None:
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 0
    meta, body = front_matter((fake_hub.root / "README.md").read_text(encoding="utf-8"))

    assert meta["license"] == "other"
    assert meta["language"] == ["en", "zh"]
    assert meta["task_categories"] == ["translation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["pretty_name"] == "MiniMind EN to zh-TW fixture corpus"  # the card's own header is kept
    listed = {
        (config["config_name"], entry["split"]): entry["path"]
        for config in meta["configs"]
        for entry in config["data_files"]
    }
    assert listed == {(c, s): f"{c}/{s}-*" for c, s in EXPECTED_LAYOUT.values()}
    card_body = (FIXTURE / "card.md").read_text(encoding="utf-8").split("\n---\n", 1)[1]
    assert body == card_body


def test_pushed_layout_loads_back_with_datasets(
    data_dir: Path, fake_hub: FakeHub, secret_token: str, tmp_path: Path
) -> None:
    """The README configs and the parquet layout together form a dataset that load_dataset can read."""
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 0
    rows = expected_rows(FIXTURE)
    cache = tmp_path / "cache"
    sft = datasets.load_dataset(str(fake_hub.root), "sft", cache_dir=str(cache))
    assert {split: ds.num_rows for split, ds in sft.items()} == {
        split: n for (config, split), n in rows.items() if config == "sft"
    }
    first = json.loads((FIXTURE / "sft.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert sft["train"][0]["conversations"] == first["conversations"]
    test = datasets.load_dataset(str(fake_hub.root), "sft_test", split="test", cache_dir=str(cache))
    assert test.column_names == ["en", "zh"] and test.num_rows == rows[("sft_test", "test")]
    lora = datasets.load_dataset(str(fake_hub.root), "lora", cache_dir=str(cache))
    assert sorted(lora) == ["test", "train", "validation"]


def test_revision_and_private_are_passed_on(data_dir: Path, fake_hub: FakeHub, secret_token: str) -> None:
    args = ("push", "--repo-id", REPO_ID, "--data-dir", data_dir, "--revision", "v1", "--private")
    assert run_cli(*args) == 0
    (branch,) = fake_hub.named("create_branch")
    assert branch[2]["branch"] == "v1" and branch[2]["repo_type"] == "dataset"
    assert fake_hub.named("create_repo")[0][2]["private"] is True
    assert fake_hub.named("upload_file")[0][2]["revision"] == "v1"
    for call in fake_hub.named("push_to_hub"):
        assert call[2]["revision"] == "v1" and call[2]["private"] is True


def test_token_from_stored_login(data_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: token)
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 0
    assert token in fake_hub.tokens


def test_push_with_injected_api(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHub(tmp_path / "hub_repo")
    monkeypatch.setattr(hub_runner, "HfApi", _explode)  # the injected object must be the only client used
    patch_push_to_hub(monkeypatch, fake)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    plan = publish.plan_push(data_dir, REPO_ID)
    url = publish.push(plan, "hf_dummy", api=fake)
    assert url.endswith(f"/datasets/{REPO_ID}")
    assert (data_dir / "hf_link.txt").read_text(encoding="utf-8") == url + "\n"
    assert [call[0] for call in fake.calls] == (
        ["create_repo", "upload_file"] + ["push_to_hub"] * len(plan.configs) + ["upload_folder"]
    )


def test_login_checked_before_reading_data(
    data_dir: Path, fake_hub: FakeHub, no_stored_login: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "sft.jsonl").write_text("not json\n", encoding="utf-8")
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "sft.jsonl" not in err


# --- the token never leaks ------------------------------------------------------------------------


def _all_file_bytes(root: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


@pytest.mark.parametrize("fail_on", [None, "upload_file", "push_to_hub"])
def test_token_never_printed_logged_or_written(
    fail_on: str | None,
    data_dir: Path,
    fake_hub: FakeHub,
    secret_token: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_hub.fail_on = fail_on
    status = run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir)
    out, err = capsys.readouterr()

    assert status == (0 if fail_on is None else 1)
    assert (data_dir / "hf_link.txt").exists() == (fail_on is None)
    if fail_on:
        assert "simulated Hub failure" in err
    assert secret_token in fake_hub.tokens  # it was really used ...
    for where, text in (("stdout", out), ("stderr", err), ("logs", caplog.text)):
        assert secret_token not in text, f"token leaked to {where}"  # ... and never shown
    assert secret_token.encode() not in _all_file_bytes(tmp_path), "token written to a file"
    assert caplog.records, "the push should log its progress"


def test_missing_token_explains_login(
    data_dir: Path, fake_hub: FakeHub, no_stored_login: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "login" in err
    assert fake_hub.calls == []
    assert not (data_dir / "hf_link.txt").exists()


def test_offline_mode_stops_before_network(
    data_dir: Path,
    fake_hub: FakeHub,
    secret_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert fake_hub.calls == []


# --- dry run --------------------------------------------------------------------------------------


def test_dry_run_reports_plan_without_network_or_token(
    data_dir: Path, no_stored_login: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hub_runner, "HfApi", _explode)
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", _explode)
    before = {path: path.stat().st_mtime_ns for path in data_dir.iterdir()}

    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir, "--dry-run") == 0
    out = capsys.readouterr().out

    table = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == 5 and cells[4].endswith(".jsonl"):
            table[cells[4]] = (cells[0], cells[1], int(cells[2].replace(",", "")), int(cells[3].replace(",", "")))
    assert table == {
        name: (*layout, count_records(FIXTURE / name), (FIXTURE / name).stat().st_size)
        for name, layout in EXPECTED_LAYOUT.items()
    }
    plan = publish.plan_push(data_dir, REPO_ID)
    assert f"{len(plan.readme.encode('utf-8')):,} bytes" in out  # card size
    assert "card.md -> README.md" in out
    assert REPO_ID in out
    assert {path: path.stat().st_mtime_ns for path in data_dir.iterdir()} == before  # nothing written


def test_module_entry_point_dry_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))  # no stored login either
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_tools.publish",
            "push",
            "--repo-id",
            REPO_ID,
            "--data-dir",
            str(FIXTURE),
            "--dry-run",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout and "sft_test" in result.stdout
    assert not (FIXTURE / "hf_link.txt").exists()


# --- the card -------------------------------------------------------------------------------------


def test_card_lookup_order_and_generated_card(data_dir: Path) -> None:
    (data_dir / "README.md").write_text("# From README\n", encoding="utf-8")
    assert publish.plan_push(data_dir, REPO_ID).card_source == data_dir / "card.md"

    (data_dir / "card.md").unlink()
    plan = publish.plan_push(data_dir, REPO_ID)
    assert plan.card_source == data_dir / "README.md"
    assert front_matter(plan.readme)[1] == "# From README\n"

    (data_dir / "README.md").unlink()
    plan = publish.plan_push(data_dir, REPO_ID)
    assert plan.card_source is None
    meta, body = front_matter(plan.readme)
    assert "| lora | test | 2 |" in body and meta["task_categories"] == ["translation"]
    assert any("generated" in note for note in plan.notes)


def test_card_header_merge_and_license_option(data_dir: Path) -> None:
    (data_dir / "card.md").write_text(
        "---\nlicense: cc-by-4.0\nlanguage: zh\nconfigs:\n- config_name: stale\n  data_files: stale/*\n---\n# Card\n",
        encoding="utf-8",
    )
    meta, _ = front_matter(publish.plan_push(data_dir, REPO_ID).readme)
    assert meta["license"] == "cc-by-4.0"
    assert meta["language"] == ["zh", "en"]
    assert "stale" not in {config["config_name"] for config in meta["configs"]}

    meta, _ = front_matter(publish.plan_push(data_dir, REPO_ID, license="apache-2.0").readme)
    assert meta["license"] == "apache-2.0"


# --- columns across splits ------------------------------------------------------------------------


def _write_jsonl(path: Path, records: list[Any]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_split_types_are_aligned_when_castable(data_dir: Path) -> None:
    _write_jsonl(data_dir / "lora.jsonl", [{"zh": "利率", "en": "rate", "id": "a"}])
    _write_jsonl(data_dir / "lora.validation.jsonl", [{"en": "yield", "zh": "殖利率", "id": None}])
    _write_jsonl(data_dir / "lora.test.jsonl", [{"en": "bond", "zh": "債券", "id": "c"}, {"en": "tax", "zh": "稅"}])
    plan = publish.plan_push(data_dir, REPO_ID)
    lora = plan.dataset_dict("lora")
    assert sorted(lora) == ["test", "train", "validation"]
    assert lora["validation"].features == lora["train"].features == lora["test"].features
    assert lora["test"]["id"] == ["c", None]  # a key missing from a record becomes null, not dropped


# --- bad input: clear error, nothing sent ---------------------------------------------------------


BAD_FILES = [
    ("sft.jsonl", 2, '{"conversations": [\n', "not valid JSON"),
    ("lora.jsonl", 3, "[1, 2]\n", "expected a JSON object"),
    ("pretrain.jsonl", 1, '{"txt": "typo in the key"}\n', 'not a pretrain record: missing field "text"'),
    ("dpo.jsonl", 2, '{"chosen": []}\n', "not a dpo record"),
    ("sft.jsonl", 1, '{"conversations": [{"role": "user", "content": "hi"}]}\n', "not a sft record"),
    ("lora.test.jsonl", 1, b"\xff\xfe not utf-8\n", "not UTF-8"),
]


@pytest.mark.parametrize(("name", "line", "content", "message"), BAD_FILES)
def test_malformed_line_names_file_and_line(
    name: str,
    line: int,
    content: str | bytes,
    message: str,
    data_dir: Path,
    fake_hub: FakeHub,
    secret_token: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = data_dir / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = content if isinstance(content, bytes) else content.encode("utf-8")
    path.write_bytes(b"".join(lines))

    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 2
    err = capsys.readouterr().err
    assert f"{name}:{line}:" in err and message in err
    assert fake_hub.calls == []


def test_blank_lines_are_skipped_and_reported(data_dir: Path) -> None:
    path = data_dir / "pretrain.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("\n", "\n\n", 2), encoding="utf-8")
    plan = publish.plan_push(data_dir, REPO_ID)
    assert plan.configs["pretrain"][0].rows == count_records(FIXTURE / "pretrain.jsonl")
    assert "pretrain.jsonl: skipped 2 blank line(s)" in plan.describe()


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "no records"),
        ([{"en": "a", "zh": "甲", "id": 1}, {"en": "b", "zh": "乙", "id": "two"}], "mixes value types"),
    ],
)
def test_unusable_file_is_rejected(records: list[Any], message: str, data_dir: Path) -> None:
    _write_jsonl(data_dir / "lora.jsonl", records)
    with pytest.raises(publish.HubInputError, match=message) as info:
        publish.plan_push(data_dir, REPO_ID)
    assert "lora.jsonl" in str(info.value)


def test_uncastable_split_types_are_rejected(data_dir: Path) -> None:
    _write_jsonl(data_dir / "lora.jsonl", [{"en": "a", "zh": "甲", "id": 1}])
    _write_jsonl(data_dir / "lora.validation.jsonl", [{"en": "b", "zh": "乙", "id": [2]}])
    with pytest.raises(publish.HubInputError, match=r"lora\.validation\.jsonl: column types differ"):
        publish.plan_push(data_dir, REPO_ID)


def test_other_jsonl_files_are_reported_not_pushed(data_dir: Path) -> None:
    _write_jsonl(data_dir / "notes.jsonl", [{"text": "not a stage file"}])
    plan = publish.plan_push(data_dir, REPO_ID)
    assert plan.ignored_files == [data_dir / "notes.jsonl"]
    assert "notes.jsonl" in plan.describe()
    assert all(part.path.name != "notes.jsonl" for parts in plan.configs.values() for part in parts)


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "user/bad name", "user/", "/name", "user/-x", "us--er/x"])
def test_bad_repo_id(
    repo_id: str, data_dir: Path, fake_hub: FakeHub, secret_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("push", "--repo-id", repo_id, "--data-dir", data_dir) == 2
    assert "--repo-id" in capsys.readouterr().err
    assert fake_hub.calls == []


def test_missing_data_dir(
    tmp_path: Path, fake_hub: FakeHub, secret_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", missing) == 2
    assert "does not exist" in capsys.readouterr().err
    assert fake_hub.calls == []


def test_no_stage_files(
    tmp_path: Path, fake_hub: FakeHub, secret_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    shutil.copy(FIXTURE / "card.md", empty / "card.md")
    _write_jsonl(empty / "corpus.jsonl", [{"text": "wrong name"}])
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", empty) == 2
    assert "no stage files" in capsys.readouterr().err
    assert fake_hub.calls == []


def test_unreadable_card_header(data_dir: Path) -> None:
    (data_dir / "card.md").write_text("---\nlicense: [unclosed\n---\n# Card\n", encoding="utf-8")
    with pytest.raises(publish.HubInputError, match="card.md"):
        publish.plan_push(data_dir, REPO_ID)


def test_empty_revision_rejected(data_dir: Path) -> None:
    with pytest.raises(publish.HubInputError, match="--revision"):
        publish.plan_push(data_dir, REPO_ID, revision=" ")


@pytest.mark.parametrize(("rows", "label"), [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (250_000, "100K<n<1M")])
def test_size_category(rows: int, label: str) -> None:
    assert publish.size_category(rows) == label


def test_stage_jsonl_files_go_up_under_data(data_dir: Path, fake_hub: FakeHub, secret_token: str) -> None:
    """Graders download data/*.jsonl: the stage files themselves are uploaded next to the configs, byte for byte."""
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir) == 0
    (folder,) = fake_hub.named("upload_folder")
    assert folder[2]["path_in_repo"] == "data" and folder[2]["repo_type"] == "dataset"
    stage_names = sorted(p.name for p in data_dir.glob("*.jsonl") if p.name.split(".")[0] in publish.STAGES)
    assert sorted(folder[2]["allow_patterns"]) == stage_names
    for name in stage_names:
        assert (fake_hub.root / "data" / name).read_bytes() == (data_dir / name).read_bytes()
    assert not fake_hub.named("update_repo_settings")  # visibility untouched unless asked


def test_public_makes_an_existing_repo_public(data_dir: Path, fake_hub: FakeHub, secret_token: str) -> None:
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir, "--public", "--no-jsonl") == 0
    (settings,) = fake_hub.named("update_repo_settings")
    assert settings[1] == REPO_ID and settings[2]["private"] is False and settings[2]["repo_type"] == "dataset"
    names = [call[0] for call in fake_hub.calls]
    assert names.index("create_repo") < names.index("update_repo_settings") < names.index("upload_file")
    assert not fake_hub.named("upload_folder")
    assert run_cli("push", "--repo-id", REPO_ID, "--data-dir", data_dir, "--public", "--private") == 2


def test_a_fresh_clone_pushes_the_committed_sample_without_data_dir(
    tmp_path: Path, no_stored_login: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's command on a fresh clone (no `make data` yet): data/ holds only the sample, which is pushed."""
    monkeypatch.setattr(hub_runner, "HfApi", _explode)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "data" / "sample", tmp_path / "data" / "sample")
    assert run_cli("push", "--repo-id", REPO_ID, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("data: data/sample (the committed sample") and "sft.jsonl" in out
    (tmp_path / "empty").mkdir()
    assert run_cli("push", "--repo-id", REPO_ID, "--dry-run", "--data-dir", tmp_path / "empty") == 2
    assert "--data-dir data/sample" in capsys.readouterr().err
