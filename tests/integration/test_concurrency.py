"""Runs that overlap or die: two site.yml runs at once, a run killed in the middle, the host lock.

Each module that changes the host holds the host's lock (an flock on a
root-only file, one per network namespace) for its whole call, and a run holds
the host from rail_guard to its last change (runs with the same plan take
turns; tests/integration/test_runs.py has runs with different plans). On
four-rail lab hosts:

- two ansible-playbook processes of site.yml started together both succeed,
  and the host ends exactly as a single run leaves it (a third run changes
  nothing, the host equals a clean converged host, every rail carries its own
  traffic), on fresh hosts and on an already converged one;
- a run killed while a given module runs (every process of the run, or only
  the playbook's process group, whose SIGKILL does not reach Ansible's
  workers: they call setsid) is followed by a run that converges the host;
- a run started while something else holds the lock waits for it, and the
  lock is per namespace and freed when its holder dies.
"""

import json
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from collection_path import COLLECTIONS
from lab import roce_lab
from roleruns import (
    AUDIT_TASK, BIN, PERSIST_TASK, PREFLIGHT_TASK, ROLE, RULE_TASK, SITE, SYSCTL_TASK, TABLE_TASK, Run,
    ansible_env, assert_ok, assert_proven, assert_same, full_dump, inventory, site)

RAILS = 4
PREFIX = 'cc%d' % (os.getpid() % 10000)
PYTHON = os.path.join(BIN, 'python')
WAIT = 300                # seconds any run or process may take, generously (2 cores, tests in parallel)


@pytest.fixture
def lab_hosts():
    """lab_hosts(rails) -> a fresh textbook lab host; every one destroyed afterwards."""
    made = []

    def make(rails=RAILS):
        name = '%s%s' % (PREFIX, chr(ord('a') + len(made)))
        made.append(name)
        roce_lab.destroy_host(name)
        return roce_lab.create_host(name, 'textbook', rails, owner_pid=os.getpid())

    try:
        yield make
    finally:
        for name in made:
            roce_lab.destroy_host(name)


def content(dump):
    """A full dump without what differs between two hosts in the same state (inodes, mtimes)."""
    files = dict((path, (mode, uid, gid, text)) for path, (mode, uid, gid, _ino, _mtime, text) in dump['files'].items())
    return dict(dump, files=files)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """content() of a clean four-rail host converged by one run."""
    name = PREFIX + 'r'
    roce_lab.destroy_host(name)
    try:
        lab = roce_lab.create_host(name, 'textbook', RAILS, owner_pid=os.getpid())
        assert_ok(run_site(lab, tmp_path_factory.mktemp('reference')))
        return content(full_dump(lab))
    finally:
        roce_lab.destroy_host(name)


# --- playbook processes ------------------------------------------------------

def run_site(lab, run_dir):
    """roleruns.site() with its own directory (inventory, HOME, Ansible's temporary files)."""
    run_dir.mkdir(exist_ok=True)
    return site(lab, run_dir, inventory(lab))


def write_inventory(lab, run_dir, role_vars=None):
    host_vars = dict(role_vars or inventory(lab), ansible_connection='roce.multirail.netns',
                     ansible_python_interpreter=PYTHON)
    path = run_dir / 'inventory.json'
    path.write_text(json.dumps({'all': {'children': {'roce_hosts': {'hosts': {lab['host']: host_vars}}}}}, indent=2))
    return path


class Playbook:
    """site.yml in its own session, its output read line by line by a thread."""

    def __init__(self, lab, run_dir, role_vars=None):
        run_dir.mkdir(exist_ok=True)
        self.host, self.run_dir = lab['host'], run_dir
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [os.path.join(BIN, 'ansible-playbook'), '-i', str(write_inventory(lab, run_dir, role_vars)), SITE],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=ansible_env(run_dir), cwd=str(run_dir), start_new_session=True)
        self.lines = queue.Queue()
        self.output = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_task(self, task):
        """Read the output until `task` starts; False when the run ends first."""
        header = 'TASK [%s%s]' % (ROLE, task)
        while True:
            line = self.lines.get(timeout=WAIT)
            if line is None:
                return False
            self.output.append(line)
            if line.startswith(header):
                return True

    def finish(self):
        """Wait for the end of the run: Run (recap and tasks)."""
        self.proc.wait(timeout=WAIT)
        self.reader.join(timeout=WAIT)
        while True:
            line = self.lines.get_nowait()
            if line is None:
                break
            self.output.append(line)
        stdout = ''.join(self.output)
        return Run(self.host, subprocess.CompletedProcess(self.proc.args, self.proc.returncode, stdout, ''))


