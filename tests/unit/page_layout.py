"""Render an HTML page in headless Chromium and measure its layout (used by the page tests).

``layout(page, width)`` copies the page, appends a probe script, loads it with ``chromium --headless --dump-dom``
at ``width`` px and returns what the probe measured, collapsed and again with every ``<details>`` open:

* ``page_width``: the document's scroll width (nothing may be wider than the viewport),
* ``wide``: visible elements whose right edge passes the viewport,
* ``overlaps``: pairs of boxes that intersect among the selectors in ``groups`` (each group: a container selector
  and the selector of its children that must not overlap one another), and boxes of a group whose text runs out
  of them (overflow visible, content wider than the box: it draws over its neighbours),
* ``clipped``: elements matched by ``no_clip`` whose content is cut (scrollWidth > clientWidth).

No browser: :func:`chromium` returns None and the tests skip with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

PROBE = r"""
<script>
window.addEventListener('load', () => {
  const groups = __GROUPS__, noClip = __NOCLIP__;
  const W = window.innerWidth;
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const name = el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '')
    + (el.textContent ? ' "' + el.textContent.trim().slice(0, 40) + '"' : '');
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  function measure() {
    const out = {page_width: document.documentElement.scrollWidth, viewport: W, wide: [], overlaps: [], clipped: [],
                 boxes: 0};
    document.querySelectorAll('body *').forEach(el => {
      if (!visible(el)) return;
      // clipped by an ancestor that scrolls or hides its overflow: what is seen is the ancestor's box
      let p = el.parentElement, clip = false;
      while (p && p !== document.body) { const o = getComputedStyle(p).overflowX;
        if (o === 'hidden' || o === 'auto' || o === 'scroll' || o === 'clip') { clip = true; break; }
        p = p.parentElement; }
      if (!clip && el.getBoundingClientRect().right > W + 0.5) out.wide.push(name(el));
    });
    for (const [container, child] of groups) {
      document.querySelectorAll(container).forEach(c => {
        const kids = [...c.querySelectorAll(child)].filter(visible);
        out.boxes += kids.length;
        const rs = kids.map(k => k.getBoundingClientRect());
        for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++)
          if (hit(rs[i], rs[j]) && !kids[i].contains(kids[j]) && !kids[j].contains(kids[i]))
            out.overlaps.push([name(kids[i]), name(kids[j])]);
        // a box whose text runs out of it (overflow visible) draws over its neighbours
        kids.forEach(k => { if (getComputedStyle(k).overflowX === 'visible' && k.scrollWidth > k.clientWidth + 1)
          out.overlaps.push([name(k), 'its text runs out of its box']); });
      });
    }
    document.querySelectorAll(noClip).forEach(el => {
      if (visible(el) && el.scrollWidth > el.clientWidth + 1) out.clipped.push(name(el)); });
    return out;
  }
  const closed = measure();
  document.querySelectorAll('details').forEach(d => d.open = true);
  const open = measure();
  const pre = document.createElement('pre'); pre.id = 'layout-probe';
  pre.textContent = JSON.stringify({closed, open}); document.body.appendChild(pre);
});
</script>
"""


def chromium() -> str | None:
    for exe in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(exe)
        if path:
            return path
    return None


def _run(exe: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def layout(page: Path, width: int, groups: list[tuple[str, str]], no_clip: str, *, height: int = 900) -> dict[str, Any]:
    exe = chromium()
    assert exe, "no Chromium"
    probe = PROBE.replace("__GROUPS__", json.dumps(groups)).replace("__NOCLIP__", json.dumps(no_clip))
    text = page.read_text(encoding="utf-8")
    probed = page.with_name(page.stem + f".probe{width}.html")
    probed.write_text(text.replace("</body>", probe + "</body>"), encoding="utf-8")
    r = _run(exe, [f"--window-size={width},{height}", "--virtual-time-budget=3000", "--dump-dom",
                   probed.resolve().as_uri()])
    m = re.search(r'<pre id="layout-probe">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the probe did not run (chromium exit {r.returncode}): {r.stderr[-500:]}"
    import html

    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, out: Path, width: int, height: int) -> Path:
    exe = chromium()
    assert exe, "no Chromium"
    r = _run(exe, [f"--window-size={width},{height}", f"--screenshot={out.resolve()}", page.resolve().as_uri()])
    assert out.exists(), f"no screenshot (chromium exit {r.returncode}): {r.stderr[-500:]}"
    return out
