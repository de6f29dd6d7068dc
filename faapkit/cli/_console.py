"""Consoles: Rich status/progress on stderr, tables and JSON on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else there."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    # soft wrap: the terminal folds a long warning, no newline lands inside a path to copy
    # the message is text, never markup: "pip install 'faapkit[mlflow]'" keeps its brackets
    err_console.print(f"[yellow]warning:[/] {escape(message)}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    err_console.print(message, markup=False)
