"""The translation page in a real headless browser, served by ``minimind serve`` run as a command.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``browser`` extra (selenium); slow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from tests.paths import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    pytest.importorskip("fastapi")
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.tokenization import load_tokenizer, save_tokenizer

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", initializer_range=0.3))
    model.save_pretrained(tmp_path / "tiny")
    save_tokenizer(load_tokenizer(), tmp_path / "tiny")
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minimind_hf.cli",
            "serve",
            str(tmp_path / "tiny"),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if json.loads(response.read())["status"] == "ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("minimind serve did not start:\n" + (tmp_path / "server.log").read_text())
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(30)
    log.close()


def _translate(url: str, text: str, system: str | None) -> str:
    body = json.dumps({"text": text, "system": system, "max_tokens": 256}).encode()
    request = urllib.request.Request(url + "/v1/translate", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["translation"]


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)"
)
def test_page_streams_the_translation_in_a_browser(served, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,700",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(served + "/")
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "model").text == "tiny")
        for finance in (False, True):
            source = driver.find_element(By.ID, "source")
            source.clear()
            source.send_keys("The interest rate per period.")
            box = driver.find_element(By.ID, "finance")
            if box.is_selected() != finance:
                box.click()
            driver.find_element(By.ID, "translate").click()
            WebDriverWait(driver, 120).until(
                lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error"))
            )
            status = driver.find_element(By.ID, "status").text
            assert status.startswith("done"), status
            shown = driver.execute_script("return document.getElementById('output').textContent")
            assert shown and shown == _translate(
                served, "The interest rate per period.", "finance" if finance else None
            )
        driver.save_screenshot(str(tmp_path / "page.png"))
        if os.environ.get("MINIMIND_SCREENSHOT"):
            shutil.copy(tmp_path / "page.png", os.environ["MINIMIND_SCREENSHOT"])
    finally:
        driver.quit()
