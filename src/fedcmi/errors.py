"""Errors the user can fix: the CLI prints them as one line (exit code 2).

Anything else that escapes a command is a bug and is shown with its traceback. Raise
:class:`InputError` for a file, key or value the user gave, :class:`RunFailure` for a
run stopped by something outside the code (a node missing, a subprocess failing); both
still behave as the ``ValueError`` / ``RuntimeError`` callers may expect.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the user what to change."""


class InputError(UserError, ValueError):
    """A file, key or value given by the user is invalid; the message names it."""


class RunFailure(UserError, RuntimeError):
    """A run could not go on for a reason outside the code; the message says which."""


class RunInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM stopped a run or a sweep; what it finished is kept and the same
    command (``fedcmi run --resume``, ``fedcmi sweep``) continues it."""
