"""Open pages of the built site in headless Chromium and check what a reader would see.

    python docs/browser_check.py [SITE_DIR] [--page ops.html] [--screenshot FILE.png]

SITE_DIR defaults to build/site (``python -m mkdocs build --strict`` writes it). The site is
served from 127.0.0.1 by this process; Chromium, started headless with a fresh profile and its
background services off, loads the page, and the check reports:

- the equations: how many ``<math>`` elements the page has, that each is laid out with a size,
  that every fraction is drawn with its numerator above its denominator (MathML rendered,
  not text run together), and that no raw ``$...$``, ``\\(...\\)`` or ``\\[...\\]`` is left;
- the images: every ``<img>`` loaded (complete, with a natural width);
- the console: no error message, no uncaught exception;
- the network: every request went to the local server (or was a ``data:``/``blob:`` URL).

Exit status 0 when every page passes, 1 otherwise (each problem printed on one line). Speaks
the DevTools protocol over a pipe (``--remote-debugging-pipe``), so it needs no package beyond
the standard library; Chromium is Debian's ``chromium`` (``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--remote-debugging-pipe", "--window-size=1280,900"]

# Runs in the page: what the reader sees of equations and images.
PAGE_REPORT = r"""
(() => {
  const content = document.querySelector('.md-content') || document.body;
  const maths = [...content.querySelectorAll('math')];
  const sized = maths.filter(m => { const r = m.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
  const fractions = [...content.querySelectorAll('mfrac')];
  const stacked = fractions.filter(f => {
    const [num, den] = f.children;
    if (!num || !den) return false;
    const a = num.getBoundingClientRect(), b = den.getBoundingClientRect();
    return a.height > 0 && b.height > 0 && a.bottom <= b.top + 1;
  });
  // The reader's text, less code (where $ and \( are meant literally) and the equations.
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_TEXT, {acceptNode: node =>
      node.parentElement.closest('code, pre, math') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  let text = '';
  while (walker.nextNode()) text += walker.currentNode.nodeValue + ' ';
  const raw = (text.match(/\\\(|\\\[|\$\$|\$[^$\s][^$]*[^$\s]\$/g) || []).slice(0, 5);
  const images = [...document.images].map(i => ({src: i.currentSrc || i.src, loaded: i.complete && i.naturalWidth > 0}));
  return JSON.stringify({title: document.title, maths: maths.length, sized: sized.length,
                         fractions: fractions.length, stacked: stacked.length, raw, images,
                         mathDisplay: maths.length ? getComputedStyle(maths[0]).display : null});
})()
"""


class Pipe:
    """The DevTools protocol over Chromium's pipe: JSON messages, each ended by a NUL byte."""

    def __init__(self, write_fd: int, read_fd: int):
        self.write_fd, self.read = write_fd, os.fdopen(read_fd, "rb", buffering=0)
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(deadline=time.monotonic() + 30)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"browser_check: {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, seconds: float) -> dict | None:
        deadline = time.monotonic() + seconds
        for k, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(k)
        while time.monotonic() < deadline:
            event = self._receive(deadline)
            if event is None:
                return None
            if event.get("method") == method:
                return event
            self.events.append(event)
        return None

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds`` (late requests, console)."""
        deadline = time.monotonic() + seconds
        while (event := self._receive(deadline)) is not None:
            self.events.append(event)

    def _receive(self, deadline: float) -> dict | None:
        import select
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read], [], [], left)[0]:
                return None
            chunk = self.read.read(1 << 16)
            if not chunk:
                raise RuntimeError("browser_check: Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)


def serve(site: Path):
    """A local HTTP server for the site, on a free port of 127.0.0.1, in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def start_chromium(profile: Path):
    """Chromium with its DevTools pipe on file descriptors 3 (commands) and 4 (replies)."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def pipes_as_3_and_4():
        # Through fresh descriptors first: either pipe end may itself be 3 or 4.
        reading, writing = os.dup(to_browser_r), os.dup(from_browser_w)
        os.dup2(reading, 3)
        os.dup2(writing, 4)

    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=pipes_as_3_and_4,
                               pass_fds=(3, 4))
    os.close(to_browser_r)
    os.close(from_browser_w)
    return process, Pipe(to_browser_w, from_browser_r)


def check_page(pipe: Pipe, url: str, origin: str, screenshot: Path | None = None) -> tuple[dict, list[str]]:
    """Load one page; (what it shows, the problems found)."""
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.events.clear()
    pipe.send("Page.navigate", {"url": url}, session=session)
    if pipe.wait_for("Page.loadEventFired", 30) is None:
        return {}, [f"{url}: the page did not finish loading in 30 s"]
    pipe.drain(1.0)
    report = json.loads(pipe.send("Runtime.evaluate", {"expression": PAGE_REPORT, "returnByValue": True},
                                  session=session)["result"]["value"])
    if screenshot is not None:
        shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    problems = []
    if report["maths"] == 0:
        problems.append(f"{url}: no equation (<math>) on the page")
    if report["sized"] < report["maths"]:
        problems.append(f"{url}: {report['maths'] - report['sized']} of {report['maths']} equations have no size")
    if report["stacked"] < report["fractions"]:
        problems.append(f"{url}: {report['fractions'] - report['stacked']} of {report['fractions']} "
                        "fractions are not drawn as fractions (is MathML rendered?)")
    if report["raw"]:
        problems.append(f"{url}: raw LaTeX left in the text: {report['raw']}")
    for image in report["images"]:
        if not image["loaded"]:
            problems.append(f"{url}: image not loaded: {image['src']}")
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"{url}: console error: {text}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"{url}: uncaught exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            problems.append(f"{url}: console error: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            scheme = urlparse(requested).scheme
            if scheme not in ("data", "blob") and not requested.startswith(origin):
                problems.append(f"{url}: request outside the local server: {requested}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"{url}: a request failed: {params.get('errorText')}")
    report["requests"] = sorted({e["params"]["request"]["url"] for e in pipe.events
                                 if e.get("method") == "Network.requestWillBeSent"})
    pipe.send("Target.closeTarget", {"targetId": target})
    return report, problems


def check_site(site: Path, pages: list[str], screenshot: Path | None = None) -> tuple[dict, list[str]]:
    """Check each page of a built site; ({page: report}, problems)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"browser_check: {CHROMIUM} not found (Debian: apt-get install chromium)")
    for page in pages:
        if not (site / page).is_file():
            raise FileNotFoundError(f"browser_check: {site / page} not found: build the site first "
                                    "(python -m mkdocs build --strict)")
    server = serve(site)
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    profile = Path(tempfile.mkdtemp(prefix="minires-chromium-"))
    process, pipe = start_chromium(profile)
    reports, problems = {}, []
    try:
        for page in pages:
            report, found = check_page(pipe, origin + page, origin,
                                       screenshot if page == pages[0] else None)
            reports[page] = report
            problems += found
    finally:
        try:
            pipe.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)
    return reports, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(Path(__file__).resolve().parents[1] / "build" / "site"))
    parser.add_argument("--page", action="append", help="page to check (default: ops.html, the conv2d page)")
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the first page")
    args = parser.parse_args(argv)
    try:
        reports, problems = check_site(Path(args.site), args.page or ["ops.html"], args.screenshot)
    except (FileNotFoundError, RuntimeError) as error:
        print(error, file=sys.stderr)
        return 1
    for page, report in reports.items():
        print(f"{page}: {report['maths']} equations ({report['fractions']} fractions), "
              f"{len(report['images'])} images, {len(report['requests'])} requests, all local")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
