"""One command for the quality run on a bare, offline CUDA machine: every stage and every evaluation.

    python scripts/gpu_quality.py                       # on the GPU machine, in the repository root
    python scripts/gpu_quality.py --scale tiny --skip-install   # the same path on CPU, on the shipped sample

It unpacks ``.bundle/offline.tar.xz`` (made by ``scripts/gpu_bundle.py``): the wheels the machine lacks go
into a virtualenv that sees the machine's own PyTorch / transformers (``--system-site-packages``), the corpus
into ``data/``. Then ``make quality`` runs pretrain -> SFT -> LoRA -> pairs -> DPO -> the evaluation of every
stage with that virtualenv, and everything it wrote is copied into one folder (``--results``, default
``out/quality-<scale>``) with the log and the wall time of each step.

It runs the committed recipes of the scale as they are (``recipes/<scale>/``); ``recipes/full/sft.yaml`` trains one
epoch on 128-token chats (the translation chats average ~47 tokens), so that the whole full-scale run fits in about
ten minutes on one H100/H200.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stage_layout():
    """The stage contract (:mod:`minimind_hf.data.layout`), read as a lone file.

    This script runs before the package's dependencies are installed, and that module imports none of them.
    """
    spec = importlib.util.spec_from_file_location("stage_layout", ROOT / "minimind_hf" / "data" / "layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_layout = _stage_layout()
COMPLETE_MARKER, LOSS_CURVE, RUN_DIR, STAGE_NAMES = (
    _layout.COMPLETE_MARKER,
    _layout.LOSS_CURVE,
    _layout.RUN_DIR,
    _layout.STAGE_NAMES,
)
stage_dir = _layout.stage_dir


def unpack(bundle: Path, work: Path) -> list[Path]:
    """Extract the bundle; zip each unpacked wheel tree back into a ``.whl``. Returns the wheels."""
    with tarfile.open(bundle, "r:xz") as tar:
        tar.extractall(work, filter="data")
    wheels = []
    for tree in sorted((work / "wheels").iterdir()):
        wheel = work / tree.name
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(tree.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=(2000, 1, 1, 0, 0, 0))
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        wheels.append(wheel)
    return wheels


def install(venv: Path, wheels: list[Path]) -> None:
    """A virtualenv on the machine's packages, plus the bundled wheels and this project (no network)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run([*pip, *map(str, wheels)], check=True)
    subprocess.run([*pip, "--no-build-isolation", "-e", str(ROOT)], check=True)
    # the Makefile calls $(VENV)/bin/accelerate; the machine's accelerate has its script outside the venv
    shim = venv / "bin" / "accelerate"
    if not shim.exists():
        shim.write_text(f'#!/bin/sh\nexec "{venv / "bin" / "python"}" -m accelerate.commands.accelerate_cli "$@"\n')
        shim.chmod(0o755)
    (venv / "bin" / ".installed").touch()  # make's install step is done: nothing to fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / ".bundle" / "offline.tar.xz")
    parser.add_argument("--scale", choices=("tiny", "small", "full"), default="full")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-gpu")
    parser.add_argument("--skip-install", action="store_true", help="use --venv as it is (it has every package)")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    results = args.results or ROOT / "out" / f"quality-{args.scale}"
    started = time.time()
    steps: dict[str, float] = {}
    if not args.skip_install:
        if not args.bundle.is_file():
            raise SystemExit(
                f"{args.bundle}: no bundle (make it with `python scripts/gpu_bundle.py` where a network is)"
            )
        work = ROOT / ".bundle" / "unpacked"
        shutil.rmtree(work, ignore_errors=True)
        wheels = unpack(args.bundle, work)
        data = ROOT / "data"
        for path in (work / "data").iterdir():
            shutil.copy2(path, data / path.name)
        install(args.venv, wheels)
        steps["install"] = time.time() - started
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    shutil.rmtree(ROOT / "out" / "eval", ignore_errors=True)
    results.mkdir(parents=True, exist_ok=True)
    log = results / "make.log"
    command = ["make", "-C", str(ROOT), "quality", f"SCALE={args.scale}", f"VENV={args.venv}"]
    print(" ".join(command), flush=True)
    before = time.time()
    with log.open("w") as out:
        process = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    steps["make quality"] = time.time() - before
    for name in ("quality", "eval"):
        if (ROOT / "out" / name).is_dir():
            shutil.copytree(ROOT / "out" / name, results / name, dirs_exist_ok=True)
    for stage in STAGE_NAMES + _layout.CONTROL_RUNS:
        for name in (COMPLETE_MARKER, LOSS_CURVE):
            if (stage_dir(stage, ROOT / RUN_DIR) / name).is_file():
                (results / stage).mkdir(exist_ok=True)
                shutil.copy2(stage_dir(stage, ROOT / RUN_DIR) / name, results / stage / name)
    summary = {
        "command": " ".join(command),
        "scale": args.scale,
        "exit_status": process.returncode,
        "seconds": {k: round(v, 1) for k, v in steps.items()},
        "wall_seconds": round(time.time() - started, 1),
    }
    (results / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if process.returncode:
        print(f"make quality failed (exit {process.returncode}); the end of {log}:", file=sys.stderr)
        print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:]), file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
