"""Tests for minimind_hf.training.dpo and minimind_hf.course.dpo_loss.

The DPO loss, the course-style adapter and MiniMindDPOTrainer.

The loss is checked against numbers worked out by hand, the adapter against the loss, and the trainer
against TRL's own DPOTrainer on the same batch; then the reference-model variants (frozen copy,
precomputed log-probs, PEFT with the adapter disabled) and a short training run on translation pairs.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import datasets
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model
from trl import DPOConfig, DPOTrainer

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.course.dpo_loss import dpo_loss_from_token_logps
from minimind_hf.prompts import translation_messages
from minimind_hf.tokenization import load_tokenizer
from minimind_hf.training.dpo import MiniMindDPOTrainer
from minimind_hf.training.preference_loss import LOSS_TYPES, dpo_loss
from minimind_hf.training.recipe import checkpointing_argument_name

datasets.disable_progress_bars()

LOG2 = math.log(2.0)

# English -> zh-TW pairs; "chosen" is the reference translation, "rejected" is systematically worse.
PAIRS = [
    ("The bank raised its interest rate.", "銀行調高了利率。"),
    ("Net income rose by ten percent.", "淨利成長了百分之十。"),
    ("Please check the account balance.", "請檢查帳戶餘額。"),
    ("The bond matures next year.", "這檔債券明年到期。"),
    ("Stock prices fell sharply today.", "今天股價大幅下跌。"),
    ("The company paid a cash dividend.", "公司發放了現金股利。"),
    ("Inflation remains above the target.", "通膨仍高於目標。"),
    ("The loan must be repaid monthly.", "這筆貸款必須按月償還。"),
    ("Exchange rates change every day.", "匯率每天都在變動。"),
    ("Our revenue doubled this quarter.", "本季營收翻倍。"),
    ("The fund invests in government bonds.", "該基金投資政府公債。"),
    ("Taxes are due at the end of May.", "稅款於五月底到期。"),
    ("The central bank cut rates again.", "央行再度降息。"),
    ("Assets must equal liabilities plus equity.", "資產必須等於負債加權益。"),
    ("The budget deficit is growing.", "預算赤字正在擴大。"),
    ("He opened a savings account.", "他開了一個儲蓄帳戶。"),
    ("Open the file and save it.", "開啟檔案並儲存。"),
    ("The printer is out of paper.", "印表機沒有紙了。"),
    ("Click the button to continue.", "按下按鈕以繼續。"),
    ("The meeting starts at nine.", "會議九點開始。"),
    ("Select a cell in the table.", "選取表格中的儲存格。"),
    ("The document was not found.", "找不到該文件。"),
    ("Enter your password again.", "請再次輸入密碼。"),
    ("The update is ready to install.", "更新已可安裝。"),
    ("Interest is paid every quarter.", "利息每季支付一次。"),
    ("The price includes sales tax.", "價格已含營業稅。"),
    ("Cash flow was negative last year.", "去年的現金流量為負。"),
    ("Sign the contract before Friday.", "請在星期五之前簽署合約。"),
    ("The shares were sold at a loss.", "這些股票以虧損賣出。"),
    ("Save your changes before closing.", "關閉前請儲存變更。"),
    ("The network connection was lost.", "網路連線已中斷。"),
    ("Choose a language from the list.", "從清單中選擇一種語言。"),
]


def worse_translation(index: int, en: str, zh: str) -> str:
    """A systematically worse answer: the English source copied, or the translation cut to a third."""
    return en if index % 2 == 0 else zh[: max(1, len(zh) // 3)]


def preference_records(n: int) -> list[dict]:
    """``n`` records in the project's dpo.jsonl format (shortest prompt phrasing, to keep tests fast)."""
    records = []
    for i, (en, zh) in enumerate(PAIRS[:n]):
        records.append(
            {
                "chosen": translation_messages(en, zh, prompt_id=4),
                "rejected": translation_messages(en, worse_translation(i, en, zh), prompt_id=4),
            }
        )
    return records


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def pristine_model() -> MiniMindForCausalLM:
    """A tiny MiniMind never handed to a trainer; tests deep-copy it (TRL patches model.forward)."""
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))


@pytest.fixture(scope="module")
def other_model() -> MiniMindForCausalLM:
    """A second tiny MiniMind with different weights, used as an explicit reference model."""
    torch.manual_seed(1)
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))


@pytest.fixture(scope="module")
def train_dataset() -> Dataset:
    return Dataset.from_list(preference_records(16))


