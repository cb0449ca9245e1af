"""GRPO stage: each reward on its own, the prompt builder (training splits only), the controls, and a short run."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, TRANSLATION_PROMPTS, source_of, translation_messages
from minimind_hf.training import rewards
from minimind_hf.training.grpo import (
    GRPOStageConfig,
    HeldOutFileError,
    MiniMindGRPOTrainer,
    build_grpo_dataset,
    is_held_out_file,
)
from tests.paths import FIXTURES, ROOT


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# ------------------------------------------------------------------------------------------------ rewards


def test_completion_texts_reads_strings_and_messages():
    assert rewards.completion_texts(["a", chat("b")]) == ["a", "b"]
    with pytest.raises(TypeError, match="completion 0"):
        rewards.completion_texts([42])


def test_chrf_reward_is_sentence_chrf_scaled_to_one():
    out = rewards.chrf_reward(None, [chat("開啟檔案"), chat("開啟"), chat("")], reference=["開啟檔案"] * 3)
    assert out[0] == pytest.approx(1.0)
    assert 0.0 < out[1] < 1.0
    assert out[2] == 0.0
    from sacrebleu.metrics import CHRF

    assert out[1] == pytest.approx(CHRF().sentence_score("開啟", ["開啟檔案"]).score / 100)


def test_chrf_reward_needs_aligned_references():
    with pytest.raises(ValueError, match="no 'reference' column"):
        rewards.chrf_reward(None, [chat("x")])
    with pytest.raises(ValueError, match="1 completions but 2"):
        rewards.chrf_reward(None, [chat("x")], reference=["a", "b"])


def test_script_reward_prefers_traditional_chinese():
    out = rewards.script_reward(
        None, [chat("開啟檔案"), chat("开启档案"), chat("Open the file"), chat("開啟 file")], reference=["開啟檔案"] * 4
    )
    assert out[0] == pytest.approx(1.0)
    assert 0.0 < out[1] < out[0]  # Simplified characters cost
    assert out[2] == 0.0  # English copied
    assert 0.0 < out[3] < 1.0  # half English
    # a reference without Chinese (a name): the script reward does not apply
    assert rewards.script_reward(None, [chat("GnuCash")], reference=["GnuCash"]) == [None]


def test_health_reward_counts_the_evaluation_flags():
    refs, srcs = ["開啟檔案"] * 4, ["Open the file"] * 4
    out = rewards.health_reward(
        None, [chat("開啟檔案"), chat(""), chat("Open the file"), chat("檔案" * 30)], source=srcs, reference=refs
    )
    assert out[0] == 0.0
    assert out[1] == -1.0  # empty
    assert out[2] == -1.0  # untranslated
    assert out[3] == -2.0  # looping and over-long
    assert rewards.health_flags("檔案" * 30, "Open the file", None)["over_long"]  # against the source


def test_semantic_reward_is_the_evaluation_similarity():
    from minimind_hf.evaluation.semantic import similarities

    completions = [chat("開啟檔案"), chat("今天天氣很好")]
    out = rewards.semantic_reward(None, completions, reference=["開啟檔案", "開啟檔案"])
    assert out[0] == pytest.approx(1.0, abs=1e-4)
    assert out[1] < out[0]
    assert out[1] == pytest.approx(float(similarities(["今天天氣很好"], ["開啟檔案"])[0]), abs=1e-6)


def test_reference_free_semantic_gives_a_copied_source_nothing():
    out = rewards.semantic_source_reward(None, [chat("Open the file"), chat("開啟檔案")], source=["Open the file"] * 2)
    assert out[0] == 0.0
    assert out[1] > 0.2


def test_shuffled_controls_read_the_other_reference():
    completions = [chat("開啟檔案")]
    assert rewards.chrf_shuffled_reward(None, completions, reference=["開啟檔案"], shuffled_reference=["儲存"]) == [0.0]
    assert rewards.chrf_reward(None, completions, reference=["開啟檔案"], shuffled_reference=["儲存"]) == [1.0]
    assert rewards.constant_reward(None, [chat("a"), chat("b")]) == [0.0, 0.0]


def test_reward_functions_follow_weights_and_switches():
    funcs, weights = rewards.reward_functions({"chrf": 1.0, "semantic": 0.0, "script": 0.5, "health": 2.0})
    assert [f.__name__ for f in funcs] == ["chrf_reward", "script_reward", "health_reward"]
    assert weights == [1.0, 0.5, 2.0]
    funcs, _ = rewards.reward_functions({"chrf": 1.0, "script": 0.5}, control="shuffled")
    assert [f.__name__ for f in funcs] == ["chrf_shuffled_reward", "script_reward"]
    funcs, _ = rewards.reward_functions({"semantic": 1.0, "script": 1.0, "health": 1.0}, reference_free=True)
    assert [f.__name__ for f in funcs] == [
        "semantic_source_reward",
        "reference_free_script_reward",
        "reference_free_health_reward",
    ]
    assert rewards.reward_functions({"chrf": 1.0}, control="constant") == ([rewards.constant_reward], [1.0])
    with pytest.raises(ValueError, match="chrF needs a reference"):
        rewards.reward_functions({"chrf": 1.0}, reference_free=True)
    with pytest.raises(ValueError, match="unknown reward"):
        rewards.reward_functions({"bleu": 1.0})
    with pytest.raises(ValueError, match="reward_control"):
        rewards.reward_functions({"chrf": 1.0}, control="random")
    with pytest.raises(ValueError, match="no reward"):
        rewards.reward_functions({"chrf": 0.0})


# ------------------------------------------------------------------------------------------------ dataset


def test_source_of_reads_every_phrasing_back():
    for i in range(len(TRANSLATION_PROMPTS)):
        user = translation_messages("Open the file.", prompt_id=i)[-1]["content"]
        assert source_of(user) == "Open the file."
    assert source_of("Hello there") is None


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def split_files(tmp_path):
    finance = write_jsonl(tmp_path / "lora.jsonl", [{"en": f"Interest rate {i}", "zh": f"利率 {i}"} for i in range(6)])
    general = write_jsonl(
        tmp_path / "sft.jsonl",
        [
            {
                "conversations": [
                    {"role": "user", "content": TRANSLATION_PROMPTS[2].format(en=f"Open file {i}")},
                    {"role": "assistant", "content": f"開啟檔案 {i}"},
                ]
            }
            for i in range(4)
        ],
    )
    test = write_jsonl(tmp_path / "lora.test.jsonl", [{"en": "Held out", "zh": "保留"}])
    validation = write_jsonl(tmp_path / "sft.validation.jsonl", [{"en": "Held out too", "zh": "也保留"}])
    return finance, general, test, validation


def test_builder_makes_prompts_with_references(split_files):
    finance, general, _, _ = split_files
    dataset, stats = build_grpo_dataset([finance, general], system_prompt=FINANCE_SYSTEM_PROMPT)
    train = dataset["train"]
    assert len(train) == 10 and stats["train"]["rows_out"] == 10
    assert set(train.column_names) == {"prompt", "source", "reference", "shuffled_reference"}
    row = train[0]
    assert row["prompt"] == translation_messages("Interest rate 0", system=FINANCE_SYSTEM_PROMPT)
    assert (row["source"], row["reference"]) == ("Interest rate 0", "利率 0")
    general_row = train[6]  # chats keep their own turns: no system turn, the phrasing they were written with
    assert general_row["prompt"] == [{"role": "user", "content": TRANSLATION_PROMPTS[2].format(en="Open file 0")}]
    assert (general_row["source"], general_row["reference"]) == ("Open file 0", "開啟檔案 0")
    # the control's references: every row gets another row's reference, each reference used once
    assert all(a != b for a, b in zip(train["reference"], train["shuffled_reference"], strict=True))
    assert sorted(train["reference"]) == sorted(train["shuffled_reference"])


def test_builder_never_trains_on_validation_or_test(split_files):
    finance, _, test, validation = split_files
    for held_out in (test, validation):
        with pytest.raises(HeldOutFileError, match="training splits only"):
            build_grpo_dataset([finance, held_out])
    assert is_held_out_file("data/lora.test.jsonl") and is_held_out_file("sft.validation.jsonl")
    assert is_held_out_file("x.dev.jsonl") and not is_held_out_file("data/lora.jsonl")
    assert not is_held_out_file("data/dpo.scored.jsonl") and not is_held_out_file("latest.jsonl")
    # as validation files they are welcome, and they stay out of the training rows
    dataset, _ = build_grpo_dataset([finance], validation_files=[validation])
    assert "Held out too" not in dataset["train"]["source"]
    assert dataset["validation"]["source"] == ["Held out too"]


def test_builder_samples_each_file(split_files):
    finance, general, _, _ = split_files
    dataset, stats = build_grpo_dataset([finance, general], max_prompts_per_file=3, seed=1)
    sources = dataset["train"]["source"]
    assert len(sources) == 6
    assert sum(s.startswith("Interest") for s in sources) == 3 and sum(s.startswith("Open") for s in sources) == 3
    again, _ = build_grpo_dataset([finance, general], max_prompts_per_file=3, seed=1)
    assert again["train"]["source"] == sources


# ------------------------------------------------------------------------------------------------ config


def cpu_settings(tmp_path, **overrides) -> dict:
    """A CPU config as a recipe would give it (TRL's configs default to checkpointing on), no evaluation."""
    from minimind_hf.training.recipe import checkpointing_argument_name

    settings = {
        "output_dir": str(tmp_path / "grpo"),
        "precision": "fp32",
        "eval_strategy": "no",
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        checkpointing_argument_name(GRPOStageConfig): False,
    }
    settings.update(overrides)
    return settings


def test_config_names_bad_reward_settings(tmp_path):
    with pytest.raises(ValueError, match="chrF needs a reference"):
        GRPOStageConfig(**cpu_settings(tmp_path, reference_free_reward=True))
    with pytest.raises(ValueError, match="not reward_weights"):
        GRPOStageConfig(**cpu_settings(tmp_path, reward_weights=[1.0]))
    config = GRPOStageConfig(**cpu_settings(tmp_path, reward_semantic=0.0, reward_control="shuffled"))
    assert config.describe_rewards() == (
        "1 x chrf_shuffled_reward + 0.5 x script_reward + 1 x health_reward (control: shuffled)"
    )


# ------------------------------------------------------------------------------------------------ a short run


def grpo_args(tmp_path, **overrides) -> GRPOStageConfig:
    settings = dict(
        max_steps=2,
        per_device_train_batch_size=4,
        max_completion_length=8,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=0,
        reward_semantic=0.0,
        disable_dropout=True,
    )
    return GRPOStageConfig(**cpu_settings(tmp_path, **{**settings, **overrides}))


def test_two_grpo_steps_on_a_tiny_random_model(tmp_path, tokenizer, tiny_model, split_files):
    finance, general, _, _ = split_files
    dataset, _ = build_grpo_dataset([finance, general], system_prompt=FINANCE_SYSTEM_PROMPT)
    tiny_model.train()
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    trainer = MiniMindGRPOTrainer(
        tiny_model, args=grpo_args(tmp_path), train_dataset=dataset["train"], processing_class=tokenizer
    )
    assert trainer.reward_func_names == ["chrf_reward", "script_reward", "health_reward"]
    assert trainer.reward_weights.tolist() == [1.0, 0.5, 1.0]
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logs) == 2
    for entry in logs:
        for key in (
            "entropy",
            "completions/mean_length",
            "frac_reward_zero_std",
            "time/generate_s",
            "time/reward_s",
            "time/update_s",
            "rewards/chrf_reward/mean",
            "zero_signal_groups",
        ):
            assert key in entry and math.isfinite(entry[key]), key
        assert entry["time/update_s"] > 0 and entry["time/generate_s"] > 0
    counts = trainer.signal_counts()
    assert counts["groups_seen"] == 4  # 2 steps x 4 completions / 2 per group
    assert counts["zero_signal_groups"] == round(sum(e["frac_reward_zero_std"] for e in logs) * 2)
    moved = any(not torch.equal(before[n], p) for n, p in tiny_model.named_parameters())
    assert moved == (counts["zero_signal_groups"] < counts["groups_seen"])


