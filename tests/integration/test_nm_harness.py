"""The lab NetworkManager harness (tests/lab/nm.py) and what NetworkManager 1.42 does with a rail keyfile.

Every test gets its own lab: a host namespace with veth NICs ib0/ib1 whose peers (the gateways
10.0.1.1 and 10.0.2.1) sit in a leaf namespace, IPv6 off, and a private
/etc/netns/HOST/NetworkManager. NetworkManager is stopped and everything is deleted afterwards even
when a test fails. The facts pinned here are written up in docs/networkmanager-keyfiles.md.
No traffic is sent.
"""

import itertools
import os
import subprocess
import sys
import time

import pytest

from lab import nm, system

NM_PY = nm.__file__

PREFIX = 'rmnm%d' % os.getpid()
_counter = itertools.count()

UUID = '5a8a3f38-8f2e-4a86-9a1a-2d4c3bb1d101'

# One rail as rail_keyfiles writes it (every route with an explicit metric).
RAIL_IB0 = """\
[connection]
id=rail-ib0
uuid={uuid}
type=ethernet
interface-name=ib0
autoconnect={autoconnect}

[ethernet]
mtu=4200

[ipv4]
method=manual
address1=10.0.1.14/24
never-default=true
route1=10.0.1.0/24,0.0.0.0,100
route1_options=table=101,src=10.0.1.14
route2=0.0.0.0/0,10.0.1.1,100
route2_options=table=101
route3=10.0.99.0/24,10.0.1.1,100
route3_options=table=101,onlink=true
routing-rule1=priority 1001 from 10.0.1.14 table 101
routing-rule2=priority 1001 from 10.0.1.32/29 table 101
routing-rule3=priority 1001 from 10.0.1.40/32 table 101

[ipv6]
method=disabled
"""

# The same profile with only the address: the rail NIC before the role ran.
ADDRESS_ONLY = """\
[connection]
id=rail-ib0
uuid={uuid}
type=ethernet
interface-name=ib0
autoconnect=false

[ethernet]
mtu=4200

[ipv4]
method=manual
address1=10.0.1.14/24
never-default=true

[ipv6]
method=disabled
""".format(uuid=UUID)


def rail_keyfile(autoconnect=False):
    return RAIL_IB0.format(uuid=UUID, autoconnect='true' if autoconnect else 'false')


# What the kernel shows once NetworkManager activated RAIL_IB0 (trailing blanks stripped).
RULES = ['0:\tfrom all lookup local',
         '1001:\tfrom 10.0.1.14 lookup 101 proto static',
         '1001:\tfrom 10.0.1.32/29 lookup 101 proto static',
         '1001:\tfrom 10.0.1.40 lookup 101 proto static',
         '32766:\tfrom all lookup main',
         '32767:\tfrom all lookup default']
TABLE_101 = ['default via 10.0.1.1 dev ib0 proto static metric 100',
             '10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100',
             '10.0.99.0/24 via 10.0.1.1 dev ib0 proto static metric 100 onlink']
MAIN = ['10.0.1.0/24 dev ib0 proto kernel scope link src 10.0.1.14 metric 100']
ADDRESS = 'inet 10.0.1.14/24 brd 10.0.1.255 scope global noprefixroute ib0'
# What `nmcli --offline connection modify < RAIL_IB0` prints: NetworkManager's normalization.
NORMALIZED = """\
[connection]
id=rail-ib0
uuid={uuid}
type=ethernet
autoconnect=false
interface-name=ib0

[ethernet]
mtu=4200

[ipv4]
address1=10.0.1.14/24
method=manual
never-default=true
route1=10.0.1.0/24,0.0.0.0,100
route1_options=src=10.0.1.14,table=101
route2=0.0.0.0/0,10.0.1.1,100
route2_options=table=101
route3=10.0.99.0/24,10.0.1.1,100
route3_options=onlink=true,table=101
routing-rule1=priority 1001 from 10.0.1.14 table 101
routing-rule2=priority 1001 from 10.0.1.32/29 table 101
routing-rule3=priority 1001 from 10.0.1.40 table 101

[ipv6]
method=disabled

[proxy]
""".format(uuid=UUID)
EMPTY_RULES = ['0:\tfrom all lookup local', '32766:\tfrom all lookup main', '32767:\tfrom all lookup default']


