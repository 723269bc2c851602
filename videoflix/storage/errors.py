class StorageUnavailable(OSError):
    """The media store could not be reached or refused us (network, credentials, missing bucket).

    An OSError, so that a transcode treats it as the transient I/O failure it is (retry), and its
    text is written for the staff who read it in the admin."""


class RangeNotSatisfiable(Exception):
    """A Range header that the stored object cannot answer."""
