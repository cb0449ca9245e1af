"""The one checkpoint loader: a full model or a PEFT adapter on its base, and the tokenizer that fits it.

``minimind translate`` / ``generate`` / ``export`` / ``info``, ``minimind eval`` and the stage runner all
load checkpoints here, by one rule:

* **model**: a directory with ``config.json`` loads through ``AutoModelForCausalLM``; a directory with
  ``adapter_config.json`` is a PEFT adapter, loaded on the base model it records or on an explicitly given
  ``base``, and merged into it unless ``merge_adapter=False``. The recorded base is looked for relative to
  the adapter first (the adapter's folder, then each folder above it: a run's ``out/lora`` records
  ``out/sft`` relative to the folder the run started in), then where the base was when the adapter was
  saved, then as written (relative to the current directory). A name that is not a local path is a Hub
  repository, which is refused while ``HF_HUB_OFFLINE=1``.
* **base fingerprint**: the stages save ``adapter_base.json`` beside an adapter (:func:`record_adapter_base`):
  the base's path and a fingerprint of it (SHA-256 of its config and weight files). The base an adapter is
  loaded on must match it; another model of the same shape is refused, naming both paths. An adapter
  without the file (saved elsewhere) loads on the first base found, with a warning.
* **tokenizer**: one given explicitly; else the checkpoint directory's own; else the base model's (for an
  adapter); else the tokenizer shipped with the package. Whichever it is must fit the model
  (:func:`check_tokenizer_fits`): no token id beyond the embedding table, and the shipped tokenizer only for
  a model whose vocabulary is exactly its size -- a converted 32,000-token Llama, say, needs its own. Ids of a
  larger model vocabulary that the tokenizer cannot decode are never generated
  (:func:`fit_generation_to_tokenizer`): a 32,000-row model with a 6,400-piece tokenizer would otherwise
  sample ids that decode to nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .tokenization import load_tokenizer

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_BASE = "adapter_base.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LoadedCheckpoint(NamedTuple):
    """What :func:`load_checkpoint` returns; ``kind`` is ``"model"`` or ``"peft-adapter"``."""

    model: Any
    tokenizer: Any
    kind: str
    base: str | None


def default_device() -> str:
    """``cuda`` where a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX).

    Elsewhere bf16 is emulated and slower than fp32.
    """
    return any(
        getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def auto_precision(device: str | None = None) -> str:
    """What ``auto`` means wherever a precision or dtype is chosen (training, loading, benchmarks).

    ``"bf16"`` where the device computes bf16 natively -- a CUDA GPU with bf16, or a CPU with AVX-512 BF16 / AMX (there
    a training loss curve agrees with fp32's: benchmarks/loss_agreement.py) -- else ``"fp32"``. ``device`` defaults to
    :func:`default_device`.
    """
    device = device or default_device()
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"


def resolve_dtype(dtype: str | torch.dtype | None, device: str | None = None) -> torch.dtype:
    """A ``torch.dtype`` from a name.

    ``auto`` (or ``None``) follows :func:`auto_precision` on a CUDA device (bfloat16 where it has it); on the CPU the
    loaded weights stay float32 (there bf16 is the autocast of a training run, not the dtype of the weights).
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        on_cuda = (device or "").startswith("cuda")
        return torch.bfloat16 if on_cuda and auto_precision(device) == "bf16" else torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, {', '.join(DTYPES)}") from None


def check_tokenizer_fits(model_or_config: Any, tokenizer: Any, *, shipped: bool = False) -> None:
    """Raise ``ValueError`` naming both sizes if ``tokenizer`` does not fit the model.

    A tokenizer must not emit ids the model's embedding table does not have. With ``shipped=True`` (the
    package's tokenizer standing in for a checkpoint that has none of its own) the sizes must be equal.
    """
    config = getattr(model_or_config, "config", model_or_config)
    vocab, size = config.vocab_size, len(tokenizer)
    if size > vocab:
        raise ValueError(
            f"the tokenizer has {size} tokens but the model's vocab_size is {vocab}; "
            "retrain the tokenizer with a smaller vocabulary or build the model with "
            f"vocab_size>={size}"
        )
    if shipped and size != vocab:
        raise ValueError(
            f"the model's vocab_size is {vocab} and it has no tokenizer of its own; the tokenizer shipped "
            f"with minimind_hf has {size} tokens and does not belong to it. Save the model's tokenizer next "
            "to it (save_tokenizer) or pass one explicitly"
        )


def undecodable_ids(model_or_config: Any, tokenizer: Any) -> list[int]:
    """Ids of the model's vocabulary the tokenizer has no piece for (empty when the sizes agree)."""
    config = getattr(model_or_config, "config", model_or_config)
    return list(range(len(tokenizer), int(config.vocab_size)))


def fit_generation_to_tokenizer(model: Any, tokenizer: Any, where: str = "the model") -> list[int]:
    """Suppress, in ``model.generation_config``, the ids the tokenizer cannot decode; returns them.

    Logs a warning naming both sizes when there are any: the rows behind them were never trained with this
    tokenizer, so sampling one would only ever produce nothing.
    """
    extra = undecodable_ids(model, tokenizer)
    if extra and getattr(model, "generation_config", None) is not None:
        logger.warning(
            "%s has %d vocabulary rows but its tokenizer only %d pieces: ids %d..%d cannot be decoded "
            "and are never generated",
            where,
            model.config.vocab_size,
            len(tokenizer),
            extra[0],
            extra[-1],
        )
        suppressed = set(model.generation_config.suppress_tokens or [])
        model.generation_config.suppress_tokens = sorted(suppressed | set(extra))
    return extra


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def find_tokenizer(path: str | os.PathLike[str], base: str | None = None) -> tuple[Any, bool]:
    """``(tokenizer, shipped)``: the checkpoint's own tokenizer, its base model's, else the shipped one."""
    for directory in [Path(path)] + ([Path(base)] if base else []):
        if _has_tokenizer(directory):
            return load_tokenizer(directory), False
    logger.warning("no tokenizer files in %s; using the tokenizer shipped with minimind_hf", path)
    return load_tokenizer(), True


def _require_local_or_online(path: str, what: str) -> None:
    if not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(f"{what} {path} does not exist (and the Hub is offline: HF_HUB_OFFLINE=1)")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def base_fingerprint(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies a full model on disk.

    The SHA-256 of its ``config.json`` (``_name_or_path`` and ``transformers_version`` left out) and of each weight
    file, with the files' sizes.
    """
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    for key in ("_name_or_path", "transformers_version", "use_cache"):
        config.pop(key, None)
    weights = {}
    for file in sorted(directory.iterdir()):
        if file.is_file() and file.name.endswith(_WEIGHT_SUFFIXES):
            weights[file.name] = {"size": file.stat().st_size, "sha256": file_sha256(file)}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return {"config_sha256": config_hash, "weights": weights}


def record_adapter_base(adapter: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> Path:
    """Write ``adapter_base.json`` beside an adapter.

    Its base model's path (``base``, default: the one ``adapter_config.json`` records, found as :func:`adapter_base`
    finds it) and :func:`base_fingerprint`.
    """
    adapter = Path(adapter)
    recorded = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    base_dir = Path(base) if base is not None else Path(_find_base(adapter, recorded)[0])
    record = {
        "base_model_name_or_path": recorded,
        "saved_from": str(base_dir.resolve()),
        "fingerprint": base_fingerprint(base_dir),
    }
    path = adapter / ADAPTER_BASE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def _base_candidates(adapter: Path, recorded: str, saved_from: str | None) -> list[Path]:
    relative = [adapter / recorded] + [folder / recorded for folder in adapter.resolve().parents]
    seen, out = set(), []
    for candidate in relative + ([Path(saved_from)] if saved_from else []) + [Path(recorded)]:
        key = os.path.normpath(os.path.abspath(candidate))
        if key not in seen and (candidate / "config.json").is_file():
            seen.add(key)
            out.append(candidate)
    return out


def _find_base(adapter: Path, recorded: str | None) -> tuple[str, dict | None]:
    """Find the base an adapter was trained on: ``(base, record)``.

    The base is the first local candidate for ``recorded`` whose fingerprint matches the one saved in
    ``adapter_base.json`` (any candidate when there is none), else the Hub name when online.
    """
    where = adapter / ADAPTER_CONFIG
    if not recorded:
        raise ValueError(f"{where}: no base_model_name_or_path recorded")
    record = _read_base_record(adapter)
    candidates = _base_candidates(adapter, recorded, record and record.get("saved_from"))
    if record is None:
        if candidates:
            return str(candidates[0]), None
    else:
        for candidate in candidates:
            if base_fingerprint(candidate) == record["fingerprint"]:
                return str(candidate), record
        if candidates:
            raise _mismatch(adapter, record, candidates)
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(
            f"{where}: base model {recorded!r} is not a local model directory and the Hub is offline; "
            "copy the base checkpoint there or fix base_model_name_or_path"
        )
    return recorded, record


def _read_base_record(adapter: Path) -> dict | None:
    path = adapter / ADAPTER_BASE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["fingerprint"]["weights"]  # noqa: B018  (the shape this module writes)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a base record written by record_adapter_base ({err})") from err
    return record


def _mismatch(adapter: Path, record: dict, found: list[Path]) -> ValueError:
    tried = ", ".join(str(p) for p in found)
    return ValueError(
        f"{adapter}: {tried} {'is' if len(found) == 1 else 'are'} not the base this adapter was trained on "
        f"(its {ADAPTER_BASE} records {record.get('saved_from')}, whose config and weights differ: same shapes do "
        "not make the same model). Pass the right base (--base), or copy it back to where the adapter expects it"
    )


def check_adapter_base(adapter: str | os.PathLike[str], base: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` naming both paths when ``adapter_base.json`` records a base other than ``base``."""
    record = _read_base_record(Path(adapter))
    if record is not None and Path(base).is_dir() and base_fingerprint(base) != record["fingerprint"]:
        raise _mismatch(Path(adapter), record, [Path(base)])


def adapter_base(adapter: Path, recorded: str | None) -> str:
    """The base model of a PEFT adapter (see the module doc for where it is looked for and how it is checked)."""
    base, record = _find_base(Path(adapter), recorded)
    if record is None and Path(base).is_dir():
        logger.warning(
            "%s has no %s (saved outside the stage runner): loading it on %s without checking that "
            "this is the base it was trained on",
            adapter,
            ADAPTER_BASE,
            base,
        )
    return base


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    merge_adapter: bool = True,
    dtype: str | torch.dtype | None = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    tokenizer: Any = None,
) -> LoadedCheckpoint:
    """Load a full model or a PEFT adapter from ``path``, with its tokenizer (see the module doc).

    ``base`` loads ``path`` as an adapter on that model instead of the base the adapter records. ``dtype``
    is a ``torch.dtype`` or ``auto`` / ``float32`` / ``bfloat16`` / ``float16``; the model goes to ``device``
    when one is given (else it stays on the CPU). ``tokenizer`` is a tokenizer or a path to one.
    """
    from transformers import AutoModelForCausalLM

    path = os.fspath(path)
    directory = Path(path)
    _require_local_or_online(path, "checkpoint")
    is_adapter = base is not None or (directory / ADAPTER_CONFIG).is_file()
    if directory.is_dir() and not is_adapter and not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds neither config.json (a model) nor {ADAPTER_CONFIG} (a PEFT adapter)")
    options: dict[str, Any] = {"dtype": resolve_dtype(dtype, device)}
    if attn_implementation:
        options["attn_implementation"] = attn_implementation
    base_name = None
    if is_adapter:
        from peft import PeftModel

        if base is None:
            recorded = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            base_name = adapter_base(directory, recorded.get("base_model_name_or_path"))
        else:
            base_name = os.fspath(base)
            _require_local_or_online(base_name, "base model")
            check_adapter_base(directory, base_name)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_name, **options), path)
        if merge_adapter:
            model = model.merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **options)
    if device is not None:
        model.to(device)
    model.eval()
    shipped = False
    if tokenizer is None:
        tokenizer, shipped = find_tokenizer(path, base_name)
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    check_tokenizer_fits(model, tokenizer, shipped=shipped)
    fit_generation_to_tokenizer(model, tokenizer, where=path)
    return LoadedCheckpoint(model, tokenizer, "peft-adapter" if is_adapter else "model", base_name)