def sh(*argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d): %s' % (' '.join(argv), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def lines(text):
    return [line.rstrip() for line in text.splitlines() if line.strip()]


class Lab:
    """Host namespace with ib0/ib1 (veth) whose peers ib0p/ib1p live in a leaf namespace."""

    def __init__(self):
        n = next(_counter)
        self.host = '%s-%d' % (PREFIX, n)
        self.leaf = '%s-%dl' % (PREFIX, n)
        for name in (self.host, self.leaf):
            sh('ip', 'netns', 'add', name)
            sh('ip', 'netns', 'exec', name, 'sysctl', '-q', '-w',
               'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1')
            sh('ip', '-n', name, 'link', 'set', 'lo', 'up')
        for i in (0, 1):
            sh('ip', '-n', self.host, 'link', 'add', 'ib%d' % i, 'type', 'veth',
               'peer', 'name', 'ib%dp' % i, 'netns', self.leaf)
            sh('ip', '-n', self.leaf, 'addr', 'add', '10.0.%d.1/24' % (i + 1), 'dev', 'ib%dp' % i)
            sh('ip', '-n', self.leaf, 'link', 'set', 'ib%dp' % i, 'up')
        self.keyfiles = nm.prepare_etc(self.host)

    def close(self):
        try:
            nm.stop(self.host)
        finally:
            for name in (self.host, self.leaf):
                sh('ip', 'netns', 'del', name, check=False)
            nm.remove_etc(self.host)

    # --- NetworkManager ---
    def start(self, *managed):
        nm.start(self.host, managed=managed)

    def nmcli(self, *args):
        return nm.nmcli(self.host, *args)

    def keyfile(self, text, name='rail-ib0', **kw):
        return nm.write_keyfile(self.host, name, text, **kw)

    def connections(self):
        return sorted(lines(self.nmcli('-t', '-f', 'NAME', 'connection', 'show')))

    # --- kernel ---
    def ip(self, *argv, check=True):
        return sh('ip', '-n', self.host, *argv, check=check)

    def rules(self):
        return lines(self.ip('-4', 'rule', 'show'))

    def table(self, table):
        return lines(self.ip('-4', 'route', 'show', 'table', str(table)))

    def address(self, dev='ib0'):
        return [line.strip() for line in lines(self.ip('-4', 'addr', 'show', 'dev', dev))
                if line.strip().startswith('inet ')]

    def mtu(self, dev='ib0'):
        return int(self.ip('-o', 'link', 'show', 'dev', dev).split(' mtu ')[1].split()[0])

    def dump(self):
        """Rules, every IPv4 table except local, ib0's addresses and MTU, for exact comparison."""
        routes = [line for line in lines(self.ip('-4', 'route', 'show', 'table', 'all'))
                  if 'table local' not in line]
        return '\n'.join(self.rules() + routes + self.address() + ['mtu %d' % self.mtu()])

    def hand(self, metric=100, address=True, rules=True):
        """The rail's live state made by hand, the way rail_table/rail_rule make it (proto static)."""
        if address:
            self.ip('addr', 'add', '10.0.1.14/24', 'dev', 'ib0')
        self.ip('link', 'set', 'ib0', 'mtu', '4200')
        self.ip('link', 'set', 'ib0', 'up')
        m = str(metric)
        self.ip('route', 'replace', '10.0.1.0/24', 'dev', 'ib0', 'table', '101', 'proto', 'static',
                'scope', 'link', 'src', '10.0.1.14', 'metric', m)
        self.ip('route', 'replace', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101',
                'proto', 'static', 'metric', m)
        self.ip('route', 'replace', '10.0.99.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101',
                'proto', 'static', 'metric', m, 'onlink')
        if rules:
            for src in ('10.0.1.14', '10.0.1.32/29', '10.0.1.40'):
                self.ip('rule', 'add', 'priority', '1001', 'from', src, 'table', '101', 'proto', 'static')

    def flush(self):
        """A host that lost its rail config: no address, no rail rules, empty table 101."""
        self.ip('addr', 'flush', 'dev', 'ib0')
        self.ip('route', 'flush', 'table', '101')
        for src in ('10.0.1.14', '10.0.1.32/29', '10.0.1.40'):
            self.ip('rule', 'del', 'priority', '1001', 'from', src, 'table', '101', check=False)