def make_args(output_dir: Path, **overrides) -> DPOConfig:
    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        beta=0.1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,  # TRL turns bf16 autocast on by default; keep CPU tests in exact float32
        max_length=128,
        dataloader_num_workers=0,
        seed=0,
    )
    settings[checkpointing_argument_name(DPOConfig)] = False  # the installed transformers' name
    settings.update(overrides)
    return DPOConfig(**settings)


def first_batch(trainer: DPOTrainer, size: int = 4) -> dict[str, torch.Tensor]:
    """The collated batch (chosen rows, then rejected rows) of the first ``size`` prepared examples."""
    return trainer.data_collator([trainer.train_dataset[i] for i in range(size)])


def logged(trainer: DPOTrainer, key: str) -> list[float]:
    """A logged value per step (transformers < 5 rounds the logged ``loss`` to 4 decimals)."""
    return [entry[key] for entry in trainer.state.log_history if key in entry]


LOGGED_TOL = 1e-4  # tolerance for a logged loss, given that rounding


# --------------------------------------------------------------------------------------------------
# dpo_loss on hand-computed values
# --------------------------------------------------------------------------------------------------
# Two pairs, beta = 0.5:
#   policy chosen/rejected = [-1, -2] / [-3, -1]; reference chosen/rejected = [-1.5, -2] / [-2, -2]
#   chosen log-ratios   c = [0.5, 0.0];   rejected log-ratios r = [-1.0, 1.0]
#   sigmoid:      z = beta (c - r) = [0.75, -0.5];  loss = log(1 + e^-z)
#                 log(1 + e^-0.75) = 0.386871006115,  log(1 + e^0.5) = 0.974076984180
#   cDPO eps=0.2: loss = 0.8 log(1 + e^-z) + 0.2 log(1 + e^z) = log(1 + e^-z) + 0.2 z
#                 = [0.386871006115 + 0.15, 0.974076984180 - 0.1]
#   sigmoid_norm, chosen/rejected lengths [2, 4] / [5, 1]:
#                 c/L = [0.25, 0.0], r/L = [-0.2, 1.0]; z = 0.5 [0.45, -1.0] = [0.225, -0.5]
#                 log(1 + e^-0.225) = 0.586962002050
#   ipo:          (c/L - r/L - 1/(2 beta))^2 = (0.45 - 1)^2, (-1 - 1)^2 = [0.3025, 4.0]
#   rewards:      beta c = [0.25, 0.0], beta r = [-0.5, 0.5]
POLICY_CHOSEN = [-1.0, -2.0]
POLICY_REJECTED = [-3.0, -1.0]
REF_CHOSEN = [-1.5, -2.0]
REF_REJECTED = [-2.0, -2.0]
CHOSEN_LENGTHS = [2, 4]
REJECTED_LENGTHS = [5, 1]


def example_inputs(requires_grad: bool = False) -> list[torch.Tensor]:
    tensors = [
        torch.tensor(values, dtype=torch.float64)
        for values in (POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED)
    ]
    tensors[0].requires_grad_(requires_grad)
    tensors[1].requires_grad_(requires_grad)
    return tensors


def lengths() -> dict[str, torch.Tensor]:
    return {"chosen_lengths": torch.tensor(CHOSEN_LENGTHS), "rejected_lengths": torch.tensor(REJECTED_LENGTHS)}


def assert_values(actual: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-9, rtol=0)


def test_sigmoid_loss_and_rewards_match_hand_computed_values():
    losses, chosen_rewards, rejected_rewards = dpo_loss(*example_inputs(), beta=0.5)
    assert_values(losses, [0.386871006115, 0.974076984180])
    assert_values(chosen_rewards, [0.25, 0.0])
    assert_values(rejected_rewards, [-0.5, 0.5])


def test_sigmoid_ignores_lengths_and_rewards_are_detached():
    inputs = example_inputs(requires_grad=True)
    losses, chosen_rewards, rejected_rewards = dpo_loss(*inputs, beta=0.5, **lengths())
    assert_values(losses.detach(), [0.386871006115, 0.974076984180])
    assert losses.requires_grad
    assert not chosen_rewards.requires_grad and not rejected_rewards.requires_grad


