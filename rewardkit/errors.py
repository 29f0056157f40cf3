"""Errors a user can cause. Each says what was received, what is required and how to fix it."""

from __future__ import annotations


class RewardKitError(Exception):
    """Base class for every error rewardkit raises on purpose."""


class DataError(RewardKitError):
    """A problem with one row of input data, located by file and line (or, for data in
    memory, by row index) and field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str, *, in_memory: bool = False):
        self.path, self.line, self.field, self.reason = str(path), line, field, message
        self.in_memory = in_memory  # then `line` is a 0-based row index into in-memory data
        if line is None:
            where = self.path
        else:
            where = f"{self.path} row {line}" if in_memory else f"{self.path}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class ConfigError(RewardKitError):
    """An option that cannot work; the message names the flag or YAML key."""


class ModelError(RewardKitError):
    """A model that cannot be found, fetched or used as asked."""


class TrainingError(RewardKitError):
    """A run that cannot go on (a non-finite loss, a damaged checkpoint); names the step or file."""
