"""The speedrun instrument.

The CPU-budget callback, the labelled-positions loss, the derived data files, and a whole run (decoder-only and the
encoder-decoder anchor) on a budget of a few CPU seconds.
"""

import json
import sys
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl, TrainerState

from tests.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import speedrun_data  # noqa: E402

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402
from minimind_hf.prompts import TRANSLATION_PROMPTS  # noqa: E402
from minimind_hf.training.cpu_budget import BUDGET_REPORT, CpuBudgetCallback, budget_fractions  # noqa: E402
from minimind_hf.training.labelled_loss import labelled_positions_loss  # noqa: E402


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_budget_callback_saves_at_each_fraction_and_stops_at_the_whole(tmp_path):
    clock = FakeClock()
    callback = CpuBudgetCallback(10.0, fractions=(0.5, 0.25), clock=clock)
    args = SimpleNamespace(output_dir=str(tmp_path), should_save=True, include_num_input_tokens_seen="no")
    state = TrainerState()
    callback.on_init_end(args, state, TrainerControl())
    assert args.include_num_input_tokens_seen == "non_padding"
    callback.on_train_begin(args, state, TrainerControl())
    decisions = []
    for step, spent in enumerate([1.0, 2.6, 3.0, 5.1, 9.9, 10.2], start=1):
        clock.now = 100.0 + spent
        state.global_step, state.num_input_tokens_seen = step, 100 * step
        control = callback.on_step_end(args, state, TrainerControl())
        decisions.append((control.should_save, control.should_training_stop))
    assert decisions == [(False, False), (True, False), (False, False), (True, False), (False, False), (True, True)]
    report = json.loads((tmp_path / BUDGET_REPORT).read_text())
    assert [(m["fraction"], m["step"], m["tokens_seen"], m["checkpoint"]) for m in report["marks"]] == [
        (0.25, 2, 200, "checkpoint-2"),
        (0.5, 4, 400, "checkpoint-4"),
        (1.0, 6, 600, "checkpoint-6"),
    ]


def test_a_step_past_two_fractions_saves_once(tmp_path):
    clock = FakeClock()
    callback = CpuBudgetCallback(10.0, fractions=(0.25, 0.5), clock=clock)
    args = SimpleNamespace(output_dir=str(tmp_path), should_save=True, include_num_input_tokens_seen="all")
    state = TrainerState()
    callback.on_train_begin(args, state, TrainerControl())
    saves = []
    for step, spent in enumerate([1.0, 5.1, 6.0, 10.2], start=1):
        clock.now = 100.0 + spent
        state.global_step = step
        saves.append(callback.on_step_end(args, state, TrainerControl()).should_save)
    assert saves == [False, True, False, True]
    assert [(m["fraction"], m["step"]) for m in callback.marks] == [(0.5, 2), (1.0, 4)]


def test_a_run_that_ends_by_max_steps_inside_the_budget_is_saved_at_its_last_step(tmp_path):
    clock = FakeClock()
    callback = CpuBudgetCallback(10.0, fractions=(0.5,), clock=clock)
    args = SimpleNamespace(output_dir=str(tmp_path), should_save=True, include_num_input_tokens_seen="all")
    state = TrainerState(max_steps=3)
    callback.on_train_begin(args, state, TrainerControl())
    saves = []
    for step, spent in enumerate([2.0, 5.5, 7.0], start=1):
        clock.now = 100.0 + spent
        state.global_step = step
        saves.append(callback.on_step_end(args, state, TrainerControl()).should_save)
    assert saves == [False, True, True]
    assert [(m["fraction"], m["step"]) for m in callback.marks] == [(0.5, 2), (0.7, 3)]