def wait_for(check, timeout=5.0):
    """Wait until check() is true (NetworkManager commits asynchronously); return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def settle(lab, want, timeout=5.0):
    """Wait until lab.dump() equals `want` (NetworkManager commits asynchronously); return the dump."""
    deadline = time.monotonic() + timeout
    while True:
        got = lab.dump()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def cleanup_stale():
    """Labs a killed earlier run left behind (their pytest pid is gone)."""
    for line in sh('ip', 'netns', 'list').splitlines():
        name = line.split()[0] if line.strip() else ''
        if name.startswith('rmnm') and '-' in name:
            owner = name[4:].split('-')[0]
            if owner.isdigit() and not os.path.exists('/proc/%s' % owner):
                try:
                    nm.stop(name)
                finally:
                    sh('ip', 'netns', 'del', name, check=False)
                    nm.remove_etc(name)


cleanup_stale()


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        # Shown by pytest only when the test failed.
        print('--- NetworkManager log of %s ---\n%s' % (lab.host, nm.log(lab.host)[-6000:]))
        lab.close()


def documented(lab):
    return lab.rules() == RULES and lab.table(101) == TABLE_101 and lab.address() == [ADDRESS]


def active(lab):
    """Activate RAIL_IB0 on a freshly managed ib0 and wait for the documented state."""
    lab.keyfile(rail_keyfile())
    lab.start('ib0')
    nm.up(lab.host, 'rail-ib0')
    assert wait_for(lambda: documented(lab))


# --- the harness -------------------------------------------------------------------

def nm_processes(lab):
    return [system.display(p).split()[0] for p in nm.tree_pids(lab.host)]


def untouched_state(lab):
    """Everything NetworkManager could change on devices it was not handed."""
    return (lab.ip('-d', 'link', 'show') + lab.ip('addr') + lab.ip('rule') + lab.ip('route', 'show', 'table', 'all')
            + sh('ip', 'netns', 'exec', lab.host, 'sysctl', 'net.ipv4.conf', 'net.ipv6.conf'))


def test_start_stop_leaves_no_processes(lab):
    mounts = sh('cat', '/proc/self/mountinfo')
    before = untouched_state(lab)
    lab.start()
    root = nm.pid(lab.host)
    assert sorted(nm_processes(lab)) == ['NetworkManager', 'dbus-daemon', 'sh']
    assert 'running' in nm.status(lab.host)
    assert lines(lab.nmcli('-t', '-f', 'DEVICE,STATE', 'device', 'status')) == [
        'ib0:unmanaged', 'ib1:unmanaged', 'lo:unmanaged']
    assert 'NetworkManager (version 1.' in nm.log(lab.host)
    # The private /run, /sys and /var/lib/NetworkManager mounts stay in the private namespace.
    assert sh('cat', '/proc/self/mountinfo') == mounts
    with pytest.raises(nm.NMError, match='already runs'):
        nm.start(lab.host)
    time.sleep(0.5)
    assert untouched_state(lab) == before, 'NetworkManager changed devices nobody handed it'
    nm.stop(lab.host)
    assert nm.pid(lab.host) is None and nm.tree_pids(lab.host) == []
    assert not os.path.exists('/proc/%d' % root), 'tree root left as a zombie'
    assert not os.path.exists(nm.state_dir(lab.host))
    nm.stop(lab.host)  # idempotent
    with pytest.raises(nm.NMError, match='not running'):
        lab.nmcli('general')


def test_two_hosts_each_reach_their_own_networkmanager(lab):
    other = Lab()
    try:
        lab.start('ib0')
        other.start()
        assert 'ib0:unavailable' in lines(lab.nmcli('-t', '-f', 'DEVICE,STATE', 'device'))
        assert 'ib0:unmanaged' in lines(other.nmcli('-t', '-f', 'DEVICE,STATE', 'device'))
    finally:
        other.close()
    assert nm.tree_pids(other.host) == [] and nm.pid(lab.host) is not None


def test_processes_of_the_namespace_reach_it_through_bus_address(lab):
    """`ip netns exec HOST` (the netns connection) sees the machine's /run, not the private one."""
    other = Lab()
    try:
        lab.start('ib0')
        other.start()

        def states(host, address):
            env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address)
            proc = subprocess.run(['ip', 'netns', 'exec', host, 'nmcli', '-t', '-f', 'DEVICE,STATE', 'device'],
                                  capture_output=True, text=True, env=env, check=False)
            return proc.returncode, lines(proc.stdout)

        assert states(lab.host, nm.bus_address(lab.host)) == (0, ['ib0:unavailable', 'ib1:unmanaged', 'lo:unmanaged'])
        assert states(other.host, nm.bus_address(other.host)) == (0, ['ib0:unmanaged', 'ib1:unmanaged', 'lo:unmanaged'])
        nm.stop(other.host)
        assert states(other.host, nm.bus_address(other.host))[0] != 0, 'a stopped NetworkManager still answers'
    finally:
        other.close()
    assert nm.pid(lab.host) is not None


