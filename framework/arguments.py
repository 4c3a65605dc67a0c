"""Command-line arguments as every ``recotrig`` command parses them.

``ArgumentParser`` is argparse's, with one difference: a bad argument ends the command with one
line on stderr (``recotrig run: error: ... (recotrig run --help for usage)``) and exit status 2,
instead of the usage (many lines for a sequence with all its algorithm flags) and the error.
``integer`` is the argparse type of a whole number within bounds: a count, a seed or a number of
threads out of range is refused while the arguments are parsed, before any work starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

__all__ = ["ArgumentParser", "integer", "one_line"]


def one_line(text: str) -> str:
    """``text`` on one line: line breaks (a path or a value holding them) shown as ``\\n``."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} ({self.prog} --help for usage)\n")


def integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse
