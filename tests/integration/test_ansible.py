"""The modules through real Ansible: ansible-playbook run inside a lab namespace, and ansible-doc.

Each playbook run costs a few seconds, so these are few; the modules' behaviour
in detail is tested by running them directly (test_rail_*.py).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from collection_path import COLLECTIONS, REPO

BIN = os.path.join(REPO, '.venv', 'bin')
VENV_PYTHON = os.path.join(BIN, 'python')
CONFIG = os.path.join(REPO, 'ansible.cfg')

SYSCTL = {'conf': {
    'all': {'rp_filter': 2, 'accept_local': 1},
    'ib0': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
    'ib1': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
}}
TABLES = {'tables': [
    {'table': 101, 'routes': [
        {'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 100},
        {'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib0', 'metric': 100}]},
    {'table': 102, 'routes': [
        {'dst': '10.0.2.0/24', 'dev': 'ib1', 'src': '10.0.2.14', 'metric': 100},
        {'dst': 'default', 'gateway': '10.0.2.1', 'dev': 'ib1', 'metric': 100}]},
], 'purge': True}
RULES = {'rules': [
    {'priority': 1001, 'from': '10.0.1.14', 'table': 101},
    {'priority': 1002, 'from': '10.0.2.14', 'table': 102},
], 'purge': True, 'priority_range': {'start': 1000, 'end': 1999}}

TWO_RAILS = [('rail_sysctl', SYSCTL), ('rail_table', TABLES), ('rail_rule', RULES)]

RECAP = re.compile(r'^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                   r'\s+skipped=\d+\s+rescued=\d+\s+ignored=(\d+)', re.M)


def two_rails(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')


def ansible_env(tmp_path):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'PYTHON')))
    env.update(ANSIBLE_CONFIG=CONFIG, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', HOME=str(tmp_path))
    return env


def write_playbook(tmp_path, tasks, python=VENV_PYTHON, ignore_errors=False):
    """A play on localhost over connection local; JSON is valid YAML."""
    play = {
        'name': 'rails',
        'hosts': 'localhost',
        'connection': 'local',
        'gather_facts': False,
        'vars': {'ansible_python_interpreter': python},
        'tasks': [dict({'name': module, 'roce.multirail.' + module: args},
                       **({'ignore_errors': True} if ignore_errors else {}))
                  for module, args in tasks],
    }
    path = tmp_path / 'playbook.yml'
    path.write_text(json.dumps([play], indent=2))
    return path


def run_playbook(ns, tmp_path, playbook, *options):
    proc = subprocess.run(
        ['ip', 'netns', 'exec', ns.name, os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,',
         str(playbook)] + list(options),
        capture_output=True, text=True, env=ansible_env(tmp_path), cwd=str(tmp_path), timeout=300,
        check=False)
    found = RECAP.findall(proc.stdout)
    assert len(found) == 1, 'no PLAY RECAP for localhost (rc %d):\n%s\n%s' % (
        proc.returncode, proc.stdout, proc.stderr)
    ok, changed, unreachable, failed, ignored = (int(n) for n in found[0])
    return proc, dict(ok=ok, changed=changed, unreachable=unreachable, failed=failed, ignored=ignored)


def test_two_rails_changed_then_idempotent(ns, tmp_path):
    two_rails(ns)
    playbook = write_playbook(tmp_path, TWO_RAILS)

    proc, recap = run_playbook(ns, tmp_path, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap == dict(ok=3, changed=3, unreachable=0, failed=0, ignored=0), proc.stdout
    rules = ns.ip('rule', 'show')
    assert '1001:\tfrom 10.0.1.14 lookup 101 proto static' in rules
    assert '1002:\tfrom 10.0.2.14 lookup 102 proto static' in rules
    assert 'default via 10.0.2.1 dev ib1 proto static metric 100' in ns.ip('route', 'show', 'table', '102')
    assert ns.read_sysctl('net.ipv4.conf.ib1.arp_announce') == 2
    assert ns.read_sysctl('net.ipv4.conf.all.accept_local') == 1

    dump = ns.dump()
    proc, recap = run_playbook(ns, tmp_path, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap['changed'] == 0 and recap['failed'] == 0, proc.stdout
    assert ns.dump() == dump


def test_check_diff_on_drifted_host_shows_and_changes_nothing(ns, tmp_path):
    two_rails(ns)
    for module, args in TWO_RAILS:
        ns.module(module, args)
    # Drift: a rail rule gone, a stale rule inside the owned range, a rail route gone, a strict NIC.
    ns.ip('rule', 'del', 'priority', '1002')
    ns.ip('rule', 'add', 'priority', '1500', 'from', '10.0.3.14', 'table', '103', 'proto', 'static')
    ns.ip('route', 'del', 'default', 'table', '101')
    ns.sysctl('net.ipv4.conf.ib0.rp_filter=1')
    dump = ns.dump()

    proc, recap = run_playbook(ns, tmp_path, write_playbook(tmp_path, TWO_RAILS), '--check', '--diff')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap['changed'] == 3 and recap['failed'] == 0, proc.stdout
    lines = proc.stdout.splitlines()
    for expected in ('+1002:\tfrom 10.0.2.14 lookup 102 proto static',
                     '-1500:\tfrom 10.0.3.14 lookup 103 proto static',
                     '+  default via 10.0.1.1 dev ib0 proto static metric 100',
                     '-net.ipv4.conf.ib0.rp_filter = 1',
                     '+net.ipv4.conf.ib0.rp_filter = 2'):
        assert expected in lines, '%r not in the diff:\n%s' % (expected, proc.stdout)
    assert ns.dump() == dump


def python_without_pyroute2(tmp_path):
    """A fresh venv (stdlib only) of whichever base interpreter can make one."""
    candidates = [getattr(sys, '_base_executable', None), '/usr/bin/python3']
    for base in [c for c in candidates if c and os.path.exists(c)]:
        target = tmp_path / ('venv-%d' % candidates.index(base))
        made = subprocess.run([base, '-m', 'venv', '--without-pip', str(target)], capture_output=True, text=True,
                              check=False)
        python = str(target / 'bin' / 'python')
        if made.returncode == 0 and os.path.exists(python):
            return python
    raise AssertionError('no base Python could create a venv: %r' % candidates)


FATAL = re.compile(r'^fatal: \[localhost\]: FAILED! => (\{.*\})$', re.M)


def test_missing_pyroute2_reports_missing_required_lib(ns, tmp_path):
    two_rails(ns)
    python = python_without_pyroute2(tmp_path)
    env = ansible_env(tmp_path)
    probe = subprocess.run([python, '-c', 'import pyroute2'], capture_output=True, text=True, env=env, check=False)
    assert probe.returncode != 0, '%s imports pyroute2; the test needs a Python without it' % python

    dump = ns.dump()
    guard = {'restore': {'priority_range': [1000, 1999], 'tables': [], 'rules': [], 'routes': [], 'sysctls': []}}
    playbook = write_playbook(tmp_path, [('rail_rule', RULES), ('rail_table', TABLES), ('rail_guard', guard),
                                         ('rail_audit', {'martian_interval': 0})],
                              python=python, ignore_errors=True)
    proc, recap = run_playbook(ns, tmp_path, playbook)
    assert recap['ignored'] == 4 and recap['ok'] == 4, proc.stdout + proc.stderr
    results = [json.loads(text) for text in FATAL.findall(proc.stdout)]
    assert len(results) == 4, proc.stdout
    for result in results:
        msg = result['msg']
        assert 'Failed to import the required Python library (pyroute2)' in msg, msg
        assert python in msg, msg
        assert 'Traceback' not in msg and 'ModuleNotFoundError' not in msg, msg
    assert ns.dump() == dump


DOC_OPTIONS = {
    'rail_rule': ['rules', 'priority', 'from', 'to', 'table', 'iif', 'oif', 'fwmark', 'family',
                  'state', 'purge', 'priority_range', 'start', 'end'],
    'rail_table': ['tables', 'table', 'routes', 'dst', 'gateway', 'dev', 'src', 'scope', 'metric',
                   'onlink', 'state', 'purge'],
    'rail_sysctl': ['conf'],
}


@pytest.mark.parametrize('module', sorted(DOC_OPTIONS))
def test_ansible_doc_renders(module, tmp_path):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'module', 'roce.multirail.' + module],
                          capture_output=True, text=True, env=ansible_env(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'roce.multirail.%s' % module in proc.stdout
    assert 'WARNING' not in proc.stderr and 'ERROR' not in proc.stderr, proc.stderr
    for option in DOC_OPTIONS[module]:
        assert re.search(r'^\s*[-=] %s\s' % re.escape(option), proc.stdout, re.M), \
            'option %s not rendered:\n%s' % (option, proc.stdout)
    for section in ('OPTIONS', 'ATTRIBUTES', 'EXAMPLES', 'RETURN VALUES'):
        assert section in proc.stdout, section