def test_start_refuses_the_machines_etc(lab):
    nm.remove_etc(lab.host)
    with pytest.raises(nm.NMError, match='prepare_etc'):
        nm.start(lab.host)
    with pytest.raises(nm.NMError, match='no network namespace'):
        nm.start(lab.host + '-missing')


def test_start_failure_raises_with_the_log(lab):
    with pytest.raises(nm.NMError) as err:
        nm.start(lab.host, log_level='BOGUS', timeout=10)
    assert "Unknown log level 'BOGUS'" in str(err.value)
    assert nm.tree_pids(lab.host) == [] and nm.pid(lab.host) is None


def test_cli(lab):
    cli = [sys.executable, NM_PY]
    assert sh(*cli, 'start', lab.host, 'ib0').strip().isdigit()
    try:
        assert 'running' in sh(*cli, 'status', lab.host)
        assert 'ib0:unavailable' in lines(sh(*cli, 'nmcli', lab.host, '-t', '-f', 'DEVICE,STATE', 'device'))
        assert 'NetworkManager' in sh(*cli, 'log', lab.host)
        proc = subprocess.run(cli + ['nmcli', lab.host, 'connection', 'up', 'id', 'nosuch'],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and 'nosuch' in proc.stderr
    finally:
        sh(*cli, 'stop', lab.host)
    assert nm.tree_pids(lab.host) == []
    assert subprocess.run(cli + ['status', lab.host], capture_output=True, check=False).returncode == 3


# --- what NetworkManager 1.42 does with a rail keyfile ----------------------------------

def test_keyfile_activates_as_documented(lab):
    lab.keyfile(rail_keyfile())
    lab.start('ib0')
    assert lab.connections() == ['rail-ib0']
    nm.up(lab.host, 'rail-ib0')
    wait_for(lambda: documented(lab))
    assert lab.rules() == RULES
    assert lab.table(101) == TABLE_101
    assert lab.table('main') == MAIN
    assert lab.address() == [ADDRESS]
    assert lab.mtu() == 4200
    # Every route and rule is in NetworkManager's view of the profile, renumbered and normalized.
    assert lab.nmcli('-g', 'ipv4.routes', 'connection', 'show', 'rail-ib0').strip() == (
        '10.0.1.0/24 100 src=10.0.1.14 table=101, 0.0.0.0/0 10.0.1.1 100 table=101, '
        '10.0.99.0/24 10.0.1.1 100 onlink=true table=101')


def test_routes_without_metric_get_the_device_metric(lab):
    """Why every route needs an explicit metric: NetworkManager's pick depends on activation order."""
    for n in (1, 2):
        lab.keyfile('[connection]\nid=rail-ib%d\nuuid=5a8a3f38-8f2e-4a86-9a1a-2d4c3bb1d10%d\ntype=ethernet\n'
                    'interface-name=ib%d\nautoconnect=false\n\n[ipv4]\nmethod=manual\naddress1=10.0.%d.14/24\n'
                    'route1=0.0.0.0/0,10.0.%d.1\nroute1_options=table=10%d\n\n[ipv6]\nmethod=disabled\n'
                    % (n - 1, n, n - 1, n, n, n), name='rail-ib%d' % (n - 1))
    lab.start('ib0', 'ib1')
    nm.up(lab.host, 'rail-ib0')
    nm.up(lab.host, 'rail-ib1')
    assert lab.table(101) == ['default via 10.0.1.1 dev ib0 proto static metric 100']
    assert lab.table(102) == ['default via 10.0.2.1 dev ib1 proto static metric 101']


@pytest.mark.parametrize('before', ['profile-active', 'externally-configured', 'before-managed'])
def test_identical_live_state_is_left_identical(lab, before):
    """(a) Rules and routes the live apply made (proto static, same metric): no duplicates, no change."""
    if before == 'profile-active':
        # The rail's address-only profile is up; the live apply adds the rail's routes and rules.
        lab.keyfile(ADDRESS_ONLY)
        lab.start('ib0')
        nm.up(lab.host, 'rail-ib0')
        lab.hand(address=False)
    elif before == 'externally-configured':
        # Everything (address too) configured by hand on a managed device without profile.
        lab.start('ib0')
        lab.hand()
    else:
        # Everything configured by hand before NetworkManager gets the device.
        lab.start()
        lab.hand()
        nm.manage(lab.host, 'ib0')
    time.sleep(0.3)
    live = lab.dump()
    lab.keyfile(rail_keyfile())
    nm.reload(lab.host)
    nm.up(lab.host, 'rail-ib0')
    after = settle(lab, live, timeout=1)
    assert lab.rules() == RULES
    assert lab.table(101) == TABLE_101
    if before == 'profile-active':
        assert after == live
    elif before == 'before-managed':
        # The address is left as it was; NM adds its prefix route next to the kernel's.
        assert sorted(after.splitlines()) == sorted(live.splitlines() + MAIN)
    else:
        # Only the address changes: NM re-adds it with noprefixroute and puts its own prefix route
        # (metric 100) in place of the kernel's (metric 0).
        assert after == live.replace('inet 10.0.1.14/24 scope global ib0', ADDRESS).replace(
            '10.0.1.0/24 dev ib0 proto kernel scope link src 10.0.1.14\n', MAIN[0] + '\n')


def test_live_rule_without_proto_static_gets_a_duplicate(lab):
    """Only `proto static` live rules match NM's; live routes without it are replaced in place."""
    lab.start('ib0')
    lab.ip('addr', 'add', '10.0.1.14/24', 'dev', 'ib0')
    lab.ip('link', 'set', 'ib0', 'up')
    lab.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'metric', '100')
    lab.ip('rule', 'add', 'priority', '1001', 'from', '10.0.1.14', 'table', '101')
    lab.keyfile(rail_keyfile())
    nm.reload(lab.host)
    nm.up(lab.host, 'rail-ib0')
    assert lab.rules() == RULES[:1] + ['1001:\tfrom 10.0.1.14 lookup 101'] + RULES[1:]
    assert lab.table(101) == TABLE_101


