"""The OpenAI-compatible server on 127.0.0.1, driven by the official ``openai`` client (streamed and not)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402
from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, translation_messages  # noqa: E402
from minimind_hf.serving import ServedModel, create_app  # noqa: E402
from minimind_hf.tokenization import load_tokenizer  # noqa: E402

MODEL = "tiny-test"
PROMPTS = ["Hello", "The bond market", "Interest rate", "A quarterly report", "Net income", "Shares"]


def _model() -> MiniMindForCausalLM:
    torch.manual_seed(0)  # a wide init, so that different prompts get visibly different greedy replies
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", initializer_range=0.3)).eval()


class _Server:
    def __init__(self, served: ServedModel):
        self.served = served
        self.server = uvicorn.Server(uvicorn.Config(create_app(served), host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=60)

    def post(self, path: str, body: bytes | dict) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return response.status, response.read().decode("utf-8")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.served.close()


@pytest.fixture(scope="module")
def server():
    served = ServedModel(_model(), load_tokenizer(), MODEL, max_model_len=512, batch_wait_s=0.25)
    running = _Server(served)
    yield running
    running.stop()


def _greedy(model, tokenizer, messages=None, text=None, max_new_tokens=12) -> str:
    """The reference: one ``model.generate`` call on one prompt, decoded as the server decodes."""
    if messages is not None:
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
    else:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=[0, 2],
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _chat(server, content, **kwargs):
    kwargs.setdefault("max_tokens", 12)
    kwargs.setdefault("temperature", 0)
    return server.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kwargs)


def test_models_are_listed(server):
    assert [m.id for m in server.client.models.list().data] == [MODEL]
    assert server.client.models.retrieve(MODEL).id == MODEL


def test_chat_completion_is_the_models_greedy_reply(server):
    reply = _chat(server, "The bond market")
    expected = _greedy(server.served.model, load_tokenizer(), [{"role": "user", "content": "The bond market"}])
    assert reply.choices[0].message.content == expected and expected.strip()
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 12 and reply.usage.prompt_tokens > 0


def test_streamed_chat_equals_the_non_streamed_one(server):
    whole = _chat(server, "Interest rate").choices[0].message.content
    chunks = list(_chat(server, "Interest rate", stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == whole
    assert sum(1 for p in pieces if p) > 1  # it really streamed, piece by piece
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 12


def test_completions_streamed_and_not(server):
    tokenizer = load_tokenizer()
    reply = server.client.completions.create(model=MODEL, prompt=["The bond", "Net"], max_tokens=8, temperature=0)
    assert [c.text for c in reply.choices] == [
        _greedy(server.served.model, tokenizer, text=t, max_new_tokens=8) for t in ("The bond", "Net")
    ]
    streamed = server.client.completions.create(
        model=MODEL, prompt="The bond", max_tokens=8, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_concurrent_requests_are_batched_and_equal_single_answers(server):
    singles = [_chat(server, p).choices[0].message.content for p in PROMPTS]
    assert len(set(singles)) == len(PROMPTS)  # distinct replies, so a mixed-up row would show
    before = len(server.served.engine.batch_sizes)
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: _chat(server, p).choices[0].message.content, PROMPTS))
    assert together == singles
    assert max(server.served.engine.batch_sizes[before:]) > 1


def test_max_tokens_and_stop(server):
    full = _chat(server, "Net income", max_tokens=12).choices[0].message.content
    stop = full[len(full) // 2 :][:2]
    cut = _chat(server, "Net income", max_tokens=12, stop=[stop, "never-there"]).choices[0]
    assert cut.message.content == full[: full.index(stop)] and cut.finish_reason == "stop"
    streamed = "".join(
        c.choices[0].delta.content or "" for c in _chat(server, "Net income", stop=stop, stream=True) if c.choices
    )
    assert streamed == cut.message.content
    short = _chat(server, "Net income", max_tokens=3)
    assert short.usage.completion_tokens == 3 and short.choices[0].finish_reason == "length"


def test_seed_repeats_a_sampled_answer(server):
    def sample(seed):
        return _chat(server, "Shares", temperature=1.0, top_p=0.9, seed=seed, max_tokens=16).choices[0].message.content

    first, again, other = sample(7), sample(7), sample(8)
    assert first == again
    assert first != other


def test_translate_uses_the_project_prompt(server):
    tokenizer = load_tokenizer()
    model = server.served.model
    status, plain = server.post("/v1/translate", {"text": "The interest rate.", "max_tokens": 10})
    assert status == 200 and plain["translation"] == _greedy(
        model, tokenizer, translation_messages("The interest rate."), max_new_tokens=10
    )
    status, finance = server.post(
        "/v1/translate", {"text": "The interest rate.", "max_tokens": 10, "system": "finance"}
    )
    assert status == 200 and finance["translation"] == _greedy(
        model, tokenizer, translation_messages("The interest rate.", system=FINANCE_SYSTEM_PROMPT), max_new_tokens=10
    )
    status, error = server.post("/v1/translate", {"text": "x", "system": "legal"})
    assert status == 400 and error["error"]["param"] == "system"


def test_openai_style_errors_and_the_server_survives(server):
    with pytest.raises(openai.NotFoundError) as err:
        server.client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        _chat(server, "hi", max_tokens=10_000)
    assert err.value.body["code"] == "context_length_exceeded"
    cases = {
        b"{not json": None,
        json.dumps({"model": MODEL}).encode(): "messages",
        json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": []}).encode(): "tools",
        json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 2}).encode(): "n",
        json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}).encode(): "messages.0.role",
        json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 9}
        ).encode(): "temperature",
    }
    for body, param in cases.items():
        status, answer = server.post("/v1/chat/completions", body)
        assert status == 400, body
        assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
        assert answer["error"]["param"] == param, (body, answer)
    status, answer = server.post("/v1/no-such-route", {})
    assert status == 404 and "error" in answer
    assert _chat(server, "Hello").choices[0].message.content  # still serving


def test_a_failed_generation_answers_500_and_the_server_goes_on(server, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(server.served.model, "generate", broken)
    with pytest.raises(openai.InternalServerError) as err:
        _chat(server, "Hello")
    assert "simulated" in err.value.body["message"]
    monkeypatch.undo()
    assert _chat(server, "Hello").choices[0].message.content


def test_the_page_is_served(server):
    status, page = server.get("/")
    assert status == 200
    assert 'id="source"' in page and 'id="output"' in page and "/v1/translate" in page
