"""Small HTML builders for a self-contained page: images become base64 data URIs and the
style sheet is inline, so report.html opens anywhere (mail attachment, offline, CI artifact)
with no external resource."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 1.5em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em;
       margin-top: 2em; }
.question { background: #f4f6fa; border-left: 4px solid #7a8fb8; padding: 0.5em 1em;
            font-style: italic; }
.answer { background: #f3faf3; border-left: 4px solid #5a9a5a; padding: 0.4em 1em; }
.banner { background: #c62828; color: white; font-weight: bold; font-size: 1.15em;
          padding: 0.7em 1em; border-radius: 4px; }
.note { color: #8a5a00; } .skip { color: #777; font-style: italic; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; }
.examples td img { max-width: 640px; } .wide { overflow-x: auto; }
ul.ranks { list-style: none; padding-left: 1em; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def image(path: Path, alt: str) -> str:
    """<img> with the PNG embedded as a data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure(path: Path | None, caption: str, note: str = "") -> str:
    if path is None:
        return f'<p class="skip">{esc(caption)}: {esc(note)}</p>'
    extra = f"<br>{esc(note)}" if note else ""
    return (f"<figure>{image(path, caption)}<figcaption>{esc(caption)}{extra}"
            "</figcaption></figure>")


def bullets(lines: list[str], cls: str = "") -> str:
    if not lines:
        return ""
    attr = f' class="{cls}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """A DataFrame as an escaped HTML table; floats formatted, missing values blank."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                text, cls = ("" if pd.isna(value) else float_format.format(value)), ' class="num"'
            else:
                text, cls = ("" if value is None or value is pd.NA else str(value)), ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table></div>")


def markdown(text: str, top: int = 3) -> str:
    """The small Markdown subset rankings.md uses: headings, numbered and bulleted lists,
    paragraphs. Headings start at <h{top}> to nest inside the page."""
    out, items = [], []

    def flush() -> None:
        if items:  # numbered lines keep their own numbers ("1. a = b"): no bullets then
            cls = ' class="ranks"' if re.match(r"^\d+\. ", items[0]) else ""
            out.append(f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            flush()
            level = min(6, top + len(heading.group(1)) - 1)
            out.append(f"<h{level}>{esc(heading.group(2))}</h{level}>")
        elif re.match(r"^(- |\d+\. )", line):
            items.append(line[2:] if line.startswith("- ") else line)
        elif line.strip():
            flush()
            out.append(f"<p>{esc(line.strip())}</p>")
        else:
            flush()
    flush()
    return "\n".join(out)


def page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")
