"""The result table every benchmark prints, and the command line they share."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    what: str
    value: str
    target: str
    status: str  # PASS | FAIL | info


def check(what: str, value: float, op: str, target: float, fmt: str = "{:.3f}") -> Row:
    """A figure with a target: ``op`` is one of >=, <=, ==."""
    ok = {">=": value >= target, "<=": value <= target, "==": value == target}[op]
    ok = ok and value == value  # NaN never passes
    return Row(what, fmt.format(value), f"{op} {fmt.format(target)}", "PASS" if ok else "FAIL")


def info(what: str, value: Any, fmt: str = "{:.3f}") -> Row:
    text = fmt.format(value) if isinstance(value, (int, float)) else str(value)
    return Row(what, text, "-", "info")


def format_table(rows: list[Row], title: str | None = None) -> str:
    head = Row("what", "value", "target", "pass/fail")
    width = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("what", "value", "target")]
    lines = [f"\n## {title}"] if title else []
    for i, r in enumerate([head, *rows]):
        lines.append(f"| {r.what:<{width[0]}} | {r.value:>{width[1]}} | {r.target:<{width[2]}} "
                     f"| {r.status:<9} |")
        if i == 0:
            lines.append(f"|{'-' * (width[0] + 2)}|{'-' * (width[1] + 2)}|"
                         f"{'-' * (width[2] + 2)}|-----------|")
    return "\n".join(lines)


def emit(rows: list[Row], args: argparse.Namespace, title: str) -> None:
    """Print the table (after any sweep logs) and write ``--json`` if asked."""
    print(format_table(rows, title), flush=True)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))


def parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="smallest sizes (seconds): tests use it")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the sweeps' folders in bench/out")
    return p


def parse(p: argparse.ArgumentParser, smoke: dict[str, Any],
          argv: list[str] | None = None) -> argparse.Namespace:
    """Parse; with --smoke every size in ``smoke`` that was not given takes its smoke value."""
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in smoke.items():
            flag = "--" + key.replace("_", "-")
            if not any(a == flag or a.startswith(flag + "=") for a in argv):
                setattr(args, key, value)
    return args
