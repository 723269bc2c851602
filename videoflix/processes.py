"""Child processes that must not outlive the process that started them."""

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def _parent_death_signal_setter():
    # Resolved once here, so the forked child only makes the call (no dlopen between fork and exec).
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_parent_death_signal():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return set_parent_death_signal


# Linux: the kernel kills the child when its parent dies, even by SIGKILL. Elsewhere: nothing.
die_with_parent = _parent_death_signal_setter() if sys.platform.startswith("linux") else None
