# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs change a host one at a time: a lock per module call, and a hold per run.

The lock is an flock on a root-only file under /run/roce-multirail, one per
network namespace (the scope of the rules, tables and sysctls we change); the
kernel drops it when its holder dies, so a killed call leaves nothing behind,
and a user who cannot open the file cannot take it.

A run is several module calls. rail_guard claims the host for its run before
the first change (a small JSON file beside the lock, written under the lock);
every later call of that run checks the hold is still its own and renews it,
and the run's last changing call gives it back. A run that finds the host
held by another waits for it, and fails naming that run when it does not end.
Pure decisions (decide_claim, decide_step) are separate from the file work.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from typing import NamedTuple, Optional, Tuple

RUN_DIR = '/run/roce-multirail'
# A run that stopped taking steps this long ago (seconds) with the same plan
# was killed or is slow: a new run with that plan takes the host over.
SAME_PLAN_TAKEOVER = 15.0


# The `run` option of every module that changes a host (doc fragment roce.multirail.run).
RUN_ARGUMENT = dict(type='dict', options=dict(
    id=dict(type='str', required=True),
    timeout=dict(type='int', default=300),
    finish=dict(type='bool', default=False),
))


class LockTimeout(Exception):
    """Another run kept the host longer than we were willing to wait."""


class RunLost(Exception):
    """This run's hold on the host went to another run: nothing more may be changed."""


class Hold(NamedTuple):
    """Who holds the host between the calls of a run."""

    run: str            # the run's id, made by the controller
    plan: str           # digest of the run's plan
    since: float        # when the run claimed the host (epoch seconds)
    last: float         # when the run last took a step
    timeout: float      # the hold ends this long after the last step


def namespace_key():
    """'<dev>-<inode>' of this process's network namespace."""
    info = os.stat('/proc/self/ns/net')
    return '%d-%d' % (info.st_dev, info.st_ino)


def lock_path(run_dir=RUN_DIR):
    return os.path.join(run_dir, 'lock-%s' % namespace_key())


def hold_path(run_dir=RUN_DIR):
    return os.path.join(run_dir, 'run-%s.json' % namespace_key())


def plan_digest(plan):
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _private_dir(path):
    """Create path 0700 when missing; refuse one that is not a root-owned directory of ours."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except PermissionError:
        raise LockTimeout('%s cannot be created: roce.multirail changes the host\'s routing and must run as '
                          'root (become: true)' % path)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LockTimeout('%s is not a directory owned by uid %d and writable only by it; it holds the host '
                          'lock of roce.multirail: remove it' % (path, os.geteuid()))


@contextlib.contextmanager
def host_lock(timeout=300.0, run_dir=RUN_DIR):
    """Hold this network namespace's lock for the duration of the block."""
    _private_dir(run_dir)
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except PermissionError:
        raise LockTimeout('%s cannot be opened: roce.multirail must run as root (become: true)' % path)
    except OSError as exc:
        raise LockTimeout('%s cannot be opened (%s); it is the host lock of roce.multirail: remove it if it '
                          'is not a regular file' % (path, exc.strerror))
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout('another roce.multirail run has held this host\'s lock for %d s; '
                                      'try again when it is done' % timeout)
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def read_hold(run_dir=RUN_DIR):
    # type: (str) -> Optional[Hold]
    """The hold on the host, or None; a file that cannot be read as one counts as none."""
    try:
        fd = os.open(hold_path(run_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd) as handle:
            data = json.load(handle)
        return Hold(str(data['run']), str(data['plan']), float(data['since']), float(data['last']),
                    float(data['timeout']))
    except (ValueError, KeyError, TypeError):
        return None


def write_hold(hold, run_dir=RUN_DIR):
    path = hold_path(run_dir)
    temporary = path + '.new'
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(hold._asdict(), handle)
    os.rename(temporary, path)


def drop_hold(run_dir=RUN_DIR):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(hold_path(run_dir))


def describe(hold, now):
    return 'run %s (it claimed the host %s, its last step %d s ago)' % (
        hold.run, time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(hold.since)), max(0, now - hold.last))


