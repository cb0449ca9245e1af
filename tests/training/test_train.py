"""The stage runner end to end on a tiny model: every stage, resume, skip, NaN guard, DDP, recipes."""

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from minimind_hf.data.layout import COMPLETE_MARKER
from minimind_hf.training import runner as train_module
from minimind_hf.training.runner import parse_args, run
from minimind_hf.training.trainers import MiniMindTrainer, NonFiniteLossError
from tests.paths import FIXTURES, ROOT

DATA = FIXTURES / "train"
RECIPES = sorted(
    p
    for scale in ("tiny", "small", "full")
    for p in (ROOT / "recipes" / scale).glob("*.yaml")
    if p.stem in ("pretrain", "sft", "lora", "dpo")
)


def _args(stage, out, *extra):
    recipe = ROOT / "recipes" / "tiny" / f"{stage}.yaml"
    files = {"pretrain": "pretrain", "sft": "sft", "lora": "lora", "dpo": "dpo"}[stage]
    argv = [
        str(recipe),
        "--output_dir",
        str(out),
        "--train_files",
        str(DATA / f"{files}.jsonl"),
        "--validation_files",
        str(DATA / f"{files}.validation.jsonl"),
        "--max_steps",
        "4",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--report_to",
        "none",
        "--dataloader_num_workers",
        "0",
        *extra,
    ]
    return parse_args(argv)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("stages") / "pretrain"
    summary = run(*_args("pretrain", out, "--preset", "tiny", "--block_size", "64", "--report_to", "tensorboard"))
    return out, summary


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_parses(recipe, monkeypatch):
    monkeypatch.chdir(ROOT)
    stage_args, training_args = parse_args([str(recipe)])
    assert stage_args.stage == recipe.stem
    assert training_args.output_dir.endswith(f"out/{recipe.stem}")  # real-scale and tiny recipes alike


@pytest.mark.parametrize("spelling", [["--group_by_length", "true"], ["--train_sampling_strategy", "group_by_length"]])
def test_length_grouping_in_either_spelling(spelling, monkeypatch):
    """transformers 5.24 renamed group_by_length; a recipe may use either name on any stack."""
    monkeypatch.chdir(ROOT)
    _, training_args = parse_args(["recipes/tiny/sft.yaml", *spelling])
    if hasattr(training_args, "train_sampling_strategy"):
        assert training_args.train_sampling_strategy == "group_by_length"
    else:
        assert training_args.group_by_length is True


def test_overrides_beat_the_recipe(monkeypatch):
    monkeypatch.chdir(ROOT)
    stage_args, training_args = parse_args(
        ["recipes/tiny/pretrain.yaml", "--learning_rate", "0.5", "--block_size", "32"]
    )
    assert training_args.learning_rate == 0.5 and stage_args.data.block_size == 32


