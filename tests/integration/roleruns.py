"""Running the source_routing role (playbooks/site.yml) on namespace lab hosts, and dumping them.

A lab host is built with tests/lab/roce_lab.py (a textbook host in the state of
a freshly installed machine); an inventory written into tmp_path reaches it
with the roce.multirail.netns connection. The host's private /etc
(/etc/netns/HOST) receives the keyfiles and the sysctl.d file, never the
machine's /etc. full_dump() is everything a run could touch: all rules, every
table, net.ipv4.conf, and the persisted files with their stat.
"""

import copy
import difflib
import json
import os
import re
import stat
import subprocess

import pytest

from collection_path import COLLECTIONS, REPO
from lab import roce_lab

BIN = os.path.join(REPO, '.venv', 'bin')
SITE = os.path.join(REPO, 'playbooks', 'site.yml')
PREFIX = 'rr%d' % (os.getpid() % 100000)
PERSISTED = ('NetworkManager', 'systemd/network', 'netplan', 'sysctl.d')
SYSCTL_FILE = 'sysctl.d/99-roce-multirail.conf'
ROLE = 'roce.multirail.source_routing : '
PLAN_TASK = 'Plan tables, rules and sysctls from the rails'
PREFLIGHT_TASK = 'Check the plan against the host and keep what a rollback needs'
AUDIT_TASK = 'Audit the host against the plan'
VERIFY_TASK = 'Fail when a rail does not carry its own traffic'
RESTORE_TASK = 'Put back the rules, tables and sysctls of before the run'
REASON_TASK = 'Fail the host with the reason'
TABLE_TASK = 'Install the rail routing tables'
RULE_TASK = 'Install one rule per rail source'
SYSCTL_TASK = 'Set the ARP and reverse-path sysctls'
PERSIST_TASK = 'Persist the rails through the stack that sets them up at boot'


# --- lab hosts, inventories, runs ------------------------------------------

@pytest.fixture
def lab_host():
    """lab_host(rails, layout='textbook') -> description of a fresh lab host; every one destroyed afterwards."""
    made = []

    def make(rails, layout='textbook'):
        name = '%s%s' % (PREFIX, chr(ord('a') + len(made)))
        made.append(name)
        roce_lab.destroy_host(name)       # a leftover of an earlier run whose pid this one reuses
        description = roce_lab.create_host(name, layout, rails, owner_pid=os.getpid())
        # Without a private /etc entry the role would write into the machine's own /etc.
        assert sorted(description.get('private_etc', [])) == ['NetworkManager', 'netplan', 'sysctl.d', 'systemd'], \
            description
        return description

    try:
        yield make
    finally:
        errors = []
        for name in made:
            try:
                roce_lab.destroy_host(name)
            except roce_lab.LabError as exc:
                errors.append(str(exc))
        assert not errors, errors


def inventory(description, **overrides):
    """The lab host's role variables (roce_lab.inventory_vars), with overrides."""
    host_vars = copy.deepcopy(roce_lab.inventory_vars(description))
    host_vars.update(copy.deepcopy(overrides))
    return host_vars


def ansible_env(tmp_path):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'PYTHON')))
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local-tmp'),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / 'remote-tmp'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    return env


class Run:
    """One ansible-playbook run: its output, the host's PLAY RECAP and each task's outcome."""

    def __init__(self, host, proc):
        self.proc = proc
        self.output = proc.stdout + proc.stderr
        recap = re.findall(r'^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+'
                           r'skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)' % re.escape(host), proc.stdout, re.M)
        assert len(recap) == 1, 'no PLAY RECAP for %s (rc %d):\n%s' % (host, proc.returncode, self.output)
        self.recap = dict(zip(('ok', 'changed', 'unreachable', 'failed', 'skipped', 'rescued', 'ignored'),
                              (int(n) for n in recap[0])))
        self.tasks, self.fatal = {}, {}
        task = None
        for line in proc.stdout.splitlines():
            header = re.match(r'^(?:TASK|RUNNING HANDLER) \[(.*)\] \**$', line)
            if header:
                task = header.group(1)
                if task.startswith(ROLE):
                    task = task[len(ROLE):]
                continue
            status = re.match(r'^(ok|changed|skipping|fatal): \[%s\]' % re.escape(host), line)
            if status and task is not None:
                self.tasks[task] = status.group(1)
                if status.group(1) == 'fatal':
                    self.fatal[task] = json.loads(line.split('FAILED! => ', 1)[1])

    def changed_tasks(self):
        return sorted(task for task, status in self.tasks.items() if status == 'changed')


def site(description, tmp_path, host_vars, *options, env=None):
    """Run playbooks/site.yml against the lab host with these role variables.

    env: more environment for ansible-playbook; the lab host's modules and
    commands inherit it (the netns connection runs them with `ip netns exec`).
    """
    host = description['host']
    python = os.path.join(BIN, 'python')
    data = {'all': {'children': {'roce_hosts': {'hosts': {host: dict(
        host_vars, ansible_connection='roce.multirail.netns', ansible_python_interpreter=python)}}}}}
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps(data, indent=2))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', str(path), SITE] + list(options),
                          capture_output=True, text=True, env=dict(ansible_env(tmp_path), **(env or {})),
                          cwd=str(tmp_path), timeout=300, check=False)
    return Run(host, proc)


def site_hosts(description, tmp_path, hosts, *options, forks=10):
    """Run playbooks/site.yml once for several inventory hosts that all reach this one lab host.

    hosts: {inventory host name: role variables}. Returns {name: Run}, each Run
    holding that host's PLAY RECAP and task outcomes, all parsed from the one run.
    """
    python = os.path.join(BIN, 'python')
    inventory_hosts = dict((name, dict(host_vars, ansible_connection='roce.multirail.netns',
                                       ansible_netns_name=description['host'], ansible_python_interpreter=python))
                           for name, host_vars in hosts.items())
    data = {'all': {'children': {'roce_hosts': {'hosts': inventory_hosts}}}}
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps(data))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', str(path), SITE, '--forks', str(forks)]
                          + list(options), capture_output=True, text=True, env=ansible_env(tmp_path),
                          cwd=str(tmp_path), timeout=900, check=False)
    return dict((name, Run(name, proc)) for name in hosts)


def assert_ok(run, changed=None):
    assert run.proc.returncode == 0 and run.recap['failed'] == 0, run.output
    if changed is not None:
        assert run.recap['changed'] == changed, 'changed=%d, want %d (%s):\n%s' % (
            run.recap['changed'], changed, run.changed_tasks(), run.output)


# --- the host's state ------------------------------------------------------

def etc(description, relative=''):
    return os.path.join(roce_lab.ETC_NETNS, description['host'], relative)


def persisted_files(description):
    """{path under /etc/netns/HOST: (mode, uid, gid, inode, mtime_ns, content)}; directories listed too."""
    found = {}
    for top in PERSISTED:
        for root, dirs, names in os.walk(etc(description, top)):
            for name in sorted(dirs) + sorted(names):
                path = os.path.join(root, name)
                st = os.lstat(path)
                content = None
                if stat.S_ISREG(st.st_mode):
                    with open(path) as handle:
                        content = handle.read()
                found[os.path.relpath(path, etc(description))] = (
                    stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_mtime_ns, content)
    return found


def full_dump(description):
    host = description['host']
    return {
        'ip -4 rule': roce_lab.ip(host, '-d', '-4', 'rule'),
        'ip -6 rule': roce_lab.ip(host, '-d', '-6', 'rule'),
        'ip -4 route show table all': roce_lab.ip(host, '-4', 'route', 'show', 'table', 'all'),
        'sysctl net.ipv4.conf': roce_lab.ns_exec(host, 'sysctl', 'net.ipv4.conf'),
        'files': persisted_files(description),
    }


def assert_same(before, after, context=''):
    """Equal dumps, or a unified diff of each part that differs."""
    if before == after:
        return
    parts = []
    for key in before:
        if before[key] != after.get(key):
            old, new = before[key], after.get(key)
            if isinstance(old, dict):
                old = '\n'.join('%s %r' % item for item in sorted(old.items()))
                new = '\n'.join('%s %r' % item for item in sorted((new or {}).items()))
            parts.append('--- %s\n%s' % (key, '\n'.join(difflib.unified_diff(
                old.splitlines(), new.splitlines(), 'before', 'after', lineterm=''))))
    raise AssertionError('the host changed %s\n%s' % (context, '\n'.join(parts)))


def rules_at(description, *priorities):
    return [line for line in roce_lab.ip(description['host'], '-4', 'rule').splitlines()
            if int(line.split(':', 1)[0]) in priorities]


def table(description, number):
    """The routes of one table; '' also for a table the kernel has never had (it refuses to dump it)."""
    proc = subprocess.run(['ip', '-n', description['host'], '-4', 'route', 'show', 'table', str(number)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 and 'FIB table does not exist' in proc.stderr:
        return ''
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def keyfile(device):
    return 'NetworkManager/system-connections/roce-multirail-%s.nmconnection' % device


def assert_proven(description):
    results = roce_lab.prove(description['host'])
    assert results and all(result['ok'] for result in results), roce_lab.format_proof(results)
