"""Errors caused by the user's input: the CLI prints them as one line, without a traceback.

``models`` and ``datamodules`` own their error classes (they import nothing of the application);
``ONE_LINE_ERRORS`` gathers every kind the command turns into one ``cnnlab: error:`` line.
"""

import errno

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
    """The one-line error behind ``err``: jsonargparse and Lightning wrap errors raised inside them.

    Lightning's ``MisconfigurationException`` (a Trainer option it refuses) counts too, and so does a
    full disk, whatever was being written."""
    while err is not None:
        if isinstance(err, ONE_LINE_ERRORS):
            return err
        if type(err).__name__ == "MisconfigurationException":
            return UserError(f"{err} (a --trainer option)")
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return UserError(
                f"no space left on the device while writing {err.filename or 'the run'}; the checkpoints "
                "written before are whole: free some space and resume with --ckpt_path last"
            )
        err = err.__cause__ or err.__context__
    return None


def writable_folder(folder, option: str):
    """``folder``, made if missing, once a file can be created in it; else one line naming ``option``.

    Checked before the work whose result it would hold, so nothing is computed only to be lost."""
    import tempfile
    from pathlib import Path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(
            f"cannot write into {folder} ({err.strerror or err}); pass a writable {option}"
        ) from err
    return folder
