"""The roce.multirail.netns connection plugin against real network namespaces.

One ansible-playbook run covers the behaviour: two namespace hosts in one play
(one without pipelining, one with; one named by ansible_host, one by
ansible_netns_name) and a host whose namespace does not exist. A short Python
process checks the refusals that need no playbook.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from collection_path import COLLECTIONS, REPO
from nslab import Namespace, sh

BIN = os.path.join(REPO, '.venv', 'bin')
VENV_PYTHON = os.path.join(BIN, 'python')
CONFIG = os.path.join(REPO, 'ansible.cfg')
MACHINE_RP_FILTER = '/proc/sys/net/ipv4/conf/all/rp_filter'
MISSING = 'rmrc%d-missing' % os.getpid()

RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)

TASKS = [
    {'name': 'List links', 'ansible.builtin.command': 'ip -o link show', 'register': 'links',
     'changed_when': False},
    {'name': 'Set all.rp_filter', 'roce.multirail.rail_sysctl': {'conf': {'all': {'rp_filter': '{{ rp_filter }}'}}},
     'register': 'sysctl'},
    {'name': 'Write a report', 'ansible.builtin.copy': {
        'content': "{{ {'links': links.stdout_lines, 'sysctl_changed': sysctl.changed} | to_json }}",
        'dest': '{{ remote_dir }}/{{ inventory_hostname }}.json', 'mode': '0600'}},
    {'name': 'Fetch the report back', 'ansible.builtin.fetch': {
        'src': '{{ remote_dir }}/{{ inventory_hostname }}.json',
        'dest': '{{ back_dir }}/{{ inventory_hostname }}.json', 'flat': True}},
    {'name': 'Fetch /etc/hosts', 'ansible.builtin.fetch': {
        'src': '/etc/hosts', 'dest': '{{ back_dir }}/{{ inventory_hostname }}-hosts', 'flat': True}},
]


def ansible_env(tmp_path):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'PYTHON')))
    env.update(ANSIBLE_CONFIG=CONFIG, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', HOME=str(tmp_path))
    return env


def link_names(ip_o_link):
    """Interface names from `ip -o link` lines ("3: rma0@rma0p: <...")."""
    return {line.split(': ')[1].split('@')[0] for line in ip_o_link if line.strip()}


@pytest.fixture
def ns_b():
    host = Namespace()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def etc_override(ns):
    """/etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts inside ns."""
    assert os.path.isfile('/etc/hosts'), 'the test needs /etc/hosts on the machine'
    made_parent = not os.path.isdir('/etc/netns')
    directory = os.path.join('/etc/netns', ns.name)
    os.makedirs(directory)
    content = '127.0.0.1 localhost\n# hosts of namespace %s\n' % ns.name
    try:
        with open(os.path.join(directory, 'hosts'), 'w') as handle:
            handle.write(content)
        yield content
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if made_parent:
            try:
                os.rmdir('/etc/netns')
            except OSError:
                pass


def test_play_runs_each_host_in_its_own_namespace(ns, ns_b, etc_override, tmp_path):
    ns.add_nic('rma0')
    ns_b.add_nic('rmb0')
    machine_links = link_names(sh('ip', '-o', 'link', 'show').splitlines())
    assert machine_links - {'lo'}, 'the machine needs an interface of its own for this test'
    machine_rp_filter = open(MACHINE_RP_FILTER).read()
    for host in (ns, ns_b):  # a new namespace starts from the machine's values
        host.sysctl('net.ipv4.conf.all.rp_filter=0')

    remote_dir, back_dir = tmp_path / 'remote', tmp_path / 'back'
    remote_dir.mkdir()
    back_dir.mkdir()
    inventory = {'all': {
        'hosts': {
            'a': {'ansible_host': ns.name, 'rp_filter': 2, 'ansible_pipelining': False},
            # ansible_netns_name wins over ansible_host, which names the other namespace here.
            'b': {'ansible_netns_name': ns_b.name, 'ansible_host': ns.name, 'rp_filter': 1,
                  'ansible_pipelining': True, 'ansible_netns_ip_executable': shutil.which('ip')},
            MISSING: {'rp_filter': 2},
        },
        'vars': {'ansible_connection': 'roce.multirail.netns', 'ansible_python_interpreter': VENV_PYTHON,
                 'ansible_remote_tmp': str(tmp_path / 'remote-tmp'),
                 'remote_dir': str(remote_dir), 'back_dir': str(back_dir)},
    }}
    (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))
    play = {'name': 'netns', 'hosts': 'all', 'gather_facts': False, 'tasks': TASKS}
    (tmp_path / 'playbook.yml').write_text(json.dumps([play]))

    proc = subprocess.run(
        [os.path.join(BIN, 'ansible-playbook'), '-vvv', '-i', str(tmp_path / 'inventory.yml'),
         str(tmp_path / 'playbook.yml')],
        capture_output=True, text=True, env=ansible_env(tmp_path), cwd=str(tmp_path), timeout=300, check=False)
    output = proc.stdout + proc.stderr
    recap = {host: [int(n) for n in counts] for host, *counts in RECAP.findall(proc.stdout)}
    assert set(recap) == {'a', 'b', MISSING}, output
    for host in ('a', 'b'):
        ok, _changed, unreachable, failed = recap[host]
        assert (ok, unreachable, failed) == (len(TASKS), 0, 0), output

    # A missing namespace makes its host unreachable, with a message naming it; the others carry on.
    assert recap[MISSING][2] == 1, output
    found = re.search(r'^fatal: \[%s\]: UNREACHABLE! => (\{.*?^\})$' % MISSING, proc.stdout, re.M | re.S)
    assert found, output
    assert json.loads(found.group(1))['msg'].endswith(
        'netns: network namespace %s does not exist (no /run/netns/%s; see ip netns list)' % (MISSING, MISSING))

    # Commands and modules ran inside each host's own namespace, and nowhere else.
    reports = {}
    for host, nic in (('a', 'rma0'), ('b', 'rmb0')):
        written = (remote_dir / (host + '.json')).read_bytes()
        assert (back_dir / (host + '.json')).read_bytes() == written, 'fetch returned another file'
        reports[host] = json.loads(written)
        assert link_names(reports[host]['links']) == {'lo', nic, nic + 'p'}, reports[host]['links']
        assert reports[host]['sysctl_changed'] is True
    assert ns.read_sysctl('net.ipv4.conf.all.rp_filter') == 2
    assert ns_b.read_sysctl('net.ipv4.conf.all.rp_filter') == 1
    assert open(MACHINE_RP_FILTER).read() == machine_rp_filter

    # fetch sees /etc as the namespace does: ns has its own hosts file under /etc/netns, ns_b has none.
    assert (back_dir / 'a-hosts').read_text() == etc_override
    with open('/etc/hosts') as machine_hosts:
        assert (back_dir / 'b-hosts').read_text() == machine_hosts.read()

    # Without pipelining the module files are copied in; with it they go through stdin.
    module_put = r'^<%s> PUT \S+ TO \S+/AnsiballZ_(\w+)\.py$'
    assert set(re.findall(module_put % re.escape(ns.name), output, re.M)) == {'command', 'rail_sysctl', 'copy', 'stat'}
    assert not re.findall(module_put % re.escape(ns_b.name), output, re.M)


REFUSALS = r'''
import json, os, sys
from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader, init_plugin_loader

init_plugin_loader([sys.argv[1]])
results = {}
for label, (variables, euid) in json.loads(sys.argv[2]).items():
    connection = connection_loader.get('roce.multirail.netns', PlayContext())
    connection.set_options(var_options=variables)
    os.geteuid = lambda: euid
    try:
        connection._connect()
        results[label] = 'connected'
    except AnsibleConnectionFailure as exc:
        results[label] = str(exc)
print(json.dumps(results))
'''


def test_refusals_name_the_problem(ns, tmp_path):
    cases = {
        'root': ({'ansible_host': ns.name}, 0),
        'not_root': ({'ansible_host': ns.name}, 1000),
        'bad_name': ({'ansible_host': '../%s' % ns.name}, 0),
        'no_ip': ({'ansible_host': ns.name, 'ansible_netns_ip_executable': 'rmrc-no-such-ip'}, 0),
    }
    proc = subprocess.run([VENV_PYTHON, '-c', REFUSALS, COLLECTIONS, json.dumps(cases)], capture_output=True,
                          text=True, env=ansible_env(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results['root'] == 'connected'
    assert results['not_root'] == ('netns: entering network namespace %s needs root (ip netns exec); '
                                   'run ansible as root' % ns.name)
    assert results['bad_name'] == "netns: '../%s' is not a network namespace name" % ns.name
    assert 'rmrc-no-such-ip' in results['no_ip'], results['no_ip']


def test_ansible_doc_renders(tmp_path):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'connection', 'roce.multirail.netns'],
                          capture_output=True, text=True, env=ansible_env(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'WARNING' not in proc.stderr and 'ERROR' not in proc.stderr, proc.stderr
    for option in ('remote_addr', 'netns_name', 'executable', 'ip_executable', 'pipelining'):
        assert re.search(r'^\s*[-=]? ?%s\s' % option, proc.stdout, re.M), option
