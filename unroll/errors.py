"""User-facing errors.

Anything a user can cause (a missing file, bad UTF-8, a corrupt checkpoint, an unknown dataset)
raises :class:`UnrollError` with a one-line message that says what was wrong and what to do.
The CLI prints it as ``unroll: error: <message>`` and exits with code 2, without a traceback.
Bugs stay ordinary exceptions, so they keep their tracebacks.
"""


class UnrollError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(UnrollError):
    """A dataset or text file that cannot be read or is not what it should be."""


class CheckpointError(UnrollError):
    """A checkpoint directory that is missing, incomplete, corrupt or incompatible."""


class TrainingDiverged(UnrollError):
    """The loss became NaN or infinite and could not be recovered."""
