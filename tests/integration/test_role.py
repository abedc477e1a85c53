"""The source_routing role through real ansible-playbook (playbooks/site.yml) on namespace lab hosts.

Each test builds a lab host with tests/lab/roce_lab.py (a textbook host in the
state of a freshly installed machine), writes an inventory into tmp_path that
reaches it with the roce.multirail.netns connection, and runs site.yml. The
host's private /etc (/etc/netns/HOST) receives the keyfiles and the sysctl.d
file, never the machine's /etc. Where the claim is "nothing changed", the full
dump (rules, every table, net.ipv4.conf, and the persisted files with their
stat) is compared before and after. A playbook run costs seconds: the runs are
few, and a test reuses one lab host for several of them.
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
PERSISTED = ('NetworkManager/system-connections', 'sysctl.d')
SYSCTL_FILE = 'sysctl.d/99-roce-multirail.conf'
ROLE = 'roce.multirail.source_routing : '
PLAN_TASK = 'Plan tables, rules and sysctls from the rails'
PREFLIGHT_TASK = 'Check that no rule the role does not own is in the way'
TABLE_TASK = 'Install the rail routing tables'
RULE_TASK = 'Install one rule per rail source'
SYSCTL_TASK = 'Set the ARP and reverse-path sysctls'
KEYFILE_TASK = 'Write one NetworkManager keyfile per rail'
PERSIST_SYSCTL_TASK = 'Persist the sysctls'


# --- lab hosts, inventories, runs ------------------------------------------

@pytest.fixture
def lab_host():
    """lab_host(rails) -> description of a fresh textbook lab host; every one destroyed afterwards."""
    made = []

    def make(rails):
        name = '%s%s' % (PREFIX, chr(ord('a') + len(made)))
        made.append(name)
        roce_lab.destroy_host(name)       # a leftover of an earlier run whose pid this one reuses
        description = roce_lab.create_host(name, 'textbook', rails, owner_pid=os.getpid())
        # Without a private /etc entry the role would write into the machine's own /etc.
        assert sorted(description.get('private_etc', [])) == ['NetworkManager', 'sysctl.d'], description
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


def site(description, tmp_path, host_vars, *options):
    """Run playbooks/site.yml against the lab host with these role variables."""
    host = description['host']
    python = os.path.join(BIN, 'python')
    data = {'all': {'children': {'roce_hosts': {'hosts': {host: dict(
        host_vars, ansible_connection='roce.multirail.netns', ansible_python_interpreter=python)}}}}}
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps(data, indent=2))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', str(path), SITE] + list(options),
                          capture_output=True, text=True, env=ansible_env(tmp_path), cwd=str(tmp_path),
                          timeout=300, check=False)
    return Run(host, proc)


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
        'ip -4 rule': roce_lab.ip(host, '-4', 'rule'),
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


# --- tests -----------------------------------------------------------------

def test_converge_persist_prove_then_nothing_to_do(lab_host, tmp_path):
    lab = lab_host(3)
    host_vars = inventory(lab)

    first = site(lab, tmp_path, host_vars)
    assert_ok(first)
    assert first.changed_tasks() == sorted([TABLE_TASK, RULE_TASK, SYSCTL_TASK, KEYFILE_TASK, PERSIST_SYSCTL_TASK])
    assert_proven(lab)

    files = persisted_files(lab)
    for position, rail in enumerate(lab['rails'], start=1):
        mode, uid, gid, _ino, _mtime, content = files[keyfile(rail['device'])]
        assert (mode, uid, gid) == (0o600, 0, 0), rail['device']
        lines = content.splitlines()
        ip, table_id, priority = roce_lab.rail_ip(rail), 100 + position, 1000 + position
        for line in ('interface-name=%s' % rail['device'], 'type=ethernet', 'address1=%s' % rail['address'],
                     'route1=%s,0.0.0.0,100' % rail['subnet'], 'route1_options=src=%s,table=%d' % (ip, table_id),
                     'route2=0.0.0.0/0,%s,100' % rail['gateway'], 'route2_options=table=%d' % table_id,
                     'routing-rule1=priority %d from %s table %d' % (priority, ip, table_id)):
            assert line in lines, '%r not in the keyfile of %s:\n%s' % (line, rail['device'], content)
    assert sorted(path for path in files if path.startswith('NetworkManager/system-connections/')) == sorted(
        keyfile(rail['device']) for rail in lab['rails'])

    mode, uid, _gid, _ino, _mtime, content = files[SYSCTL_FILE]
    assert (mode, uid) == (0o644, 0)
    settings = [line for line in content.splitlines() if line and not line.startswith('#')]
    assert settings == ['net.ipv4.conf.all.accept_local = 1', 'net.ipv4.conf.all.rp_filter = 2'] + [
        'net.ipv4.conf.%s.%s' % (rail['device'], setting) for rail in lab['rails']
        for setting in ('arp_announce = 2', 'arp_ignore = 1', 'rp_filter = 2')]

    converged = full_dump(lab)
    second = site(lab, tmp_path, host_vars)
    assert_ok(second, changed=0)
    assert_same(converged, full_dump(lab), 'on a second run')


def _gateway_outside(host_vars, _lab):
    host_vars['source_routing_rails'][1]['gateway'] = '10.0.9.1'


def _duplicate_table(host_vars, _lab):
    host_vars['source_routing_rails'][1]['table'] = 101


def _main_priority(host_vars, _lab):
    host_vars['source_routing_rails'][1]['priority'] = 32766


def _unknown_key(host_vars, _lab):
    host_vars['source_routing_rails'][1]['colour'] = 'blue'


def _missing_device(host_vars, _lab):
    host_vars['source_routing_rails'].append({'device': 'ib9', 'address': '10.0.9.14/24'})


FOREIGN_1001 = '1001:\tfrom 10.0.1.14 lookup 200'


def _foreign_rule(_host_vars, lab):
    roce_lab.ip(lab['host'], 'rule', 'add', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '200')


ARG_SPEC_TASK = "Validating arguments against arg spec 'main' - Source-based routing for a multi-rail RoCE host"
BAD_INVENTORIES = {
    # case: (how to break it, the task that must fail, words its message must hold)
    'gateway_outside_subnet': (_gateway_outside, PLAN_TASK, ['rail ib1: gateway 10.0.9.1 is outside 10.0.2.0/24']),
    'duplicate_table': (_duplicate_table, PLAN_TASK, ['rail ib1', 'table 101', 'rail ib0']),
    'priority_of_main': (_main_priority, PLAN_TASK, ['rail ib1', 'priority 32766']),
    'unknown_rail_key': (_unknown_key, ARG_SPEC_TASK, ['source_routing_rails', 'colour']),
    'device_not_on_host': (_missing_device, TABLE_TASK, ['ib9', 'does not exist']),
    'foreign_rule_on_a_rail_priority': (_foreign_rule, PREFLIGHT_TASK, ['1001', '10.0.1.14', 'lookup 200']),
}


@pytest.mark.parametrize('case', sorted(BAD_INVENTORIES))
def test_bad_inventory_fails_before_any_change(lab_host, tmp_path, case):
    lab = lab_host(2)
    breaks, failing_task, words = BAD_INVENTORIES[case]
    host_vars = inventory(lab)
    breaks(host_vars, lab)
    before = full_dump(lab)

    run = site(lab, tmp_path, host_vars)
    assert run.proc.returncode != 0 and run.recap['failed'] == 1, run.output
    assert run.recap['changed'] == 0, run.output
    assert list(run.fatal) == [failing_task], run.output
    message = run.fatal[failing_task]['msg']
    for word in words:
        assert word in message, '%r not in %r' % (word, message)
    for later in (RULE_TASK, SYSCTL_TASK, KEYFILE_TASK, PERSIST_SYSCTL_TASK):
        assert later not in run.tasks, run.output
    after = full_dump(lab)
    assert_same(before, after, 'although the play failed (%s)' % case)
    # Nothing at all was applied: no rail rule, no rail table, no rail sysctl, no persisted file.
    assert rules_at(lab, 1001, 1002, 1003) == ([FOREIGN_1001] if breaks is _foreign_rule else [])
    assert [table(lab, number) for number in (101, 102, 103)] == ['', '', '']
    assert roce_lab.read_sysctl(lab['host'], 'net.ipv4.conf.ib1.arp_ignore') == 0
    assert roce_lab.read_sysctl(lab['host'], 'net.ipv4.conf.all.rp_filter') == 1
    assert [path for path, entry in after['files'].items() if entry[-1] is not None] == []


def test_removed_rail_is_purged_foreign_rules_and_tables_survive(lab_host, tmp_path):
    lab = lab_host(3)
    host = lab['host']
    # Foreign state outside what the role owns (priorities 1000-1999, tables of its rails).
    roce_lab.ip(host, 'rule', 'add', 'pref', '500', 'from', '192.168.50.0/24', 'lookup', '300')
    roce_lab.ip(host, 'rule', 'add', 'pref', '2500', 'to', '192.168.52.0/24', 'lookup', '300')
    roce_lab.ip(host, 'route', 'add', '192.168.51.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '300')
    foreign = (rules_at(lab, 500, 2500), table(lab, 300))
    assert len(foreign[0]) == 2 and foreign[1], foreign

    three = site(lab, tmp_path, inventory(lab))
    assert_ok(three)
    assert (rules_at(lab, 500, 2500), table(lab, 300)) == foreign
    assert len(rules_at(lab, 1003)) == 1 and table(lab, 103), 'rail ib2 was not installed:\n%s' % three.output
    kept = {'rules': rules_at(lab, 1001, 1002), 'table 101': table(lab, 101), 'table 102': table(lab, 102)}
    files = persisted_files(lab)
    kept_files = {path: files[path] for path in (keyfile('ib0'), keyfile('ib1'))}
    assert keyfile('ib2') in files

    host_vars = inventory(lab)
    del host_vars['source_routing_rails'][2]
    two = site(lab, tmp_path, host_vars)
    assert_ok(two)
    assert rules_at(lab, 1003) == [], two.output
    assert table(lab, 103) == '', two.output
    files = persisted_files(lab)
    assert keyfile('ib2') not in files, two.output
    assert 'ib2' not in files[SYSCTL_FILE][-1], files[SYSCTL_FILE][-1]
    assert {'rules': rules_at(lab, 1001, 1002), 'table 101': table(lab, 101), 'table 102': table(lab, 102)} == kept
    assert {path: files[path] for path in kept_files} == kept_files
    assert (rules_at(lab, 500, 2500), table(lab, 300)) == foreign


def test_check_diff_on_drifted_host_changes_nothing_then_a_run_heals(lab_host, tmp_path):
    lab = lab_host(2)
    host, host_vars = lab['host'], inventory(lab)
    assert_ok(site(lab, tmp_path, host_vars))
    converged = full_dump(lab)

    roce_lab.ip(host, 'rule', 'del', 'pref', '1002')
    roce_lab.write_sysctls(host, {'net.ipv4.conf.all.rp_filter': 1})
    drifted = full_dump(lab)
    assert drifted != converged

    check = site(lab, tmp_path, host_vars, '--check', '--diff')
    assert_ok(check)
    assert check.changed_tasks() == sorted([RULE_TASK, SYSCTL_TASK]), check.output
    lines = check.output.splitlines()
    for expected in ('+1002:\tfrom 10.0.2.14 lookup 102 proto static',
                     '-net.ipv4.conf.all.rp_filter = 1',
                     '+net.ipv4.conf.all.rp_filter = 2'):
        assert expected in lines, '%r not in the diff:\n%s' % (expected, check.output)
    assert_same(drifted, full_dump(lab), 'in check mode')

    heal = site(lab, tmp_path, host_vars)
    assert_ok(heal)
    assert heal.changed_tasks() == sorted([RULE_TASK, SYSCTL_TASK]), heal.output
    assert_same(converged, full_dump(lab), 'after healing (compared with the converged host)')
    assert_proven(lab)


def test_persist_none_writes_no_files(lab_host, tmp_path):
    lab = lab_host(2)
    before = persisted_files(lab)
    assert [path for path, entry in before.items() if entry[-1] is not None] == []

    run = site(lab, tmp_path, inventory(lab, source_routing_persist='none'))
    assert_ok(run)
    assert run.tasks.get(KEYFILE_TASK) == 'skipping' and run.tasks.get(PERSIST_SYSCTL_TASK) == 'skipping', run.output
    # Applied live all the same.
    assert rules_at(lab, 1001, 1002) == ['1001:\tfrom 10.0.1.14 lookup 101 proto static',
                                         '1002:\tfrom 10.0.2.14 lookup 102 proto static']
    assert persisted_files(lab) == before


def test_audit_fails_the_host_on_errors_unless_disabled(lab_host, tmp_path):
    """A rail without carrier is applied like the others, then the audit fails the host."""
    lab = lab_host(2)
    rail = lab['rails'][1]
    roce_lab.ip(rail['leaf'], 'link', 'set', 'to-' + rail['device'], 'down')
    run = site(lab, tmp_path, inventory(lab))
    assert run.proc.returncode != 0 and run.recap['failed'] == 1, run.output
    assert run.tasks['Fail when the audit finds errors'] == 'fatal', run.output
    message = ' '.join(run.fatal['Fail when the audit finds errors']['msg'])
    assert 'ib1 has no carrier' in message and 'ib0' not in message, message
    # Everything else was applied: the audit runs last and only reads.
    assert rules_at(lab, 1001, 1002), run.output

    run = site(lab, tmp_path, inventory(lab, source_routing_audit=False))
    assert_ok(run, changed=0)
    assert run.tasks['Audit the host against the plan'] == 'skipping', run.output
