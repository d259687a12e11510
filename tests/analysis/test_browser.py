"""report.html in a real browser: headless Chromium decodes every embedded image.

Skipped unless Chromium is installed (Debian: ``apt-get install chromium``; CI installs it).
A deliberately broken image proves the check can fail. A full-page screenshot is saved.
"""

from __future__ import annotations

import pytest

from analysis.render_check import CHECK, check_report, find_chromium, image_check, screenshot

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")]


def test_every_image_of_the_report_renders_in_chromium(report_html, tmp_path):
    page = report_html.read_text()
    assert check_report(report_html, CHROMIUM) == (page.count("<img "), 0)

    control = tmp_path / "control.html"  # the check must notice an image that does not decode
    control.write_text(page.replace("</body>", '<img alt="x" src="data:image/png;base64,AAAA">'
                                    + CHECK + "</body>"))
    assert image_check(control, CHROMIUM) == (page.count("<img ") + 1, 1)

    shot = screenshot(report_html, tmp_path / "report.png", CHROMIUM)
    assert shot.is_file() and shot.stat().st_size > 50_000
