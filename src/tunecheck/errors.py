"""User-facing errors: one clear message naming the file, line or field, and what to do."""

from __future__ import annotations


class TunecheckError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The CLI prints ``str(err)`` without a traceback (unless ``--debug``) and exits
    with ``exit_code``. ``where`` names the file/line/field; ``hint`` says what to do.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class DataError(TunecheckError):
    """A data file is missing, malformed or inconsistent."""


class SpecError(TunecheckError):
    """The eval spec (tunecheck.yaml) is invalid."""


class LockError(TunecheckError):
    """A split no longer matches its lock, or the test split overlaps training data."""


class BackendError(TunecheckError):
    """A model backend cannot be loaded or cannot do what was asked."""


class GuardError(TunecheckError):
    """A safety guard refused to score (adapter not applied, baseline equals candidate)."""
