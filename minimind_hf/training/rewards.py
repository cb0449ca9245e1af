"""Rewards of the GRPO stage: plain functions in TRL's reward signature, built from the evaluation's own scores.

Every reward takes ``(prompts, completions, **columns)`` -- the dataset's columns arrive as keyword lists,
one value per completion, as :class:`trl.GRPOTrainer` passes them -- and returns one float per completion
(``None`` where the reward does not apply to that row; TRL leaves it out of the sum). ``completions`` are
conversational (``[{"role": "assistant", "content": ...}]``) or plain strings.

* :func:`chrf_reward` -- sentence chrF (sacrebleu's chrF, character 6-grams, no word n-grams: Chinese has no
  spaces to split words on) of the completion against its ``reference``, scaled to 0..1.
* :func:`semantic_reward` -- the cosine similarity of completion and ``reference`` in the multilingual sentence
  encoder the evaluation uses (:mod:`minimind_hf.evaluation.semantic`).
* :func:`semantic_source_reward` -- the reference-free twin: similarity to the English ``source``, times the
  completion's share of Chinese characters (the encoder is cross-lingual, so a copied source would score 1).
* :func:`script_reward` -- Chinese and Traditional: the share of CJK among the completion's letters times one
  minus its share of Simplified-only characters (:mod:`minimind_hf.evaluation.script_check`); ``None`` where the
  reference holds no Chinese character (names, codes), since copying is then right.
* :func:`health_reward` -- ``-1`` per flag of the evaluation's output-health checks (:mod:`.quality`): empty,
  looping, untranslated (the source copied, or no Chinese where the reference has some), over-long (more than
  twice the reference's characters plus 10; without a reference, twice the source's).

The controls tell a gain from the reward apart from a gain from merely sharpening the output distribution:

* :func:`chrf_shuffled_reward`, :func:`semantic_shuffled_reward` -- the same scores against the reference of
  *another* prompt (``shuffled_reference``, a fixed derangement built with the dataset). Script and health
  stay as they are, so the control run differs from the real one only in whether the reference-based signal
  is about the prompt at all.
* :func:`constant_reward` -- 0 for everything: every group has zero spread, GRPO's advantages are all zero
  and the policy does not move (a check of the machinery: the zero-signal share is 100%).

:func:`reward_functions` turns the recipe's weights and switches into TRL's ``reward_funcs`` and
``reward_weights``; a weight of 0 leaves a reward out (it is not computed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sacrebleu.metrics import CHRF

from ..evaluation.quality import has_cjk, is_looping, is_over_long, is_untranslated
from ..evaluation.script_check import is_cjk, simplified_only_characters

__all__ = [
    "CONTROLS",
    "REWARD_NAMES",
    "chrf_reward",
    "chrf_shuffled_reward",
    "completion_texts",
    "constant_reward",
    "health_flags",
    "health_reward",
    "reward_functions",
    "script_reward",
    "script_score",
    "semantic_reward",
    "semantic_shuffled_reward",
    "semantic_source_reward",
]

REWARD_NAMES = ("chrf", "semantic", "script", "health")
"""The rewards a recipe weighs (``reward_chrf``, ``reward_semantic``, ...)."""

CONTROLS = ("none", "shuffled", "constant")
"""``reward_control`` values: the real rewards, the shuffled-reference control, the constant control."""

_CHRF = CHRF()  # chrF (char_order 6, word_order 0, beta 2): the evaluation's chrF


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """The text of each completion: a string, or the content of the last message of a conversational one."""
    texts = []
    for i, completion in enumerate(completions):
        if isinstance(completion, str):
            texts.append(completion)
        elif isinstance(completion, list) and completion and isinstance(completion[-1], dict):
            texts.append(str(completion[-1].get("content") or ""))
        else:
            raise TypeError(f"reward: completion {i} is neither a string nor a list of messages: {completion!r}")
    return texts


def _aligned(name: str, texts: list[str], column: Sequence[Any] | None) -> list[str]:
    if column is None:
        raise ValueError(f"reward: the dataset has no {name!r} column (the GRPO dataset builder adds it)")
    if len(column) != len(texts):
        raise ValueError(f"reward: {len(texts)} completions but {len(column)} values of {name!r}")
    return [str(value) for value in column]


def _sentence_chrf(texts: list[str], references: list[str]) -> list[float]:
    return [
        _CHRF.sentence_score(text.strip(), [ref]).score / 100.0 for text, ref in zip(texts, references, strict=True)
    ]


def chrf_reward(
    prompts: Sequence[Any], completions: Sequence[Any], reference: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Sentence chrF of each completion against its reference, 0..1."""
    texts = completion_texts(completions)
    return _sentence_chrf(texts, _aligned("reference", texts, reference))


