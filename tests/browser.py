"""Open HTML in a headless Chromium and record what it requested over the network.

Used by the report test: Debian's ``chromium-headless-shell`` (or any Chromium)
renders the page with JavaScript, ``--dump-dom`` returns the DOM after the
scripts ran, and Chromium's NetLog lists every URL it tried to fetch over the
network (http, https, ws...). Nothing is fetched for real: the check is that
the list is empty.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _urls(netlog: Path) -> set[str]:
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("url", "original_url") and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(netlog.read_text())["events"])
    return found


def render(page: Path, workdir: Path, budget_ms: int = 10000) -> tuple[str, set[str]]:
    """The DOM of ``page`` after its scripts ran, and the network URLs it requested."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no headless Chromium found (tried {', '.join(BROWSERS)})")
    netlog = workdir / f"{page.stem}.netlog.json"
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--log-net-log={netlog}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{browser} failed on {page}: {result.stderr[-2000:]}")
    return result.stdout, _urls(netlog)


def visible_text(dom: str) -> str:
    """The text a reader sees: scripts and tags removed, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def embedded_images(report: str) -> list[tuple[str, str]]:
    """The PNG data URIs a Snakemake report embeds: (file name, URI), one per figure
    (two datasets' figures may share a file name)."""
    pattern = r'"(data:image/png;charset=utf8;filename=([^;"]+);base64,[A-Za-z0-9+/=]+)"'
    return [(name, uri) for uri, name in re.findall(pattern, report)]


def image_check_page(images: list[tuple[str, str]], path: Path) -> Path:
    """A page that shows every image and, once loaded, writes each one's decoded
    size (index:name width height) into <pre id="sizes">."""
    tags = "\n".join(
        f'<img alt="{i}:{html.escape(name)}" src="{uri}">' for i, (name, uri) in enumerate(images)
    )
    script = """
<pre id="sizes"></pre>
<script>
window.addEventListener("load", () => {
  document.getElementById("sizes").textContent = Array.from(document.images)
    .map((img) => `${img.alt} ${img.naturalWidth} ${img.naturalHeight}`).join("\\n");
});
</script>"""
    path.write_text(f"<!doctype html><html><body>{tags}{script}</body></html>")
    return path


def decoded_sizes(dom: str) -> dict[str, tuple[int, int]]:
    block = re.search(r'<pre id="sizes">(.*?)</pre>', dom, flags=re.S)
    sizes = {}
    for line in html.unescape(block.group(1) if block else "").splitlines():
        name, width, height = line.rsplit(" ", 2)
        sizes[name] = (int(width), int(height))
    return sizes
