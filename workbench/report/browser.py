"""Open a report in headless Chromium and check it as a reader would see it: console errors, requests that
left the file, each plot drawn, screenshots.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so nothing beyond the Debian ``chromium`` package and
the standard library is needed. The network is cut (a dead proxy, and DevTools' offline emulation): a page
that needed it would fail its requests, and every request is recorded.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the names Debian and others give the browser
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) binary, ``$WORKBENCH_CHROMIUM`` first; None if there is none."""
    given = os.environ.get("WORKBENCH_CHROMIUM")
    if given:
        return given if shutil.which(given) else None
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer in time."""


class Chromium:
    """A headless Chromium with one DevTools connection over a pipe; use as a context manager."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise BrowserError("no chromium found: install Debian's chromium (apt-get install -y chromium) or set "
                               "WORKBENCH_CHROMIUM")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="wb-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}", "--hide-scrollbars", "--mute-audio", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--disable-renderer-backgrounding",
                "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL (3-D plots) without a GPU
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root

        def fds() -> None:  # in the child: the protocol's fixed descriptors 3 (commands) and 4 (replies)
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=fds, pass_fds=(3, 4),
                                        start_new_session=True)  # its own group: its helpers end with it
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Ask the browser to quit, then make sure it has."""
        if self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this object started, and nothing else
                self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    # ---------------------------------------------------------------- protocol
    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium closed the DevTools pipe (exit code {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """The first event ``method`` (already received or next to come)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event


@dataclass
class PlotCheck:
    """One plot of the page: its element id and kind, whether plotly drew it, and how its screenshot looks."""

    target: str
    kind: str
    rendered: bool
    width: float
    height: float
    render_ms: float = 0.0  # from the call to Plotly.newPlot until its promise resolved
    colours: int = 0  # distinct colours in the screenshot of the plot
    ink: float = 0.0  # fraction of pixels that are not the background
    data_ink: float = 0.0  # fraction of the plotting area that changes when the data are made invisible
    png: bytes | None = None

    @property
    def blank(self) -> bool:
        """No data drawn: axes, grid and legend alone change nothing when the traces are hidden."""
        return self.data_ink < 5e-4


@dataclass
class PageCheck:
    """What a headless browser saw of a report."""

    url: str
    load_seconds: float
    console_errors: list[str]
    console_warnings: list[str]
    requests: list[str]
    failed_requests: list[str]
    plots: list[PlotCheck] = field(default_factory=list)
    images: int = 0
    broken_images: int = 0
    screenshot: bytes | None = None
    elements: list[bytes] = field(default_factory=list)  # screenshots of the elements asked for

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but the file itself and inline data."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]


def _array(png: bytes) -> Any:
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def changed(before: bytes, after: bytes, box: list[float]) -> float:
    """Fraction of the pixels inside ``box`` (x, y, width, height in the images) that differ by more than 40 in
    a colour channel between two screenshots of one size."""
    a, b = _array(before), _array(after)
    if a.shape != b.shape:
        return 1.0
    x, y, w, h = (int(round(v)) for v in box)
    diff = abs(a[y:y + h, x:x + w] - b[y:y + h, x:x + w]).max(axis=2)
    return float((diff > 40).mean()) if diff.size else 0.0


