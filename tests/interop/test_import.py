"""`minimind import`: llama2.c / course .pt checkpoints, MiniMind-3 and the original's LoRA.

The .pt checkpoints come with their SentencePiece tokenizer; all are checked against direct implementations written
here.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.cli import main as cli_main
from minimind_hf.interop.importer import import_checkpoint
from minimind_hf.interop.llama2c import load_llama2c
from minimind_hf.interop.original import import_original_lora, load_original
from minimind_hf.spm import convert_sentencepiece
from tests.interop.test_convert import _course_forward, _rms
from tests.paths import ROOT

spm = pytest.importorskip("sentencepiece")

# dim 80: int(2 * 4 * 80 / 3) = 213 rounds up to 224 with multiple_of 32, to 256 with MiniMind's 64
MODEL_ARGS = dict(
    dim=80,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    vocab_size=400,
    multiple_of=32,
    norm_eps=1e-5,
    max_seq_len=64,
    dropout=0.0,
)


def _llama2c_state(seed=0, vocab=400, dim=80, hidden=224, n_heads=4, n_kv=2):
    g = torch.Generator().manual_seed(seed)

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    kv = dim // n_heads * n_kv
    sd = {"tok_embeddings.weight": w(vocab, dim), "norm.weight": 1 + w(dim)}
    sd["output.weight"] = sd["tok_embeddings.weight"]  # llama2.c ties them
    for i in range(2):
        p = f"layers.{i}."
        sd |= {
            p + "attention.wq.weight": w(dim, dim),
            p + "attention.wk.weight": w(kv, dim),
            p + "attention.wv.weight": w(kv, dim),
            p + "attention.wo.weight": w(dim, dim),
            p + "attention_norm.weight": 1 + w(dim),
            p + "ffn_norm.weight": 1 + w(dim),
            p + "feed_forward.w1.weight": w(hidden, dim),
            p + "feed_forward.w2.weight": w(dim, hidden),
            p + "feed_forward.w3.weight": w(hidden, dim),
        }
    return sd


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "_orig_mod"])
def test_llama2c_checkpoint_matches_the_interleaved_reference(tmp_path, compiled):
    sd = _llama2c_state()
    saved = {("_orig_mod." + k if compiled else k): v for k, v in sd.items()}
    torch.save({"model_args": MODEL_ARGS, "model": saved, "iter_num": 10, "best_val_loss": 3.0}, tmp_path / "ck.pt")
    model = load_llama2c(tmp_path / "ck.pt").eval()
    assert model.config.intermediate_size == 224 and model.config.num_key_value_heads == 2
    ids = torch.randint(0, 400, (2, 12))
    with torch.no_grad():
        ours = model(input_ids=ids).logits
    assert (ours - _course_forward(sd, ids, n_heads=4, n_kv=2)).abs().max().item() < 1e-5


def test_untied_output_stays_untied():
    sd = _llama2c_state()
    sd["output.weight"] = sd["output.weight"] + 0.01
    model = load_original(sd, MODEL_ARGS, layout="course").eval()
    assert not model.config.tie_word_embeddings
    ids = torch.randint(0, 400, (1, 8))
    with torch.no_grad():
        assert (model(input_ids=ids).logits - _course_forward(sd, ids, n_heads=4, n_kv=2)).abs().max().item() < 1e-5


def _train_sentencepiece(path: Path, vocab_size: int = 400) -> Path:
    texts = [json.loads(line)["text"] for line in (ROOT / "data" / "sample" / "pretrain.jsonl").open()]
    text = "\n".join(t for t in texts if t.isascii())[:6000]  # a few KB
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.split("\n")),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        minloglevel=2,
    )
    path.write_bytes(buffer.getvalue())
    return path


PROBES = [
    "Hello world,  this is   a test",
    " a leading space and ü, 中文, 🙂",
    "The bond yield\trose 3.5%.",
    "Settlement occurs on T+2.",
]


def test_sentencepiece_round_trips_the_same_ids(tmp_path):
    model_file = _train_sentencepiece(tmp_path / "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    converted = convert_sentencepiece(model_file)
    converted.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    for text in PROBES:
        ids = sp.encode(text)
        assert converted(text, add_special_tokens=False)["input_ids"] == ids
        assert reloaded(text, add_special_tokens=False)["input_ids"] == ids
        assert reloaded(text)["input_ids"] == [sp.bos_id(), *ids]  # llama2.c encodes with bos
        assert reloaded.decode(ids) == sp.decode(ids)
    assert (reloaded.bos_token_id, reloaded.eos_token_id, reloaded.unk_token_id) == (1, 2, 0)


def test_minimind_import_cli_then_generate(tmp_path, capsys):
    model_file = _train_sentencepiece(tmp_path / "tokenizer.model")
    sd = _llama2c_state()
    torch.save({"model_args": MODEL_ARGS, "model": {"_orig_mod." + k: v for k, v in sd.items()}}, tmp_path / "ck.pt")
    out = tmp_path / "hf"
    assert cli_main(["import", str(tmp_path / "ck.pt"), str(out), "--tokenizer", str(model_file)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("The bond", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert (model(input_ids=ids).logits - _course_forward(sd, ids, n_heads=4, n_kv=2)).abs().max().item() < 1e-5
    assert cli_main(["generate", str(out), "The bond", "--max-new-tokens", "4"]) == 0
    assert (
        cli_main(
            [
                "import",
                str(tmp_path / "ck.pt"),
                str(tmp_path / "llama"),
                "--tokenizer",
                str(model_file),
                "--to",
                "llama",
            ]
        )
        == 0
    )
    llama = AutoModelForCausalLM.from_pretrained(tmp_path / "llama").eval()
    assert type(llama).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        assert (llama(input_ids=ids).logits - model(input_ids=ids).logits).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="give --tokenizer"):
        import_checkpoint(tmp_path / "ck.pt", tmp_path / "x")


def test_original_lora_imports_as_a_peft_adapter(tmp_path, saved_tiny):
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(saved_tiny).eval()
    g = torch.Generator().manual_seed(1)
    lora, rank = {}, 4
    square = [n for n, m in base.named_modules() if isinstance(m, torch.nn.Linear) and m.in_features == m.out_features]
    assert square == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "o_proj")]
    for name in square:  # model_lora.py: A = Linear(in, r), B = Linear(r, out), saved as <name>.lora.A/B.weight
        lora[f"{name}.lora.A.weight"] = torch.randn(rank, 64, generator=g) * 0.1
        lora[f"{name}.lora.B.weight"] = torch.randn(64, rank, generator=g) * 0.1
    torch.save(lora, tmp_path / "lora_finance.pth")
    assert (
        cli_main(["import", str(tmp_path / "lora_finance.pth"), str(tmp_path / "adapter"), "--base", str(saved_tiny)])
        == 0
    )
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(saved_tiny), tmp_path / "adapter").eval()

    # the original's forward: every square layer gives W x + B(A(x)), no scaling
    reference = AutoModelForCausalLM.from_pretrained(saved_tiny).eval()
    modules = dict(reference.named_modules())
    for name in square:
        layer = modules[name]
        a, b = lora[f"{name}.lora.A.weight"], lora[f"{name}.lora.B.weight"]
        layer.forward = lambda x, layer=layer, a=a, b=b: F.linear(x, layer.weight) + F.linear(F.linear(x, a), b)
    ids = torch.randint(3, 6400, (2, 10))
    with torch.no_grad():
        diff = (adapted(input_ids=ids).logits - reference(input_ids=ids).logits).abs().max().item()
        moved = (adapted(input_ids=ids).logits - base(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-5 and moved > 1e-3
    with pytest.raises(ValueError, match="do not fit"):
        import_original_lora(
            {
                "model.layers.0.self_attn.q_proj.lora.A.weight": torch.zeros(4, 32),
                "model.layers.0.self_attn.q_proj.lora.B.weight": torch.zeros(64, 4),
            },
            base,
            tmp_path / "y",
        )


def _minimind3_forward(sd, ids, n_heads, n_kv, eps=1e-6, theta=1e6, experts=0):
    """MiniMind-3 written out: per-head q/k RMSNorm before a half-split rotary, GQA, SwiGLU or top-1 MoE."""
    h = sd["model.embed_tokens.weight"][ids]
    bsz, seq, dim = h.shape
    hd = sd["model.layers.0.self_attn.q_norm.weight"].shape[0]
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    angles = torch.outer(torch.arange(seq).float(), freqs)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

    def rope(x):  # [b, heads, s, d]
        half = torch.cat((-x[..., hd // 2 :], x[..., : hd // 2]), -1)
        return x * cos + half * sin

    def mlp(x, p):
        return (F.silu(x @ sd[p + "gate_proj.weight"].T) * (x @ sd[p + "up_proj.weight"].T)) @ sd[
            p + "down_proj.weight"
        ].T

    mask = torch.full((seq, seq), float("-inf")).triu(1)
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("model.layers."))
    for i in range(layers):
        p = f"model.layers.{i}."
        x = _rms(h, sd[p + "input_layernorm.weight"], eps)
        q = _rms(
            (x @ sd[p + "self_attn.q_proj.weight"].T).view(bsz, seq, n_heads, hd),
            sd[p + "self_attn.q_norm.weight"],
            eps,
        )
        k = _rms(
            (x @ sd[p + "self_attn.k_proj.weight"].T).view(bsz, seq, n_kv, hd), sd[p + "self_attn.k_norm.weight"], eps
        )
        v = (x @ sd[p + "self_attn.v_proj.weight"].T).view(bsz, seq, n_kv, hd)
        q, k, v = rope(q.transpose(1, 2)), rope(k.transpose(1, 2)), v.transpose(1, 2)
        k, v = k.repeat_interleave(n_heads // n_kv, 1), v.repeat_interleave(n_heads // n_kv, 1)
        att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd) + mask, -1) @ v
        h = h + att.transpose(1, 2).reshape(bsz, seq, -1) @ sd[p + "self_attn.o_proj.weight"].T
        x = _rms(h, sd[p + "post_attention_layernorm.weight"], eps)
        if experts:
            choice = (x @ sd[p + "mlp.gate.weight"].T).argmax(-1)  # top-1, its weight renormalised to 1
            out = torch.stack([mlp(x, p + f"mlp.experts.{e}.") for e in range(experts)], -2)
            h = h + out.gather(-2, choice[..., None, None].expand(*choice.shape, 1, dim)).squeeze(-2)
        else:
            h = h + mlp(x, p + "mlp.")
    return _rms(h, sd["model.norm.weight"], eps) @ sd["model.embed_tokens.weight"].T


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_minimind3_state_dict_imports(tmp_path, moe):
    """A state dict in MiniMind-3's naming (q_norm / k_norm, mlp.gate + experts) gives its logits."""
    g = torch.Generator().manual_seed(0)
    hidden, heads, kv, hd, width = 64, 4, 2, 16, 256

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.08

    sd = {"model.embed_tokens.weight": w(6400, hidden), "model.norm.weight": 1 + w(hidden)}
    for i in range(2):
        p = f"model.layers.{i}."
        sd |= {
            p + "self_attn.q_proj.weight": w(heads * hd, hidden),
            p + "self_attn.k_proj.weight": w(kv * hd, hidden),
            p + "self_attn.v_proj.weight": w(kv * hd, hidden),
            p + "self_attn.o_proj.weight": w(hidden, heads * hd),
            p + "self_attn.q_norm.weight": 1 + w(hd),
            p + "self_attn.k_norm.weight": 1 + w(hd),
            p + "input_layernorm.weight": 1 + w(hidden),
            p + "post_attention_layernorm.weight": 1 + w(hidden),
        }
        mlps = [p + f"mlp.experts.{e}." for e in range(4)] if moe else [p + "mlp."]
        if moe:
            sd[p + "mlp.gate.weight"] = w(4, hidden)
        for m in mlps:
            sd |= {
                m + "gate_proj.weight": w(width, hidden),
                m + "up_proj.weight": w(width, hidden),
                m + "down_proj.weight": w(hidden, width),
            }
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    torch.save(sd, tmp_path / "pretrain_768.pth")
    tok = tmp_path / "tok"
    from minimind_hf.tokenization import load_tokenizer, save_tokenizer

    save_tokenizer(load_tokenizer(), tok)
    assert cli_main(["import", str(tmp_path / "pretrain_768.pth"), str(tmp_path / "hf"), "--tokenizer", str(tok)]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert model.config.qk_norm and model.config.rms_norm_eps == 1e-6 and model.config.use_moe == moe
    ids = torch.randint(0, 6400, (2, 10))
    with torch.no_grad():
        ours = model(input_ids=ids).logits
    assert (ours - _minimind3_forward(sd, ids, heads, kv, experts=4 if moe else 0)).abs().max().item() < 1e-4


def test_minimind3_presets():
    counts = {}
    for name in ("minimind-3", "minimind-3-moe"):
        config = MiniMindConfig.from_preset(name)
        with torch.device("meta"):
            model = MiniMindForCausalLM(config)
        total = sum(p.numel() for p in model.parameters())
        experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        counts[name] = (
            total,
            total - experts + experts // max(config.n_routed_experts, 1) if config.use_moe else total,
        )
    assert counts == {"minimind-3": (63_912_192, 63_912_192), "minimind-3-moe": (198_416_640, 63_936_768)}
    assert MiniMindConfig.from_preset("minimind-3").intermediate_size == 2432
