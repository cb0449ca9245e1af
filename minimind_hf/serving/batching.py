"""Batched generation for the server: requests that arrive together share one ``model.generate`` call.

One worker thread owns the model. It takes the first waiting request, gathers whatever else arrives within
``batch_wait_s`` (up to ``max_batch_size``), groups the requests that can share a call and runs each group
as one left-padded batch:

* greedy requests always share a call (greedy decoding of a left-padded row equals decoding it alone);
* sampled requests without a seed share a call when their temperature and top_p agree;
* a request with a ``seed`` runs alone, with the generator seeded first, so the same seed gives the same
  answer whatever else the server is doing.

Each row keeps its own ``max_tokens`` and ``stop`` strings: a per-row stopping criterion ends a row when
its reply is complete (``generate`` then pads it), and the call ends when every row has. Text reaches the
caller as it is decoded -- held back while it ends in a partial UTF-8 character or could be the start of a
stop string -- through the request's ``emit`` callback: ``("delta", text)``, then ``("done", finish_reason,
completion_tokens)``, or ``("error", message)``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

logger = logging.getLogger(__name__)

Emit = Callable[..., None]


@dataclass
class GenerationRequest:
    """One prompt to continue; ``emit`` receives the events described in the module doc."""

    prompt_ids: list[int]
    max_new_tokens: int
    emit: Emit
    temperature: float = 0.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None
    cancelled: bool = False  # set when the caller has gone away; its row stops at the next token

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def batch_key(self) -> tuple:
        """Requests with equal keys may share one ``generate`` call."""
        if self.greedy:
            return ("greedy",)
        if self.seed is not None:
            return ("seeded", id(self))
        return ("sampled", self.temperature, self.top_p)


@dataclass
class _Row:
    """Decoding state of one request inside a batch."""

    request: GenerationRequest
    tokenizer: Any
    stop_ids: frozenset[int]
    ids: list[int] = field(default_factory=list)
    emitted: str = ""
    finish_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None or self.request.cancelled

    def _text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _send(self, text: str) -> None:
        if len(text) > len(self.emitted):
            self.request.emit("delta", text[len(self.emitted) :])
            self.emitted = text

    def finish(self, reason: str) -> None:
        if self.finish_reason is not None:
            return
        self.finish_reason = reason
        if not self.request.cancelled:
            self._send(self._cut(self._text())[0])
            self.request.emit("done", reason, len(self.ids))

    def _cut(self, text: str) -> tuple[str, bool]:
        """``text`` up to the first stop string, and whether one was found."""
        cuts = [text.find(s) for s in self.request.stop if s and s in text]
        return (text[: min(cuts)], True) if cuts else (text, False)

    def add(self, token: int) -> None:
        if self.done:
            return
        if token in self.stop_ids:
            self.finish("stop")
            return
        self.ids.append(token)
        text = self._text()
        cut, stopped = self._cut(text)
        if stopped:
            self.finish("stop")
            return
        if len(self.ids) >= self.request.max_new_tokens:
            self.finish("length")
            return
        if text.endswith("\ufffd"):  # a multi-byte character is not complete yet
            return
        hold = max((len(s) for s in self.request.stop), default=1) - 1  # could be a stop string's start
        self._send(text[: len(text) - hold] if hold else text)


class _RowStreamer(BaseStreamer):
    """Hands each step's new tokens of a batched ``generate`` call to the rows."""

    def __init__(self, rows: list[_Row]):
        self.rows = rows
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate first passes the prompt
            self.prompt_seen = True
            return
        tokens = value.reshape(len(self.rows), -1)[:, -1].tolist()
        for row, token in zip(self.rows, tokens, strict=True):
            row.add(int(token))

    def end(self) -> None:
        for row in self.rows:
            row.finish("length")


class _RowsDone(StoppingCriteria):
    """Per-row stop: a row is finished once its request is (stop string, max_tokens, eos or cancelled)."""

    def __init__(self, rows: list[_Row]):
        self.rows = rows

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)


class BatchingEngine:
    """The worker thread that runs every generation of the server (see the module doc)."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.01,
        stop_token_ids: Sequence[int] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.max_batch_size, self.batch_wait_s = max_batch_size, batch_wait_s
        ids = stop_token_ids if stop_token_ids is not None else [tokenizer.eos_token_id, tokenizer.pad_token_id]
        self.stop_token_ids = frozenset(int(i) for i in ids if i is not None)
        self.batch_sizes: list[int] = []  # one entry per generate call, for tests and logs
        self._queue: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="minimind-generate", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest) -> None:
        self._queue.put(request)

    def close(self, timeout: float | None = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _gather(self, first: GenerationRequest) -> tuple[list[GenerationRequest], bool]:
        pending, closing = [first], False
        deadline = time.monotonic() + self.batch_wait_s
        while len(pending) < self.max_batch_size * 4:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                closing = True
                break
            pending.append(item)
        return pending, closing

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending, closing = self._gather(first)
            groups: dict[tuple, list[GenerationRequest]] = {}
            for request in pending:
                if not request.cancelled:
                    groups.setdefault(request.batch_key(), []).append(request)
            for group in groups.values():
                for start in range(0, len(group), self.max_batch_size):
                    self._run(group[start : start + self.max_batch_size])
            if closing:
                return

    def _run(self, requests: list[GenerationRequest]) -> None:
        rows = [_Row(r, self.tokenizer, self.stop_token_ids) for r in requests]
        try:
            self._generate(rows)
        except Exception as err:  # a failed batch answers its requests; the server keeps running
            logger.exception("generation failed for a batch of %d", len(rows))
            for row in rows:
                if row.finish_reason is None:
                    row.finish_reason = "error"
                    row.request.emit("error", f"generation failed: {type(err).__name__}: {err}")

    @torch.inference_mode()
    def _generate(self, rows: list[_Row]) -> None:
        self.batch_sizes.append(len(rows))
        first = rows[0].request
        pad = self.tokenizer.pad_token_id
        width = max(len(r.request.prompt_ids) for r in rows)
        device = next(self.model.parameters()).device
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every row's next token is at the last position
            ids = row.request.prompt_ids
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids) :] = 1
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max(r.request.max_new_tokens for r in rows),
            pad_token_id=pad,
            eos_token_id=sorted(self.stop_token_ids),
            streamer=_RowStreamer(rows),
            stopping_criteria=StoppingCriteriaList([_RowsDone(rows)]),
            do_sample=not first.greedy,
        )
        if first.greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
            if first.seed is not None:
                torch.manual_seed(first.seed)
        self.model.generate(**kwargs)
