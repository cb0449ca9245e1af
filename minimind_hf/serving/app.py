"""An OpenAI-compatible HTTP server for a MiniMind checkpoint, and the translation page.

    minimind serve out/dpo [--adapter out/lora] [--host 127.0.0.1 --port 8000]

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (streamed as
server-sent events with ``"stream": true``, as the OpenAI API does), ``POST /v1/translate`` (English in,
zh-TW out with the project's translation prompt; ``"system": "finance"`` selects the finance prompt),
``GET /health`` and the translation page at ``/``. The generation knobs are the OpenAI API's:
``temperature`` (0 = greedy), ``top_p``, ``max_tokens`` (``max_completion_tokens``), ``stop``, ``seed``.
Concurrent requests are batched (:mod:`minimind_hf.serving.batching`).

Every error is answered in the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``: an unknown
model is a 404 ``model_not_found``, a prompt plus ``max_tokens`` beyond the context a 400
``context_length_exceeded``, a malformed body or an unsupported field a 400 ``invalid_request_error``; a
failed generation answers its own request with a 500 and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..prompts import SYSTEM_PROMPTS, TRANSLATION_PROMPTS, translation_messages
from ..tokenization import chat_ids
from .batching import BatchingEngine, GenerationRequest
from .schemas import APIError, ChatCompletionRequest, CompletionRequest, TranslateRequest, error_body

DEFAULT_MAX_TOKENS = 256


class _LockedTokenizer:
    """The tokenizer behind a lock.

    The request handlers encode while the worker thread decodes, and a fast tokenizer must not be used from two threads
    at once.
    """

    def __init__(self, tokenizer):
        self._tokenizer, self._lock = tokenizer, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def decode(self, *args, **kwargs) -> str:
        with self._lock:
            return self._tokenizer.decode(*args, **kwargs)

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        with self._lock:
            return chat_ids(self._tokenizer, messages, add_generation_prompt=True)  # control-token text stays text

    def text_ids(self, text: str) -> list[int]:
        with self._lock:
            return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])


class ServedModel:
    """A loaded model under one name, its batching engine and its context limit."""

    def __init__(
        self,
        model,
        tokenizer,
        name: str,
        *,
        max_model_len: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.01,
    ):
        self.model, self.name = model, name
        self.tokenizer = _LockedTokenizer(tokenizer)
        self.max_model_len = max_model_len or int(model.config.max_position_embeddings)
        self.default_max_tokens = default_max_tokens
        self.created = int(time.time())
        self.engine = BatchingEngine(model, self.tokenizer, max_batch_size=max_batch_size, batch_wait_s=batch_wait_s)

    def check_model(self, requested: str | None) -> None:
        if requested is not None and requested != self.name:
            raise APIError(
                404,
                f"The model `{requested}` does not exist; this server serves `{self.name}`",
                param="model",
                code="model_not_found",
            )

    def budget(self, prompt_ids: Sequence[int], requested: int | None) -> int:
        """How many tokens a reply may have; a 400 if the prompt plus ``requested`` exceed the context."""
        room = self.max_model_len - len(prompt_ids)
        if requested is not None and requested > room or room < 1:
            raise APIError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{len(prompt_ids) + (requested or 0)} tokens ({len(prompt_ids)} in the messages, "
                f"{requested or 0} in the completion). Please reduce the length of the messages or completion.",
                param="messages",
                code="context_length_exceeded",
            )
        return requested if requested is not None else min(self.default_max_tokens, room)

    def close(self) -> None:
        self.engine.close()


@dataclass
class _Choice:
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0


async def _generate(
    served: ServedModel, prompts: list[list[int]], body, limit: int | None
) -> AsyncIterator[tuple[int, tuple]]:
    """Submit one request per prompt and yield ``(index, event)`` until every one is done."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    requests = []
    for index, ids in enumerate(prompts):
        budget = served.budget(ids, limit)

        def emit(*event, index=index):
            loop.call_soon_threadsafe(events.put_nowait, (index, event))

        requests.append(
            GenerationRequest(
                ids, budget, emit, temperature=body.temperature, top_p=body.top_p, stop=body.stops, seed=body.seed
            )
        )
    for request in requests:
        served.engine.submit(request)
    open_rows = len(requests)
    try:
        while open_rows:
            index, event = await events.get()
            if event[0] in ("done", "error"):
                open_rows -= 1
            yield index, event
    finally:
        for request in requests:  # a client that went away stops its rows
            request.cancelled = True


