"""The README is reference: its Python quick start runs, and the repository paths it names exist."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
REPO_PATH = re.compile(r"`((?:minimind_hf|recipes|data_tools|benchmarks|scripts|tests|locks|results)/[^`\s]*)`")


def test_the_python_blocks_compile():
    assert len(PYTHON_BLOCKS) >= 2
    for block in PYTHON_BLOCKS:
        compile(block, "README.md", "exec")


def test_using_the_model_runs_as_written(tmp_path, monkeypatch):
    """The "Using the model" block, on a tiny model saved where the block expects ``out/dpo``."""
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.tokenization import load_tokenizer, save_tokenizer

    block = next(b for b in PYTHON_BLOCKS if 'from_pretrained("out/dpo")' in b)
    saved = tmp_path / "out" / "dpo"
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(saved)
    save_tokenizer(load_tokenizer(), saved)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    expected = re.search(r"print\(sum\(p\.numel\(\) for p in model\.parameters\(\)\)\)\s+#\s*(\d+)", block)
    assert expected and lines[0] == expected.group(1)  # the parameter count the README states
    assert len(lines) >= 2  # the translation line (a tiny untrained model: any text)


@pytest.mark.parametrize("path", sorted(set(REPO_PATH.findall(README))))
def test_the_paths_it_names_exist(path):
    if any(mark in path for mark in ("<", "*", "{", "SCALE", "...")):
        pytest.skip("a pattern, not a path")
    assert (ROOT / path.rstrip("/").split(":")[0]).exists(), f"README.md names {path}, which does not exist"


def test_the_module_map_names_every_module_of_the_package():
    """The Layout table names each top-level module and each subpackage of ``minimind_hf/``, and nothing else.

    Each in the table's first column; the modules a subpackage's row names are in that subpackage.
    """
    table = README.split("`minimind_hf/` (imports run one way", 1)[1].split("\n\n", 2)[1]
    package = ROOT / "minimind_hf"
    named: set[str] = set()
    for row in table.splitlines()[2:]:
        first, rest = row.strip("|").split(" | ", 1)
        cells = re.findall(r"`([\w/.]+)`", first)
        named |= set(cells)
        for folder in (c for c in cells if c.endswith("/")):
            for module in re.findall(r"`(\w+\.py)`", rest):
                assert (package / folder / module).is_file(), f"README.md: {folder}{module} does not exist"
    top = {p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "train.py")}  # train.py: a shim
    subpackages = {p.parent.relative_to(package).as_posix() + "/" for p in package.glob("*/**/__init__.py")}
    assert named == top | subpackages


RESULT_DOCUMENTS = ("results/README.md", "benchmarks/RESULTS.md", "benchmarks/speedrun/README.md")
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")


@pytest.mark.parametrize("document", RESULT_DOCUMENTS)
def test_the_result_documents_name_files_that_exist(document):
    """Where the measurements live (the README points there): their links and the repository paths they name."""
    path = ROOT / document
    text = path.read_text(encoding="utf-8")
    links = [target for target in LINK.findall(text) if not target.startswith(("http://", "https://"))]
    named = [p for p in REPO_PATH.findall(text) if not any(mark in p for mark in ("<", "*", "{", "SCALE", "..."))]
    assert links or named, f"{document} names no file"
    missing = [t for t in links if not (path.parent / t).exists()]
    missing += [p for p in named if not (ROOT / p.rstrip("/").split(":")[0]).exists()]
    assert not missing, f"{document} names {missing}, which do not exist"
