"""`--config FILE` of `minimind eval` and `python -m data_tools.preferences`: the per-scale settings files."""

import pytest

from data_tools.preferences.__main__ import build_parser as pairs_parser
from minimind_hf.cli import build_parser
from minimind_hf.utils.options_file import expand_config
from tests.paths import ROOT


def test_a_config_file_becomes_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("limit: 40\nmax_new_tokens: 48\nsystem: finance\nflags: [a, b]\nquiet: true\nloud: false\n")
    argv = expand_config(["eval", "out/sft", "--config", str(config), "--limit", "5"])
    assert argv == [
        "eval",
        "out/sft",
        "--max-new-tokens",
        "48",
        "--system",
        "finance",
        "--flags",
        "a",
        "b",
        "--quiet",
        "--limit",
        "5",
    ]
    assert expand_config(["eval", "out/sft"]) == ["eval", "out/sft"]


def test_a_bad_config_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="missing.yaml"):
        expand_config(["--config", str(tmp_path / "missing.yaml")])
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SystemExit, match="list.yaml: expected a YAML mapping"):
        expand_config(["--config", str(tmp_path / "list.yaml")])
    with pytest.raises(SystemExit, match="--config needs"):
        expand_config(["--config"])


@pytest.mark.parametrize("scale", ["tiny", "small", "full"])
def test_the_committed_settings_parse_with_their_commands(scale):
    folder = ROOT / "recipes" / scale
    args = pairs_parser().parse_args(expand_config(["--config", str(folder / "pairs.yaml")]))
    assert args.model == "out/sft" and args.adapter == "out/lora" and args.system == "finance"
    argv = expand_config(["eval", "out/sft", "--config", str(folder / "eval.yaml"), "--batch-size", "3"])
    args = build_parser().parse_args(argv)
    assert args.limit > 0 and args.batch_size == 3