def test_sigmoid_gradient_matches_hand_computed_value():
    # d/dc of -log sigmoid(beta (c - r)) is -beta * sigmoid(-z): -0.5 * sigmoid(-0.75) = -0.5 * 0.320821300825
    inputs = example_inputs(requires_grad=True)
    losses, _, _ = dpo_loss(*inputs, beta=0.5)
    losses.sum().backward()
    assert_values(inputs[0].grad, [-0.5 * 0.320821300825, -0.5 * 0.622459331202])
    assert_values(inputs[1].grad, [0.5 * 0.320821300825, 0.5 * 0.622459331202])


def test_label_smoothing_is_conservative_dpo():
    losses, _, _ = dpo_loss(*example_inputs(), beta=0.5, label_smoothing=0.2)
    assert_values(losses, [0.386871006115 + 0.15, 0.974076984180 - 0.1])


def test_sigmoid_norm_divides_log_ratios_by_completion_length():
    losses, chosen_rewards, rejected_rewards = dpo_loss(
        *example_inputs(), beta=0.5, loss_type="sigmoid_norm", **lengths()
    )
    assert_values(losses, [0.586962002050, 0.974076984180])
    # Rewards stay on the summed log-ratios, as TRL logs them.
    assert_values(chosen_rewards, [0.25, 0.0])
    assert_values(rejected_rewards, [-0.5, 0.5])


def test_sigmoid_norm_with_label_smoothing():
    losses, _, _ = dpo_loss(*example_inputs(), beta=0.5, loss_type="sigmoid_norm", label_smoothing=0.2, **lengths())
    assert_values(losses, [0.586962002050 + 0.2 * 0.225, 0.974076984180 - 0.1])


def test_ipo_squared_loss_on_length_normalised_ratios():
    losses, chosen_rewards, _ = dpo_loss(*example_inputs(), beta=0.5, loss_type="ipo", **lengths())
    assert_values(losses, [0.3025, 4.0])
    assert_values(chosen_rewards, [0.25, 0.0])


def test_zero_lengths_are_clamped_to_one_like_trl():
    inputs = example_inputs()
    zero = {"chosen_lengths": torch.tensor([0, 1]), "rejected_lengths": torch.tensor([1, 1])}
    losses, _, _ = dpo_loss(*inputs, beta=0.5, loss_type="sigmoid_norm", **zero)
    expected, _, _ = dpo_loss(*inputs, beta=0.5, loss_type="sigmoid")
    torch.testing.assert_close(losses, expected)


def test_equal_policy_and_reference_give_log2():
    logps = torch.tensor([-5.0, -7.0, -1.0])
    for loss_type in ("sigmoid", "sigmoid_norm"):
        losses, chosen_rewards, _ = dpo_loss(
            logps,
            logps - 1,
            logps,
            logps - 1,
            loss_type=loss_type,
            chosen_lengths=torch.tensor([1, 2, 3]),
            rejected_lengths=torch.tensor([3, 2, 1]),
        )
        torch.testing.assert_close(losses, torch.full((3,), LOG2))
        torch.testing.assert_close(chosen_rewards, torch.zeros(3))


def _call(**changes):
    args = dict(
        zip(
            ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps"),
            example_inputs(),
            strict=True,
        )
    )
    args.update(changes)
    return dpo_loss(**args)