def test_budget_fractions_are_checked():
    assert budget_fractions([0.5, 0.25]) == (0.25, 0.5, 1.0)
    with pytest.raises(ValueError, match="fractions"):
        budget_fractions([0.0, 0.5])
    with pytest.raises(ValueError, match="positive"):
        CpuBudgetCallback(0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_labelled_positions_loss_equals_the_full_loss_and_its_gradients(smoothing):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    input_ids = torch.randint(3, 6400, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 9:] = 0
    labels = torch.full_like(input_ids, -100)
    labels[0, 5:] = input_ids[0, 5:]
    labels[1, 8:11] = input_ids[1, 8:11]
    labels[2, 4:9] = input_ids[2, 4:9]
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    full = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        label_smoothing=smoothing,
    )
    full.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    loss = labelled_positions_loss(model, inputs, label_smoothing=smoothing)
    loss.backward()
    assert loss.item() == pytest.approx(full.item(), rel=1e-5)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)
    # divided by the Trainer's count when it gives one (gradient accumulation)
    labelled = int((labels[:, 1:] != -100).sum())
    halved = labelled_positions_loss(
        model, inputs, num_items_in_batch=torch.tensor(2 * labelled), label_smoothing=smoothing
    )
    assert halved.item() == pytest.approx(full.item() / 2, rel=1e-5)


def test_the_stage_trainer_takes_the_labelled_path_when_asked(tmp_path, monkeypatch):
    """MiniMindTrainer's own compute_loss (the MoE balance-weight fix) must not bypass the labelled path."""
    from transformers import TrainingArguments

    from minimind_hf.training import trainers

    calls = []

    def spy(model, inputs, num_items_in_batch=None, label_smoothing=0.0):
        calls.append(num_items_in_batch)
        return labelled_positions_loss(model, inputs, num_items_in_batch, label_smoothing)

    monkeypatch.setattr(trainers, "labelled_positions_loss", spy)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    trainer = trainers.MiniMindTrainer(
        model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    )
    input_ids = torch.randint(3, 6400, (2, 8))
    labels = torch.full_like(input_ids, -100)
    labels[:, 4:] = input_ids[:, 4:]
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    model.train()
    full = trainer.compute_loss(model, inputs)
    assert calls == []
    trainer.labelled_logits_only = True
    labelled = trainer.compute_loss(model, inputs)
    assert len(calls) == 1 and labelled.item() == pytest.approx(full.item(), rel=1e-5)


def test_chat_pairs_come_back_from_every_prompt_phrasing(tmp_path):
    rows = [
        {
            "conversations": [
                {"role": "user", "content": p.format(en=f"Open file {i}")},
                {"role": "assistant", "content": f"開啟檔案 {i}"},
            ]
        }
        for i, p in enumerate(TRANSLATION_PROMPTS)
    ]
    source = tmp_path / "sft.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert list(speedrun_data.pairs(source)) == [
        {"en": f"Open file {i}", "zh": f"開啟檔案 {i}"} for i in range(len(rows))
    ]
    assert speedrun_data.derive("pretrain-pairs", source, tmp_path / "pt.jsonl") == 2 * len(rows)
    assert speedrun_data.derive("both-directions", source, tmp_path / "both.jsonl") == 2 * len(rows)
    reverse = json.loads((tmp_path / "both.jsonl").read_text(encoding="utf-8").splitlines()[1])
    assert reverse["conversations"][1]["content"] == "Open file 0"
    assert speedrun_data.derive("sentences", source, tmp_path / "s.jsonl") == 0  # 3 words: not sentence-like
    source.write_text(
        json.dumps(
            {"conversations": [{"role": "user", "content": "Summarise this."}, {"role": "assistant", "content": "好"}]}
        )
        + "\n"
    )
    with pytest.raises(ValueError, match=r"sft\.jsonl:1: .*none of the project's translation prompts"):
        list(speedrun_data.pairs(source))


def four_test_pairs(tmp_path):
    """A four-row ``{"en", "zh"}`` test file for the scoring of a run."""
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(
        "".join(
            json.dumps({"en": f"Open file {i}", "zh": f"開啟檔案 {i}"}, ensure_ascii=False) + "\n" for i in range(4)
        ),
        encoding="utf-8",
    )
    return test_file


