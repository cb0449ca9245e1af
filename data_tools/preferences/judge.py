"""Rank candidate translations with any OpenAI-compatible chat endpoint (the "ask a chatbot" step).

``ChatJudge(url, model).rank(source, candidates)`` posts one ``/chat/completions`` request asking for
a JSON ranking, best first, and returns a score per candidate (the best gets ``len - 1``, the worst
``0``). Replies that are not a valid ranking are retried, then reported as :class:`JudgeError` with
the reply quoted — never silently turned into a score. Only the standard library is used (``urllib``);
an API key, when needed, comes from ``$OPENAI_API_KEY`` and is never logged.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence

SYSTEM = ("You are an expert English to Traditional Chinese (Taiwan) translator and reviewer. "
          "Rank translations from best to worst for accuracy, fluency and Taiwanese terminology.")


class JudgeError(RuntimeError):
    """The endpoint failed, or its reply was not a ranking of the candidates."""


def ranking_prompt(source: str, candidates: Sequence[str]) -> str:
    lines = [f"English source:\n{source}", "", "Candidate translations:"]
    lines += [f"[{i}] {text}" for i, text in enumerate(candidates)]
    lines += ["", f'Reply with JSON only: {{"ranking": [...]}} listing all {len(candidates)} candidate '
              "numbers, best first."]
    return "\n".join(lines)


def parse_ranking(reply: str, n: int) -> list[int]:
    """The candidate indices, best first, from a reply such as ``{"ranking": [2, 0, 1]}``."""
    match = re.search(r"\{.*\}", reply, flags=re.S)
    try:
        ranking = json.loads(match.group(0))["ranking"] if match else None
    except (json.JSONDecodeError, KeyError, TypeError):
        ranking = None
    if not isinstance(ranking, list) or sorted(ranking) != list(range(n)):
        raise JudgeError(f"the judge's reply is not a ranking of candidates 0..{n - 1}: {reply[:300]!r}")
    return [int(i) for i in ranking]


class ChatJudge:
    """A client of ``{url}/chat/completions`` (``url`` like ``http://127.0.0.1:8000/v1``)."""

    def __init__(self, url: str, model: str, timeout: float = 60.0, retries: int = 1) -> None:
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries = model, timeout, retries

    def _ask(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]})
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        request = urllib.request.Request(self.endpoint, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise JudgeError(f"{self.endpoint}: HTTP {err.code}: {err.read().decode('utf-8', 'replace')[:300]}") from err
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
            raise JudgeError(f"{self.endpoint}: {err}") from err
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise JudgeError(f"{self.endpoint}: not a chat completion: {str(payload)[:300]}") from err

    def rank(self, source: str, candidates: Sequence[str]) -> list[float]:
        """A score per candidate: ``len(candidates) - 1`` for the best, ``0`` for the worst."""
        prompt = ranking_prompt(source, candidates)
        error: JudgeError | None = None
        for _ in range(self.retries + 1):
            try:
                ranking = parse_ranking(self._ask(prompt), len(candidates))
            except JudgeError as err:
                error = err
                continue
            scores = [0.0] * len(candidates)
            for place, index in enumerate(ranking):
                scores[index] = float(len(candidates) - 1 - place)
            return scores
        raise error  # type: ignore[misc]
