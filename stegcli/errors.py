"""The exceptions stegcli raises.

Library code raises a subclass of :class:`StegcliError` whose message says what went wrong
and what to do next. Only the command-line layer turns it into one ``error: …`` line on
stderr and exit code 1, so the core stays usable from Python.
"""


class StegcliError(Exception):
    """Base class of every error stegcli reports to a user."""


class ImageError(StegcliError):
    """An image could not be read, or cannot be used as it is."""


class ModelError(StegcliError):
    """A model could not be found, loaded or built."""


class InputError(StegcliError):
    """An argument or input file is unusable (wrong size, empty, missing)."""