@pytest.mark.parametrize(
    ("changes", "error", "pattern"),
    [
        ({"policy_chosen_logps": [-1.0, -2.0]}, TypeError, "policy_chosen_logps must be a torch.Tensor"),
        ({"ref_rejected_logps": torch.tensor([1, 2])}, TypeError, "ref_rejected_logps must be a floating-point"),
        ({"policy_rejected_logps": torch.zeros(2, 3)}, ValueError, "policy_rejected_logps must be 1-D"),
        ({"ref_chosen_logps": torch.zeros(3)}, ValueError, r"ref_chosen_logps has shape \(3,\)"),
        ({"loss_type": "hinge"}, ValueError, "unknown loss_type 'hinge'"),
        ({"beta": 0.0}, ValueError, "beta must be a finite number > 0"),
        ({"beta": float("nan")}, ValueError, "beta must be a finite number > 0"),
        ({"beta": True}, ValueError, "beta must be a finite number > 0"),
        ({"label_smoothing": 0.5}, ValueError, r"label_smoothing must lie in \[0, 0.5\)"),
        ({"label_smoothing": -0.1}, ValueError, r"label_smoothing must lie in \[0, 0.5\)"),
        ({"loss_type": "ipo", "label_smoothing": 0.1, **lengths()}, ValueError, "not defined for loss_type='ipo'"),
        ({"loss_type": "sigmoid_norm"}, ValueError, "pass both chosen_lengths and rejected_lengths"),
        ({"loss_type": "ipo", "chosen_lengths": torch.tensor([1, 1])}, ValueError, "pass both"),
        (
            {"loss_type": "sigmoid_norm", "chosen_lengths": [2, 4], "rejected_lengths": torch.tensor([1, 1])},
            TypeError,
            "chosen_lengths must be a torch.Tensor",
        ),
        (
            {
                "loss_type": "sigmoid_norm",
                "chosen_lengths": torch.tensor([True, False]),
                "rejected_lengths": torch.tensor([1, 1]),
            },
            TypeError,
            "chosen_lengths must hold integer or float",
        ),
        (
            {
                "loss_type": "sigmoid_norm",
                "chosen_lengths": torch.tensor([1, 1, 1]),
                "rejected_lengths": torch.tensor([1, 1]),
            },
            ValueError,
            r"chosen_lengths has shape \(3,\)",
        ),
        (
            {"loss_type": "ipo", "chosen_lengths": torch.tensor([1, 1]), "rejected_lengths": torch.tensor([2, -1])},
            ValueError,
            r"rejected_lengths\[1\] = -1 is negative",
        ),
        ({"rejected_lengths": torch.tensor([1])}, ValueError, "rejected_lengths has shape"),
    ],
)
def test_dpo_loss_rejects_bad_inputs(changes, error, pattern):
    with pytest.raises(error, match=pattern):
        _call(**changes)


