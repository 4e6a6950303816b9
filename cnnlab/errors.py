"""Errors caused by the user's input: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad input that the user can fix; the message says how."""


class UnknownNameError(UserError, ValueError):
    """A name (architecture, data set, ...) that cnnlab does not know."""


class DataNotFoundError(UserError, FileNotFoundError):
    """A data set that is missing or empty on disk."""
