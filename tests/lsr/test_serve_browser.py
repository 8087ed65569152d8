"""The page of `lsr serve` in a real headless browser (Debian's chromium, driven by Selenium through chromedriver):
a SciFact index is served, a query typed, the results and their explanations read, each explanation summed
against its score, a document opened, and a screenshot saved (``$LSR_SCREENSHOT``, else the test's folder).
The index is BM25's (seconds to build); ``$LSR_SERVE_ENCODER`` names another (the README's screenshot:
``inference-free-tiny``, whose document expansions the page marks)."""

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
selenium = pytest.importorskip("selenium")

from eval.datasets import load_corpus  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs the chromium and chromium-driver packages")


def test_the_page_searches_and_explains_each_hit(tmp_path, data_root, lsr_server):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    scifact = Path(data_root) / "scifact"
    if not scifact.is_dir():
        pytest.skip("SciFact is not under LSR_DATA")
    index = tmp_path / "scifact"
    encoder = load_encoder(os.environ.get("LSR_SERVE_ENCODER") or "bm25")
    Retriever.build(load_corpus(scifact, fields=True), encoder, show_progress=False, store=True).save(index)
    server = lsr_server(index)
    port = server.port
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 30).until(lambda d: "documents" in d.find_element(By.ID, "stats").text)
        box = driver.find_element(By.ID, "q")
        box.send_keys("vitamin D deficiency and bone density")
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 30).until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, ".hit")))
        hits = driver.find_elements(By.CSS_SELECTOR, ".hit")
        assert len(hits) == 10
        for hit in hits:
            score = float(hit.get_attribute("data-score"))
            parts = [float(td.text) for td in hit.find_elements(By.CSS_SELECTOR, "td.contribution")]
            assert parts and sum(parts) == pytest.approx(score, rel=1e-3, abs=1e-3)  # printed to 4 decimals
        first = hits[0]
        assert first.find_element(By.CSS_SELECTOR, "h2 a").text.startswith("1. ")
        assert first.find_element(By.CSS_SELECTOR, ".snippet").text
        assert "ms on the server" in driver.find_element(By.ID, "status").text
        shot = Path(os.environ.get("LSR_SCREENSHOT") or tmp_path / "page.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        first.find_element(By.CSS_SELECTOR, "h2 a").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "doc").is_displayed())
        panel = driver.find_element(By.ID, "doc").text
        assert first.get_attribute("data-id") in panel and "heaviest terms" in panel
    finally:
        driver.quit()
        server.kill9()
