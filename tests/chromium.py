"""Drive headless Chromium over the DevTools protocol on a pipe, with the standard library.

Used by the report tests: load a page, record every network request, evaluate a
script in it and take a screenshot. ``--remote-debugging-pipe`` makes Chromium read
commands from fd 3 and write replies to fd 4, each a JSON message ended by NUL.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--window-size=1280,1600"]


#: Evaluated in a loaded report page: its images' sizes, the verdict box, its scripts.
PAGE_FACTS = """JSON.stringify({
    images: Array.from(document.images).map(i => ({natural: i.naturalWidth,
        width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height})),
    verdict: (() => { const v = document.getElementById('verdict'); const r = v.getBoundingClientRect();
        return {text: v.innerText, width: r.width, height: r.height,
                visible: getComputedStyle(v).visibility === 'visible'}; })(),
    scripts: document.scripts.length,
})"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> None:
    """Skip without Chromium on a developer machine; fail on CI, where make test installs it."""
    import pytest

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: make test installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (make test installs it)")


def check_rendered_page(path: Path, n_images: int, verdict: str, screenshot: Path) -> None:
    """Render ``path``: every image loaded with a size, the verdict visible and saying
    ``verdict``, no script, and no request but ``file://`` and ``data:``."""
    value, requests = inspect_page(path, PAGE_FACTS, screenshot)
    page = json.loads(value)
    assert len(page["images"]) == n_images
    for image in page["images"]:
        assert image["natural"] > 0 and image["width"] > 0 and image["height"] > 0
    assert page["verdict"]["visible"] and page["verdict"]["width"] > 0 and page["verdict"]["height"] > 0
    assert verdict in page["verdict"]["text"]
    assert page["scripts"] == 0
    outside = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert outside == [], outside
    assert screenshot.stat().st_size > 0


class Browser:
    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="genevae-chromium-")
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def wire_pipes() -> None:  # runs in the child: fd 3 = commands, fd 4 = replies
            # through fresh copies, so that a pipe already at fd 3 or 4 loses its close-on-exec
            commands, replies = os.dup(command_read), os.dup(reply_write)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            # fds 3 and 4 are made after the pipes are opened, so the child must not close them
            close_fds=False, preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._reply_read, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            event = self._read_message()
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - it may already be gone
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._command_write)
        os.close(self._reply_read)
        shutil.rmtree(self.profile, ignore_errors=True)


def inspect_page(path: Path, script: str, screenshot: Path) -> tuple[Any, list[str]]:
    """Load ``path``, evaluate ``script`` (its JSON-able value is returned), save a
    full-page screenshot, and return the URLs of every request the page made."""
    browser = Browser(chromium_path() or "chromium")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Network.enable", session=session)
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        value = browser.send("Runtime.evaluate", {"expression": script, "returnByValue": True},
                             session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True}, session=session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        requests = [e["params"]["request"]["url"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent"]
        return value, requests
    finally:
        browser.close()