# --------------------------------------------------------------------------------------------------
# The course-style adapter
# --------------------------------------------------------------------------------------------------
def random_token_batch(pairs: int = 3, length: int = 7, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(2 * pairs, length, generator=generator, dtype=torch.float64) * 4
    ref_logps = -torch.rand(2 * pairs, length, generator=generator, dtype=torch.float64) * 4
    mask = (torch.rand(2 * pairs, length, generator=generator) > 0.4).long()
    mask[:, -1] = 1  # every row has at least one completion token
    return ref_logps, logps, mask


def test_course_adapter_equals_sigmoid_norm():
    ref_logps, logps, mask = random_token_batch()
    beta = 0.3
    loss = dpo_loss_from_token_logps(ref_logps, logps, mask, beta)

    sums, ref_sums, counts = (logps * mask).sum(1), (ref_logps * mask).sum(1), mask.sum(1)
    losses, _, _ = dpo_loss(
        sums[:3],
        sums[3:],
        ref_sums[:3],
        ref_sums[3:],
        beta=beta,
        loss_type="sigmoid_norm",
        chosen_lengths=counts[:3],
        rejected_lengths=counts[3:],
    )
    torch.testing.assert_close(loss, losses.mean(), atol=1e-12, rtol=0)

    # The same, written out row by row: mean log-prob of each row's masked tokens.
    expected = []
    for pair in range(3):
        chosen, rejected = pair, pair + 3
        mean = lambda values, row: values[row][mask[row].bool()].mean()  # noqa: E731
        logit = (mean(logps, chosen) - mean(logps, rejected)) - (mean(ref_logps, chosen) - mean(ref_logps, rejected))
        expected.append(-torch.nn.functional.logsigmoid(beta * logit))
    torch.testing.assert_close(loss, torch.stack(expected).mean(), atol=1e-12, rtol=0)

    # ... and it is not the summed ("sigmoid") loss, which would differ on these lengths.
    summed, _, _ = dpo_loss(sums[:3], sums[3:], ref_sums[:3], ref_sums[3:], beta=beta)
    assert abs(summed.mean().item() - loss.item()) > 1e-3


def test_course_adapter_accepts_bool_mask_and_keeps_gradients():
    ref_logps, logps, mask = random_token_batch(seed=1)
    logps.requires_grad_(True)
    loss = dpo_loss_from_token_logps(ref_logps, logps, mask.bool(), 0.1)
    loss.backward()
    assert logps.grad is not None
    assert torch.all(logps.grad[mask == 0] == 0)  # tokens outside the completion get no gradient


@pytest.mark.parametrize(
    ("mutate", "error", "pattern"),
    [
        (lambda r, p, m: (r, p, m[:, :-1]), ValueError, "must share one shape"),
        (lambda r, p, m: (r[:5], p[:5], m[:5]), ValueError, "even, non-zero number of rows"),
        (lambda r, p, m: (r[0], p[0], m[0]), ValueError, "must be 2-D"),
        (lambda r, p, m: (r.tolist(), p, m), TypeError, "ref_logps must be a torch.Tensor"),
        (lambda r, p, m: (r, p.long(), m), TypeError, "logps must be floating point"),
        (
            lambda r, p, m: (r, p, torch.cat([m[:4], torch.zeros_like(m[4:5]), m[5:]])),
            ValueError,
            r"mask row 4 \(rejected pair 1\) selects no completion token",
        ),
    ],
)
def test_course_adapter_rejects_bad_inputs(mutate, error, pattern):
    with pytest.raises(error, match=pattern):
        dpo_loss_from_token_logps(*mutate(*random_token_batch()), 0.1)


# --------------------------------------------------------------------------------------------------
# MiniMindDPOTrainer against TRL's DPOTrainer
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_trainer_loss_gradients_and_metrics_equal_trl(
    loss_type, tmp_path, tokenizer, pristine_model, other_model, train_dataset
):
    # An explicit reference that differs from the policy, so the loss is not trivially log 2.
    args = make_args(tmp_path, loss_type=loss_type, beta=2.0)
    ours = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        ref_model=copy.deepcopy(other_model),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    theirs = DPOTrainer(
        model=copy.deepcopy(pristine_model),
        ref_model=copy.deepcopy(other_model),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    batch = first_batch(ours)
    # TRL's own batch scores the template's "\n" after <|im_end|> too; ours ends at <|im_end|>
    # (test_completion_ends_at_the_replys_end_token). The loss is compared on the same batch.
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    trl_batch = first_batch(theirs)
    for ours_row, ours_mask, trl_row, trl_mask in zip(
        batch["input_ids"], batch["completion_mask"], trl_batch["input_ids"], trl_batch["completion_mask"], strict=True
    ):
        assert trl_row[trl_mask.bool()].tolist() == ours_row[ours_mask.bool()].tolist() + newline
    lengths_differ = (batch["completion_mask"].sum(1)[:4] != batch["completion_mask"].sum(1)[4:]).any()
    assert lengths_differ, "the test batch must mix completion lengths so sigmoid and sigmoid_norm differ"

    our_loss = ours.compute_loss(ours.model, batch)
    their_loss = theirs.compute_loss(theirs.model, batch)
    assert abs(our_loss.item() - their_loss.item()) < 1e-6
    trivial = (1 / (2 * 2.0)) ** 2 if loss_type == "ipo" else LOG2  # the value when policy == reference
    assert abs(our_loss.item() - trivial) > 0.02 * trivial

    our_loss.backward()
    their_loss.backward()
    their_grads = dict(theirs.model.named_parameters())
    for name, param in ours.model.named_parameters():
        torch.testing.assert_close(param.grad, their_grads[name].grad, atol=1e-6, rtol=1e-5, msg=name)

    our_metrics, their_metrics = ours._metrics["train"], theirs._metrics["train"]
    assert set(our_metrics) == set(their_metrics)
    for key in (
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
        "logps/rejected",
    ):
        assert our_metrics[key] == pytest.approx(their_metrics[key], abs=1e-5), key
    for key in their_metrics:
        assert our_metrics[key] == pytest.approx(their_metrics[key], rel=1e-5, abs=1e-6), key


def test_loss_types_differ_on_the_same_batch(tmp_path, tokenizer, pristine_model, other_model, train_dataset):
    values = {}
    for loss_type in LOSS_TYPES:
        trainer = MiniMindDPOTrainer(
            model=copy.deepcopy(pristine_model),
            ref_model=copy.deepcopy(other_model),
            args=make_args(tmp_path, loss_type=loss_type, beta=0.5),
            train_dataset=train_dataset,
            processing_class=tokenizer,
        )
        values[loss_type] = trainer.compute_loss(trainer.model, first_batch(trainer)).item()
    assert len({round(value, 4) for value in values.values()}) == 3, values


def test_moe_policy_adds_minimind_balance_loss(tmp_path, tokenizer, train_dataset):
    # TRL's fused LM head bypasses MiniMindForCausalLM.forward, which would add the MoE balance loss;
    # the trainer adds it, so its loss is TRL's DPO loss plus the balance loss, logged as aux_loss.
    torch.manual_seed(2)
    moe = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe"))
    torch.manual_seed(3)
    ref = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe"))
    args = make_args(tmp_path)
    ours = MiniMindDPOTrainer(
        model=copy.deepcopy(moe),
        ref_model=copy.deepcopy(ref),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    theirs = DPOTrainer(
        model=copy.deepcopy(moe),
        ref_model=copy.deepcopy(ref),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    batch = first_batch(ours)
    our_loss = ours.compute_loss(ours.model, batch)
    their_loss = theirs.compute_loss(theirs.model, batch)
    balance = ours._metrics["train"]["aux_loss"][-1]
    assert balance > 1e-4
    assert our_loss.item() == pytest.approx(their_loss.item() + balance, abs=1e-6)
    our_loss.backward()
    gate = ours.model.model.layers[0].mlp.gate.weight
    assert gate.grad is not None and gate.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"loss_type": "hinge"}, "loss_type=\\['hinge'\\] is not supported"),
        ({"loss_type": ["sigmoid", "sft"]}, "is not supported"),
        ({"ld_alpha": 0.5}, "DPOConfig.ld_alpha=0.5 is not supported"),
        ({"f_divergence_type": "js_divergence"}, "f_divergence_type='js_divergence' is not supported"),
        ({"use_weighting": True}, "use_weighting=True is not supported"),
    ],
)
def test_trainer_refuses_options_its_loss_does_not_implement(
    overrides, pattern, tmp_path, tokenizer, pristine_model, train_dataset
):
    with pytest.raises(ValueError, match=pattern):
        MiniMindDPOTrainer(
            model=copy.deepcopy(pristine_model),
            args=make_args(tmp_path, **overrides),
            train_dataset=train_dataset,
            processing_class=tokenizer,
        )