def test_live_routes_with_another_metric_are_replaced_on_up(lab):
    """(b) `connection up` removes the metric-10 routes and adds its own metric-100 ones."""
    lab.keyfile(ADDRESS_ONLY)
    lab.start('ib0')
    nm.up(lab.host, 'rail-ib0')
    lab.hand(metric=10, address=False)
    lab.keyfile(rail_keyfile())
    nm.reload(lab.host)
    nm.up(lab.host, 'rail-ib0')
    assert lab.table(101) == TABLE_101
    assert lab.rules() == RULES


def test_reapply_adds_next_to_routes_with_another_metric(lab):
    """(b) `device reapply` keeps foreign routes in other tables: both metrics end up in table 101."""
    lab.keyfile(ADDRESS_ONLY)
    lab.start('ib0')
    nm.up(lab.host, 'rail-ib0')
    lab.hand(metric=10, address=False)
    lab.keyfile(rail_keyfile())
    nm.reload(lab.host)
    lab.nmcli('device', 'reapply', 'ib0')
    assert sorted(lab.table(101)) == sorted(TABLE_101 + [r.replace('metric 100', 'metric 10') for r in TABLE_101])


def test_flushed_host_is_restored_from_the_keyfile(lab):
    """(c) Address, rules and table routes come back from the keyfile alone."""
    active(lab)
    good = lab.dump()
    lab.flush()
    time.sleep(0.5)
    assert lab.rules() == EMPTY_RULES and lab.table(101) == []  # NM does not restore by itself
    lab.nmcli('device', 'reapply', 'ib0')
    assert settle(lab, good) == good
    lab.flush()
    nm.up(lab.host, 'rail-ib0')
    assert settle(lab, good) == good
    # A fresh NetworkManager with an autoconnect profile: handing it the device is enough.
    lab.flush()
    nm.stop(lab.host)
    lab.keyfile(rail_keyfile(autoconnect=True))
    lab.start('ib0')
    assert settle(lab, good, timeout=10) == good


