"""Grade candidate translations with any OpenAI-compatible chat endpoint (the "ask a chatbot" step).

``ChatJudge(url, model).grade(source, reference, candidates)`` posts one ``/chat/completions`` request
showing the source and the reference translation and asking for a JSON list of absolute grades, 0-100,
one per candidate, each on its own (never a rank: five poor candidates must all score low, so that the
reference can replace them). Replies that are not such a list are retried, then reported as
:class:`JudgeError` with the reply quoted, never silently turned into a score. Only the standard
library is used (``urllib``); an API key, when needed, comes from ``$OPENAI_API_KEY`` and is never logged.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence

SYSTEM = (
    "You are an expert English to Traditional Chinese (Taiwan) translator and reviewer. "
    "Grade each translation on its own for accuracy, fluency, Traditional script and Taiwanese terminology."
)


class JudgeError(RuntimeError):
    """The endpoint failed, or its reply was not a ranking of the candidates."""


def grading_prompt(source: str, reference: str, candidates: Sequence[str]) -> str:
    lines = [f"English source:\n{source}", "", f"Reference translation:\n{reference}", "", "Candidate translations:"]
    lines += [f"[{i}] {text}" for i, text in enumerate(candidates)]
    lines += [
        "",
        "Grade every candidate from 0 to 100 on its own, not against the other candidates: 100 means as "
        "good as the reference, 0 means wrong, untranslated, not in Traditional Chinese, or not a translation.",
        f'Reply with JSON only: {{"scores": [...]}} with {len(candidates)} numbers, in candidate order.',
    ]
    return "\n".join(lines)


def parse_scores(reply: str, n: int) -> list[float]:
    """The grades, in candidate order, from a reply such as ``{"scores": [80, 15, 40]}``."""
    match = re.search(r"\{.*\}", reply, flags=re.S)
    try:
        scores = json.loads(match.group(0))["scores"] if match else None
    except (json.JSONDecodeError, KeyError, TypeError):
        scores = None
    if (
        not isinstance(scores, list)
        or len(scores) != n
        or not all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 100 for x in scores)
    ):
        raise JudgeError(f"the judge's reply is not {n} grades between 0 and 100: {reply[:300]!r}")
    return [float(x) for x in scores]


class ChatJudge:
    """A client of ``{url}/chat/completions`` (``url`` like ``http://127.0.0.1:8000/v1``)."""

    def __init__(self, url: str, model: str, timeout: float = 60.0, retries: int = 1) -> None:
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries = model, timeout, retries

    def _ask(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            }
        )
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        request = urllib.request.Request(self.endpoint, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise JudgeError(
                f"{self.endpoint}: HTTP {err.code}: {err.read().decode('utf-8', 'replace')[:300]}"
            ) from err
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
            raise JudgeError(f"{self.endpoint}: {err}") from err
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise JudgeError(f"{self.endpoint}: not a chat completion: {str(payload)[:300]}") from err

    def grade(self, source: str, reference: str, candidates: Sequence[str]) -> list[float]:
        """An absolute grade, 0-100, per candidate."""
        prompt = grading_prompt(source, reference, candidates)
        error: JudgeError | None = None
        for _ in range(self.retries + 1):
            try:
                return parse_scores(self._ask(prompt), len(candidates))
            except JudgeError as err:
                error = err
        raise error  # type: ignore[misc]