@pytest.mark.slow
def test_a_tiny_budget_run_and_the_anchor_make_leaderboard_rows(tmp_path, monkeypatch):
    import speedrun
    import speedrun_board

    test_file = four_test_pairs(tmp_path)
    monkeypatch.setattr(speedrun, "RUNS", tmp_path / "runs")
    board = tmp_path / "board"
    speedrun.main(
        [
            "run",
            "--name",
            "tiny",
            "--budget",
            "3",
            "--recipe",
            "recipes/tiny/sft.yaml",
            "--pretrain-recipe",
            "recipes/tiny/pretrain.yaml",
            "--model-config",
            '{"num_hidden_layers": 1}',
            "--test-file",
            str(test_file),
            "--board",
            str(board),
            "--comparison",
            "test",
            "--",
            "--max_eval_samples",
            "8",
            "--max_length",
            "64",
        ]
    )
    (row,) = speedrun_board.read_rows(board)
    assert row["name"] == "tiny" and row["kind"] == "decoder-only" and row["budget_cpu_s"] == 3
    assert [c["fraction"] for c in row["checkpoints"]] == [0.25, 0.5, 1.0]
    assert row["checkpoints"][-1]["cpu_s"] >= 3
    assert row["tokens_seen"] > 0 and row["tokens_per_cpu_s"] > 0
    assert all(c["n"] == 4 and 0 <= c["chrf"] <= 100 and c["val_loss"] > 0 for c in row["checkpoints"])
    assert "--max_cpu_seconds 3.0" in row["commands"][-1] and "tiny" in (board / "leaderboard.md").read_text()
    assert (board / "chrf_test.png").stat().st_size > 0

    speedrun.main(
        [
            "anchor",
            "--name",
            "anchor",
            "--budget",
            "2",
            "--test-file",
            str(test_file),
            "--board",
            str(board),
            "--comparison",
            "test",
            "--fractions",
            "1.0",
            "--anchor-args",
            "--train-file data/sample/sft.jsonl --validation-file data/sample/sft.validation.jsonl --validation-rows 8",
        ]
    )
    anchor = speedrun_board.read_rows(board)[-1]
    assert anchor["kind"] == "encoder-decoder" and 6.0e6 < anchor["params"] < 6.5e6
    assert anchor["checkpoints"][-1]["cpu_s"] >= 2 and anchor["checkpoints"][-1]["n"] == 4


def test_decode_scores_a_trained_model_folder_with_other_decoding(tmp_path, tokenizer, monkeypatch):
    import speedrun
    import speedrun_board

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the command's one thread is for its own process

    from minimind_hf.tokenization import save_tokenizer

    test_file = four_test_pairs(tmp_path)
    model_dir = tmp_path / "sft"
    torch.manual_seed(0)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(model_dir)
    save_tokenizer(tokenizer, model_dir)
    board = tmp_path / "board"
    for name, beams in (("greedy", "1"), ("beam2", "2")):
        speedrun.main(
            ["decode", "--model", str(model_dir), "--num-beams", beams, "--name", name, "--comparison", "decoding"]
            + ["--test-file", str(test_file), "--board", str(board)]
        )
    greedy, beam = speedrun_board.read_rows(board)
    assert beam["decoding"] == {"num_beams": 2} and greedy["decoding"] == {"num_beams": 1}
    assert beam["budget_cpu_s"] is None and beam["checkpoints"][0]["n"] == 4 and 0 <= beam["chrf"] <= 100
    assert beam["params"] == greedy["params"] > 0
    table = (board / "leaderboard.md").read_text()
    assert "| decoding | beam2 |" in table and f"decode --model {model_dir} --num-beams 2" in table
    assert not (board / "chrf_decoding.png").exists() and "chrf_decoding.png" not in table  # no CPU-second axis
