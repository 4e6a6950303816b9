"""Errors caused by the user's input: the CLI prints them as one line, without a traceback.

``models`` and ``datamodules`` own their error classes (they import nothing of the application);
``ONE_LINE_ERRORS`` gathers every kind the command turns into one ``cnnlab: error:`` line.
"""

from cnnlab.datamodules.errors import DataError, DataNotFoundError
from cnnlab.models.errors import CheckpointError, ModelError, UnknownNameError


class UserError(Exception):
    """Bad input to the application (options, files, tools) that the user can fix; the message says how."""


ONE_LINE_ERRORS = (UserError, ModelError, DataError)

__all__ = [
    "ONE_LINE_ERRORS",
    "CheckpointError",
    "DataError",
    "DataNotFoundError",
    "ModelError",
    "UnknownNameError",
    "UserError",
]


def user_error(err: BaseException | None) -> BaseException | None:
    """The one-line error behind ``err``: jsonargparse and Lightning wrap errors raised inside them."""
    while err is not None:
        if isinstance(err, ONE_LINE_ERRORS):
            return err
        err = err.__cause__ or err.__context__
    return None
