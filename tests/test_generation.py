"""Generation through transformers' generate: greedy, sampling controls, batching, the KV cache."""

import torch
from transformers import GenerationConfig, TextIteratorStreamer

from minimind_hf import MiniMindConfig, MiniMindForCausalLM


def _model():
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).eval()
    with torch.no_grad():  # sharper logits so sampling settings visibly matter
        model.lm_head.weight.mul_(20)
    return model


def test_greedy_is_argmax_step_by_step():
    model = _model()
    ids = torch.tensor([[5, 17, 300, 42]])
    out = model.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    seq = ids
    for _ in range(6):
        with torch.no_grad():
            nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)


def test_cached_equals_uncached():
    model = _model()
    ids = torch.randint(3, 6400, (2, 6))
    kw = dict(max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(model.generate(ids, use_cache=True, **kw), model.generate(ids, use_cache=False, **kw))


def test_left_padded_batch_equals_single_rows(tokenizer):
    model = _model()
    prompts = ["Translate: hello", "請翻譯這一段比較長的句子，謝謝"]
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    tokenizer.padding_side = "right"
    kw = dict(max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
    batched = model.generate(**batch, **kw)[:, batch["input_ids"].shape[1] :]
    for i, prompt in enumerate(prompts):
        single = tokenizer(prompt, return_tensors="pt")
        alone = model.generate(**single, **kw)[:, single["input_ids"].shape[1] :]
        assert torch.equal(batched[i], alone[0])


def test_sampling_controls():
    model = _model()
    ids = torch.tensor([[5, 17, 300]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    top3 = set(logits.topk(3).indices.tolist())
    for seed in range(5):
        torch.manual_seed(seed)
        out = model.generate(ids, max_new_tokens=1, do_sample=True, top_k=3, temperature=1.5, pad_token_id=0)
        assert out[0, -1].item() in top3
    torch.manual_seed(0)
    a = model.generate(ids, max_new_tokens=8, do_sample=True, top_p=0.9, temperature=0.8, pad_token_id=0)
    torch.manual_seed(0)
    b = model.generate(ids, max_new_tokens=8, do_sample=True, top_p=0.9, temperature=0.8, pad_token_id=0)
    assert torch.equal(a, b)  # seeded sampling is reproducible
    # a tiny top_p keeps only the most likely token, i.e. greedy
    greedy = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0, eos_token_id=None)
    nucleus = model.generate(ids, max_new_tokens=5, do_sample=True, top_p=1e-6, pad_token_id=0, eos_token_id=None)
    assert torch.equal(greedy, nucleus)


def test_repetition_penalty_discourages_repeats():
    model = _model()
    ids = torch.tensor([[7, 7, 7, 7]])
    kw = dict(max_new_tokens=20, do_sample=False, pad_token_id=0, eos_token_id=None)
    plain = model.generate(ids, **kw)[0, 4:]
    penalised = model.generate(ids, repetition_penalty=5.0, **kw)[0, 4:]
    assert len(set(penalised.tolist())) > len(set(plain.tolist()))


def test_streamer_yields_the_generated_text(tokenizer):
    model = _model()
    inputs = tokenizer("hello", return_tensors="pt")
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    import threading

    config = GenerationConfig(max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    thread = threading.Thread(target=model.generate, kwargs=dict(**inputs, generation_config=config, streamer=streamer))
    thread.start()
    text = "".join(streamer)
    thread.join()
    full = model.generate(**inputs, generation_config=config)
    assert text == tokenizer.decode(full[0, inputs["input_ids"].shape[1] :])