# --------------------------------------------------------------------------------------------------
# Reference model: frozen copy, precomputed log-probs, PEFT adapter disabled
# --------------------------------------------------------------------------------------------------
def test_reference_is_a_frozen_copy_that_training_leaves_unchanged(tmp_path, tokenizer, pristine_model, train_dataset):
    policy = copy.deepcopy(pristine_model)
    trainer = MiniMindDPOTrainer(
        model=policy, args=make_args(tmp_path), train_dataset=train_dataset, processing_class=tokenizer
    )
    ref = trainer.ref_model
    assert ref is not None and ref is not policy
    assert not ref.training
    assert all(not p.requires_grad for p in ref.parameters())
    policy_storage = {p.data_ptr() for p in policy.parameters()}
    assert policy_storage.isdisjoint(p.data_ptr() for p in ref.parameters())

    start = {name: value.clone() for name, value in pristine_model.state_dict().items()}
    trainer.train()

    for name, value in ref.state_dict().items():
        assert torch.equal(value, start[name]), f"reference weight {name} changed during training"
    changed = [name for name, value in policy.state_dict().items() if not torch.equal(value, start[name])]
    assert changed, "the policy did not train"
    assert logged(trainer, "loss")[0] == pytest.approx(LOG2, abs=LOGGED_TOL)  # policy == reference at step 1


def test_precomputed_reference_log_probs(tmp_path, tokenizer, pristine_model, train_dataset):
    trainer = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path / "pre", precompute_ref_log_probs=True),
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    assert trainer.ref_model is None
    assert {"ref_chosen_logps", "ref_rejected_logps"} <= set(trainer.train_dataset.column_names)

    # The stored columns equal what a frozen copy of the starting policy computes on the same batch.
    with_copy = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path / "copy"),
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    batch = first_batch(trainer)
    expected_chosen, expected_rejected = with_copy.compute_ref_log_probs(with_copy.ref_model, batch)
    torch.testing.assert_close(batch["ref_chosen_logps"], expected_chosen, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(batch["ref_rejected_logps"], expected_rejected, atol=1e-5, rtol=1e-6)

    trainer.train()
    losses = logged(trainer, "loss")
    assert losses[0] == pytest.approx(LOG2, abs=LOGGED_TOL)
    assert losses[-1] < LOG2 - 1e-3


def test_peft_policy_uses_the_adapter_disabled_base_as_reference(tmp_path, tokenizer, pristine_model, train_dataset):
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path, learning_rate=5e-3),
        peft_config=lora,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    assert isinstance(trainer.model, PeftModel)
    assert trainer.ref_model is None, "a PEFT policy must not get a second model"

    trainer.train()
    losses = logged(trainer, "loss")
    assert losses[0] == pytest.approx(LOG2, abs=LOGGED_TOL)  # a fresh LoRA adapter starts as the identity
    assert losses[-1] < LOG2 - 1e-3

    base = {k: v for k, v in pristine_model.state_dict().items()}
    for name, value in trainer.model.get_base_model().state_dict().items():
        if "lora_" not in name:
            key = name.replace(".base_layer", "")
            assert torch.equal(value, base[key]), f"base weight {name} changed"

    # The reference log-probs (adapter disabled) are the untouched base model's; the policy's are not.
    batch = first_batch(trainer)
    ref_chosen, _ = trainer.compute_ref_log_probs(trainer.model, batch)
    plain = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path / "plain"),
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    base_chosen, _ = plain.compute_ref_log_probs(plain.ref_model, batch)
    torch.testing.assert_close(ref_chosen, base_chosen, atol=1e-5, rtol=1e-6)
    with torch.no_grad():
        trainer.compute_loss(trainer.model, batch)
    assert trainer._metrics["train"]["rewards/margins"][-1] > 0


