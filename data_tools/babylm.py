r"""Write a BabyLM-layout corpus (raw text, one document per line) from pretraining JSON lines.

    python -m data_tools.babylm data/sample/pretrain.jsonl data/babylm \
        --validation data/sample/pretrain.validation.jsonl

gives ``data/babylm/train_10M/<name>.train``, ``data/babylm/dev/<name>.dev`` and ``data/babylm/test/<name>.test``:
the layout COMP4901B HW1 pretrains on, which ``recipes/babylm/pretrain.yaml`` reads. The validation file's
documents are split in two, the first half for ``dev`` and the second for ``test`` (without ``--validation``
the last tenth of the training documents is split that way). A document's line breaks become spaces, since a
line is a document in this layout; how many documents had them is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minimind_hf.utils.command_errors import one_line_errors
from minimind_hf.utils.jsonl import read_jsonl


def read_documents(path: str | Path) -> list[str]:
    """The non-empty ``text`` of every record of a pretraining jsonl file (errors name file and line)."""
    docs = []
    for line_no, row in read_jsonl(path):
        text = row.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{path}:{line_no}: no string 'text' field")
        if text.strip():
            docs.append(text)
    return docs


def write_lines(docs: list[str], path: Path) -> int:
    """Write one document per line; returns how many had line breaks flattened to spaces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flattened = 0
    with path.open("w", encoding="utf-8") as handle:
        for doc in docs:
            line = " ".join(doc.split("\n")).replace("\r", " ")
            flattened += line != doc
            handle.write(line + "\n")
    return flattened


def write_babylm(train: list[str], held_out: list[str], output: Path, name: str = "sample") -> dict[str, int]:
    """The three directories of the layout; returns documents per split and flattened documents."""
    half = len(held_out) // 2
    if half == 0:
        raise ValueError(f"need at least 2 held-out documents for dev and test, got {len(held_out)}")
    splits = {"train_10M": (train, "train"), "dev": (held_out[:half], "dev"), "test": (held_out[half:], "test")}
    counts = {}
    flattened = 0
    for directory, (docs, suffix) in splits.items():
        flattened += write_lines(docs, output / directory / f"{name}.{suffix}")
        counts[directory] = len(docs)
    counts["flattened"] = flattened
    return counts


@one_line_errors("python -m data_tools.babylm")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.babylm", description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path, help="pretraining jsonl ({'text'} per line)")
    parser.add_argument("output", type=Path, help="directory to write train_10M/, dev/ and test/ into")
    parser.add_argument(
        "--validation", type=Path, help="jsonl split into dev and test (default: the last tenth of train)"
    )
    parser.add_argument("--name", default="sample", help="file stem inside each directory (default: sample)")
    args = parser.parse_args(argv)
    train = read_documents(args.train)
    if args.validation:
        held_out = read_documents(args.validation)
    else:
        cut = len(train) - max(2, len(train) // 10)
        train, held_out = train[:cut], train[cut:]
    counts = write_babylm(train, held_out, args.output, args.name)
    print(
        f"wrote {args.output}: train_10M {counts['train_10M']}, dev {counts['dev']}, test {counts['test']} documents "
        f"({counts['flattened']} had line breaks turned into spaces)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