def test_constant_control_teaches_nothing(tmp_path, tokenizer, tiny_model, split_files):
    finance, _, _, _ = split_files
    dataset, _ = build_grpo_dataset([finance])
    tiny_model.train()
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    trainer = MiniMindGRPOTrainer(
        tiny_model,
        args=grpo_args(tmp_path, max_steps=1, reward_control="constant"),
        train_dataset=dataset["train"],
        processing_class=tokenizer,
    )
    trainer.train()
    assert trainer.signal_counts() == {"groups_seen": 2, "zero_signal_groups": 2, "zero_signal_share": 1.0}
    assert all(torch.equal(before[n], p) for n, p in tiny_model.named_parameters())


def test_moe_balance_loss_trains_the_router_in_grpo(tmp_path, tokenizer, split_files):
    """With the constant control, only the blocks' balance loss moves the MoE router in GRPO.

    Every advantage is zero, so the policy loss moves nothing; TRL's log-probability forwards never add the balance
    loss, so the stage adds it.
    """
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    finance, _, _, _ = split_files
    dataset, _ = build_grpo_dataset([finance])
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe", aux_loss_alpha=0.1)).train()
    routers = {n: p.detach().clone() for n, p in model.named_parameters() if ".gate.weight" in n}
    last = f"layers.{model.config.num_hidden_layers - 1}."  # no router reads the last layer's experts
    experts = {n: p.detach().clone() for n, p in model.named_parameters() if last in n and ".experts." in n}
    assert routers and experts
    trainer = MiniMindGRPOTrainer(
        model,
        args=grpo_args(tmp_path, max_steps=1, reward_control="constant"),
        train_dataset=dataset["train"],
        processing_class=tokenizer,
    )
    trainer.train()
    params = dict(model.named_parameters())
    assert all(not torch.equal(routers[n], params[n]) for n in routers)  # the balance loss reached every router
    assert all(torch.equal(experts[n], params[n]) for n in experts)  # no advantage: no other signal
    logged = [e["aux_loss"] for e in trainer.state.log_history if "aux_loss" in e]
    assert logged and all(math.isfinite(v) and v > 0 for v in logged)