def test_down_removes_what_networkmanager_added(lab):
    """(d) Down removes NM's rules, every route through the NIC and the address; restores the MTU."""
    active(lab)
    lab.ip('rule', 'add', 'priority', '1002', 'from', '10.0.1.99', 'table', '101', 'proto', 'static')
    lab.ip('route', 'add', '10.0.78.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '102',
           'proto', 'static', 'metric', '100')
    nm.down(lab.host, 'rail-ib0')
    assert lab.rules() == EMPTY_RULES[:1] + ['1002:\tfrom 10.0.1.99 lookup 101 proto static'] + EMPTY_RULES[1:]
    assert lab.table(101) == [] and lab.table(102) == [] and lab.table('main') == []
    assert lab.address() == [] and lab.mtu() == 1500
    assert 'state UP' in lab.ip('link', 'show', 'dev', 'ib0')


def test_down_keeps_rules_that_existed_before_activation(lab):
    """(d) Rules NM found already present are not NM's: they survive `connection down`."""
    lab.start('ib0')
    lab.hand()
    lab.keyfile(rail_keyfile())
    nm.reload(lab.host)
    nm.up(lab.host, 'rail-ib0')
    nm.down(lab.host, 'rail-ib0')
    assert lab.rules() == RULES
    assert lab.table(101) == [] and lab.address() == []


def test_deleting_the_active_keyfile_deconfigures_the_nic(lab):
    """Removing the keyfile of the active profile and reloading deactivates it: all of it is gone."""
    active(lab)
    os.unlink(os.path.join(lab.keyfiles, 'rail-ib0.nmconnection'))
    nm.reload(lab.host)
    assert wait_for(lambda: lab.rules() == EMPTY_RULES and lab.address() == [])
    assert lab.table(101) == [] and lab.table('main') == []