def test_existing_peft_adapter_gets_a_frozen_ref_adapter_not_a_model(
    tmp_path, tokenizer, pristine_model, train_dataset
):
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    policy = get_peft_model(copy.deepcopy(pristine_model), lora)
    trainer = MiniMindDPOTrainer(
        model=policy, args=make_args(tmp_path), train_dataset=train_dataset, processing_class=tokenizer
    )
    assert trainer.ref_model is None
    assert "ref" in trainer.model.peft_config
    loss = trainer.compute_loss(trainer.model, first_batch(trainer))
    # policy (TRL's fused head) and reference (a plain forward) sum their log-probabilities in another order:
    # 1.9e-5 apart on one thread (the compat stack), far less than a reference other than the policy moves it
    assert loss.item() == pytest.approx(LOG2, abs=1e-4)


# --------------------------------------------------------------------------------------------------
# Training: the loss leaves log 2 (and, at the original recipe's learning rate, does not)
# --------------------------------------------------------------------------------------------------
def train_short(tmp_path, tokenizer, model, dataset, **overrides) -> MiniMindDPOTrainer:
    args = make_args(tmp_path, **{"max_steps": 8, "learning_rate": 2e-3, **overrides})
    trainer = MiniMindDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return trainer


def test_training_moves_the_loss_clearly_below_log2(tmp_path, tokenizer, pristine_model, train_dataset):
    trainer = train_short(tmp_path, tokenizer, copy.deepcopy(pristine_model), train_dataset)
    held_out = trainer.evaluate(Dataset.from_list(preference_records(24)[16:]))
    assert math.isfinite(held_out["eval_loss"])
    assert {"eval_rewards/margins", "eval_rewards/accuracies", "eval_logps/chosen"} <= set(held_out)
    losses = logged(trainer, "loss")
    margins = logged(trainer, "rewards/margins")
    accuracies = logged(trainer, "rewards/accuracies")
    assert len(losses) == 8
    assert losses[0] == pytest.approx(LOG2, abs=LOGGED_TOL) and margins[0] == pytest.approx(0.0, abs=1e-6)
    assert sum(losses[-3:]) / 3 < 0.5, losses
    assert margins[-1] > 0.4 and sum(margins[4:]) > sum(margins[:4]), margins
    assert sum(accuracies[-3:]) / 3 >= 0.75, accuracies


