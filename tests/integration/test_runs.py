"""Runs, not module calls, are serialized, and nobody but root can take the host.

On two-rail lab hosts, with two inventories that want different things (the
second moves every rail to tables 201...):

- a run that finds the host held by a live run with another plan waits, and
  when that run does not end in time fails in preflight naming it, with
  nothing changed; once the first run ends, the second converges the host to
  its own plan, and a further run of it changes nothing (live state, tables
  and persisted files are those of one plan, never a mix);
- a run killed in the middle leaves a hold that ends by itself: a run with
  another plan waits for that and then converges the host;
- an unprivileged user can neither take the lock nor stall a run (the old
  lock was an abstract unix socket name, which any user may bind).
"""

import os
import signal
import subprocess
import time

from collection_path import COLLECTIONS
from lab import roce_lab
from roleruns import BIN, PREFLIGHT_TASK, RULE_TASK, TABLE_TASK, assert_ok, assert_proven, assert_same, full_dump, \
    inventory, site
# lab_hosts and playbooks are fixtures: imported so that pytest finds them here, used as arguments only.
from test_concurrency import (  # noqa: F401 pylint: disable=unused-import
    descendants, kill_everything, lab_hosts, playbooks, signal_quietly, try_lock, wait_gone)

RAILS = 2
PYTHON = os.path.join(BIN, 'python')
WAIT = 300


def other_plan(lab, **more):
    return inventory(lab, source_routing_table_base=200, **more)


def pause(playbook):
    """SIGSTOP every process of a run; the set of pids, for resume()."""
    stopped = set()
    while True:
        fresh = ({playbook.proc.pid} | descendants(playbook.proc.pid)) - stopped
        if not fresh:
            return stopped
        for pid in fresh:
            signal_quietly(pid, signal.SIGSTOP)
        stopped |= fresh


def resume(stopped):
    for pid in stopped:
        signal_quietly(pid, signal.SIGCONT)


def tables_in_use(lab):
    return sorted({line.split('lookup ')[1].split()[0] for line in roce_lab.ip(lab['host'], '-4', 'rule').splitlines()
                   if line.startswith('100')})


def test_a_run_with_another_plan_waits_for_the_run_holding_the_host(lab_hosts, playbooks, tmp_path):
    lab = lab_hosts(RAILS)
    first = playbooks(lab, tmp_path / 'first')
    assert first.wait_for_task(RULE_TASK), ''.join(first.output)
    stopped = pause(first)
    try:
        held = full_dump(lab)
        # The first run holds the host (it passed its preflight): the second waits 5 s and gives up.
        refused = site(lab, tmp_path, other_plan(lab, source_routing_run_timeout=5))
        assert refused.tasks.get(PREFLIGHT_TASK) == 'fatal', refused.output
        message = refused.fatal[PREFLIGHT_TASK]['msg']
        assert ('another run holds this host: run ' in message and 'with another plan' in message
                and 'nothing was changed' in message) or "held this host's lock" in message, message
        assert_same(held, full_dump(lab), 'by a run that waited for another')
    finally:
        resume(stopped)
    assert_ok(first.finish())
    assert tables_in_use(lab) == ['101', '102']

    second = site(lab, tmp_path, other_plan(lab))
    assert_ok(second)
    after = full_dump(lab)
    assert tables_in_use(lab) == ['201', '202']
    assert_ok(site(lab, tmp_path, other_plan(lab)), changed=0)
    assert_same(after, full_dump(lab), 'a further run of the second plan')
    assert_proven(lab)


def test_the_hold_of_a_killed_run_ends_and_a_run_with_another_plan_converges(lab_hosts, playbooks, tmp_path):
    lab = lab_hosts(RAILS)
    killed = playbooks(lab, tmp_path / 'killed', inventory(lab, source_routing_run_timeout=8))
    assert killed.wait_for_task(TABLE_TASK), ''.join(killed.output)
    kill_everything(killed)
    assert wait_gone(killed.run_dir, timeout=30) == []
    started = time.monotonic()
    rerun = site(lab, tmp_path, other_plan(lab, source_routing_run_timeout=120))
    assert_ok(rerun)
    print('the run with another plan ended %.1f s after the kill' % (time.monotonic() - started))
    assert tables_in_use(lab) == ['201', '202']
    after = full_dump(lab)
    assert_ok(site(lab, tmp_path, other_plan(lab)), changed=0)
    assert_same(after, full_dump(lab), 'a further run')
    assert_proven(lab)


# As nobody: take the old lock's name (an abstract socket), then try to open the lock file.
HOLD_AS_NOBODY = ('import socket, sys\n'
                  'sys.path.insert(0, %r)\n'
                  'old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n'
                  'old.bind("\\0roce.multirail")\n'
                  'print("bound", flush=True)\n'
                  'from ansible_collections.roce.multirail.plugins.module_utils import lock\n'
                  'try:\n'
                  '    open(lock.lock_path(), "a")\n'
                  '    print("opened", flush=True)\n'
                  'except (OSError, AttributeError) as exc:\n'
                  '    print("refused %%r" %% exc, flush=True)\n'
                  'sys.stdin.readline()\n' % COLLECTIONS)


def test_an_unprivileged_user_cannot_take_or_stall_the_lock(lab_hosts):
    lab = lab_hosts(1)
    host = lab['host']
    # The lock file exists once a module ran as root.
    assert try_lock(host, 5) == 'acquired'
    nobody = subprocess.Popen(  # pylint: disable=consider-using-with
        ['ip', 'netns', 'exec', host, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', PYTHON, '-c',
         HOLD_AS_NOBODY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [nobody.stdout.readline(), nobody.stdout.readline()]
        assert lines[0] == 'bound\n', (lines, nobody.stderr.read() if nobody.poll() is not None else '')
        answer = try_lock(host, 2)
        assert answer == 'acquired', answer
        assert lines[1].startswith('refused PermissionError(13'), lines
    finally:
        nobody.kill()
        nobody.communicate(timeout=WAIT)
