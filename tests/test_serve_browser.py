"""`blendfix serve` in a real browser: Debian's headless Chromium driven by selenium (no browser download).

A module fixture starts ``blendfix serve`` as a subprocess on a free loopback port, with its own
TMPDIR and working folder, so the test can check that the server leaves nothing behind. Without
Chromium/chromedriver (``apt-get install chromium chromium-driver``), selenium or gradio the tests
skip with the reason; under ``CI=true`` that is a failure (``.ci/run`` installs Chromium).

``BLENDFIX_SERVE_SCREENSHOT=docs/serve.png`` also saves the page screenshot the README shows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, need
from test_serve import NETWORK, pasted_pair

from blendfix.cli import main

CHROMIUM = os.environ.get("BLENDFIX_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BLENDFIX_CHROMEDRIVER", "/usr/bin/chromedriver")
START_TIMEOUT = 300  # seconds for the server to answer (imports torch + gradio on a busy 2-core CPU)
STEP_TIMEOUT = 300  # seconds for one page action (seconds when idle; a loaded 2-core CPU is far slower)

#: What libraries leave in TMPDIR on their own, whatever blendfix does: onnxruntime's telemetry SDK writes
#: `.ses` when it is imported (the CPU cleaner runs in onnxruntime), torch keeps a `torchinductor_<user>` cache.
THIRD_PARTY_TMP = re.compile(r"^(\.ses|torchinductor_.*)$")


def _ours(folder) -> list:
    """The entries of ``folder`` that blendfix would have left (third-party caches ignored)."""
    return [p for p in folder.iterdir() if not THIRD_PARTY_TMP.match(p.name)]


def _missing() -> str | None:
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{what} not found at {path} (apt-get install chromium chromium-driver)"
    for mod, how in (("selenium", "pip install 'blendfix[dev]'"), ("gradio", "pip install 'blendfix[serve]'"),
                     ("mediapipe", "pip install --no-deps mediapipe==0.10.14")):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed ({how})"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(url, tmpdir, cwd, process)`` of a running ``blendfix serve``; stopped with SIGTERM afterwards."""
    _require_browser()
    base = tmp_path_factory.mktemp("serve")
    tmpdir, cwd = base / "tmp", base / "cwd"
    tmpdir.mkdir()
    cwd.mkdir()
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = (base / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "blendfix.cli", "serve", "--port", str(port), "--device", "cpu"],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"blendfix serve exited ({proc.returncode}):\n{(base / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"blendfix serve did not answer within {START_TIMEOUT} s:\n{(base / 'server.log').read_text()}")
        time.sleep(1)
    yield url, tmpdir, cwd, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1900",
                "--disable-gpu"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER) or CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _css(driver, sel: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, sel)


