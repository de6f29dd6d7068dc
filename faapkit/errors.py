"""User-facing errors: each becomes one clear line on stderr and a non-zero exit code.

Anything raised as a :class:`FaapError` is a problem with the user's input or environment,
never a bug; the CLI prints ``error: <message>`` and exits with ``exit_code``.
"""

from __future__ import annotations


class FaapError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        if text.startswith("Caught ") and "Original Traceback" in text:
            # re-raised from a DataLoader worker: torch puts the worker's traceback in the message;
            # its last line is "module.ErrorType: the original message"
            last = text.strip().splitlines()[-1]
            text = last.split(": ", 1)[1] if ": " in last else last
        text = " ".join(text.split())
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(FaapError):
    """Invalid configuration: unknown keys, wrong types, impossible values."""

    exit_code = 2


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup for a name nobody registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(FaapError):
    """Two plugins registered the same name for the same kind of component."""


class DataError(FaapError):
    """Missing, corrupt or inconsistent dataset files."""


class CheckpointError(FaapError):
    """A checkpoint that cannot be loaded safely or does not fit the model."""


class TrainingError(FaapError):
    """Training cannot continue (e.g. too many non-finite losses)."""


class Interrupted(FaapError):
    """Ctrl-C: what was kept and how to continue (exit status 130, as for SIGINT)."""

    exit_code = 130
