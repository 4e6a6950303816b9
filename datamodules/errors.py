"""Errors caused by the user's data or data options.

The library raises these; the ``cnnlab`` command prints them as one line without a traceback.
"""


class DataError(Exception):
    """Bad data or data options that the user can fix; the message says how."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data set that is missing or empty on disk."""
