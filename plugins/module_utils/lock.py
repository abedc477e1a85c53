# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lock per network namespace, so two runs on a host change it one at a time."""

from __future__ import annotations

import contextlib
import errno
import socket
import time


class LockTimeout(Exception):
    """Another run kept the host's lock longer than we were willing to wait."""


LOCK_NAME = 'roce.multirail'


@contextlib.contextmanager
def host_lock(timeout=300.0):
    """Hold the collection's lock on this host's network namespace.

    The lock is an abstract unix socket name: those are private to a network
    namespace, which is exactly the scope of the rules, tables and sysctls we
    change, and the kernel frees the name when its holder dies, so a killed run
    never leaves a stale lock behind.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                sock.bind('\0' + LOCK_NAME)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout('another roce.multirail run has held this host\'s lock for %d s; '
                                      'try again when it is done' % timeout)
                time.sleep(0.05)
        yield
    finally:
        sock.close()
