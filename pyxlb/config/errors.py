"""Where a statement is in the configuration files, and the errors that point there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a configuration file: 1-based line and column.

    `line` 0 stands for the file as a whole (it could not be read, say).
    """

    file: str
    line: int
    col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class ConfigError(Exception):
    """A mistake in the configuration, with the place it was found when known."""

    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        # Warnings found in the same configuration, for whoever reports the error.
        self.warnings: list[ConfigError] = []

    def __str__(self) -> str:
        where = self.where
        if where is None:
            return self.message
        if where.col is None or not where.line:
            return f"{where}: {self.message}"
        return f"{where}:{where.col}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        """Errors are values: equal when they say the same thing about the same place."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ConfigError)
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class ConfigErrors(ConfigError):
    """Several configuration errors, reported together so a user fixes them in one go."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} errors in the configuration", self.errors[0].where)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)
