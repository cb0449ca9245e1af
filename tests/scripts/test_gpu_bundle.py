"""The offline bundle for a bare CUDA machine: lock pins, wheel trees packed with xz and zipped back intact."""

from __future__ import annotations

import importlib.util
import lzma
import tarfile
import zipfile

import pytest

from tests.paths import ROOT

SCRIPTS = ROOT / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle, quality = load("gpu_bundle"), load("gpu_quality")


def test_locked_versions_reads_pins_and_names_what_is_missing(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\ndatasets==5.2.0\nPyArrow==26.0.1 ; python_version >= '3.9'\ntrl==1.16.0\n")
    assert bundle.locked_versions(lock, ("datasets", "pyarrow")) == {"datasets": "5.2.0", "pyarrow": "26.0.1"}
    with pytest.raises(SystemExit, match="no pinned version for opencc"):
        bundle.locked_versions(lock, ("trl", "opencc"))
    assert bundle.locked_versions(ROOT / "locks" / "default.lock.txt", bundle.MISSING_ON_BARE_CUDA)


def test_wheel_trees_zip_back_to_the_same_files(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    files = {
        "demo/__init__.py": b"x = 1\n",
        "demo/data/table.bin": bytes(range(256)) * 10,
        "demo-1.0.dist-info/RECORD": b"demo/__init__.py,,\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    packed = tmp_path / "offline.tar.xz"
    with lzma.open(packed, "wb") as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                bundle.add_bytes(tar, f"wheels/{wheel.name}/{member.filename}", archive.read(member))
        bundle.add_bytes(tar, "data/sft.jsonl", b'{"en": "a", "zh": "b"}\n')
    (rebuilt,) = quality.unpack(packed, tmp_path / "work")
    assert rebuilt.name == wheel.name
    with zipfile.ZipFile(rebuilt) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == files
    assert (tmp_path / "work" / "data" / "sft.jsonl").read_bytes() == b'{"en": "a", "zh": "b"}\n'


def test_pretrain_head_keeps_whole_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(b'{"text": "%d"}\n' % i for i in range(10)))
    assert bundle.pretrain_head(path, 0.3).splitlines() == [b'{"text": "0"}', b'{"text": "1"}', b'{"text": "2"}']
    assert bundle.pretrain_head(path, 1.0) == path.read_bytes()