def decide_claim(hold, run, plan, now):
    # type: (Optional[Hold], str, str, float) -> Tuple[str, str]
    """(verdict, why) for a run that wants the host: 'claim', 'take over' or 'wait'.

    Free, ended (past its timeout since the last step) or already ours: claim.
    Held by a run with the same plan that stopped taking steps a while ago
    (killed, or slow): take over; that run fails at its next step and restores
    nothing. Held by a live run, or by one with another plan: wait.
    """
    if hold is None or hold.run == run:
        return 'claim', ''
    if now - hold.last > hold.timeout:
        return 'claim', 'the hold of %s had ended' % describe(hold, now)
    if hold.plan == plan and now - hold.last > SAME_PLAN_TAKEOVER:
        return 'take over', 'taken over from %s, which has the same plan' % describe(hold, now)
    return 'wait', 'another run holds this host: %s%s' % (
        describe(hold, now), '' if hold.plan == plan else ', with another plan')


def decide_step(hold, run, now):
    # type: (Optional[Hold], str, float) -> Tuple[str, str]
    """(verdict, why) for a later step of a run: 'go' (ours, or free again) or 'lost'."""
    if hold is None or hold.run == run or now - hold.last > hold.timeout:
        return 'go', ''
    return 'lost', ('this run no longer holds the host: %s took it over; nothing more was changed by this run, '
                    'and it restores nothing' % describe(hold, now))


@contextlib.contextmanager
def run_step(run=None, plan=None, claim=False, timeout=300.0, run_dir=RUN_DIR):
    """The host lock for one module call, and the run's hold checked and renewed around it.

    run: {'id', 'timeout', 'finish'} from the role, or None (a call outside a
    run: it waits for any live run to end). claim: this call starts the run
    (plan is then the run's plan). With finish, the run's last changing call
    gives the hold back when it ends without an exception. Yields a list of
    notes (a take-over) for the module's result.
    """
    run_id = run['id'] if run else None
    wait = float(run.get('timeout') or timeout) if run else timeout
    deadline = time.monotonic() + wait
    notes = []
    while True:
        with host_lock(timeout=max(1.0, deadline - time.monotonic()), run_dir=run_dir):
            now = time.time()
            hold = read_hold(run_dir)
            if run_id is None:
                verdict, why = decide_claim(hold, '', '', now)
                verdict = 'go' if verdict == 'claim' else 'wait'
            elif claim:
                verdict, why = decide_claim(hold, run_id, plan_digest(plan), now)
            else:
                verdict, why = decide_step(hold, run_id, now)
                if verdict == 'lost':
                    raise RunLost(why)
            if verdict != 'wait':
                if why:
                    notes.append(why)
                if run_id is not None:
                    digest = plan_digest(plan) if claim else (hold.plan if hold and hold.run == run_id else '')
                    since = hold.since if hold and hold.run == run_id else now
                    write_hold(Hold(run_id, digest, since, now, wait), run_dir)
                try:
                    yield notes
                except BaseException:
                    # A refused claim changed nothing and holds nothing; a failed step
                    # keeps the host held for its run (a rollback may follow).
                    if claim:
                        drop_hold(run_dir)
                    elif run_id is not None:
                        write_hold(Hold(run_id, digest, since, time.time(), wait), run_dir)
                    raise
                if run_id is not None:
                    if run.get('finish'):
                        drop_hold(run_dir)
                    else:
                        write_hold(Hold(run_id, digest, since, time.time(), wait), run_dir)
                return
        if time.monotonic() >= deadline:
            raise LockTimeout('%s; nothing was changed. Try again when it is done%s' % (
                why, '' if hold is None else '; if that run was killed, its hold ends by itself %d s after '
                'its last step' % hold.timeout))
        time.sleep(0.5)