# ------------------------------------------------------------------------------------------------ the stage

STAGE_DATA = FIXTURES / "train"


def stage_args(start, out, *extra):
    from minimind_hf.training.runner import parse_args

    recipe = ROOT / "recipes" / "tiny" / "grpo.yaml"
    return parse_args(
        [
            str(recipe),
            "--model_name_or_path",
            str(start),
            "--output_dir",
            str(out),
            "--train_files",
            str(STAGE_DATA / "lora.jsonl"),
            str(STAGE_DATA / "sft.jsonl"),
            "--validation_files",
            str(STAGE_DATA / "lora.validation.jsonl"),
            "--max_eval_samples",
            "2",
            "--max_steps",
            "2",
            "--save_steps",
            "1",
            "--logging_steps",
            "1",
            "--warmup_steps",
            "0",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "4",
            "--num_generations",
            "2",
            "--max_completion_length",
            "8",
            "--reward_semantic",
            "0",
            "--learning_rate",
            "1e-2",
            "--save_total_limit",
            "2",
            "--report_to",
            "none",
            *extra,
        ]
    )


def test_grpo_stage_runs_resumes_and_saves_a_loadable_model(saved_tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    from minimind_hf.data.layout import COMPLETE_MARKER
    from minimind_hf.training.runner import run

    out = tmp_path / "grpo"
    summary = run(*stage_args(saved_tiny, out))
    grpo = summary["grpo"]
    assert summary["stage"] == "grpo" and summary["global_step"] == 2
    assert grpo["rewards"] == "1 x chrf_reward + 0.5 x script_reward + 1 x health_reward"
    assert grpo["groups_seen"] == 4 and 0 <= grpo["zero_signal_groups"] <= 4
    assert set(grpo["step_time_s"]) == {"total", "generate", "reward", "rollout", "update"}
    assert "eval_reward" in summary["metrics"]  # the held-out reward, measured once at the end
    assert (out / "reward_curve.png").exists() and json.loads((out / COMPLETE_MARKER).read_text())["grpo"]
    card = (out / "README.md").read_text()
    assert "chrf_reward" in card and "GRPO" in card
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.generate(torch.tensor([[1, 5]]), max_new_tokens=2, do_sample=False).shape == (1, 4)

    # an interrupted run resumes from its checkpoint, counting on from the saved counts
    for name in (COMPLETE_MARKER, "model.safetensors"):
        (out / name).unlink()
    shutil.rmtree(out / "checkpoint-2")
    resumed = run(*stage_args(saved_tiny, out))
    assert resumed["resumed_from"].endswith("checkpoint-1") and resumed["global_step"] == 2
    assert resumed["grpo"]["groups_seen"] == 4
    # the rewards are part of the run's recipe: other weights or the control in the same folder are refused
    from minimind_hf.training.safety import RunRefused

    for change in (["--reward_chrf", "0.5"], ["--reward_control", "shuffled"]):
        with pytest.raises(RunRefused, match=change[0].lstrip("-")):
            run(*stage_args(saved_tiny, out, *change))


def test_grpo_stage_refuses_a_kl_reference_it_would_load_wrong(saved_tiny, tmp_path):
    with pytest.raises(ValueError, match="without the adapter .* merged in"):
        stage_args(saved_tiny, tmp_path / "grpo", "--beta", "0.04", "--adapter_name_or_path", "out/lora")
    stage_args(saved_tiny, tmp_path / "grpo", "--beta", "0.04")  # a saved start model: TRL reloads the right one


# ------------------------------------------------------------------------------------------------ reports


HISTORY = [
    {"step": 2, "reward": 0.1, "rewards/chrf_reward/mean": 0.05, "rewards/chrf_reward/std": 0.01, "loss": 0.0},
    {"step": 4, "reward": 0.3, "rewards/chrf_reward/mean": 0.15, "eval_reward": 0.2},
]


def test_reward_curve_plots_the_total_each_reward_and_the_held_out_reward(tmp_path):
    from minimind_hf.training.plotting import plot_reward_curve, reward_points

    points = reward_points(HISTORY)
    assert points == {"reward": [(2, 0.1), (4, 0.3)], "chrf_reward": [(2, 0.05), (4, 0.15)], "eval_reward": [(4, 0.2)]}
    assert plot_reward_curve(HISTORY, tmp_path / "r.png").exists()
    assert plot_reward_curve([{"step": 1, "loss": 1.0}], tmp_path / "none.png") is None


def test_quality_summary_reports_the_grpo_runs(tmp_path):
    from minimind_hf.evaluation.summary import summarise

    for stage, share in (("grpo", 0.25), ("grpo-control", 0.5)):
        folder = tmp_path / stage
        (folder / "checkpoint-4").mkdir(parents=True)
        (folder / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"log_history": HISTORY}))
        (folder / "stage_complete.json").write_text(
            json.dumps(
                {
                    "stage": "grpo",
                    "global_step": 4,
                    "wall_time_s": 60,
                    "metrics": {},
                    "grpo": {
                        "rewards": "1 x chrf_reward",
                        "final_reward": 0.3,
                        "groups_seen": 8,
                        "zero_signal_groups": int(8 * share),
                        "zero_signal_share": share,
                        "step_time_s": {"total": 2.0, "generate": 1.5, "reward": 0.1, "update": 0.4},
                    },
                }
            )
        )
    summary = summarise(tmp_path, tmp_path / "quality")
    assert list(summary["stages"]) == ["grpo", "grpo-control"]
    text = (tmp_path / "quality" / "results.md").read_text()
    assert "grpo: rewards 1 x chrf_reward; last logged reward 0.300; 2 of 8 groups without signal (25.0%)" in text
    assert "grpo-control:" in text and "generation 1.50 s" in text
    assert (tmp_path / "quality" / "loss_curves.png").exists()


def test_generation_pads_prompts_on_the_left(tmp_path, tokenizer, tiny_model, split_files):
    """A batch of prompts of different lengths generates what each prompt generates alone (top_k 1: greedy)."""
    finance, _, _, _ = split_files
    dataset, _ = build_grpo_dataset([finance])
    trainer = MiniMindGRPOTrainer(
        tiny_model,
        args=grpo_args(tmp_path, top_k=1, max_completion_length=6),
        train_dataset=dataset["train"],
        processing_class=tokenizer,
    )
    short = translation_messages("Tax")
    long = translation_messages("The net present value of an investment based on periodic cash flows", system="x")
    prompt_ids, together = trainer._generate([short, long])[:2]
    assert len(prompt_ids[0]) < len(prompt_ids[1])
    alone = [trainer._generate([prompt])[1][0] for prompt in (short, long)]
    assert together == alone