def _wait(driver, cond, what: str, timeout: float = STEP_TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(cond, message=f"waiting for {what}")


def _open(driver, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: _css(d, "#clean-original input[type=file]"), "the page")


def _upload(driver, elem_id: str, path: Path) -> None:
    _css(driver, f"#{elem_id} input[type=file]")[0].send_keys(str(path))
    # the file box shows the name as stem and suffix on separate lines
    _wait(driver, lambda d: path.stem in d.find_element("id", elem_id).text, f"{path.name} in #{elem_id}")


def _loaded_image(driver, elem_id: str) -> str:
    """Wait until ``#elem_id`` shows a fully loaded image; returns its URL."""
    def ready(d):
        imgs = _css(d, f"#{elem_id} img")
        ok = imgs and d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", imgs[0])
        return imgs[0].get_attribute("src") if ok else False

    return _wait(driver, ready, f"the image in #{elem_id}")


def _fetch(url: str) -> np.ndarray:
    from PIL import Image

    with urllib.request.urlopen(url, timeout=30) as r:
        return np.asarray(Image.open(BytesIO(r.read())).convert("RGB"))


def _message(driver, elem_id: str, contains: str) -> str:
    return _wait(driver, lambda d: (t := d.find_element("id", elem_id).text) and contains in t and t, contains)


def _click(driver, elem_id: str) -> None:
    driver.find_element("id", elem_id).click()


@pytest.fixture(scope="module")
def face(faces_dir) -> Path:
    return need(faces_dir / "celebamask_hq_512" / "0.jpg", "shared face celebamask_hq_512/0.jpg")


def test_clean_my_pair_shows_what_blendfix_clean_gives(server, browser, face, tmp_path):
    url = server[0]
    orig, pasted, _ = pasted_pair(face, tmp_path)
    _open(browser, url)
    _upload(browser, "clean-original", orig)
    _upload(browser, "clean-edited", pasted)
    _click(browser, "clean-button")
    shown = {}
    for method in ("network", "poisson") if NETWORK else ("poisson",):
        shown[method] = _fetch(_loaded_image(browser, f"result-{method}"))
        assert main(["clean", "-i", str(orig), "--fused", str(pasted), "-o", str(tmp_path / method),
                     "--method", method, "--device", "cpu"]) == 0
        assert np.array_equal(shown[method], _fetch_file(tmp_path / method / "original.png")), method
    assert np.array_equal(_fetch(_loaded_image(browser, "result-fused")), _fetch_file(pasted))
    _loaded_image(browser, "clean-zoom")
    assert "poisson" in _message(browser, "clean-scores", "seam score")
    assert "Done." in browser.find_element("id", "clean-message").text
    downloads = tmp_path / "downloads"
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    _click(browser, "clean-download")
    main_method = "network" if NETWORK else "poisson"
    got = downloads / f"original_blendfix_{main_method}.png"
    _wait(browser, lambda d: got.is_file(), f"the download {got.name}")
    assert np.array_equal(_fetch_file(got), shown[main_method])
    shot = os.environ.get("BLENDFIX_SERVE_SCREENSHOT")
    browser.save_screenshot(str(ROOT / shot) if shot else str(tmp_path / "serve.png"))
    # offline: every request the page made went to the server itself (no CDN, fonts or analytics)
    hosts = set()
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            req = msg["params"]["request"]["url"]
            if req.startswith(("http:", "https:", "ws:", "wss:")):
                hosts.add(req.split("/")[2])
    assert hosts == {url.split("/")[2]}


def _fetch_file(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("files, needle", [
    (("not_an_image.png", "mismatch_fused.png"), "original 'not_an_image.png'"),
    (("mismatch_original.png", "mismatch_fused.png"), "differ in size"),
    (("bomb.png", "mismatch_fused.png"), "exceeds the limit"),
])
def test_bad_upload_shows_a_message_not_a_traceback(server, browser, data_dir, files, needle):
    bad = need(data_dir / "bad_inputs", "shared bad_inputs")
    _open(browser, server[0])
    _upload(browser, "clean-original", bad / files[0])
    _upload(browser, "clean-edited", bad / files[1])
    _click(browser, "clean-button")
    text = _message(browser, "clean-message", needle)
    assert text.startswith("Could not do that:") and "Traceback" not in text and str(bad) not in text


def test_try_an_edit_with_the_bundled_example_and_a_faceless_upload(server, browser, data_dir):
    from selenium.webdriver.common.by import By

    _open(browser, server[0])
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Try an edit')]").click()
    _wait(browser, lambda d: d.find_element("id", "edit-button").is_displayed(), "the Try an edit tab")
    _click(browser, "edit-button")
    shown = {k: _fetch(_loaded_image(browser, f"edit-{k}")) for k in ("I", "T", "M", "F", "cleaned-poisson")}
    assert shown["I"].shape == (512, 512, 3) and shown["M"].shape == (512, 512, 3)
    assert np.abs(shown["F"].astype(int) - shown["I"]).max() > 25
    assert not np.array_equal(shown["cleaned-poisson"], shown["F"])
    assert "smile edit by the synthetic editor" in _message(browser, "edit-message", "Done.")
    bad = need(data_dir / "bad_inputs", "shared bad_inputs")
    _upload(browser, "edit-photo", bad / "no_face.png")
    browser.find_element(By.XPATH, "//*[@id='edit-source']//label[contains(., 'my upload')]").click()
    _click(browser, "edit-button")
    assert "no face found" in _message(browser, "edit-message", "Could not do that:")


def test_stopping_the_server_leaves_nothing_behind(server):
    url, tmpdir, cwd, proc = server
    assert any(tmpdir.iterdir())  # uploads and results went into the server's temporary folder
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert _ours(tmpdir) == [] and list(cwd.iterdir()) == []
