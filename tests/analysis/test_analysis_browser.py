"""report.html in a real browser: headless Chromium decodes every embedded image.

Skipped unless ``/usr/bin/chromium`` exists (Debian: ``apt-get install chromium``). A copy of
the page gets a script that, on load, writes how many <img> have ``naturalWidth == 0``
into the DOM, which ``--dump-dom`` prints; a deliberately broken image proves the check can
fail. A full-page screenshot is saved next to the copy for people to look at.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars"]
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


def image_check(page: Path) -> tuple[int, int]:
    done = subprocess.run([str(CHROMIUM), *FLAGS, "--virtual-time-budget=10000", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r"images=(\d+) broken=(\d+)", done.stdout)
    assert found, f"no image check in the DOM dump:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return int(found.group(1)), int(found.group(2))


def test_every_image_of_the_report_renders_in_chromium(report_html, tmp_path):
    page = report_html.read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    assert image_check(checked) == (page.count("<img "), 0)

    control = tmp_path / "control.html"  # the check must notice an image that does not decode
    control.write_text(page.replace("</body>", '<img alt="x" src="data:image/png;base64,AAAA">'
                                    + CHECK + "</body>"))
    assert image_check(control) == (page.count("<img ") + 1, 1)

    shot = tmp_path / "report.png"
    subprocess.run([str(CHROMIUM), *FLAGS, "--window-size=1280,4000", f"--screenshot={shot}",
                    report_html.as_uri()], capture_output=True, timeout=180)
    assert shot.is_file() and shot.stat().st_size > 50_000