def chrf_shuffled_reward(
    prompts: Sequence[Any], completions: Sequence[Any], shuffled_reference: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """The control: sentence chrF against another prompt's reference, 0..1."""
    texts = completion_texts(completions)
    return _sentence_chrf(texts, _aligned("shuffled_reference", texts, shuffled_reference))


def _similarities(texts: list[str], others: list[str]) -> list[float]:
    from ..evaluation.semantic import similarities  # the encoder is loaded on first use only

    return [float(x) for x in similarities([t.strip() for t in texts], others)]


def semantic_reward(
    prompts: Sequence[Any], completions: Sequence[Any], reference: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Sentence-encoder cosine similarity of each completion and its reference (-1..1; empty output: 0)."""
    texts = completion_texts(completions)
    return _similarities(texts, _aligned("reference", texts, reference))


def semantic_shuffled_reward(
    prompts: Sequence[Any], completions: Sequence[Any], shuffled_reference: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """The control: similarity to another prompt's reference."""
    texts = completion_texts(completions)
    return _similarities(texts, _aligned("shuffled_reference", texts, shuffled_reference))


def _cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(is_cjk(c) for c in letters) / len(letters) if letters else 0.0


def semantic_source_reward(
    prompts: Sequence[Any], completions: Sequence[Any], source: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Reference-free: similarity of each completion to its English source, times its CJK share.

    A copied source, which the cross-lingual encoder would score 1, gets 0.
    """
    texts = completion_texts(completions)
    sims = _similarities(texts, _aligned("source", texts, source))
    return [sim * _cjk_share(text) for sim, text in zip(sims, texts, strict=True)]


def script_score(text: str) -> float:
    """CJK share of the letters times (1 - Simplified-only share of the CJK characters), 0..1."""
    simplified, _ = simplified_only_characters()
    cjk = [c for c in text if is_cjk(c)]
    if not cjk:
        return 0.0
    simplified_share = sum(c in simplified for c in cjk) / len(cjk)
    return _cjk_share(text) * (1.0 - simplified_share)


def script_reward(
    prompts: Sequence[Any], completions: Sequence[Any], reference: Sequence[str] | None = None, **kwargs: Any
) -> list[float | None]:
    """Chinese, and Traditional.

    :func:`script_score` per completion; ``None`` where the reference (when there is one) holds no Chinese character.
    """
    texts = completion_texts(completions)
    references = _aligned("reference", texts, reference) if reference is not None else [None] * len(texts)
    return [
        None if ref is not None and not has_cjk(ref) else script_score(text)
        for text, ref in zip(texts, references, strict=True)
    ]


def health_flags(text: str, source: str, reference: str | None) -> dict[str, bool]:
    """The evaluation's output flags.

    Without a reference, "untranslated" means no Chinese at all and "over-long" is measured against the source.
    """
    empty = not text.strip()
    if reference is None:
        untranslated = not empty and (text.strip() == source.strip() or not has_cjk(text))
        over_long = is_over_long(text, source)
    else:
        untranslated = is_untranslated(text, source, reference)
        over_long = is_over_long(text, reference)
    return {"empty": empty, "looping": is_looping(text), "untranslated": untranslated, "over_long": over_long}


def health_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    source: Sequence[str] | None = None,
    reference: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """``-1`` for each health flag a completion raises (0 for a healthy one, at most -3)."""
    texts = completion_texts(completions)
    sources = _aligned("source", texts, source)
    references = _aligned("reference", texts, reference) if reference is not None else [None] * len(texts)
    return [-float(sum(health_flags(t, s, r).values())) for t, s, r in zip(texts, sources, references, strict=True)]


def reference_free_health_reward(
    prompts: Sequence[Any], completions: Sequence[Any], source: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """:func:`health_reward` without looking at any reference."""
    return health_reward(prompts, completions, source=source)


def reference_free_script_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """:func:`script_reward` without looking at any reference."""
    return [script_score(text) for text in completion_texts(completions)]


def constant_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """The constant control: 0 for every completion (no group has any spread, so nothing is learned)."""
    return [0.0] * len(completions)


def reward_functions(
    weights: dict[str, float], *, reference_free: bool = False, control: str = "none"
) -> tuple[list, list[float]]:
    """``(reward_funcs, reward_weights)`` for :class:`trl.GRPOTrainer` from the recipe.

    ``weights`` maps each of :data:`REWARD_NAMES` to its weight (missing: 0, left out). ``reference_free`` uses
    no reference at all (chrF must then be 0). ``control`` is one of :data:`CONTROLS`.
    """
    unknown = set(weights) - set(REWARD_NAMES)
    if unknown:
        raise ValueError(f"reward weights: unknown reward(s) {sorted(unknown)}; expected {list(REWARD_NAMES)}")
    if control not in CONTROLS:
        raise ValueError(f"reward_control must be one of {CONTROLS}, got {control!r}")
    for name, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"reward weight reward_{name} must be a number >= 0, got {weight!r}")
    if control == "constant":
        return [constant_reward], [1.0]
    if reference_free:
        if weights.get("chrf", 0):
            raise ValueError("reference_free_reward: chrF needs a reference; set reward_chrf: 0")
        if control == "shuffled":
            raise ValueError(
                "reward_control shuffled shuffles the references, which a reference-free reward never "
                "reads; use reward_control constant, or drop reference_free_reward"
            )
        table = {
            "semantic": semantic_source_reward,
            "script": reference_free_script_reward,
            "health": reference_free_health_reward,
        }
    elif control == "shuffled":
        table = {
            "chrf": chrf_shuffled_reward,
            "semantic": semantic_shuffled_reward,
            "script": script_reward,
            "health": health_reward,
        }
    else:
        table = {"chrf": chrf_reward, "semantic": semantic_reward, "script": script_reward, "health": health_reward}
    funcs, used = [], []
    for name in REWARD_NAMES:
        weight = float(weights.get(name, 0.0))
        if weight and name in table:
            funcs.append(table[name])
            used.append(weight)
    if not funcs:
        raise ValueError(f"no reward has a weight above 0 (reward weights {weights}, reference_free {reference_free})")
    return funcs, used
