"""Screenshot the MCP Inspector's web UI calling sleuth's ``ask`` tool with progress (not run in CI).

    PYTHONPATH=$PWD/src .venv/bin/python scripts/inspector_screenshot.py \
        [--out docs/results/integrations/inspector-ask-progress.png] [--delay 9] [--steps 7] \
        [--running-out docs/results/integrations/inspector-ask-running.png] [--running-at 63]

What it runs: the npm MCP Inspector (``@modelcontextprotocol/inspector``, 2.12.0 unless ``--version``), its web
client (``inspector --web``: one local server that serves the page and runs the stdio server), connected over
stdio to ``tests/integration/mcp_scripted_server.py``: sleuth's real MCP server, react agent and corpus tools over
the small corpus of the MCP tests, with a scripted model that sleeps ``--delay`` seconds per call and greps
``--steps`` times before answering (so the defaults make an ``ask`` of 8 model calls, about 72 s, longer than the
60 s request timeout of the Inspector's SDK client; the web client resets it on each progress notification).

Headless Chromium (the system one, found on PATH like tests/unit/page_layout.py does, or ``--chromium``) is driven
by Playwright for Python (``pip install playwright``, a dev-only tool, not a dependency of sleuth; no ``playwright
install``, which downloads browsers). The page is used as a person would: switch the server on, open Tools, pick
``ask``, type the question, choose the react agent, Execute Tool, pin the ``tools/call`` in the Messages pane;
``--running-out`` is taken ``--running-at`` seconds in, as a progress toast shows; after the answer, the Messages
pane is filtered to the call's ``progressToken`` and each notification's parameters are expanded (``--out``). One
change to the page's looks: the JSON viewers (Ace editors) are switched to soft wrap, so a long progress message is
not cut at the pane's edge.

Needs node and npm. The Inspector is installed once into ``.pytest_cache/mcp-inspector-web`` (ignored by git). The
published package carries its web client already built (``clients/web/dist``): its postinstall, which
``INSPECTOR_SKIP_CLIENT_INSTALL`` skips, does nothing in an install as a dependency, so the test suite's copy in
``.pytest_cache/mcp-inspector`` would serve too. The Inspector is started with a
random auth token (it guards its API; the page gets it from the URL), ports found free, its storage in a temporary
folder and secrets in memory (``MCP_STORAGE_DIR``, ``MCP_INSPECTOR_SECRET_STORE=memory``), no browser opened
(``MCP_AUTO_OPEN_ENABLED=false``); everything it started is stopped at the end. Prints what it saw (notification
count and messages, the call's card with its time and status) and exits 1 when the answer or the notifications are
missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.mcp_helpers import SCRIPTED_SERVER, write_bridge_corpus  # noqa: E402
from tests.unit.page_layout import chromium  # noqa: E402

QUESTION = "Who designed the Kestrel Bridge?"
ANSWER = "Bram Okafor"
WRAP_JSON = """() => document.querySelectorAll('.ace_editor').forEach(el => {
  const ed = el.env && el.env.editor; if (!ed) return;
  ed.setOptions({wrap: true, maxLines: 40}); ed.resize(true); })"""
READ_JSON = """() => [...document.querySelectorAll('.ace_editor')].map(el => el.env && el.env.editor.getValue())
  .filter(v => v && v.includes('progressToken'))"""


def install(version: str, prefix: Path) -> Path:
    exe = prefix / "node_modules" / ".bin" / "inspector"
    marker = prefix / f".installed-{version}"
    if exe.exists() and marker.exists():
        return exe
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        sys.exit("the MCP Inspector needs node and npm on PATH")
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
                    f"@modelcontextprotocol/inspector@{version}"], check=True, timeout=600)
    marker.write_text(version)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_inspector(exe: Path, work: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    corpus = write_bridge_corpus(work)
    pythonpath = os.pathsep.join([str(REPO / "src"), str(REPO)])
    config = {"mcpServers": {"sleuth": {
        "type": "stdio", "command": sys.executable, "cwd": str(work),
        "args": [SCRIPTED_SERVER, str(corpus), "--delay", str(args.delay), "--steps", str(args.steps)],
        "env": {"SLEUTH_HOME": str(work / "home"), "PYTHONPATH": pythonpath},
    }}}
    (work / "mcp.json").write_text(json.dumps(config, indent=2))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "CLIENT_PORT": str(port), "MCP_SANDBOX_PORT": str(free_port()),
           "MCP_AUTO_OPEN_ENABLED": "false", "MCP_STORAGE_DIR": str(work / "inspector"),
           "MCP_INSPECTOR_SECRET_STORE": "memory", "MCP_INSPECTOR_API_TOKEN": token}
    log = (work / "inspector.log").open("wb")
    proc = subprocess.Popen([str(exe), "--web", "--config", str(work / "mcp.json")], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            sys.exit(f"the Inspector did not start: {(work / 'inspector.log').read_text()[-2000:]}")
        time.sleep(0.5)
    return proc, f"{url}?MCP_INSPECTOR_API_TOKEN={token}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The Inspector and the stdio server it spawned (one process group, started here)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # a stdio server left behind


def drive(page: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.route("**/fonts.googleapis.com/**", lambda r: r.abort())  # no internet here: the page falls back
    page.route("**/fonts.gstatic.com/**", lambda r: r.abort())
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_selector("[data-testid=connection-status]")
    page.locator("input[type=checkbox]").first.check(force=True)  # the server's switch on the Servers screen
    page.wait_for_selector("[data-testid=connection-status][data-status=connected]", timeout=180_000)
    page.get_by_text("Tools", exact=True).click()
    page.get_by_text("ask", exact=True).first.click()
    page.get_by_label("question").first.fill(QUESTION)
    page.get_by_label("agent").first.click()
    page.get_by_role("option", name="react", exact=True).click()
    handle = page.locator(".resize-handle").bounding_box()  # widen the Messages pane (--widen px)
    page.mouse.move(handle["x"] + 3, handle["y"] + 200)
    page.mouse.down()
    page.mouse.move(handle["x"] - args.widen, handle["y"] + 200, steps=10)
    page.mouse.up()
    t0 = time.monotonic()
    page.get_by_role("button", name="Execute Tool").click()
    call_card = page.locator("text=TOOLS/CALL").first.locator(
        "xpath=ancestor::div[contains(@class,'mantine-Stack-root')][1]/..")
    call_card.get_by_role("button", name="Pin").click()  # shown above the history, with its time and status
    if args.running_out:  # past the SDK's 60 s timeout, at the moment a notification's toast ("Tool progress") shows
        page.wait_for_timeout(max(0, int((args.running_at - (time.monotonic() - t0)) * 1000)))
        try:
            page.locator("text=Tool progress").last.wait_for(state="hidden", timeout=60_000)
            page.locator("text=Tool progress").last.wait_for(timeout=int((args.delay + 15) * 1000))
            page.wait_for_timeout(300)  # its slide-in
        except PlaywrightTimeout:
            print("no progress toast came up for --running-out (did the call end first?)", file=sys.stderr)
        page.mouse.move(0, 0)
        page.screenshot(path=args.running_out)
    page.get_by_text("Results", exact=True).wait_for(timeout=int((args.delay * (args.steps + 1) + 120) * 1000))
    page.wait_for_timeout(1500)
    result_text = page.get_by_text(ANSWER).first.inner_text() if page.get_by_text(ANSWER).count() else ""
    call_line = " ".join(call_card.inner_text().split())
    search = page.get_by_placeholder("Search...")
    search.fill("notifications/progress")
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Expand", exact=True).first.click()
    page.wait_for_timeout(500)
    token = next(p["progressToken"] for p in map(json.loads, page.evaluate(READ_JSON)) if "progress" in p)
    # the call and its notifications (the search runs over each message's JSON)
    search.fill(f'"progressToken":{json.dumps(token)}')
    page.wait_for_timeout(800)
    badges = page.locator("text=notifications/progress")
    n = badges.count()
    for i in range(n):
        card = badges.nth(i).locator("xpath=ancestor::div[contains(@class,'mantine-Stack-root')][1]/..")
        button = card.get_by_role("button", name="Expand", exact=True)
        if button.count():
            button.first.click()
    page.wait_for_timeout(500)
    page.evaluate(WRAP_JSON)
    params = [p for p in map(json.loads, page.evaluate(READ_JSON)) if "progress" in p]  # not the call's own
    page.evaluate("() => document.querySelectorAll('*').forEach(el => { if (el.scrollTop) el.scrollTop = 0; })")
    page.mouse.move(0, 0)  # no tooltip in the picture
    page.wait_for_timeout(800)
    page.screenshot(path=args.out)
    return {"notifications": n,
            "messages": [p.get("message") for p in params], "answer_shown": bool(result_text),
            "tools_call_card": call_line}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "docs/results/integrations/inspector-ask-progress.png"))
    ap.add_argument("--running-out", default="", help="also a screenshot while the call runs")
    ap.add_argument("--running-at", type=float, default=63.0, help="seconds into the call for --running-out")
    ap.add_argument("--delay", type=float, default=9.0, help="seconds per scripted model call")
    ap.add_argument("--steps", type=int, default=7, help="greps before the answer")
    ap.add_argument("--version", default="2.12.0", help="the Inspector's npm version")
    ap.add_argument("--prefix", default=str(REPO / ".pytest_cache" / "mcp-inspector-web"))
    ap.add_argument("--chromium", default=chromium() or "")
    ap.add_argument("--widen", type=int, default=200, help="px the Messages pane is widened by")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1200)
    args = ap.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("needs Playwright for Python: pip install playwright (no `playwright install`: --chromium is used)")
    if not args.chromium:
        sys.exit("no Chromium found on PATH: pass --chromium PATH")
    exe = install(args.version, Path(args.prefix))
    with tempfile.TemporaryDirectory(prefix="sleuth-inspector-") as tmp:
        proc, url = start_inspector(exe, Path(tmp), args)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                try:
                    seen = drive(page, url, args)
                finally:
                    if page.get_by_role("button", name="Disconnect from server").count():
                        page.get_by_role("button", name="Disconnect from server").click()
                        page.wait_for_timeout(500)
                    browser.close()
        finally:
            stop(proc)
    print(json.dumps(seen, indent=2))
    if not seen["answer_shown"] or not seen["notifications"]:
        sys.exit(1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
