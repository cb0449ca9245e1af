"""Finance-domain selection for the LoRA stage.

A pair is finance when its source is a finance source (currency names, chart-of-accounts templates)
or its English side mentions a term of the shipped list ``data_tools/resources/finance_terms_en.txt``
(one term per line, ``#`` comments; matched case-insensitively on word boundaries, with simple
plural forms).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

TERMS_RESOURCE = "finance_terms_en.txt"


def load_terms(path: Path | str | None = None) -> list[str]:
    """The finance terms: from ``path``, or the list shipped with :mod:`data_tools`."""
    if path is None:
        text = resources.files("data_tools").joinpath("resources", TERMS_RESOURCE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    terms = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            terms.append(line)
    if not terms:
        raise ValueError(f"{path or TERMS_RESOURCE}: no finance terms")
    return terms


class FinanceMatcher:
    """``matcher(en)`` is True when ``en`` mentions one of the terms."""

    def __init__(self, terms: list[str] | None = None) -> None:
        terms = terms if terms is not None else load_terms()
        alternatives = []
        for term in sorted(set(terms), key=lambda t: (-len(t), t)):
            words = [re.escape(w) for w in term.split()]
            body = r"[\s-]+".join(words)
            if term.isupper():  # acronyms (NPV, IRR) match case-sensitively
                alternatives.append(f"(?-i:{body})")
            else:
                alternatives.append(f"{body}(?:s|es)?")
        self.pattern = re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)

    def __call__(self, en: str) -> bool:
        return self.pattern.search(en) is not None

    def match(self, en: str) -> str | None:
        m = self.pattern.search(en)
        return m.group(0) if m else None
