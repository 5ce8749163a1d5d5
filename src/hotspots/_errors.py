"""Errors raised for problems a user can fix.

Every user-facing error carries a ``hint`` that says what to do.  The CLI turns
them into one line and a non-zero exit; ``--verbose`` shows the traceback.
"""

from __future__ import annotations


class HotspotsError(Exception):
    """Base class for problems the user can fix (bad input, bad argument)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):
        # keeps the hint (and any other attribute) when the error travels back from a worker process
        return type(self), (self.message,), dict(self.__dict__)

    def __str__(self) -> str:  # pragma: no cover - trivial
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class DataNotFoundError(HotspotsError):
    """A data directory or an expected data file is missing."""


class InputFileError(HotspotsError):
    """An input file is unreadable, truncated or has the wrong shape."""


class CRSError(HotspotsError):
    """A geometry has no CRS, or two inputs disagree on their CRS."""


class ConfigError(HotspotsError):
    """The configuration file or a command-line option is invalid."""


class ValidationError(HotspotsError):
    """One or more arguments failed validation (all problems are listed)."""


class AccountingError(HotspotsError):
    """Row accounting does not balance: a bug, never a user error."""

    exit_code = 3
