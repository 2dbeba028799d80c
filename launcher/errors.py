"""User-facing errors: the CLI prints their message on one line per problem and exits."""

from __future__ import annotations


class LaunchError(Exception):
    """An error the user can act on. Never shown with a traceback."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)]


class SpecError(LaunchError):
    """The job file is unreadable or invalid; one line per problem, each with FILE:LINE:COL."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems

    def lines(self) -> list[str]:
        return self.problems


class TargetError(LaunchError):
    """The job's target cannot take it (nothing answers at the address, another Ray version),
    found before anything is submitted. The message names the field, as a SpecError's does."""

    exit_code = 2


class JobFailed(LaunchError):
    """A followed job ended in a state other than SUCCEEDED."""

    exit_code = 3