@pytest.mark.parametrize("native_bf16", [True, False])
@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_precision_auto_follows_the_cpu(precision, native_bf16, monkeypatch):
    """``auto`` is bf16 exactly where the CPU multiplies bf16 in hardware; an explicit precision always wins."""
    from minimind_hf import checkpoints

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(checkpoints.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(checkpoints, "cpu_has_native_bf16", lambda: native_bf16)
    for recipe in ("recipes/tiny/pretrain.yaml", "recipes/tiny/dpo.yaml"):  # TrainingArguments and TRL's DPOConfig
        _, training_args = parse_args([recipe, "--precision", precision])
        assert training_args.bf16 is (precision == "bf16" or (precision == "auto" and native_bf16))
        assert training_args.fp16 is False and training_args.use_cpu is True
        assert training_args.ran_precision == ("bf16" if training_args.bf16 else "fp32")
    assert checkpoints.auto_precision("cpu") == ("bf16" if native_bf16 else "fp32")


def test_pretrain_outputs(pretrained):
    out, summary = pretrained
    assert summary["global_step"] == 4 and summary["world_size"] == 1
    assert "eval_perplexity" in summary["metrics"]
    assert summary["metrics"]["eval_perplexity"] == pytest.approx(
        torch.tensor(summary["metrics"]["eval_loss"]).exp().item(), rel=1e-4
    )
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert any((out / "runs").rglob("events.out.tfevents*"))  # TensorBoard logs, as the recipes ask
    model = AutoModelForCausalLM.from_pretrained(out)
    generated = model.generate(torch.tensor([[1, 5, 6]]), max_new_tokens=3, do_sample=False)
    assert generated.shape == (1, 6)


def test_finished_stage_is_skipped(pretrained, monkeypatch):
    out, summary = pretrained
    monkeypatch.setattr(train_module, "_load_model", lambda *a: pytest.fail("a finished stage must not train again"))
    assert (
        run(*_args("pretrain", out, "--preset", "tiny", "--block_size", "64", "--report_to", "tensorboard")) == summary
    )


def test_interrupted_run_resumes(tmp_path):
    out = tmp_path / "pretrain"
    run(*_args("pretrain", out, "--preset", "tiny", "--block_size", "64"))
    from safetensors.torch import load_file

    uninterrupted = load_file(out / "model.safetensors")
    # simulate a run stopped after its step-2 checkpoint
    for name in (COMPLETE_MARKER, "model.safetensors"):
        (out / name).unlink()
    import shutil

    shutil.rmtree(out / "checkpoint-4")
    summary = run(*_args("pretrain", out, "--preset", "tiny", "--block_size", "64"))
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 4
    resumed = load_file(out / "model.safetensors")  # the same result, bit for bit (CPU, fixed seed)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in resumed)


def test_non_finite_loss_stops_and_names_the_step(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = MiniMindTrainer.compute_loss

    def poisoned(self, model, inputs, *args, **kwargs):
        loss = original(self, model, inputs, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3 and model.training:
            return (loss * float("nan"), *loss[1:]) if isinstance(loss, tuple) else loss * float("nan")
        return loss

    monkeypatch.setattr(MiniMindTrainer, "compute_loss", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"at step 3 of 4"):
        run(
            *_args(
                "pretrain",
                out,
                "--preset",
                "tiny",
                "--block_size",
                "64",
                "--eval_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
                "--save_steps",
                "100",
            )
        )
    assert not (out / "model.safetensors").exists() and not (out / COMPLETE_MARKER).exists()


def test_sft_lora_dpo_chain(pretrained, tmp_path):
    base, _ = pretrained
    sft = run(*_args("sft", tmp_path / "sft", "--model_name_or_path", str(base), "--max_length", "128"))
    assert sft["data"]["train"]["rows_out"] > 0 and "eval_perplexity" in sft["metrics"]

    lora = run(*_args("lora", tmp_path / "lora", "--model_name_or_path", str(tmp_path / "sft"), "--max_length", "128"))
    assert (tmp_path / "lora" / "adapter_config.json").exists()
    base_record = json.loads((tmp_path / "lora" / "adapter_base.json").read_text())  # the base's fingerprint
    assert base_record["saved_from"] == str((tmp_path / "sft").resolve()) and base_record["fingerprint"]["weights"]
    from peft import PeftModel

    adapter = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "sft"), tmp_path / "lora")
    assert peft_model.generate(input_ids=torch.tensor([[1, 5]]), max_new_tokens=2, do_sample=False).shape == (1, 4)
    assert lora["global_step"] == 4

    dpo = run(
        *_args(
            "dpo",
            tmp_path / "dpo",
            "--model_name_or_path",
            str(tmp_path / "sft"),
            "--adapter_name_or_path",
            str(tmp_path / "lora"),
            "--max_length",
            "128",
            "--learning_rate",
            "1e-3",
            "--warmup_steps",
            "0",
        )
    )
    assert dpo["global_step"] == 4
    # the saved DPO model loads, is ready for inference, and is the merged start model moved by training
    from minimind_hf.checkpoints import load_checkpoint

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "dpo")
    start = load_checkpoint(tmp_path / "lora", dtype="float32").model
    assert trained.config.use_cache is True
    moved = [name for name, p in trained.state_dict().items() if not torch.equal(p, start.state_dict()[name])]
    assert moved and trained.generate(torch.tensor([[1, 5]]), max_new_tokens=2, do_sample=False).shape == (1, 4)
    # the merged start model must be trainable: the logged gradient norms are not all zero
    history = json.loads((tmp_path / "dpo" / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    assert any(entry.get("grad_norm", 0) > 0 for entry in history)


def test_dpo_pairs_whose_prompt_fills_max_length_are_counted_not_dropped_in_silence(pretrained, tmp_path, caplog):
    base, _ = pretrained
    rows = (DATA / "dpo.jsonl").read_text().splitlines()[:7]
    long_prompt = {"role": "user", "content": "English to Traditional Chinese:\n" + "the market closed higher " * 60}
    rows.append(
        json.dumps(
            {
                "chosen": [long_prompt, {"role": "assistant", "content": "市場收高"}],
                "rejected": [long_prompt, {"role": "assistant", "content": "市场收高"}],
            }
        )
    )
    (tmp_path / "dpo.jsonl").write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="minimind_hf.training"):
        summary = run(
            *_args(
                "dpo",
                tmp_path / "dpo",
                "--model_name_or_path",
                str(base),
                "--adapter_name_or_path",
                "",
                "--max_length",
                "64",
                "--train_files",
                str(tmp_path / "dpo.jsonl"),
                "--max_steps",
                "1",
                "--eval_strategy",
                "no",
                "--save_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
            )
        )
    train = summary["data"]["train"]
    assert train["dropped"]["prompt_fills_max_length"] == 1 and train["rows_out"] == 7
    assert "1 of 8 train rows dropped at max_length 64: 1 prompt fills max length" in caplog.text


def test_an_unknown_recipe_key_is_named_with_its_file(tmp_path):
    """`seq_length`, the retired name of `max_length`, is refused like any other unknown key, naming the file."""
    recipe = tmp_path / "old-sft.yaml"
    recipe.write_text((ROOT / "recipes" / "tiny" / "sft.yaml").read_text() + "seq_length: 96\n")
    with pytest.raises(ValueError, match=r"old-sft.yaml: unknown recipe keys \['seq_length'\]"):
        parse_args([str(recipe), "--output_dir", str(tmp_path / "out")])


def test_the_stage_table_decides_every_difference():
    """One row per stage; the argument groups split by topic; LoRA defaults from minimind_hf.training.lora."""
    from transformers import TrainingArguments
    from trl import DPOConfig

    from minimind_hf.training import lora
    from minimind_hf.training.arguments import ChatTrainingArguments, LoraArguments
    from minimind_hf.training.stages import STAGES

    assert list(STAGES) == ["pretrain", "sft", "lora", "dpo", "grpo"]
    assert issubclass(STAGES["pretrain"].arguments, TrainingArguments) and issubclass(
        STAGES["dpo"].arguments, DPOConfig
    )
    assert STAGES["sft"].arguments is STAGES["lora"].arguments is ChatTrainingArguments
    assert STAGES["dpo"].trainer.reports_perplexity is False and STAGES["sft"].trainer.reports_perplexity is True
    assert STAGES["dpo"].collator is None and STAGES["grpo"].collator is None
    assert STAGES["grpo"].trainer.reports_perplexity is False
    defaults = LoraArguments()
    assert (defaults.lora_r, defaults.lora_alpha, defaults.lora_dropout) == (
        lora.DEFAULT_R,
        lora.DEFAULT_ALPHA,
        lora.DEFAULT_DROPOUT,
    )
    assert tuple(defaults.lora_target_modules) == lora.DEFAULT_TARGET_MODULES
    stage_args, _ = _args("lora", "out/x", "--model_name_or_path", "out/sft")
    assert stage_args.model.model_name_or_path == "out/sft" and stage_args.lora.lora_r == 16
    with pytest.raises(ValueError, match="prompt_id"):
        _args("lora", "out/x", "--model_name_or_path", "out/sft", "--prompt_id", "9")


@pytest.mark.parametrize("stage", ["pretrain", "dpo"])
def test_best_checkpoint_whenever_there_is_validation_data(stage, tmp_path):
    """The argument classes own the defaults.

    The best checkpoint by validation loss (DPO too) where validation data exists, no evaluation where it does not, a
    cosine schedule to a tenth, TensorBoard; a recipe may still say no.
    """
    extra = ("--model_name_or_path", "out/sft") if stage == "dpo" else ()
    _, args = _args(stage, tmp_path, *extra)
    assert args.load_best_model_at_end is True and args.metric_for_best_model in ("loss", "eval_loss")
    assert args.greater_is_better is False and args.eval_strategy == "steps"
    recipe = tmp_path / "no-validation.yaml"
    written = (ROOT / "recipes" / "tiny" / f"{stage}.yaml").read_text().splitlines()
    recipe.write_text("\n".join(line for line in written if not line.startswith("validation_files")) + "\n")
    _, args = parse_args([str(recipe), "--output_dir", str(tmp_path), *extra])
    assert args.load_best_model_at_end is False and args.eval_strategy == "no"
    _, args = _args(stage, tmp_path, *extra, "--load_best_model_at_end", "false")
    assert args.load_best_model_at_end is False and args.eval_strategy == "steps"
    _, args = _args(stage, tmp_path, *extra, "--lr_scheduler_type", "cosine_with_min_lr", "--report_to", "tensorboard")
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1} and args.report_to == ["tensorboard"]
    assert args.logging_nan_inf_filter is False  # the runner's finite-loss guard stops instead


