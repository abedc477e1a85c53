"""The namespace lab (tests/lab/roce_lab.py) on the real kernel.

A lab host must start really broken (traffic from rail 2 leaves through ib0 and
its replies are dropped), and a host fixed by hand with plain `ip rule`,
`ip route` and sysctls must be proven good by prove(). If either were not so,
every test built on the lab would prove nothing.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from collection_path import REPO
from lab import roce_lab

LAB_PY = os.path.join(REPO, 'tests', 'lab', 'roce_lab.py')
PREFIX = 'rl%d' % os.getpid()


def sh(*argv, check=True):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if check and proc.returncode:
        raise AssertionError('%s failed (%d): %s' % (' '.join(map(str, argv)), proc.returncode, proc.stderr))
    return proc


def assert_gone(name):
    left = [ns for ns in roce_lab.netns_list() if ns == name or ns.startswith(name + '-')]
    assert not left, 'namespaces left behind: %s' % left
    assert not os.path.lexists(os.path.join('/etc/netns', name))
    assert not os.path.lexists(os.path.join(roce_lab.STATE_DIR, name + '.json'))


@pytest.fixture(scope='module', autouse=True)
def _no_stale_hosts():
    roce_lab.destroy_stale()    # hosts of earlier runs that were killed before their clean-up


@pytest.fixture
def make_host():
    """make_host(suffix, layout, rails, **kw) -> description; every host destroyed afterwards."""
    made = []

    def make(suffix, layout, rails, **kwargs):
        name = PREFIX + suffix
        made.append(name)
        return roce_lab.create_host(name, layout, rails, owner_pid=os.getpid(), **kwargs)

    try:
        yield make
    finally:
        for name in made:
            roce_lab.destroy_host(name)
    for name in made:
        assert_gone(name)


def fix_by_hand(desc, arp_ignore=1):
    """Source-based routing the plain way: a table and rules per rail, loose rp_filter, no ARP flux."""
    host = desc['host']
    sysctls = {'net.ipv4.conf.all.rp_filter': 2}
    for position, rail in enumerate(desc['rails'], start=1):
        table, priority, dev = 100 + position, 1000 + position, rail['device']
        address = roce_lab.rail_ip(rail)
        sh('ip', '-n', host, 'route', 'add', 'table', table, rail['subnet'], 'dev', dev, 'src', address)
        sh('ip', '-n', host, 'route', 'add', 'table', table, desc['destination'],
           'via', rail['gateway'], 'dev', dev)
        for source in [address] + rail['sources']:
            sh('ip', '-n', host, 'rule', 'add', 'from', source, 'lookup', table, 'priority', priority)
        for key, value in (('rp_filter', 2), ('arp_ignore', arp_ignore), ('arp_announce', 2)):
            sysctls['net.ipv4.conf.%s.%s' % (dev, key)] = value
    roce_lab.write_sysctls(host, sysctls)


def test_describe_addresses_and_validation():
    desc = roce_lab.describe('x', 'shared', 4, sources=2)
    assert [(r['device'], r['address'], r['gateway'], r['leaf']) for r in desc['rails']] == [
        ('ib0', '10.0.1.14/24', '10.0.1.1', 'x-l1'),
        ('ib1', '10.0.1.16/24', '10.0.1.1', 'x-l1'),
        ('ib2', '10.0.2.14/24', '10.0.2.1', 'x-l2'),
        ('ib3', '10.0.2.16/24', '10.0.2.1', 'x-l2'),
    ]
    every_source = [roce_lab.rail_ip(r) for r in desc['rails']] + [s for r in desc['rails'] for s in r['sources']]
    assert len(set(every_source)) == 12
    assert desc['namespaces'] == ['x', 'x-l1', 'x-l2', 'x-p']
    assert desc['destination'] == '10.0.0.0/16'
    textbook = roce_lab.describe('x', 'textbook', 2, sources=1)
    assert [(r['address'], r['sources']) for r in textbook['rails']] == [
        ('10.0.1.14/24', ['10.0.1.40']), ('10.0.2.14/24', ['10.0.2.40'])]
    assert roce_lab.inventory_vars(textbook)['source_routing_rails'][1] == {
        'device': 'ib1', 'address': '10.0.2.14/24', 'gateway': '10.0.2.1', 'sources': ['10.0.2.40']}
    for args, words in ((('x', 'shared', 3), 'even'), (('x-y', 'textbook', 1), 'name'),
                        (('x', 'textbook', 2, 21), 'sources'), (('x', 'mesh', 2), 'layout'),
                        (('x', 'textbook', 0), 'rails')):
        with pytest.raises(roce_lab.LabError, match=words):
            roce_lab.describe(*args)


@pytest.mark.parametrize('suffix, layout, rails, sources', [
    ('t', 'textbook', 4, 0),
    ('s', 'shared', 4, 1),
    ('v', 'textbook', 2, 2),
])
def test_broken_host_fixed_by_hand_is_proven(make_host, suffix, layout, rails, sources):
    desc = make_host(suffix, layout, rails, sources=sources)
    host, first, second = desc['host'], desc['rails'][0], desc['rails'][1]

    # Built as described, IPv6 off everywhere.
    links = {l['ifname']: l for l in roce_lab.ip_json(host, 'addr', 'show')}
    for rail in desc['rails']:
        addrs = ['%s/%d' % (a['local'], a['prefixlen']) for a in links[rail['device']]['addr_info']]
        assert addrs == [rail['address']] + [s + '/32' for s in rail['sources']]
    for ns in desc['namespaces']:
        assert roce_lab.read_sysctl(ns, 'net.ipv6.conf.default.disable_ipv6') == 1
        assert roce_lab.ip(ns, '-6', 'addr', 'show') == ''

    # Broken like a fresh machine: rail 2 leaves through ib0, and a rail outside ib0's subnet gets no
    # replies (they come back on its own NIC and strict rp_filter drops them). In the shared layout
    # rail 2 itself does get replies: ARP flux lets ib0 answer for rail 2's address.
    route = sh('ip', '-n', host, '-j', 'route', 'get', desc['peer'], 'from', roce_lab.rail_ip(second)).stdout
    assert json.loads(route)[0]['dev'] == 'ib0'
    other = next(r for r in desc['rails'] if r['subnet'] != first['subnet'])
    pinged = sh('ip', 'netns', 'exec', host, 'ping', '-c', 3, '-i', 0.2, '-W', 1, '-I', roce_lab.rail_ip(other),
                desc['peer'], check=False)
    assert pinged.returncode == 1 and ' 0 received' in pinged.stdout, pinged.stdout
    broken = [roce_lab.prove_source(desc, rail, roce_lab.rail_ip(rail)) for rail in (first, second)]
    assert [r['ok'] for r in broken] == [True, False]
    assert broken[1]['route_dev'] == 'ib0' and broken[1]['tx']['ib0'] >= 3

    fix_by_hand(desc)
    route = roce_lab.route_get(host, roce_lab.rail_ip(second))
    assert (route['dev'], route['table']) == ('ib1', '102')
    results = roce_lab.prove(host)
    assert len(results) == rails * (1 + sources)
    assert all(r['ok'] for r in results), roce_lab.format_proof(results)


def test_prove_sees_arp_flux(make_host):
    # Two NICs on one bridge, both answering ARP for each other's address: routing alone is not enough.
    desc = make_host('a', 'shared', 2)
    fix_by_hand(desc, arp_ignore=0)
    first, second = desc['rails']
    flux = roce_lab.prove_source(desc, first, roce_lab.rail_ip(first))
    assert not flux['ok'] and flux['route_dev'] == 'ib0' and flux['ping_ok']
    assert flux['tx']['ib1'] > 0 and any('ib1 sent' in p for p in flux['problems']), flux
    roce_lab.write_sysctls(desc['host'], {'net.ipv4.conf.ib0.arp_ignore': 1, 'net.ipv4.conf.ib1.arp_ignore': 1})
    assert all(r['ok'] for r in roce_lab.prove(desc['host']))


def test_private_etc_for_the_network_stacks_and_sysctl(make_host):
    desc = make_host('e', 'textbook', 1)
    host, etc = desc['host'], os.path.join('/etc/netns', desc['host'])
    expected = [e for e in ('NetworkManager', 'netplan', 'sysctl.d', 'systemd') if os.path.isdir('/etc/' + e)]
    assert desc['private_etc'] == expected
    for entry in expected:
        inside = roce_lab.ns_exec(host, 'stat', '-L', '-c', '%i', '/etc/' + entry).strip()
        assert inside == str(os.stat(os.path.join(etc, entry)).st_ino), entry
    if 'NetworkManager' in expected:
        connections = os.path.join(etc, 'NetworkManager', 'system-connections')
        assert os.stat(connections).st_mode & 0o777 == 0o700
        with open(os.path.join(connections, 'probe.nmconnection'), 'w') as handle:
            handle.write('[connection]\nid=probe\n')
        inside = roce_lab.ns_exec(host, 'ls', '/etc/NetworkManager/system-connections').split()
        assert inside == ['probe.nmconnection']
    if 'sysctl.d' in expected:
        with open(os.path.join(etc, 'sysctl.d', '99-probe-%s.conf' % host), 'w') as handle:
            handle.write('net.ipv4.conf.all.arp_ignore = 1\n')
        assert roce_lab.ns_exec(host, 'ls', '/etc/sysctl.d').split() == ['99-probe-%s.conf' % host]
        assert not os.path.exists('/etc/sysctl.d/99-probe-%s.conf' % host)


def test_destroy_is_complete_and_idempotent():
    name = PREFIX + 'd'
    desc = roce_lab.create_host(name, 'shared', 2, sources=1, mtu=9000, broken=False)
    try:
        assert set(desc['namespaces']) <= set(roce_lab.netns_list())
        assert roce_lab.ip_json(name, 'link', 'show', 'ib1')[0]['mtu'] == 9000
        assert roce_lab.ip(name, 'route', 'show', 'default') == ''          # --no-broken: no default route
        assert roce_lab.read_sysctl(name, 'net.ipv4.conf.all.rp_filter') == 0
    finally:
        assert sorted(roce_lab.destroy_host(name)) == sorted(desc['namespaces'])
    assert_gone(name)
    assert roce_lab.destroy_host(name) == []


def test_failed_create_leaves_nothing(make_host, monkeypatch):
    # A route the kernel refuses, late in the build: everything made before must go.
    monkeypatch.setattr(roce_lab, '_peer_route_commands', lambda desc: ['route add 10.0.1.0/24 via 192.0.2.1'])
    with pytest.raises(roce_lab.LabError, match=r'creating lab host %sf failed at step "routes in' % PREFIX):
        make_host('f', 'textbook', 2)
    assert_gone(PREFIX + 'f')
    monkeypatch.undo()

    # A name in use is refused before anything is touched; the existing host survives.
    desc = make_host('g', 'textbook', 1)
    with pytest.raises(roce_lab.LabError, match='already exist'):
        roce_lab.create_host(desc['host'], 'textbook', 1)
    assert roce_lab.prove(desc['host'])[0]['ok']


def test_destroy_stale_removes_only_hosts_of_dead_owners():
    dead = subprocess.Popen(['true'])
    dead.wait()
    stale, live = PREFIX + 'x', PREFIX + 'y'
    try:
        roce_lab.create_host(stale, 'textbook', 1, owner_pid=dead.pid)
        roce_lab.create_host(live, 'textbook', 1, owner_pid=os.getpid())
        assert stale in roce_lab.destroy_stale()
        assert_gone(stale)
        assert live in roce_lab.netns_list()
        assert roce_lab.destroy_stale(prefix=live) == [live]
        assert_gone(live)
    finally:
        roce_lab.destroy_host(stale)
        roce_lab.destroy_host(live)


def test_cli_with_plain_python3():
    python = shutil.which('python3') or sys.executable
    name = PREFIX + 'c'

    def cli(*args):
        return subprocess.run([python, LAB_PY] + list(args), capture_output=True, text=True, check=False)

    try:
        created = cli('create', name, '--layout', 'textbook', '--rails', '2', '--sources', '1', '--json')
        assert created.returncode == 0, created.stderr
        desc = json.loads(created.stdout)
        assert desc['host'] == name and desc['peer'] == '10.0.99.99'
        assert [r['sources'] for r in desc['rails']] == [['10.0.1.40'], ['10.0.2.40']]
        table = cli('prove', name)
        assert table.returncode == 1 and '2/4 sources ok' in table.stdout, table.stdout
        shown = json.loads(cli('show', name, '--inventory').stdout)
        assert shown['source_routing_rails'][0]['address'] == '10.0.1.14/24'
        fix_by_hand(desc)
        proof = cli('prove', name, '--json')
        assert proof.returncode == 0, proof.stdout
        assert [r['source'] for r in json.loads(proof.stdout)] == ['10.0.1.14', '10.0.1.40', '10.0.2.14', '10.0.2.40']
        again = cli('create', name, '--layout', 'textbook', '--rails', '1')
        assert again.returncode == 2 and 'already exist' in again.stderr
    finally:
        assert cli('destroy', name).returncode == 0
    assert_gone(name)
    assert cli('destroy', name).returncode == 0
