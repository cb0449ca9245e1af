"""Translation quality scores: chrF, BLEU (sacrebleu), COMET (optional) and the script check.

For a Chinese target the figures are chrF and BLEU with sacrebleu's ``zh`` tokenizer. chrF++ is left out:
its word n-grams split on spaces, and unsegmented Chinese has none, so a whole sentence counts as one
"word" (spacing ``每期的利率。`` as ``每 期 的 利 率 。`` moves chrF++ from 100 to 85.7, chrF and BLEU-zh not
at all). Other targets get chrF++ too.

COMET runs only when the ``unbabel-comet`` package is importable *and* a checkpoint already on disk
is named; nothing is downloaded. Asked for without one of the two, it fails with
:class:`CometUnavailableError` saying what is missing. Not asked for, it is skipped with a note.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from .script_check import script_check

COMET_ENV = "MINIMIND_COMET_MODEL"


class CometUnavailableError(RuntimeError):
    """COMET was asked for, but the package or the checkpoint is missing."""


def comet_model_from_env() -> str | None:
    """The COMET checkpoint named by the ``MINIMIND_COMET_MODEL`` environment variable, if any."""
    return os.environ.get(COMET_ENV) or None


def resolve_comet_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Find the ``.ckpt`` file of a COMET model given the file itself or its downloaded directory.

    A downloaded COMET model (e.g. ``Unbabel/wmt22-comet-da``) is a directory holding
    ``hparams.yaml`` and ``checkpoints/model.ckpt``; COMET reads the hparams two levels above the
    checkpoint, so that layout is required.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        found = [c for c in [p / "checkpoints" / "model.ckpt", *sorted(p.glob("checkpoints/*.ckpt"))] if c.is_file()]
        if not found:
            raise CometUnavailableError(
                f"COMET model directory {p} holds no checkpoints/model.ckpt; point --comet-model (or "
                f"${COMET_ENV}) at a downloaded COMET model such as Unbabel/wmt22-comet-da"
            )
        p = found[0]
    if p.is_file():
        hparams = p.resolve().parents[1] / "hparams.yaml"
        if not hparams.is_file():
            raise CometUnavailableError(
                f"COMET checkpoint {p} has no {hparams}; keep the downloaded layout "
                "MODEL/hparams.yaml + MODEL/checkpoints/model.ckpt"
            )
        return p
    raise CometUnavailableError(
        f"COMET checkpoint {p} does not exist; this project never downloads it. Copy a COMET model "
        "(e.g. Unbabel/wmt22-comet-da: hparams.yaml + checkpoints/model.ckpt) to this machine and "
        "pass its path with --comet-model PATH or $MINIMIND_COMET_MODEL"
    )


def check_comet(model_path: str | os.PathLike[str]) -> Path:
    """Fail early, before any translating, unless COMET can run: import it, then find the checkpoint."""
    try:
        import comet  # noqa: F401  (unbabel-comet; needs transformers<5, see the [comet] extra)
    except ImportError as err:
        raise CometUnavailableError(
            f"COMET was requested (model {model_path}) but the unbabel-comet package cannot be imported "
            f"({err}); install it with pip install 'minimind-hf[comet]' in an environment with "
            "transformers<5, or leave --comet-model unset"
        ) from err
    return resolve_comet_checkpoint(model_path)


@functools.lru_cache(maxsize=1)
def _load_comet(checkpoint: str) -> Any:
    """Load a COMET model once per process (comparing several checkpoints reuses it)."""
    import comet

    return comet.load_from_checkpoint(checkpoint, local_files_only=True)  # never download the encoder


def comet_score(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    model_path: str | os.PathLike[str],
    batch_size: int = 16,
    gpus: int | None = None,
) -> dict[str, Any]:
    """System-level COMET score (mean of segment scores) with a local checkpoint."""
    checkpoint = check_comet(model_path)
    if gpus is None:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    try:
        model = _load_comet(str(checkpoint.resolve()))
    except Exception as err:  # torch / lightning / transformers errors: say which file and what to check
        raise CometUnavailableError(
            f"could not load the COMET checkpoint {checkpoint}: {type(err).__name__}: {err}. The encoder "
            "named in its hparams.yaml (e.g. xlm-roberta-large) must already be in the local Hugging Face cache"
        ) from err
    data = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hypotheses, references, strict=True)]
    prediction = model.predict(data, batch_size=batch_size, gpus=gpus, progress_bar=True)
    return {
        "comet": float(prediction.system_score),
        "comet_model": str(checkpoint),
        "comet_segments": [float(x) for x in prediction.scores],
    }


def translation_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    sources: Sequence[str] | None = None,
    comet_model: str | os.PathLike[str] | None = None,
    target_lang: str = "zh",
    comet_batch_size: int = 16,
) -> dict[str, Any]:
    """Corpus-level scores of ``hypotheses`` against one reference each.

    BLEU uses sacrebleu's ``zh`` tokenizer for Chinese targets (``13a`` otherwise); chrF is
    sacrebleu's default (character 6-grams); chrF++ (word bigrams added) only for targets written with
    spaces between words. For a Chinese target the
    :func:`~minimind_hf.evaluation.script_check.script_check` figures are included, and
    ``traditional_share``: the share of the outputs containing Chinese that hold no Simplified-only
    character (``None`` when no output contains Chinese). ``comet_model`` is a local
    checkpoint path; ``None`` skips COMET (a note says so).
    """
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("translation_scores: hypotheses and references must be lists of strings, not a string")
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"translation_scores: {len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("translation_scores: no hypotheses to score")
    if sources is not None and len(sources) != len(hypotheses):
        raise ValueError(f"translation_scores: {len(sources)} sources but {len(hypotheses)} hypotheses")
    chinese = target_lang.lower().startswith("zh")
    bleu = BLEU(tokenize="zh" if chinese else "13a")
    chrf = CHRF()
    result: dict[str, Any] = {
        "n": len(hypotheses),
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "signatures": {"chrf": str(chrf.get_signature()), "bleu": str(bleu.get_signature())},
        "comet": None,
        "notes": [],
    }
    if chinese:
        result["script"] = script_check(hypotheses)
        result["traditional_share"] = result["script"]["traditional_share"]
    else:
        chrf_pp = CHRF(word_order=2)
        result["chrf++"] = chrf_pp.corpus_score(hypotheses, [references]).score
        result["signatures"]["chrf++"] = str(chrf_pp.get_signature())
    if comet_model:
        if sources is None:
            raise CometUnavailableError("COMET was requested but no sources were given (COMET scores src/mt/ref)")
        result.update(comet_score(sources, hypotheses, references, comet_model, batch_size=comet_batch_size))
    else:
        result["notes"].append(f"COMET skipped: no checkpoint given (--comet-model PATH or ${COMET_ENV})")
    return result


def sentence_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """chrF and chrF++ of each hypothesis against its reference (0-100).

    The evaluation reports chrF for Chinese (chrF++ needs words separated by spaces, see the module doc).
    """
    chrf, chrf_pp = CHRF(), CHRF(word_order=2)
    return [
        {"chrf": chrf.sentence_score(h, [r]).score, "chrf++": chrf_pp.sentence_score(h, [r]).score}
        for h, r in zip(hypotheses, references, strict=True)
    ]


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], target_lang: str = "zh") -> dict[str, float]:
    """chrF and BLEU alone (the floors are scored with these), and chrF++ for a target other than Chinese."""
    chinese = target_lang.lower().startswith("zh")
    bleu = BLEU(tokenize="zh" if chinese else "13a")
    scores = {
        "chrf": CHRF().corpus_score(list(hypotheses), [list(references)]).score,
        "bleu": bleu.corpus_score(list(hypotheses), [list(references)]).score,
    }
    if not chinese:
        scores["chrf++"] = CHRF(word_order=2).corpus_score(list(hypotheses), [list(references)]).score
    return scores