async def _collect(served: ServedModel, prompts: list[list[int]], body, limit: int | None) -> list[_Choice]:
    choices = [_Choice() for _ in prompts]
    async for index, event in _generate(served, prompts, body, limit):
        if event[0] == "delta":
            choices[index].text += event[1]
        elif event[0] == "done":
            choices[index].finish_reason, choices[index].completion_tokens = event[1], event[2]
        else:
            raise APIError(500, event[1], type="server_error")
    return choices


def _usage(prompts: list[list[int]], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = sum(len(p) for p in prompts)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False) if not isinstance(payload, str) else payload}\n\n"


def _stream_response(chunks: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _page() -> str:
    return resources.files("minimind_hf.serving").joinpath("page.html").read_text(encoding="utf-8")


def create_app(served: ServedModel) -> FastAPI:
    """The FastAPI application serving ``served`` (see the module doc)."""
    app = FastAPI(title="MiniMind", description="OpenAI-compatible MiniMind server", version="1")
    app.state.served = served

    @app.exception_handler(APIError)
    async def _api_error(request: Request, err: APIError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems, param = [], None
        for item in err.errors():
            loc = [str(p) for p in item.get("loc", ()) if p != "body"]
            if item.get("type") == "json_invalid":
                problems.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error', item['msg'])})")
            else:
                param = param or (".".join(loc) or None)
                problems.append(f"{'.'.join(loc) or 'body'}: {item['msg']}")
        return JSONResponse(error_body("; ".join(problems), param=param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if err.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            error_body(f"{err.detail}: {request.method} {request.url.path}", type=kind), status_code=err.status_code
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"{type(err).__name__}: {err}", type="server_error"), status_code=500)

    def model_card() -> dict[str, Any]:
        return {
            "id": served.name,
            "object": "model",
            "created": served.created,
            "owned_by": "minimind",
            "max_model_len": served.max_model_len,
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": served.name}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return _page()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        served.check_model(model_id)
        return model_card()

    @app.get("/v1/translate/options")
    async def translate_options() -> dict[str, Any]:
        return {"system_prompts": sorted(SYSTEM_PROMPTS), "prompts": list(TRANSLATION_PROMPTS)}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest):
        served.check_model(body.model)
        prompts = [served.tokenizer.chat_ids([m.as_template_message() for m in body.messages])]
        return await _respond(prompts, body, body.limit, "chat")

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        served.check_model(body.model)
        if body.echo:
            raise APIError(400, "echo is not supported", param="echo")
        prompts = [served.tokenizer.text_ids(p) for p in body.prompts]
        if not all(prompts):
            raise APIError(400, "a prompt must not be empty", param="prompt")
        return await _respond(prompts, body, body.limit, "text")

    @app.post("/v1/translate")
    async def translate(body: TranslateRequest):
        served.check_model(body.model)
        if body.system is not None and body.system not in SYSTEM_PROMPTS:
            raise APIError(
                400, f"unknown system prompt {body.system!r}; choose one of {sorted(SYSTEM_PROMPTS)}", param="system"
            )
        if not 0 <= body.prompt_id < len(TRANSLATION_PROMPTS):
            raise APIError(400, f"prompt_id must be 0..{len(TRANSLATION_PROMPTS) - 1}", param="prompt_id")
        messages = translation_messages(
            body.text, prompt_id=body.prompt_id, system=SYSTEM_PROMPTS.get(body.system or "")
        )
        return await _respond([served.tokenizer.chat_ids(messages)], body, body.limit, "translation")

    async def _respond(prompts: list[list[int]], body, limit: int | None, kind: str):
        for ids in prompts:  # errors before anything is sent
            served.budget(ids, limit)
        ident = {"chat": "chatcmpl-", "text": "cmpl-", "translation": "tr-"}[kind] + uuid.uuid4().hex
        created = int(time.time())
        if not body.stream:
            choices = await _collect(served, prompts, body, limit)
            usage = _usage(prompts, sum(c.completion_tokens for c in choices))
            if kind == "translation":
                return {
                    "id": ident,
                    "object": "translation",
                    "created": created,
                    "model": served.name,
                    "translation": choices[0].text,
                    "finish_reason": choices[0].finish_reason,
                    "usage": usage,
                }
            if kind == "chat":
                listed = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": c.text},
                        "finish_reason": c.finish_reason,
                        "logprobs": None,
                    }
                    for i, c in enumerate(choices)
                ]
                obj = "chat.completion"
            else:
                listed = [
                    {"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
                    for i, c in enumerate(choices)
                ]
                obj = "text_completion"
            return {
                "id": ident,
                "object": obj,
                "created": created,
                "model": served.name,
                "choices": listed,
                "usage": usage,
            }
        return _stream_response(_chunks(prompts, body, limit, kind, ident, created))

    async def _chunks(prompts, body, limit, kind, ident, created) -> AsyncIterator[str]:
        obj = {"chat": "chat.completion.chunk", "text": "text_completion", "translation": "translation.chunk"}[kind]
        head = {"id": ident, "object": obj, "created": created, "model": served.name}

        def choice(index: int, text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
            if kind == "chat":
                delta = ({"role": "assistant", "content": ""} if first else {}) | (
                    {"content": text} if text is not None else {}
                )
                return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}

        def chunk(index: int, text: str | None, finish: str | None, first: bool = False) -> str:
            if kind == "translation":
                return _sse({**head, "delta": text or "", "finish_reason": finish})
            return _sse({**head, "choices": [choice(index, text, finish, first)]})

        if kind == "chat":
            for index in range(len(prompts)):
                yield chunk(index, None, None, first=True)
        completion_tokens = 0
        async for index, event in _generate(served, prompts, body, limit):
            if event[0] == "delta":
                yield chunk(index, event[1], None)
            elif event[0] == "done":
                completion_tokens += event[2]
                yield chunk(index, None, event[1])
            else:
                yield _sse(error_body(event[1], type="server_error"))
                return
        if body.include_usage:
            usage = _usage(prompts, completion_tokens)
            yield _sse({**head, "choices": [], "usage": usage} if kind != "translation" else {**head, "usage": usage})
        yield _sse("[DONE]")

    return app


def serve(
    model_path: str,
    *,
    adapter: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_model_name: str | None = None,
    device: str | None = None,
    dtype: str = "auto",
    max_model_len: int | None = None,
    max_batch_size: int = 8,
    batch_wait_ms: float = 10.0,
    log_level: str = "info",
) -> None:
    """Load ``model_path`` (with ``adapter`` merged on it, if given) and serve it until interrupted."""
    from pathlib import Path

    import uvicorn

    from ..checkpoints import default_device, load_checkpoint

    device = device or default_device()
    loaded = load_checkpoint(adapter or model_path, base=model_path if adapter else None, device=device, dtype=dtype)
    name = served_model_name or Path(adapter or model_path).resolve().name
    served = ServedModel(
        loaded.model,
        loaded.tokenizer,
        name,
        max_model_len=max_model_len,
        max_batch_size=max_batch_size,
        batch_wait_s=batch_wait_ms / 1000,
    )
    print(f"serving {name} ({loaded.kind}, {device}) on http://{host}:{port}  (translation page at /)", flush=True)
    try:
        uvicorn.run(create_app(served), host=host, port=port, log_level=log_level)
    finally:
        served.close()
