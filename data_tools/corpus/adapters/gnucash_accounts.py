"""GnuCash chart-of-accounts templates (``accounts/<locale>/*.gnucash-xea``) -> pairs.

An English template (``C``) and its translation share account ids, so account names and
descriptions pair up by id; the template's title and short/long descriptions pair up by file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from data_tools.corpus.records import CorpusError, Pair, Script
from data_tools.corpus.textutil import squash_ws
from data_tools.stats import Stats

STEP = "adapter.gnucash_accounts"
NS = {
    "gnc": "http://www.gnucash.org/XML/gnc",
    "act": "http://www.gnucash.org/XML/act",
    "gnc-act": "http://www.gnucash.org/XML/gnc-act",
}


def template_strings(path: Path | str) -> dict[str, str]:
    """``{key: text}``: ``title``/``short-description``/``long-description`` and ``<id>/name``, ``<id>/description``."""
    path = Path(path)
    try:
        root = etree.parse(str(path), etree.XMLParser(recover=False)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise CorpusError(f"{path}: cannot parse account template ({exc})") from exc
    out: dict[str, str] = {}
    for tag in ("title", "short-description", "long-description"):
        el = root.find(f"gnc-act:{tag}", NS)
        if el is not None and el.text and el.text.strip():
            out[tag] = squash_ws(el.text)
    for acct in root.iterfind("gnc:account", NS):
        acct_id = acct.findtext("act:id", namespaces=NS)
        if not acct_id:
            continue
        for field in ("name", "description"):
            text = acct.findtext(f"act:{field}", namespaces=NS)
            if text and text.strip():
                out[f"{acct_id.strip()}/{field}"] = squash_ws(text)
    return out


def read_account_templates(
    en_dir: Path | str, zh_dir: Path | str, source: str, script: Script = "hant", tally: Stats | None = None
) -> Iterator[Pair]:
    """Pair every template in ``en_dir`` with the same file in ``zh_dir`` (sorted file order)."""
    en_dir, zh_dir = Path(en_dir), Path(zh_dir)
    tally = tally if tally is not None else Stats()
    if not en_dir.is_dir() or not zh_dir.is_dir():
        raise CorpusError(f"{en_dir if not en_dir.is_dir() else zh_dir}: account template directory not found")
    for en_path in sorted(en_dir.glob("*.gnucash-xea")):
        zh_path = zh_dir / en_path.name
        if not zh_path.is_file():
            tally.drop(STEP, "template_missing_in_zh")
            continue
        en, zh = template_strings(en_path), template_strings(zh_path)
        tally.drop(STEP, "key_missing_in_zh", len(en.keys() - zh.keys()))
        for key in sorted(en.keys() & zh.keys()):
            tally.keep(STEP)
            yield Pair(en=en[key], zh=zh[key], source=source, origin=f"{en_path.name}:{key}", script=script)
