"""Persistence, proved with a real NetworkManager 1.42 inside a lab host.

After site.yml converges a lab host, the generated keyfiles and sysctl.d file
must (1) pass `nmcli --offline`, (2) change nothing when NetworkManager
activates them on top of the live state, and (3) alone bring a flushed host
back to exactly the live-applied state, every rail then carrying its own
traffic again.
"""

import json
import os
import subprocess

import pytest

from collection_path import COLLECTIONS, REPO
from lab import nm, roce_lab

RAILS = 2
DEVICES = ['ib%d' % i for i in range(RAILS)]
TABLES = [101 + i for i in range(RAILS)]
KEYS = ('arp_ignore', 'arp_announce', 'rp_filter', 'accept_local')


@pytest.fixture
def host(tmp_path):
    name = 'rp%d' % (os.getpid() % 100000)
    roce_lab.destroy_host(name)
    description = roce_lab.create_host(name, 'textbook', RAILS, sources=1, owner_pid=os.getpid())
    try:
        yield name, description
    finally:
        nm.stop(name)
        roce_lab.destroy_host(name)


def converge(name, description, tmp_path):
    variables = dict(roce_lab.inventory_vars(description), ansible_connection='roce.multirail.netns',
                     ansible_python_interpreter=os.path.join(REPO, '.venv', 'bin', 'python'))
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'children': {'roce_hosts': {'hosts': {name: variables}}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local'),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / 'remote'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', str(inventory),
                           os.path.join(REPO, 'playbooks', 'site.yml')],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def state(name):
    """What persistence must reproduce: rules, the rail tables, rail addresses, sysctls."""
    rules = roce_lab.ip(name, '-4', 'rule', 'show').splitlines()
    tables = {table: roce_lab.ip(name, '-4', 'route', 'show', 'table', str(table)).splitlines()
              for table in TABLES}
    addresses = {}
    for device in DEVICES:
        info = json.loads(roce_lab.ip(name, '-j', '-4', 'addr', 'show', 'dev', device))
        # The rail's own address: the lab's VF stand-ins sit on the rail NIC too, and NetworkManager
        # removes addresses its profile does not hold (real VF addresses live on the VF netdevs).
        entries = info[0]['addr_info'] if info else []
        addresses[device] = sorted('%s/%s' % (a['local'], a['prefixlen']) for a in entries if a['prefixlen'] != 32)
    sysctls = {target: [roce_lab.read_sysctl(name, 'net.ipv4.conf.%s.%s' % (target, key)) for key in KEYS]
               for target in ['all'] + DEVICES}
    return {'rules': rules, 'tables': tables, 'addresses': addresses, 'sysctls': sysctls}


def flush(name):
    """Take away everything the role set up: addresses, rules, tables, sysctls."""
    for device in DEVICES:
        roce_lab.ip(name, 'addr', 'flush', 'dev', device)
    for line in roce_lab.ip(name, '-4', 'rule', 'show').splitlines():
        priority = int(line.split(':')[0])
        if 1000 <= priority <= 1999:
            roce_lab.ip(name, 'rule', 'del', 'pref', str(priority))
    for table in TABLES:
        roce_lab.ip(name, 'route', 'flush', 'table', str(table))
    roce_lab.write_sysctls(name, dict([('net.ipv4.conf.all.rp_filter', 1), ('net.ipv4.conf.all.accept_local', 0)]
                                      + [('net.ipv4.conf.%s.%s' % (d, k), 0) for d in DEVICES for k in KEYS]))


def restore_vf_stand_ins(name, description):
    for rail in description['rails']:
        present = roce_lab.ip(name, '-4', 'addr', 'show', 'dev', rail['device'])
        for source in rail['sources']:
            if ' %s/32 ' % source not in present:
                roce_lab.ip(name, 'addr', 'add', source + '/32', 'dev', rail['device'])


def activate(name):
    nm.start(name, managed=DEVICES)
    for device in DEVICES:
        nm.up(name, 'roce-multirail-' + device, timeout=60)


def test_keyfiles_restore_exactly_the_live_state(host, tmp_path):
    name, description = host
    converge(name, description, tmp_path)
    live = state(name)
    assert len(live['rules']) == 3 + 2 * RAILS     # local, main, default + rail address and one VF source each
    assert all(roce_lab.prove(name)[i]['ok'] for i in range(2 * RAILS))

    # The generated files are what NetworkManager and sysctl will read.
    paths = sorted(os.path.join(nm.keyfile_dir(name), f) for f in os.listdir(nm.keyfile_dir(name)))
    assert [os.path.basename(p) for p in paths] == ['roce-multirail-%s.nmconnection' % d for d in DEVICES]
    for path in paths:
        info = os.stat(path)
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o600, 0, 0)
        normalized = nm.offline_check(path, strict=True)
        assert 'routing-rule1=priority' in normalized

    # NetworkManager activating the keyfiles on top of the live state changes none of it.
    activate(name)
    assert state(name) == live
    nm.stop(name)

    # A host flushed of everything gets it all back from the files alone.
    flush(name)
    flushed = state(name)
    assert flushed['rules'] != live['rules'] and flushed['sysctls'] != live['sysctls']
    assert not any(flushed['tables'].values())
    activate(name)
    roce_lab.ns_exec(name, 'sysctl', '-q', '-p', '/etc/sysctl.d/99-roce-multirail.conf')
    assert state(name) == live
    restore_vf_stand_ins(name, description)
    results = roce_lab.prove(name)
    assert [r['source'] for r in results if not r['ok']] == []