def test_stage_needs_its_start_model(tmp_path):
    with pytest.raises(ValueError, match="model_name_or_path"):
        _args("sft", tmp_path / "x", "--model_name_or_path", "")


def test_ddp_over_two_cpu_processes(tmp_path):
    """accelerate launch with 2 processes (gloo): the multi-process path of the runner."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes" / "accelerate" / "cpu_ddp.yaml"),
        "--num_processes",
        "2",
        "-m",
        "minimind_hf.train",
        str(ROOT / "recipes" / "tiny" / "pretrain.yaml"),
        "--preset",
        "tiny",
        "--block_size",
        "64",
        "--train_files",
        str(DATA / "pretrain.jsonl"),
        "--validation_files",
        str(DATA / "pretrain.validation.jsonl"),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--report_to",
        "none",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / COMPLETE_MARKER).read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 2


def test_max_eval_samples_caps_the_validation_rows(tmp_path, tokenizer):
    from minimind_hf.training.runner import build_datasets

    stage_args, training_args = _args(
        "sft",
        tmp_path / "sft",
        "--model_name_or_path",
        str(tmp_path),
        "--max_eval_samples",
        "3",
        "--max_train_samples",
        "5",
    )
    train, validation, _, _ = build_datasets(stage_args, training_args, tokenizer)
    assert len(validation) == 3 and len(train) == 5


def test_finite_loss_guard_reads_no_value_per_step(tmp_path, monkeypatch):
    """No value is read on the host in a pretraining step (on a GPU, each read is a sync).

    With the fused AdamW the Trainer defaults to, the guard hands its flag to the optimizer instead of reading the loss,
    the Trainer's own NaN filter is off, and packed blocks come without the all-ones attention mask that the model's
    mask builder would inspect.
    """
    stage_args, training_args = _args(
        "pretrain",
        tmp_path / "run",
        "--preset",
        "tiny",
        "--block_size",
        "64",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--save_strategy",
        "no",
        "--logging_steps",
        "100",
    )
    assert training_args.logging_nan_inf_filter is False
    reads = {"n": 0}
    original_step = MiniMindTrainer.training_step

    def counted(self, *args, **kwargs):
        real_bool, real_item = torch.Tensor.__bool__, torch.Tensor.item

        def count_bool(tensor):
            reads["n"] += 1
            return real_bool(tensor)

        def count_item(tensor):
            reads["n"] += 1
            return real_item(tensor)

        monkeypatch.setattr(torch.Tensor, "__bool__", count_bool)
        monkeypatch.setattr(torch.Tensor, "item", count_item)
        try:
            loss = original_step(self, *args, **kwargs)
        finally:
            monkeypatch.setattr(torch.Tensor, "__bool__", real_bool)
            monkeypatch.setattr(torch.Tensor, "item", real_item)
        assert self._skippable_optimizer() is not None and self._nonfinite is not None
        return loss

    monkeypatch.setattr(MiniMindTrainer, "training_step", counted)
    summary = run(stage_args, training_args)
    assert summary["global_step"] == 4 and reads["n"] == 0


def test_nan_between_log_lines_is_skipped_on_the_device(tmp_path, monkeypatch):
    """A NaN at a step without a log line.

    That update and the later ones are skipped, and the run stops, naming the step, before the final model is written.
    """
    original = MiniMindTrainer.compute_loss
    calls = {"n": 0}
    seen = {}

    def poisoned(self, model, inputs, *args, **kwargs):
        loss = original(self, model, inputs, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            seen["before"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if calls["n"] == 3 and model.training:
            seen["model"] = model
            return (loss * float("nan"), *loss[1:]) if isinstance(loss, tuple) else loss * float("nan")
        return loss

    monkeypatch.setattr(MiniMindTrainer, "compute_loss", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"at step 3 of 4 \(seen at step 4"):
        run(
            *_args(
                "pretrain",
                out,
                "--preset",
                "tiny",
                "--block_size",
                "64",
                "--eval_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
                "--save_steps",
                "100",
                "--logging_steps",
                "100",
            )
        )
    assert not (out / "model.safetensors").exists() and not (out / COMPLETE_MARKER).exists()
    after = seen["model"].state_dict()
    # step 2's update happened (weights moved from before it); steps 3 and 4 were skipped (no NaN anywhere)
    assert all(torch.isfinite(v).all() for v in after.values())


def test_a_dpo_stage_that_makes_validation_worse_says_so(pretrained, tmp_path, caplog):
    """Validating on the training pairs with chosen and rejected swapped.

    DPO that learns its pairs must make the validation worse, and the stage says so in its log, its stage_complete.json
    and its model card.
    """
    base, _ = pretrained
    rows = [json.loads(line) for line in (DATA / "dpo.jsonl").read_text().splitlines()][:8]
    swapped = [{"chosen": row["rejected"], "rejected": row["chosen"]} for row in rows]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (tmp_path / "swapped.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in swapped))
    with caplog.at_level("WARNING", logger="minimind_hf.training"):
        summary = run(
            *_args(
                "dpo",
                tmp_path / "dpo",
                "--model_name_or_path",
                str(base),
                "--adapter_name_or_path",
                "",
                "--max_length",
                "128",
                "--train_files",
                str(tmp_path / "train.jsonl"),
                "--validation_files",
                str(tmp_path / "swapped.jsonl"),
                "--learning_rate",
                "5e-3",
                "--warmup_steps",
                "0",
                "--max_steps",
                "6",
                "--eval_steps",
                "3",
                "--save_steps",
                "6",
            )
        )
    assert summary["metrics"]["eval_loss"] > 0.7 and summary["metrics"]["eval_rewards/margins"] < 0
    assert any("above ln 2" in w for w in summary["warnings"]) and any("margin" in w for w in summary["warnings"])
    assert json.loads((tmp_path / "dpo" / COMPLETE_MARKER).read_text())["warnings"] == summary["warnings"]
    assert "THE MODEL GOT WORSE -- dpo: validation loss" in caplog.text
    assert "this stage's own validation says it made the model worse" in (tmp_path / "dpo" / "README.md").read_text()


def test_validation_warnings_of_a_healthy_and_an_overfitted_stage():
    from minimind_hf.training.regression import validation_warnings

    history = [{"step": 100, "eval_loss": 6.5}, {"step": 200, "eval_loss": 6.3}]
    assert validation_warnings("pretrain", history, {"eval_loss": 6.3}) == []
    assert validation_warnings("sft", history, {"eval_loss": 6.9}) == [
        "sft: validation loss rose from 6.5 (step 100) to 6.9 at the end: the stage overfitted its training data"
    ]
    healthy = {"eval_loss": 0.52, "eval_rewards/margins": 0.6, "eval_rewards/accuracies": 0.8}
    assert validation_warnings("dpo", [{"step": 30, "eval_loss": 0.6}], healthy) == []
    worse = {"eval_loss": 1.248, "eval_rewards/margins": -0.856, "eval_rewards/accuracies": 0.098}
    assert len(validation_warnings("dpo", [{"step": 30, "eval_loss": 0.907}], worse)) == 4


def test_grpo_is_judged_by_its_validation_reward_not_its_surrogate_loss():
    """GRPO's loss is a policy-gradient surrogate (often negative).

    An unchanged one is no rise, a rise is no harm; a falling validation reward is what says the model got worse.
    """
    from minimind_hf.training.regression import validation_warnings

    same = [{"step": 60, "eval_loss": -0.01083, "eval_reward": 0.52}]
    assert validation_warnings("grpo", same, {"eval_loss": -0.01083, "eval_reward": 0.53}) == []
    assert validation_warnings("grpo", same, {"eval_loss": 0.5, "eval_reward": 0.52}) == []
    assert validation_warnings("grpo", same, {"eval_loss": -0.01083, "eval_reward": 0.40}) == [
        "grpo: validation reward fell from 0.52 (step 60) to 0.4 at the end"
    ]
    # a negative loss that does not change is not a rise for the loss-judged stages either
    assert validation_warnings("sft", [{"step": 1, "eval_loss": -0.5}], {"eval_loss": -0.5}) == []


def test_a_failed_start_leaves_no_recipe_or_folder_behind(tmp_path):
    out = tmp_path / "pretrain"
    with pytest.raises((OSError, ValueError)):
        run(*_args("pretrain", out, "--preset", "tiny", "--train_files", str(tmp_path / "missing.jsonl")))
    assert not (out / "run_recipe.json").exists() and not out.exists()
