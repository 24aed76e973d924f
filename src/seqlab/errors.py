"""The one user-facing error type.

Anything a user can cause (a bad file, an unknown name, a wrong flag value) raises
SeqlabError with a one-line message that says what is wrong and what to do. The CLI turns
it into `seqlab: error: <message>` and exit status 2, without a traceback.
"""


class SeqlabError(Exception):
    """A problem with the user's input, files or options (not a bug in seqlab)."""
