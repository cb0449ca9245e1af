r"""Is one checkpoint's corpus chrF above another's on the same test sentences? A paired bootstrap.

    python benchmarks/paired_chrf.py out/eval/finance/dpo/eval_translations.jsonl \
        out/eval/finance/grpo/eval_translations.jsonl out/eval/finance/grpo-control/eval_translations.jsonl

Reads the ``eval_translations.jsonl`` that ``minimind eval`` writes per checkpoint (the same test rows, matched by
``id``), and for each file after the first prints its corpus chrF (sacrebleu, as the evaluation scores it), the
difference to the first (the baseline) and a 95% interval of that difference from ``--samples`` resamplings of
the sentences (the same resampled sentences for both sides). A difference whose interval holds 0 is not told
apart from noise on this test set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from sacrebleu.metrics import CHRF


def read_rows(path: Path) -> dict[str, dict]:
    rows = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[row["id"]] = row
            except (ValueError, KeyError) as err:
                raise SystemExit(f"{path}:{number}: not an eval_translations row ({err})") from None
    return rows


def paired_bootstrap(
    baseline: list[str], other: list[str], references: list[str], samples: int, seed: int = 0
) -> tuple[float, float, float, float]:
    """``(baseline chrF, other chrF, 2.5th, 97.5th percentile of other - baseline)`` over resampled sentences."""
    metric = CHRF()

    def corpus(hypotheses: list[str], refs: list[str]) -> float:
        return metric.corpus_score(hypotheses, [refs]).score

    rng = random.Random(seed)
    n = len(references)
    deltas = []
    for _ in range(samples):
        pick = [rng.randrange(n) for _ in range(n)]
        refs = [references[i] for i in pick]
        deltas.append(corpus([other[i] for i in pick], refs) - corpus([baseline[i] for i in pick], refs))
    deltas.sort()
    return (
        corpus(baseline, references),
        corpus(other, references),
        deltas[int(0.025 * samples)],
        deltas[int(0.975 * samples) - 1],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="the baseline's eval_translations.jsonl")
    parser.add_argument("others", type=Path, nargs="+", help="the checkpoints compared with it")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    base = read_rows(args.baseline)
    print(
        "| checkpoint | sentences | chrF | baseline chrF | difference | 95% interval |\n|---|---:|---:|---:|---:|---|"
    )
    for path in args.others:
        rows = read_rows(path)
        ids = [i for i in base if i in rows]
        if len(ids) != len(base) or len(ids) != len(rows):
            print(
                f"{path}: {len(rows)} rows, {len(base)} in the baseline, {len(ids)} shared; comparing the shared ones",
                file=sys.stderr,
            )
        low_base, other, low, high = paired_bootstrap(
            [base[i]["hypothesis"] for i in ids],
            [rows[i]["hypothesis"] for i in ids],
            [base[i]["zh"] for i in ids],
            args.samples,
        )
        print(
            f"| {path.parent.name} | {len(ids)} | {other:.2f} | {low_base:.2f} | {other - low_base:+.2f} | "
            f"{low:+.2f} .. {high:+.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