def processes():
    """{pid: (ppid, cmdline)} of every process on the machine."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                ppid = int(handle.read().rsplit(')', 1)[1].split()[1])
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode(errors='replace')
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry)] = (ppid, cmdline)
    return found


def of_run(run_dir, marker=''):
    """Pids of the processes of a run (their command line names its directory), optionally holding marker."""
    return sorted(pid for pid, (_ppid, cmdline) in processes().items()
                  if str(run_dir) + '/' in cmdline and marker in cmdline)


def descendants(root):
    children = {}
    for pid, (ppid, _cmdline) in processes().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def signal_quietly(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def kill_everything(playbook):
    """SIGKILL every process of the run, like a crash: stopped first, so none forks or reparents meanwhile."""
    stopped = set()
    while True:
        fresh = ({playbook.proc.pid} | descendants(playbook.proc.pid)) - stopped
        if not fresh:
            break
        for pid in fresh:
            signal_quietly(pid, signal.SIGSTOP)
        stopped |= fresh
    os.killpg(playbook.proc.pid, signal.SIGKILL)
    for pid in stopped:
        signal_quietly(pid, signal.SIGKILL)
    playbook.proc.wait(timeout=WAIT)
    return stopped


def wait_gone(run_dir, timeout=WAIT):
    """Wait until no process of the run is left; the pids still there at the timeout."""
    deadline = time.monotonic() + timeout
    while of_run(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    return of_run(run_dir)


def wait_for_module(playbook, task, module):
    """Wait until the module of `task` runs: 'during', or 'after' when it was done before it was seen."""
    assert playbook.wait_for_task(task), 'the run ended before %s:\n%s' % (task, ''.join(playbook.output))
    while not of_run(playbook.run_dir, 'AnsiballZ_%s.py' % module):
        if playbook.proc.poll() is not None or not playbook.lines.empty():
            return 'after'          # the module is done already: the run printed its result
        time.sleep(0.01)
    return 'during'


@pytest.fixture
def playbooks(lab_hosts):  # pylint: disable=redefined-outer-name,unused-argument
    """playbooks(lab, run_dir) -> a started Playbook; any still running is killed before its host goes.

    It depends on lab_hosts only to be torn down first.
    """
    started = []

    def start(lab, run_dir, role_vars=None):
        started.append(Playbook(lab, run_dir, role_vars))
        return started[-1]

    try:
        yield start
    finally:
        for playbook in started:
            if playbook.proc.poll() is None:
                kill_everything(playbook)
            for pid in of_run(playbook.run_dir):
                signal_quietly(pid, signal.SIGKILL)


# --- two runs at once --------------------------------------------------------

def run_two_at_once(playbooks, lab, tmp_path, offset=0.0):
    """Two runs of site.yml, the second started `offset` seconds after the first; both must succeed."""
    first = playbooks(lab, tmp_path / 'first')
    time.sleep(offset)
    second = playbooks(lab, tmp_path / 'second')
    runs = [first.finish(), second.finish()]
    for run in runs:
        assert_ok(run)
    return runs


# Races depend on timing: a few rounds, the last one with the second run started a little later.
ROUNDS = {'round1': 0.0, 'round2': 0.0, 'round3_second_later': 0.4}


@pytest.mark.parametrize('round_', list(ROUNDS))
def test_two_runs_at_once_on_a_fresh_host(lab_hosts, playbooks, tmp_path, reference, round_):
    lab = lab_hosts()
    started = time.monotonic()
    runs = run_two_at_once(playbooks, lab, tmp_path, ROUNDS[round_])
    print('%s: both ended after %.1f s; changed tasks %s'
          % (round_, time.monotonic() - started, [run.changed_tasks() for run in runs]))
    # Between them, the two runs applied everything once.
    applied = set(runs[0].changed_tasks()) | set(runs[1].changed_tasks())
    assert {TABLE_TASK, RULE_TASK, SYSCTL_TASK, PERSIST_TASK} <= applied, [run.output for run in runs]

    after = full_dump(lab)
    assert_same(reference, content(after), 'compared with a clean converged host')
    assert_ok(run_site(lab, tmp_path / 'third'), changed=0)
    assert_same(after, full_dump(lab), 'on a third run')
    assert_proven(lab)


def test_two_runs_at_once_on_a_converged_host_change_nothing(lab_hosts, playbooks, tmp_path, reference):
    lab = lab_hosts()
    assert_ok(run_site(lab, tmp_path / 'converge'))
    converged = full_dump(lab)
    assert_same(reference, content(converged), 'compared with a clean converged host')

    for run in run_two_at_once(playbooks, lab, tmp_path):
        assert run.recap['changed'] == 0, run.output
    assert_same(converged, full_dump(lab), 'by two no-change runs at once')
    assert_proven(lab)


# --- a run killed in the middle --------------------------------------------

APPLY_ORDER = [TABLE_TASK, RULE_TASK, SYSCTL_TASK, AUDIT_TASK, PERSIST_TASK]


def assert_killed_state(lab, task):
    """What the killed run must have done: the tasks before `task` had all completed."""
    host, done = lab['host'], APPLY_ORDER[:APPLY_ORDER.index(task)]
    if TABLE_TASK in done:
        tables = [roce_lab.ip(host, '-4', 'route', 'show', 'table', str(101 + i)) for i in range(RAILS)]
        assert all(len(routes.splitlines()) == 2 for routes in tables), tables
    if RULE_TASK in done:
        rules = [line for line in roce_lab.ip(host, '-4', 'rule').splitlines() if line.startswith('100')]
        assert len(rules) == RAILS, rules
    if SYSCTL_TASK in done:
        assert roce_lab.read_sysctl(host, 'net.ipv4.conf.all.rp_filter') == 2
    if task != PERSIST_TASK:
        # Persisting comes after verification: not a file yet.
        files = full_dump(lab)['files']
        assert [path for path, entry in files.items() if entry[-1] is not None] == [], files


KILL_POINTS = {
    # case: (the task whose module runs when the run is killed, that module)
    'in_table_task': (TABLE_TASK, 'rail_table'),
    'after_tables_in_rule_task': (RULE_TASK, 'rail_rule'),
    'after_rules_in_sysctl_task': (SYSCTL_TASK, 'rail_sysctl'),
    'during_verification': (AUDIT_TASK, 'rail_audit'),
    'after_verification_in_persist_task': (PERSIST_TASK, 'rail_persist'),
}


@pytest.mark.parametrize('case', list(KILL_POINTS))
def test_a_killed_run_then_a_run_converges(lab_hosts, playbooks, tmp_path, reference, case):
    task, module = KILL_POINTS[case]
    lab = lab_hosts()
    killed = playbooks(lab, tmp_path / 'killed')
    when = wait_for_module(killed, task, module)
    pids = kill_everything(killed)
    assert wait_gone(killed.run_dir, timeout=30) == [], 'processes of the killed run are left'
    print('%s: killed %s %s (%d processes)' % (case, when, module, len(pids)))
    assert_killed_state(lab, task)

    rerun = run_site(lab, tmp_path / 'rerun')
    assert_ok(rerun)
    after = full_dump(lab)
    assert_same(reference, content(after), 'compared with a clean converged host')
    assert_ok(run_site(lab, tmp_path / 'again'), changed=0)
    assert_same(after, full_dump(lab), 'on a further run')
    assert_proven(lab)


def test_killing_the_process_group_leaves_the_module_running_and_a_rerun_still_converges(
        lab_hosts, playbooks, tmp_path, reference):
    """SIGKILL to the playbook's process group does not reach Ansible's worker (it calls setsid).

    The orphaned rail_rule goes on changing the host while the next run
    starts: the lock makes the two take turns, and the next run converges.
    """
    lab = lab_hosts()
    killed = playbooks(lab, tmp_path / 'killed')
    when = wait_for_module(killed, RULE_TASK, 'rail_rule')
    os.killpg(killed.proc.pid, signal.SIGKILL)
    killed.proc.wait(timeout=WAIT)
    orphans = of_run(killed.run_dir)
    print('process group killed %s rail_rule; left running: %d processes' % (when, len(orphans)))

    rerun = run_site(lab, tmp_path / 'rerun')
    assert_ok(rerun)
    assert wait_gone(killed.run_dir) == [], 'the orphans of the killed run did not end'
    after = full_dump(lab)
    assert_same(reference, content(after), 'compared with a clean converged host')
    assert_ok(run_site(lab, tmp_path / 'again'), changed=0)
    assert_same(after, full_dump(lab), 'on a further run')
    assert_proven(lab)


# --- the lock itself ---------------------------------------------------------

HOLD = ('import sys\n'
        'sys.path.insert(0, %r)\n'
        'from ansible_collections.roce.multirail.plugins.module_utils.lock import host_lock\n'
        'with host_lock(timeout=5):\n'
        '    print("held", flush=True)\n'
        '    sys.stdin.readline()\n' % COLLECTIONS)

TRY = ('import sys\n'
       'sys.path.insert(0, %r)\n'
       'from ansible_collections.roce.multirail.plugins.module_utils.lock import LockTimeout, host_lock\n'
       'try:\n'
       '    with host_lock(timeout=float(sys.argv[1])):\n'
       '        print("acquired")\n'
       'except LockTimeout as exc:\n'
       '    print("timeout: %%s" %% exc)\n' % COLLECTIONS)


class Holder:
    """A process holding the lock inside a namespace until released or killed."""

    def __init__(self, namespace):
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ['ip', 'netns', 'exec', namespace, PYTHON, '-c', HOLD],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line == 'held\n', (line, self.proc.stderr.read() if self.proc.poll() is not None else '')

    def release(self):
        self.proc.communicate('\n', timeout=WAIT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=WAIT)


def try_lock(namespace, timeout):
    proc = subprocess.run(['ip', 'netns', 'exec', namespace, PYTHON, '-c', TRY, str(timeout)],
                          capture_output=True, text=True, check=True, timeout=WAIT)
    return proc.stdout.strip()


def test_the_lock_is_per_namespace_and_freed_when_its_holder_dies(lab_hosts):
    lab = lab_hosts(1)
    host, other = lab['host'], lab['namespaces'][-1]
    holder = Holder(host)
    try:
        assert try_lock(host, 0.5).startswith("timeout: another roce.multirail run has held this host's lock")
        assert try_lock(other, 0.5) == 'acquired'
    finally:
        holder.kill()
    # SIGKILL: the kernel frees the name, no stale lock is left.
    assert try_lock(host, 5) == 'acquired'


def test_a_run_waits_for_the_lock_then_converges(lab_hosts, playbooks, tmp_path, reference):
    lab = lab_hosts()
    before = full_dump(lab)
    holder = Holder(lab['host'])
    try:
        waiting = playbooks(lab, tmp_path / 'waiting')
        assert waiting.wait_for_task(PREFLIGHT_TASK), ''.join(waiting.output)
        deadline = time.monotonic() + WAIT
        while not of_run(waiting.run_dir, 'AnsiballZ_rail_guard.py') and time.monotonic() < deadline:
            time.sleep(0.05)
        assert of_run(waiting.run_dir, 'AnsiballZ_rail_guard.py'), 'rail_guard never started'
        time.sleep(2)
        # Still waiting for the lock: rail_guard has not returned, nothing was changed.
        assert waiting.lines.empty() and waiting.proc.poll() is None, ''.join(waiting.output)
        assert of_run(waiting.run_dir, 'AnsiballZ_rail_guard.py')
        assert_same(before, full_dump(lab), 'while another process held the lock')
        holder.release()
    finally:
        holder.kill()
    run = waiting.finish()
    assert_ok(run)
    assert_same(reference, content(full_dump(lab)), 'compared with a clean converged host')