def test_keyfile_permissions(lab):
    """(e) Only keyfiles owned by root with no group/other permission bits are loaded."""
    cases = {'mode0644': dict(mode=0o644), 'mode0640': dict(mode=0o640), 'uid1000': dict(uid=1000),
             'gid1000': dict(gid=1000), 'mode0400': dict(mode=0o400), 'mode0600': {}}
    lab.start()
    for i, (name, perms) in enumerate(sorted(cases.items())):
        text = rail_keyfile().replace('id=rail-ib0', 'id=' + name).replace(UUID, UUID[:-2] + '%02d' % i)
        lab.keyfile(text, name=name, **perms)
    nm.reload(lab.host)
    assert lab.connections() == ['gid1000', 'mode0400', 'mode0600']
    log = nm.log(lab.host)
    assert 'uid1000.nmconnection": failed to load connection: File owner (1000) is insecure' in log
    assert 'mode0644.nmconnection": failed to load connection: File permissions (100644) are insecure' in log
    assert 'mode0640.nmconnection": failed to load connection: File permissions (100640) are insecure' in log


def test_keyfile_is_not_reloaded_by_itself(lab):
    lab.start()
    lab.keyfile(rail_keyfile())
    time.sleep(0.5)
    assert lab.connections() == []
    nm.reload(lab.host)
    assert lab.connections() == ['rail-ib0']


# --- offline validation (no daemon) ----------------------------------------------------

def test_offline_check_accepts_a_good_keyfile(tmp_path):
    path = tmp_path / 'rail-ib0.nmconnection'
    path.write_text(rail_keyfile())
    assert nm.offline_check(str(path)) == NORMALIZED
    # Default values are left out of the output but are not errors.
    path.write_text(rail_keyfile(autoconnect=True))
    assert nm.offline_check(str(path)) == NORMALIZED.replace('autoconnect=false\n', '')


def test_route_without_gateway_syntax(tmp_path):
    """`dest,,metric` and `dest,0.0.0.0,metric` are the same route; `dest,metric` is no route at all."""
    path = tmp_path / 'k.nmconnection'
    path.write_text(rail_keyfile().replace('route1=10.0.1.0/24,0.0.0.0,100', 'route1=10.0.1.0/24,,100'))
    assert nm.offline_check(str(path)) == NORMALIZED
    path.write_text(rail_keyfile().replace('route1=10.0.1.0/24,0.0.0.0,100', 'route1=10.0.1.0/24,100'))
    out = nm.offline_check(str(path), strict=False)  # exit status 0: the route is silently dropped
    assert [line for line in out.splitlines() if line.startswith('route') and '10.0.1.0/24' in line] == []
    with pytest.raises(nm.NMError, match=r'ignore ipv4\.route1=10\.0\.1\.0/24,100'):
        nm.offline_check(str(path))


@pytest.mark.parametrize('change, error', [
    (('method=manual', 'method=bogus'), 'ipv4.method: property is invalid'),
    (('method=manual\n', ''), 'ipv4.method: property is missing'),
    (('type=ethernet', 'type=bogus'), "connection type 'bogus' is not valid"),
    (('address1=10.0.1.14/24', 'address1=10.0.1.300/24'), "cannot be empty for 'method=manual'"),
    (('[ipv4]', 'garbage\n[ipv4]'), 'not a key-value pair'),
    (('priority 1001 from 10.0.1.32/29', 'from 10.0.1.32/29'), r'ignore ipv4\.routing-rule2=from 10\.0\.1\.32/29'),
    (('table=101,onlink=true', 'table=101,onlink=maybe'), 'option onlink=maybe; .*option table=101'),
    (('never-default=true', 'never_default=true'), r'ignore ipv4\.never_default=true'),
])
def test_offline_check_rejects_a_bad_keyfile(tmp_path, change, error):
    path = tmp_path / 'bad.nmconnection'
    text = rail_keyfile()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(nm.NMError, match=error):
        nm.offline_check(str(path))