def test_original_minimind_learning_rate_keeps_the_loss_at_log2(tmp_path, tokenizer, pristine_model, train_dataset):
    # Same model, data and steps as above at the original recipe's learning rate (4e-8): stuck at 0.693.
    trainer = train_short(tmp_path, tokenizer, copy.deepcopy(pristine_model), train_dataset, learning_rate=4e-8)
    losses = logged(trainer, "loss")
    assert len(losses) == 8
    assert all(abs(loss - LOG2) < 1e-3 for loss in losses), losses
    assert all(abs(margin) < 1e-3 for margin in logged(trainer, "rewards/margins"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss_type", "start", "final_below"),
    # Measured on this setup: sigmoid 0.693 -> 0.05, sigmoid_norm 0.693 -> 0.50, ipo 25 -> 1.5 (mean of the
    # last five steps). sigmoid_norm's logit is per token, so the same reward margin moves its loss less.
    [("sigmoid", LOG2, 0.2), ("sigmoid_norm", LOG2, 0.6), ("ipo", (1 / (2 * 0.1)) ** 2, 5.0)],
)
def test_longer_training_on_32_pairs(loss_type, start, final_below, tmp_path, tokenizer, pristine_model):
    dataset = Dataset.from_list(preference_records(32))
    trainer = train_short(
        tmp_path,
        tokenizer,
        copy.deepcopy(pristine_model),
        dataset,
        loss_type=loss_type,
        max_steps=40,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        beta=0.1,
    )
    losses = logged(trainer, "loss")
    margins = logged(trainer, "rewards/margins")
    assert losses[0] == pytest.approx(start, rel=LOGGED_TOL)  # the loss when policy == reference
    assert sum(losses[-5:]) / 5 < final_below, losses
    assert sum(margins[-5:]) / 5 > 2.0, margins
    assert sum(logged(trainer, "rewards/accuracies")[-5:]) / 5 >= 0.9


# --------------------------------------------------------------------------------------------------
# What DPO scores: the reply and its end token, nothing of the template after it
# --------------------------------------------------------------------------------------------------
def test_completion_ends_at_the_replys_end_token(tmp_path, tokenizer, pristine_model, train_dataset):
    r"""The chat template writes "<|im_end|>\n" after every turn.

    SFT masks the "\n" and inference stops at <|im_end|>, so DPO must not score it either: each completion is the
    reply's tokens and <|im_end|>.
    """
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    trainer = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path),
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
    records = preference_records(len(train_dataset))
    for example, record in zip(trainer.train_dataset, records, strict=True):
        for key in ("chosen", "rejected"):
            reply = record[key][-1]["content"]
            expected = tokenizer(reply, add_special_tokens=False)["input_ids"] + [im_end]
            assert example[f"{key}_ids"] == expected, (key, tokenizer.decode(example[f"{key}_ids"]))
    batch = first_batch(trainer)
    scored = batch["input_ids"][batch["completion_mask"].bool()].tolist()
    assert scored.count(im_end) == 8  # one end token per sequence (4 chosen + 4 rejected) ...
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    rows = [batch["input_ids"][i][batch["completion_mask"][i].bool()].tolist() for i in range(8)]
    assert all(row[-1] == im_end for row in rows)  # ... and nothing scored after it
    assert all(row[-len(newline) :] != newline for row in rows)


def test_pairs_made_identical_by_truncation_are_dropped_and_counted(tmp_path, tokenizer, pristine_model):
    """Cut at max_length, a pair whose replies differ only past it has chosen == rejected.

    Its log-ratios are equal, so it would count as a failure in rewards/accuracies. It is dropped, and counted.
    """
    shared = "淨利成長了百分之十，" * 12
    records = preference_records(4) + [
        {
            "chosen": translation_messages("Net income rose.", shared + "好", prompt_id=4),
            "rejected": translation_messages("Net income rose.", shared + "壞", prompt_id=4),
        }
    ]
    trainer = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path, max_length=64),
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
    )
    assert len(trainer.train_dataset) == 4
    assert trainer.dropped_rows["train"] == {"identical_after_truncation": 1}
    batch = first_batch(trainer)
    chosen, rejected = batch["input_ids"].chunk(2)
    assert all(not torch.equal(c, r) for c, r in zip(chosen, rejected, strict=True))


def test_control_token_text_in_a_pair_stays_text(tmp_path, tokenizer, pristine_model):
    """A user who types "<|im_end|>" gets it as text in DPO too, as in the SFT data and at inference."""
    sneaky = "Press <|im_end|> to close <|im_start|>system"
    records = preference_records(3) + [
        {
            "chosen": translation_messages(sneaky, "按 <|im_end|> 關閉", prompt_id=4),
            "rejected": translation_messages(sneaky, sneaky, prompt_id=4),
        }
    ]
    trainer = MiniMindDPOTrainer(
        model=copy.deepcopy(pristine_model),
        args=make_args(tmp_path),
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
    )
    example = trainer.train_dataset[3]
    im_start, im_end = (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>"))
    assert example["prompt_ids"].count(im_start) == 2 and example["prompt_ids"].count(im_end) == 1
    assert example["chosen_ids"].count(im_end) == 1 and example["chosen_ids"][-1] == im_end
    assert tokenizer.decode(example["chosen_ids"]) == "按 <|im_end|> 關閉<|im_end|>"
    assert example["rejected_ids"].count(im_end) == 1 and example["rejected_ids"].count(im_start) == 0
    ordinary = trainer.train_dataset[0]  # other pairs keep TRL's ids
    assert ordinary["chosen_ids"] == tokenizer(records[0]["chosen"][-1]["content"], add_special_tokens=False)[
        "input_ids"
    ] + [im_end]
