"""Install segsweep and its extras into the running interpreter's environment with uv, using
pip's own configuration (indexes, find-links, constraints, certificate), so the environment
is the one ``pip install`` would build, in seconds instead of minutes.

    python .ci/install.py -e ".[dev,mlflow,wandb,export]"

Exits non-zero when uv is missing or fails; the Makefile then falls back to pip.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

# pip's configuration key -> uv's flag (repeated once per whitespace-separated value).
REPEATED = {"extra-index-url": "--extra-index-url", "find-links": "--find-links",
            "constraint": "--constraint"}
SINGLE = {"index-url": "--index-url"}
SWITCHES = {"no-index": "--no-index"}


def pip_config() -> dict[str, str]:
    """pip's effective settings (files and PIP_* variables; the later scope wins)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=True).stdout
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        settings[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return settings


def uv_arguments(settings: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """uv's flags and environment for pip's settings. pip reads every index it knows and takes
    the best version; uv's equivalent is ``--index-strategy unsafe-best-match``."""
    args, env = ["--index-strategy", "unsafe-best-match"], {}
    for key, flag in REPEATED.items():
        for value in shlex.split(settings.get(key, "")):
            args += [flag, value]
    for key, flag in SINGLE.items():
        if settings.get(key):
            args += [flag, settings[key]]
    for key, flag in SWITCHES.items():
        if settings.get(key, "").lower() in ("1", "true", "yes", "on"):
            args.append(flag)
    if settings.get("cert"):
        env["SSL_CERT_FILE"] = settings["cert"]
    if settings.get("default-timeout"):
        env["UV_HTTP_TIMEOUT"] = settings["default-timeout"]
    return args, env


def main(requirements: list[str]) -> int:
    args, env = uv_arguments(pip_config())
    # Bytecode compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set (this
    # machine, many CI images) every process would otherwise compile torch's sources again.
    command = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--compile-bytecode",
               "--python", sys.executable, *args, *requirements]
    return subprocess.run(command, env={**os.environ, **env}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