def pixels(png: bytes) -> tuple[int, float, float]:
    """(distinct colours, fraction of pixels unlike the most common one, fraction of coloured pixels: max - min
    of R, G, B above 60) of a PNG."""
    import io

    import numpy as np
    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(np.int64)
    packed = (arr[:, 0] << 16) | (arr[:, 1] << 8) | arr[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    chroma = arr.max(axis=1) - arr.min(axis=1)
    return len(values), 1.0 - counts.max() / len(packed), float((chroma > 60).mean())


# make a plot's data invisible, keeping its axes, and bring it back: the SVG layer of the traces and the WebGL
# canvases (scatter matrix points, parallel-coordinate lines; their axes are SVG) are hidden, and a 3-D scene,
# whose axes share the canvas with the points, draws its traces with opacity 0
_HIDE = """(() => {const d = ELEMENT;
  if (d.data.some(t => t.type === 'scatter3d')) {
    d._wbOpacity = d.data.map(t => t.opacity === undefined ? 1 : t.opacity);
    return Plotly.restyle(d, {opacity: 0}).then(() => true);
  }
  d.querySelectorAll('.scatterlayer, canvas').forEach(e => { e.style.visibility = 'hidden'; });
  return true;})()"""
_SHOW = """(() => {const d = ELEMENT;
  d.querySelectorAll('.scatterlayer, canvas').forEach(e => { e.style.visibility = ''; });
  return d._wbOpacity ? Plotly.restyle(d, {opacity: d._wbOpacity}).then(() => true) : true;})()"""


def check_page(path: str | os.PathLike, screenshots: bool = True, full_page: bool = False,
               elements: str | None = None, timeout: float = 60.0, binary: str | None = None) -> PageCheck:
    """Load the report at ``path`` in headless Chromium with the network cut, wait until every plot has
    rendered (or ``timeout``), and return what was seen: console errors, requests, each plot with a screenshot
    of it (``screenshots``), the page's images, screenshots of the elements matching the CSS selector
    ``elements``, and with ``full_page`` a screenshot of the whole page."""
    url = Path(path).resolve().as_uri()
    with Chromium(binary=binary, timeout=timeout) as browser:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                          "uploadThroughput": -1}, session=session)
        started = time.monotonic()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")

        def js(expression: str) -> Any:
            out = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                    "awaitPromise": True}, session=session)
            if "exceptionDetails" in out:
                raise BrowserError(f"script failed in the page: {out['exceptionDetails'].get('text')}")
            return out["result"].get("value")

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not js("document.body.dataset.plotsFinished === 'yes'"):
            time.sleep(0.1)
        load_seconds = time.monotonic() - started
        plots = []
        for target in js("Array.from(document.querySelectorAll('div.plot')).map(d => d.id)"):
            element = f"document.getElementById({json.dumps(target)})"
            # WebGL plots are drawn when scrolled to (and released when far away): bring each into view in turn
            js(f"{element}.scrollIntoView({{block: 'center'}})")
            while time.monotonic() < deadline and js(f"{element}.dataset.state") in (None, "queued", "drawing",
                                                                                      "waiting", "released"):
                time.sleep(0.05)
            js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            info = js(f"""(() => {{const d = {element}, r = d.getBoundingClientRect();
                return {{target: d.id, kind: d.dataset.kind || '', rendered: d.dataset.rendered === 'yes',
                         width: r.width, height: r.height, render_ms: Number(d.dataset.renderMs || 0),
                         box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]}};}})()""")
            box = info.pop("box")
            plot = PlotCheck(**info)
            if screenshots and plot.rendered and box[2] >= 1 and box[3] >= 1:
                def shot() -> bytes:  # the plot is in view: no need for the slow beyond-viewport capture
                    return base64.b64decode(browser.send("Page.captureScreenshot", {
                        "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": False,
                        "clip": {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}},
                        session=session)["data"])
                plot.png = shot()
                plot.colours, plot.ink, _ = pixels(plot.png)
                area = js(f"(() => {{const s = {element}._fullLayout._size; return [s.l, s.t, s.w, s.h];}})()")
                js(_HIDE.replace("ELEMENT", element))
                js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                plot.data_ink = changed(plot.png, shot(), area)
                if full_page:  # the page as it was, for the picture of all of it
                    js(_SHOW.replace("ELEMENT", element))
            plots.append(plot)
        shots = []
        for box in js(f"""Array.from(document.querySelectorAll({json.dumps(elements)})).map(e => {{
                const r = e.getBoundingClientRect();
                return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];}})""") if elements else []:
            shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
                "x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}}, session=session)
            shots.append(base64.b64decode(shot["data"]))
        images = js("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        screenshot = None
        if full_page:
            size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}, session=session)
            screenshot = base64.b64decode(shot["data"])
        events = browser.events
    errors, warnings = [], []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            (warnings if params["type"] == "warning" else errors).append(text)
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "warning":
            warnings.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    failed = [f"{e['params'].get('errorText')} ({e['params'].get('requestId')})" for e in events
              if e.get("method") == "Network.loadingFailed"]
    return PageCheck(url, load_seconds, errors, warnings, requests, failed, plots, len(images), images.count(False),
                     screenshot, shots)
