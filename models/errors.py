"""Errors caused by the user's input to the models library (names, checkpoints, options).

The library raises these; the ``cnnlab`` command prints them as one line without a traceback.
"""


class ModelError(Exception):
    """Bad input about a model or a checkpoint that the user can fix; the message says how."""


class UnknownNameError(ModelError, ValueError):
    """An architecture name that the registry does not know."""


class CheckpointError(ModelError):
    """A checkpoint that is missing, broken, foreign, carries code, or names an untrusted class."""
