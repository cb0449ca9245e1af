"""Exact and MinHash-LSH near-duplicate removal for pages and short topic strings."""

from __future__ import annotations

import json
import random

import pytest

from data_tools.web.dedup import (
    PAGE_PARAMS,
    MinHashParams,
    NearDeduplicator,
    char_shingles,
    dedup_texts,
    dedup_topics,
    exact_key,
    main,
    minhash_signature,
    normalize_for_hash,
    word_shingles,
)

rng = random.Random(0)
VOCAB = [f"word{i}" for i in range(3000)]


def random_doc(n_words: int = 300) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n_words))


def mutate(doc: str, n_changes: int) -> str:
    words = doc.split()
    for i in rng.sample(range(len(words)), n_changes):
        words[i] = "changed"
    return " ".join(words)


def test_normalisation_and_exact_key():
    assert normalize_for_hash("  Hello,   WORLD!! ") == "hello world"
    assert normalize_for_hash("ＡＢＣ，你好。") == "abc 你好"
    assert exact_key("Hello, world.") == exact_key("hello world")
    assert exact_key("Hello, world.") != exact_key("Hello, word.")


def test_shingles():
    assert word_shingles("a b c d", 2) == {b"a b", b"b c", b"c d"}
    assert word_shingles("a b", 5) == {b"a b"}
    assert word_shingles("", 5) == set()
    assert word_shingles("你好世界", 2) == {"你 好".encode(), "好 世".encode(), "世 界".encode()}
    assert char_shingles("abcd", 3) == {b"abc", b"bcd"}


def test_exact_and_near_duplicates_of_pages():
    base = random_doc()
    near = mutate(base, 3)  # 1% of words changed: Jaccard of 5-gram shingles ~ 0.9
    far = mutate(base, 60)  # 20% changed: Jaccard ~ 0.2
    other = random_doc()
    texts = [base, base.upper() + " !!", near, far, other]
    kept, dropped = dedup_texts(texts)
    assert kept == [0, 3, 4]
    assert dropped == {"exact_duplicate": 1, "near_duplicate": 1}
    kept, dropped = dedup_texts(texts, near=False)
    assert kept == [0, 2, 3, 4] and dropped == {"exact_duplicate": 1}


def test_lsh_catches_high_jaccard_pairs_with_the_expected_rate():
    # FineWeb banding (14 x 8): pairs at J ~ 0.9 are caught almost always, at J ~ 0.3 almost never.
    caught_high = caught_low = 0
    for _ in range(20):
        base = random_doc(200)
        index = NearDeduplicator()
        index.is_duplicate(base)
        caught_high += index.is_duplicate(mutate(base, 2))
        caught_low += index.is_duplicate(mutate(base, 40))
    assert caught_high >= 19
    assert caught_low == 0


def test_signatures_computed_elsewhere_are_accepted():
    doc = random_doc()
    index = NearDeduplicator()
    assert not index.is_duplicate(signature=minhash_signature(doc))
    assert index.is_duplicate(signature=minhash_signature(mutate(doc, 2)))
    with pytest.raises(ValueError, match="text or its signature"):
        index.is_duplicate()


def test_params_validation():
    with pytest.raises(ValueError, match="exceeds num_perm"):
        MinHashParams(num_perm=64, bands=16, rows=8)
    with pytest.raises(ValueError, match="unit"):
        MinHashParams(unit="token")
    assert PAGE_PARAMS.bands * PAGE_PARAMS.rows == PAGE_PARAMS.num_perm == 112


def test_topics():
    topics = [
        "How to compute the net present value of a bond",
        "how to compute the net present value of a bond?",  # exact after normalisation
        "How to compute the net present value of bonds",  # near
        "What is a credit default swap",
        "什麼是淨現值",
        "什麼是淨現值？",  # exact
        "什么是净现值",  # Simplified: different characters, kept
        "",
        "   ",
    ]
    kept, dropped = dedup_topics(topics)
    assert kept == [topics[0], topics[3], topics[4], topics[6]]
    assert dropped == {"exact_duplicate": 2, "near_duplicate": 1, "empty": 2}
    kept, dropped = dedup_topics(topics, near=False)
    assert topics[2] in kept
    with pytest.raises(TypeError, match="topic item 1 is int"):
        dedup_topics(["ok", 3])  # type: ignore[list-item]


def test_topics_cli(tmp_path, capsys):
    src = tmp_path / "topics.json"
    src.write_text(json.dumps(["Bond yields", "bond yields!", "Stock splits"]), encoding="utf-8")
    out = tmp_path / "out.json"
    assert main([str(src), "--output", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == ["Bond yields", "Stock splits"]
    assert "topic items before dedup 3, after dedup 2 (dropped 1: exact_duplicate: 1)" in capsys.readouterr().err

    bad = tmp_path / "bad.json"
    bad.write_text('["a",\n "b" "c"]', encoding="utf-8")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert f"{bad}:2:" in capsys.readouterr().err
    bad.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert "expected a JSON list" in capsys.readouterr().err
    bad.write_text('["a", null]', encoding="utf-8")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert "topic item 1 is NoneType" in capsys.readouterr().err


def test_topics_cli_reads_the_hw1_layout(tmp_path, capsys):
    """COMP4901B HW1 keeps topics as {"data": [{"text": ...}]}; the output keeps that shape and the other fields."""
    src = tmp_path / "topics.json"
    items = [{"text": "Bond yields", "id": 1}, {"text": "bond  yields.", "id": 2}, {"text": "Stock splits", "id": 3}]
    src.write_text(json.dumps({"data": items, "source": "hw1"}), encoding="utf-8")
    out = tmp_path / "out.json"
    assert main([str(src), "--output", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == {"data": [items[0], items[2]], "source": "hw1"}
    assert "topic items before dedup 3, after dedup 2" in capsys.readouterr().err
    src.write_text(json.dumps({"data": [{"title": "no text"}]}), encoding="utf-8")
    with pytest.raises(SystemExit):
        main([str(src)])
    assert "data[0] is not an object with a 'text' field" in capsys.readouterr().err
