"""Check that a report renders in a real browser: headless Chromium decodes every image.

    python -m analysis.render_check runs/demo/report/report.html [--screenshot out.png]

A copy of the page gets a script that, on load, writes how many <img> have
``naturalWidth == 0`` into the DOM, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--no-first-run", "--disable-component-update", "--disable-sync"]
CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = `images=${images.length} broken=${broken}`;
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def image_check(page: Path, chromium: str) -> tuple[int, int]:
    """(images on the page, images that did not decode) as Chromium rendered ``page``."""
    done = subprocess.run([chromium, *FLAGS, "--virtual-time-budget=10000", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r"images=(\d+) broken=(\d+)", done.stdout)
    if not found:
        raise RuntimeError(f"no image check in Chromium's DOM dump of {page}:\n"
                           f"{done.stdout[-1000:]}\n{done.stderr[-1000:]}")
    return int(found.group(1)), int(found.group(2))


def check_report(report: Path, chromium: str) -> tuple[int, int]:
    """Render a copy of ``report`` with the check script; the report itself is not changed."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "checked.html"
        page.write_text(report.read_text().replace("</body>", CHECK + "</body>"))
        return image_check(page, chromium)


def screenshot(report: Path, out: Path, chromium: str) -> Path:
    subprocess.run([chromium, *FLAGS, "--window-size=1280,4000", f"--screenshot={out}",
                    report.resolve().as_uri()], capture_output=True, timeout=180)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.render_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path)
    p.add_argument("--screenshot", type=Path, default=None)
    args = p.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("render check skipped: no Chromium (Debian: apt-get install chromium)")
        return 0
    if not args.report.is_file():
        print(f"error: {args.report} not found", file=sys.stderr)
        return 2
    images, broken = check_report(args.report.resolve(), chromium)
    if args.screenshot:
        screenshot(args.report, args.screenshot, chromium)
    print(f"{args.report}: Chromium rendered {images} images, {broken} broken")
    return 0 if images > 0 and broken == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
