"""Preference pairs made by the project: candidate selection, the scored run end to end, the chat judge."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import torch

from data_tools.preferences import Candidate, ChatJudge, JudgeError, make_pairs, select_pair
from data_tools.preferences.__main__ import main
from data_tools.preferences.judge import parse_ranking
from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.data import build_dpo_dataset


def test_best_and_worst_with_a_margin():
    cands = [Candidate("好", 60), Candidate("差", 10), Candidate("中", 35)]
    chosen, rejected = select_pair(cands, "參考", min_margin=20, poor_threshold=25)
    assert (chosen.text, rejected.text) == ("好", "差")
    assert select_pair(cands, "參考", min_margin=60, poor_threshold=25) == "margin_below_threshold"
    assert select_pair([Candidate("同", 50), Candidate("同 ", 10)], "參考", 1, 0) == "single_distinct_candidate"


def test_the_reference_is_chosen_when_every_candidate_is_poor():
    chosen, rejected = select_pair([Candidate("錯", 5), Candidate("更錯", 1)], "每期的利率。", 20, 25)
    assert (chosen.text, chosen.origin, rejected.text) == ("每期的利率。", "reference", "更錯")


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
    assert main(["--model", str(model_dir), "--input", str(source), "--output", str(out), "--num-candidates", "3",
                 "--max-new-tokens", "8", "--min-margin", "0", "--poor-threshold", "30", "--system", "finance"]) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["sources"] == 6 and report["kept"] + sum(report["dropped"].values()) == 6
    assert report["method"] == "chrf+semantic" and report["num_candidates"] == 4
    # a random model is poor everywhere: the reference becomes chosen
    assert report["reference_as_chosen"] == report["kept"] > 0
    dataset, stats = build_dpo_dataset([str(out)])
    assert len(dataset["train"]) == report["kept"]
    assert (out.with_suffix(".report.md")).read_text().startswith("# DPO pairs")


class _Judge(http.server.BaseHTTPRequestHandler):
    """A stand-in chat endpoint that ranks candidates by length, longest first (or replies nonsense)."""

    nonsense = False

    def do_POST(self):  # noqa: N802 (http.server's spelling)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        lines = [line for line in prompt.splitlines() if line.startswith("[")]
        ranking = sorted(range(len(lines)), key=lambda i: -len(lines[i]))
        content = "I cannot decide." if self.nonsense else f'Here: {{"ranking": {ranking}}}'
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
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    _Judge.nonsense = False


def test_chat_judge_ranks_through_an_openai_compatible_endpoint(judge_url):
    judge = ChatJudge(judge_url, "stub")
    assert judge.rank("Rate", ["短", "長一點的", "中等"]) == [0.0, 2.0, 1.0]
    _Judge.nonsense = True
    with pytest.raises(JudgeError, match="not a ranking of candidates 0..2"):
        judge.rank("Rate", ["短", "長一點的", "中等"])
    with pytest.raises(JudgeError, match="Connection refused|URLError|refused"):
        ChatJudge("http://127.0.0.1:9/v1", "stub", timeout=2).rank("x", ["a", "b"])


def test_parse_ranking():
    assert parse_ranking('{"ranking": [1, 0]}', 2) == [1, 0]
    for bad in ('{"ranking": [1, 1]}', "[0, 1]", '{"order": [0, 1]}'):
        with pytest.raises(JudgeError):
            parse_ranking(bad, 2)


def test_pairs_scored_by_the_judge(tmp_path, model_dir, judge_url):
    source = _rows(tmp_path / "lora.jsonl", n=3)
    out = tmp_path / "judged.jsonl"
    main(["--model", str(model_dir), "--input", str(source), "--output", str(out), "--num-candidates", "2",
          "--max-new-tokens", "6", "--judge-url", judge_url, "--min-margin", "1", "--poor-threshold", "0"])
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["method"] == "judge" and report["sources"] == 3
    for line in out.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert len(record["chosen"][-1]["content"]) >= len(record["rejected"][-1]["content"])
