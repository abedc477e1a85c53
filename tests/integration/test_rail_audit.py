"""rail_audit on a real lab host: every finding, produced by breaking a converged host exactly that way.

One textbook lab host with three rails (tests/lab/roce_lab.py) serves the whole file. It is converged
once, as the source_routing role applies it live: rail_table, rail_rule and rail_sysctl run inside it
with the plan of its inventory (plan.build_plan). Each test breaks it in one way, runs rail_audit
inside it as Ansible would (a Python process reading ANSIBLE_MODULE_ARGS under `ip netns exec`),
checks the finding (check, device, severity, the words that matter) and that the audit changed
nothing: rules, every table, addresses, links, net.ipv4.conf and the host's private sysctl.d are
dumped before and after every audit and must be identical. Then the `host` fixture undoes the
breakage, converges again and proves the host is back to the converged state byte for byte; if it is
not, the host is rebuilt for the next test and the test errors.

Traffic (the gateway and martians cases) goes only from the lab host to its own leaves and peer.
"""

import difflib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.audit import CHECKS, DEFAULT_TARGET, OUR_SYSCTL_FILE
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan
from collection_path import COLLECTIONS
from lab import roce_lab
from nslab import PYTHON

NAME = 'ra%d' % (os.getpid() % 100000)
RAILS = ['ib0', 'ib1', 'ib2']
MODULE = 'ansible_collections.roce.multirail.plugins.modules.'


# --- running modules inside a lab host -------------------------------------------------------------

def start_module(host, name, args, setup=None):
    """Start roce.multirail.<name> inside lab host `host`, as Ansible runs a module; finish() reads its result.

    setup: shell lines run first in a private mount namespace of the module's own (mounts made there
    are seen by the module only, never by the machine or by other processes in the lab host).
    """
    payload = dict(args, _ansible_check_mode=False, _ansible_diff=False)
    command = [PYTHON, '-m', MODULE + name]
    if setup:
        command = ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec', setup + '\nexec "$@"', 'sh'] + command
    proc = subprocess.Popen(['ip', 'netns', 'exec', host] + command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS))
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': payload}))
    proc.stdin.close()
    proc.stdin = None     # written and closed: communicate() only reads
    return name, proc


def finish(started):
    name, proc = started
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    try:
        return json.loads(stdout)
    except ValueError:
        raise AssertionError('module %s printed no JSON (rc %d):\nstdout: %s\nstderr: %s'
                             % (name, proc.returncode, stdout, stderr))


def run_module(host, name, args, setup=None):
    """Run roce.multirail.<name> inside lab host `host`; return its JSON result."""
    return finish(start_module(host, name, args, setup))


def diff(before, after):
    parts = []
    for key in before:
        old, new = before[key], after.get(key)
        if old != new:
            if isinstance(old, dict):
                old, new = json.dumps(old, indent=1, sort_keys=True), json.dumps(new, indent=1, sort_keys=True)
            parts.append('--- %s\n%s' % (key, '\n'.join(difflib.unified_diff(
                old.splitlines(), new.splitlines(), 'before', 'after', lineterm=''))))
    return '\n'.join(parts)


class Lab:
    """The lab host, its plan and its converged state."""

    def __init__(self, name):
        self.name = name
        self.description = self.plan = self.converged = None
        self.undo = []

    def build(self):
        roce_lab.destroy_host(self.name)       # a leftover of an earlier run whose pid this one reuses
        self.description = roce_lab.create_host(self.name, 'textbook', len(RAILS), owner_pid=os.getpid())
        assert 'sysctl.d' in self.description.get('private_etc', []), self.description
        self.plan = self.plan_for()
        self.converge()
        self.converged = self.dump()

    def plan_for(self, **options):
        return build_plan(roce_lab.inventory_vars(self.description)['source_routing_rails'],
                          destination=self.description['destination'], **options)

    def converge(self):
        """What the source_routing role applies live, with the same arguments.

        The three modules touch disjoint state (tables, rules, sysctls), so they run side by side.
        """
        started = [start_module(self.name, name, args) for name, args in (
            ('rail_table', {'tables': self.plan['tables'], 'purge': True}),
            ('rail_rule', {'rules': self.plan['rules'], 'priority_range': self.plan['priority_range'],
                           'purge': True, 'exclusive': True}),
            ('rail_sysctl', {'conf': self.plan['conf']}))]
        results = [(name, finish((name, proc))) for name, proc in started]
        for name, result in results:
            assert not result.get('failed'), '%s failed: %s' % (name, result.get('msg'))

    def sysctl_dir(self):
        return os.path.join(roce_lab.ETC_NETNS, self.name, 'sysctl.d')

    def dump(self):
        """Everything the audit could change, as text."""
        files = {}
        for entry in sorted(os.listdir(self.sysctl_dir())):
            with open(os.path.join(self.sysctl_dir(), entry)) as handle:
                files[entry] = handle.read()
        return {
            'ip -4 rule': self.ip('-4', 'rule'),
            'ip -4 route show table all': self.ip('-4', 'route', 'show', 'table', 'all'),
            'ip -4 -o addr': self.ip('-4', '-o', 'addr', 'show'),
            'ip -o link': self.ip('-o', 'link', 'show'),
            'sysctl net.ipv4.conf': roce_lab.ns_exec(self.name, 'sysctl', 'net.ipv4.conf'),
            'sysctl.d': files,
        }

    def ip(self, *argv):
        return roce_lab.ip(self.name, *argv)

    def leaf(self, rail, *argv):
        return roce_lab.ip(self.description['rails'][rail]['leaf'], *argv)

    def sysctl(self, **values):
        """sysctl(all__rp_filter=1, ib1__rp_filter=0): written in that order."""
        roce_lab.write_sysctls(self.name, dict(('net.ipv4.conf.%s.%s' % tuple(name.split('__')), value)
                                               for name, value in values.items()))

    def write_file(self, name, *lines):
        path = os.path.join(self.sysctl_dir(), name)
        self.undo.append(lambda: os.path.exists(path) and os.unlink(path))
        with open(path, 'w') as handle:
            handle.write('# written by test_rail_audit.py\n' + ''.join(line + '\n' for line in lines))

    def audit(self, setup=None, **args):
        """rail_audit (martian_interval 0, no boot check unless given), checked to change nothing on the host.

        The lab host is converged live only; what sets it up at boot is tested with real daemons in
        test_stacks.py.
        """
        args.setdefault('martian_interval', 0)
        args.setdefault('boot', False)
        before = self.dump()
        result = run_module(self.name, 'rail_audit', args, setup=setup)
        after = self.dump()
        assert before == after, 'rail_audit changed the host:\n' + diff(before, after)
        assert not result.get('failed'), 'rail_audit failed: %s' % result.get('msg')
        # kept_routes runs only when asked for.
        ran = [check for check in CHECKS if check != 'kept_routes' or 'kept_routes' in args]
        assert result['changed'] is False and result['checks'] == ran, result
        return result

    def repair(self):
        """Undo the test's breakage, converge, and compare with the converged dump; rebuild on any doubt."""
        problems = []
        for action in reversed(self.undo):
            try:
                action()
            except (roce_lab.LabError, OSError) as exc:
                problems.append('undo: %s' % exc)
        self.undo = []
        try:
            roce_lab.wait_links_up(self.description)
            now = self.dump()
            if now != self.converged:
                self.converge()
                now = self.dump()
        except (roce_lab.LabError, AssertionError) as exc:
            problems.append('converge: %s' % exc)
            now = None
        if now != self.converged:
            if now is not None:
                problems.append('the repaired host differs from the converged one:\n' + diff(self.converged, now))
            self.build()
        return problems


@pytest.fixture(scope='module')
def lab():
    made = Lab(NAME)
    try:
        made.build()
        yield made
    finally:
        roce_lab.destroy_host(NAME)


@pytest.fixture
def host(lab):
    """The converged lab host; repaired (or rebuilt) after the test."""
    yield lab
    problems = lab.repair()
    assert not problems, '\n'.join(problems)


# --- findings --------------------------------------------------------------------------------------

def finding(result, check, device, severity, *words):
    """The finding of `check` on `device` (None: the host) with `severity` whose message holds every word."""
    same = [f for f in result['findings'] if (f['check'], f['device'], f['severity']) == (check, device, severity)]
    assert same, 'no %s %s on %s in %s' % (severity, check, device, json.dumps(result['findings'], indent=1))
    for candidate in same:
        if all(word in candidate['message'] for word in words):
            return candidate
    raise AssertionError('no %s %s on %s says %r: %s' % (severity, check, device, words, json.dumps(same, indent=1)))


def on(result, device):
    return sorted((f['check'], f['severity']) for f in result['findings'] if f['device'] == device)


def ours(findings):
    """Findings that do not come from this machine's own sysctl.d files outside the lab host's private /etc."""
    return [f for f in findings if not (f['check'] == 'sysctl_files' and '/etc/sysctl.d/' not in f['message'])]


def rail_ip(host, rail):
    return roce_lab.rail_ip(host.description['rails'][rail])


# --- the healthy host ------------------------------------------------------------------------------

def test_healthy_host_has_no_findings(host):
    result = host.audit()
    assert ours(result['findings']) == []
    machine = len(result['findings'])
    assert result['summary'] == {'status': 'error' if machine else 'ok', 'errors': machine, 'warnings': 0,
                                 'infos': 0, 'rails': 3}
    assert (result['devices'], result['discovered']) == (RAILS, True)
    for position, rail in enumerate(result['rails']):
        ip, table = rail_ip(host, position), 101 + position
        assert (rail['device'], rail['addresses'], rail['state'], rail['carrier'], rail['table']) == (
            RAILS[position], [ip + '/24'], 'up', True, table)
        assert [(r['priority'], r['from'], r['table']) for r in rail['rules']] == [(1001 + position, ip + '/32', table)]
        assert rail['route_get'] == [{'source': ip, 'target': DEFAULT_TARGET, 'dev': RAILS[position], 'table': table,
                                      'ok': True}]
        assert sorted(rail['routes']) == sorted([
            'default via 10.0.%d.1 dev %s proto static metric 100' % (position + 1, RAILS[position]),
            '10.0.%d.0/24 dev %s proto static scope link src %s metric 100' % (position + 1, RAILS[position], ip)])
        assert {key: value['value'] for key, value in rail['sysctls'].items()} == {
            'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2, 'accept_local': 1}


def test_healthy_host_against_its_plan(host):
    result = host.audit(plan=host.plan)
    assert ours(result['findings']) == []
    assert (result['devices'], result['discovered']) == (RAILS, False)


def test_plan_wanting_other_priorities(host):
    result = host.audit(plan=host.plan_for(priority_base=2000))
    assert sorted((f['check'], f['device'], f['severity']) for f in ours(result['findings'])) == [
        ('rule', device, 'error') for device in RAILS]
    for position in range(3):
        finding(result, 'rule', RAILS[position], 'error', '%d:\tfrom 10.0.%d.14 lookup %d' % (
            1001 + position, position + 1, 101 + position), 'the plan wants priority %d and table %d' % (
            2001 + position, 101 + position))


def test_explicit_devices(host):
    result = host.audit(devices=['ib1', 'ib9'])
    assert (result['devices'], result['discovered']) == (['ib1', 'ib9'], False)
    assert [rail['device'] for rail in result['rails']] == ['ib1']
    finding(result, 'link', 'ib9', 'error', 'ib9 does not exist')
    assert [f for f in ours(result['findings']) if f['device'] != 'ib9'] == []


@pytest.mark.parametrize('args, words', [
    ({'pattern': '(ib'}, ['pattern', '(ib']),
    ({'martian_interval': 61}, ['martian_interval', '61']),
    ({'martian_interval': -1}, ['martian_interval', '-1']),
    ({'probe': True, 'probe_timeout': 0}, ['probe_timeout', '0']),
    ({'persisted_sysctl_file': '/etc/sysctl.d/x.conf'}, ['persisted_sysctl_file', 'needs plan']),
])
def test_bad_arguments_fail_cleanly(host, args, words):
    before = host.dump()
    result = run_module(host.name, 'rail_audit', args)
    assert result.get('failed'), result
    for word in words:
        assert word in result['msg'], result['msg']
    assert host.dump() == before


# --- rule, rule_order ------------------------------------------------------------------------------

def test_rule_missing(host):
    host.ip('rule', 'del', 'pref', '1002')
    result = host.audit()
    finding(result, 'rule', 'ib1', 'error', '10.0.2.14')
    finding(result, 'route_get', 'ib1', 'error', 'from 10.0.2.14', 'leaves through ib0, not ib1')
    assert on(result, 'ib1') == [('route_get', 'error'), ('rule', 'error')]
    assert on(result, 'ib0') == on(result, 'ib2') == []
    assert result['rails'][1]['table'] is None


def test_rule_after_main(host):
    host.undo.append(lambda: host.ip('rule', 'del', 'pref', '32800'))
    host.ip('rule', 'del', 'pref', '1002')
    host.ip('rule', 'add', 'pref', '32800', 'from', '10.0.2.14', 'lookup', '102')
    result = host.audit()
    finding(result, 'rule_order', 'ib1', 'error', '10.0.2.14', 'priority 32800')
    finding(result, 'route_get', 'ib1', 'error', 'leaves through ib0')
    assert on(result, 'ib0') == on(result, 'ib2') == []


def test_rule_shadowed_by_an_earlier_catch_all(host):
    host.undo.append(lambda: host.ip('route', 'flush', 'table', '200'))
    host.undo.append(lambda: host.ip('rule', 'del', 'pref', '500'))
    host.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '200')
    host.ip('rule', 'add', 'pref', '500', 'from', 'all', 'lookup', '200')
    result = host.audit()
    finding(result, 'rule_order', 'ib1', 'error', '500:\tfrom all lookup 200', '1002:\tfrom 10.0.2.14 lookup 102')
    finding(result, 'rule_order', 'ib2', 'error', '500:\tfrom all lookup 200')
    finding(result, 'route_get', 'ib1', 'error', 'leaves through ib0, not ib1', 'table 200')


# --- table -----------------------------------------------------------------------------------------

def test_table_flushed(host):
    host.ip('route', 'flush', 'table', '102')
    result = host.audit()
    finding(result, 'table', 'ib1', 'error', 'table 102', 'empty')
    finding(result, 'route_get', 'ib1', 'error', 'leaves through ib0')
    assert on(result, 'ib0') == on(result, 'ib2') == []


def test_table_route_through_another_nic(host):
    host.ip('route', 'add', '10.0.5.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '102')
    result = host.audit()
    finding(result, 'table', 'ib1', 'error', 'table 102', '10.0.5.0/24 via 10.0.1.1 dev ib0', 'through ib0, not ib1')
    assert on(result, 'ib1') == [('table', 'error')]


def test_table_without_a_route_to_the_fabric(host):
    host.ip('route', 'del', 'default', 'table', '102')
    result = host.audit()
    finding(result, 'table', 'ib1', 'error', 'table 102', 'no route via a gateway', DEFAULT_TARGET)
    finding(result, 'route_get', 'ib1', 'error', 'leaves through ib0')


# --- gateway ---------------------------------------------------------------------------------------

def test_gateway_not_answering_arp(host):
    host.undo.append(lambda: host.ip('neigh', 'flush', 'dev', 'ib1'))
    host.ip('route', 'replace', 'default', 'via', '10.0.2.77', 'dev', 'ib1', 'table', '102', 'metric', '100')
    # One packet from the rail: the kernel asks the leaf for 10.0.2.77, which nobody owns.
    roce_lab.ping(host.name, host.description['peer'], '10.0.2.14', count=1)
    state = host.ip('neigh', 'show', '10.0.2.77', 'dev', 'ib1').split()
    assert state and state[-1] in ('INCOMPLETE', 'FAILED'), state
    result = host.audit()
    message = finding(result, 'gateway', 'ib1', 'error', 'gateway 10.0.2.77', 'does not answer ARP on ib1')['message']
    assert 'neighbour state INCOMPLETE' in message or 'neighbour state FAILED' in message, message
    assert on(result, 'ib1') == [('gateway', 'error')]


def test_probe_of_healthy_gateways(host):
    result = host.audit(plan=host.plan, probe=True)
    assert ours(result['findings']) == []
    assert [rail['probe'] for rail in result['rails']] == [
        {'source': rail_ip(host, n), 'gateway': '10.0.%d.1' % (n + 1), 'error': ''} for n in range(3)]


def test_probe_of_a_gateway_that_is_gone(host):
    rail = host.description['rails'][1]
    leaf, port = rail['leaf'], 'to-' + rail['device']
    roce_lab.ip(leaf, 'addr', 'del', '10.0.2.1/24', 'dev', port)
    host.undo.append(lambda: roce_lab.ip(leaf, 'addr', 'add', '10.0.2.1/24', 'dev', port))
    host.undo.append(lambda: host.ip('neigh', 'flush', 'dev', 'ib1'))
    host.ip('neigh', 'flush', 'dev', 'ib1')
    result = host.audit(plan=host.plan, probe=True, probe_timeout=0.5)
    finding(result, 'gateway', 'ib1', 'error', 'gateway 10.0.2.1 is not reachable from 10.0.2.14 on ib1',
            'no echo reply within 0.5 s')
    assert on(result, 'ib1') == [('gateway', 'error')]
    assert result['rails'][0]['probe']['error'] == '' and result['rails'][2]['probe']['error'] == ''


def test_probe_of_a_gateway_that_drops_pings(host):
    leaf = host.description['rails'][1]['leaf']
    roce_lab.ns_exec(leaf, 'sysctl', '-q', '-w', 'net.ipv4.icmp_echo_ignore_all=1')
    host.undo.append(lambda: roce_lab.ns_exec(leaf, 'sysctl', '-q', '-w', 'net.ipv4.icmp_echo_ignore_all=0'))
    result = host.audit(plan=host.plan, probe=True, probe_timeout=0.5)
    # A gateway counts as alive only when it answers both ARP (afresh) and the echo.
    finding(result, 'gateway', 'ib1', 'error', 'answers ARP on ib1 but not a ping from 10.0.2.14')
    assert on(result, 'ib1') == [('gateway', 'error')]


def test_gateway_outside_the_rail_subnet(host):
    # The kernel takes a gateway outside the NIC's subnets when the table has a link route to it.
    host.ip('route', 'add', '10.0.9.0/24', 'dev', 'ib1', 'scope', 'link', 'table', '102')
    host.ip('route', 'replace', 'default', 'via', '10.0.9.1', 'dev', 'ib1', 'table', '102', 'metric', '100')
    result = host.audit()
    finding(result, 'gateway', 'ib1', 'error', 'gateway 10.0.9.1', 'table 102', 'none of', '10.0.2.14/24')
    assert on(result, 'ib1') == [('gateway', 'error')]


def test_onlink_gateway_outside_the_subnet_is_accepted(host):
    host.ip('route', 'replace', 'default', 'via', '10.0.9.1', 'dev', 'ib1', 'onlink', 'table', '102', 'metric', '100')
    result = host.audit()
    assert '10.0.9.1' in ' '.join(result['rails'][1]['routes'])
    assert ours(result['findings']) == []


# --- route_get -------------------------------------------------------------------------------------

def test_route_get_through_another_rails_table(host):
    host.undo.append(lambda: host.ip('rule', 'del', 'pref', '900'))
    host.ip('rule', 'add', 'pref', '900', 'from', '10.0.2.14', 'lookup', '101')
    result = host.audit()
    found = finding(result, 'route_get', 'ib1', 'error', 'from 10.0.2.14 to %s' % DEFAULT_TARGET,
                    'leaves through ib0, not ib1', 'table 101')
    assert '10.0.2.14' in found['hint']
    assert result['rails'][1]['route_get'][0]['ok'] is False


# --- arp, rp_filter, accept_local ------------------------------------------------------------------

def test_arp_ignore_0(host):
    host.sysctl(ib1__arp_ignore=0)
    result = host.audit()
    assert finding(result, 'arp', 'ib1', 'error', 'arp_ignore 0')['hint'].endswith('net.ipv4.conf.ib1.arp_ignore=1')
    assert on(result, 'ib1') == [('arp', 'error')] and on(result, 'ib0') == []


def test_arp_announce_1(host):
    host.sysctl(ib1__arp_announce=1)
    result = host.audit()
    finding(result, 'arp', 'ib1', 'warning', 'arp_announce 1')
    assert on(result, 'ib1') == [('arp', 'warning')]
    assert result['summary']['status'] in ('warning', 'error') and result['summary']['warnings'] == 1


def test_rp_filter_strict_on_the_rail(host):
    host.sysctl(all__rp_filter=0, ib1__rp_filter=1)
    result = host.audit()
    found = finding(result, 'rp_filter', 'ib1', 'error', 'rp_filter 1')
    assert 'net.ipv4.conf.all' not in found['message']
    assert 'net.ipv4.conf.ib1.rp_filter=2' in found['hint']
    assert on(result, 'ib1') == [('rp_filter', 'error')] and on(result, 'ib0') == on(result, 'ib2') == []


def test_rp_filter_strict_from_all(host):
    """A cloud image's all.rp_filter=1 over a rail left at 0: strict, and the message says where from."""
    host.sysctl(all__rp_filter=1, ib1__rp_filter=0)
    result = host.audit()
    finding(result, 'rp_filter', 'ib1', 'error', 'rp_filter 1', 'from net.ipv4.conf.all')
    # max(all, dev): the rails still at 2 filter loosely.
    assert on(result, 'ib0') == on(result, 'ib2') == []


def test_rp_filter_all_strict_over_loose_rails(host):
    """all.rp_filter=1 with the rails at 2 is loose filtering (max); test_martians shows the kernel agrees."""
    host.sysctl(all__rp_filter=1)
    result = host.audit()
    assert ours(result['findings']) == []
    assert [rail['sysctls']['rp_filter']['value'] for rail in result['rails']] == [2, 2, 2]


def test_accept_local_off(host):
    host.undo.append(lambda: host.sysctl(ib1__accept_local=0))       # the role leaves the rails' own at 0
    host.sysctl(all__accept_local=0, ib1__accept_local=1)
    result = host.audit()
    finding(result, 'accept_local', 'ib0', 'warning', 'ib0', 'accept_local 0')
    finding(result, 'accept_local', 'ib2', 'warning', 'ib2')
    assert on(result, 'ib1') == []      # all OR dev: ib1's own 1 is enough


# --- duplicate -------------------------------------------------------------------------------------

def test_duplicate_address(host):
    host.undo.append(lambda: host.ip('addr', 'del', '10.0.1.14/24', 'dev', 'ib1'))
    host.ip('addr', 'add', '10.0.1.14/24', 'dev', 'ib1')
    result = host.audit()
    finding(result, 'duplicate', 'ib0', 'error', 'address 10.0.1.14 is on ib0 and ib1')
    finding(result, 'duplicate', 'ib1', 'error', 'address 10.0.1.14 is on ib0 and ib1')
    assert on(result, 'ib2') == []


def test_duplicate_table(host):
    # rail_rule refuses to replace a rule it did not create on a priority it manages.
    host.undo.append(lambda: host.ip('rule', 'del', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '101'))
    host.ip('rule', 'del', 'pref', '1002')
    host.ip('rule', 'add', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '101')
    result = host.audit()
    finding(result, 'duplicate', 'ib0', 'error', 'table 101 serves ib0 and ib1')
    finding(result, 'duplicate', 'ib1', 'error', 'table 101 serves ib0 and ib1')
    finding(result, 'route_get', 'ib1', 'error', 'leaves through ib0')
    assert on(result, 'ib2') == []


# --- link, mtu -------------------------------------------------------------------------------------

def test_link_down(host):
    host.undo.append(lambda: host.ip('link', 'set', 'ib1', 'up'))
    host.ip('link', 'set', 'ib1', 'down')
    result = host.audit()
    finding(result, 'link', 'ib1', 'error', 'ib1 is administratively down')
    assert result['rails'][1]['state'] == 'down'
    assert on(result, 'ib0') == on(result, 'ib2') == []


def test_link_without_carrier(host):
    host.undo.append(lambda: host.leaf(1, 'link', 'set', 'to-ib1', 'up'))
    host.leaf(1, 'link', 'set', 'to-ib1', 'down')
    deadline = time.monotonic() + 5
    while 'NO-CARRIER' not in host.ip('link', 'show', 'ib1') and time.monotonic() < deadline:
        time.sleep(0.05)
    result = host.audit()
    finding(result, 'link', 'ib1', 'error', 'ib1 has no carrier')
    assert (result['rails'][1]['state'], result['rails'][1]['carrier']) == ('up', False)
    assert on(result, 'ib1') == [('link', 'error')]


def test_mtu_differs(host):
    host.undo.append(lambda: host.ip('link', 'set', 'ib1', 'mtu', '1500'))
    host.ip('link', 'set', 'ib1', 'mtu', '1400')
    result = host.audit()
    finding(result, 'mtu', 'ib1', 'warning', 'MTU 1400', 'the other rails 1500')
    assert on(result, 'ib1') == [('mtu', 'warning')] and on(result, 'ib0') == on(result, 'ib2') == []


# --- sysctl_files (the lab host's private /etc/sysctl.d) ------------------------------------------

def test_sysctl_file_after_ours(host):
    host.write_file(OUR_SYSCTL_FILE, *host.plan['sysctl_lines'])
    host.write_file('99-zzz-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1')
    result = host.audit()
    found = finding(result, 'sysctl_files', None, 'error', '/etc/sysctl.d/99-zzz-cloud.conf',
                    'net.ipv4.conf.all.rp_filter = 1', OUR_SYSCTL_FILE)
    assert '/etc/sysctl.d/99-zzz-cloud.conf' in found['hint']


def test_sysctl_file_after_ours_on_a_rail_key(host):
    host.write_file(OUR_SYSCTL_FILE, *host.plan['sysctl_lines'])
    host.write_file('99-zzz-cloud.conf', 'net.ipv4.conf.ib1.arp_ignore = 0')
    result = host.audit()
    finding(result, 'sysctl_files', 'ib1', 'error', '/etc/sysctl.d/99-zzz-cloud.conf', 'net.ipv4.conf.ib1.arp_ignore = 0')


def test_sysctl_file_strict_without_ours(host):
    host.write_file('50-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1')
    result = host.audit()
    finding(result, 'sysctl_files', None, 'error', '/etc/sysctl.d/50-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1')


def test_the_file_about_to_be_written_counts_as_written(host):
    """persisted_sysctl_file: the role audits before persisting, as if its file were there."""
    host.write_file('50-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1')
    result = host.audit(plan=host.plan, persisted_sysctl_file='/etc/sysctl.d/' + OUR_SYSCTL_FILE)
    assert [f for f in result['findings'] if f['check'] == 'sysctl_files'] == []
    host.write_file('99-zzz-cloud.conf', 'net.ipv4.conf.ib1.rp_filter = 1')
    result = host.audit(plan=host.plan, persisted_sysctl_file='/etc/sysctl.d/' + OUR_SYSCTL_FILE)
    finding(result, 'sysctl_files', 'ib1', 'error', '/etc/sysctl.d/99-zzz-cloud.conf', 'net.ipv4.conf.ib1.rp_filter = 1',
            'after ' + OUR_SYSCTL_FILE)


def test_sysctl_files_that_agree(host):
    host.write_file('10-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1')          # before ours: ours wins
    host.write_file(OUR_SYSCTL_FILE, *host.plan['sysctl_lines'])
    host.write_file('99-zzz-cloud.conf', 'net.ipv4.conf.all.rp_filter = 2', 'net.ipv4.conf.eth7.rp_filter = 1')
    result = host.audit()
    assert [f for f in result['findings'] if '/etc/sysctl.d/' in f['message']] == []
    assert ours(result['findings']) == []


# --- martians --------------------------------------------------------------------------------------

def test_martians(host):
    """Rail 2's traffic leaves through ib0, its replies come back on ib1: loose filtering takes them, strict drops them."""
    ip = rail_ip(host, 1)
    host.ip('rule', 'del', 'pref', '1002')
    host.sysctl(all__rp_filter=1)
    # The rails at 2: max(all, dev) is loose, and the kernel takes the replies.
    assert roce_lab.ping(host.name, host.description['peer'], ip, count=3) == (3, 3)
    loose = host.audit()
    assert on(loose, 'ib1') == [('route_get', 'error'), ('rule', 'error')]

    host.sysctl(ib1__rp_filter=0)
    # Pings all through the audit's 2 s window, however long the module takes to start; `ip netns exec`
    # execs ping, so SIGINT reaches it and it prints its summary.
    ping = subprocess.Popen(['ip', 'netns', 'exec', host.name, 'ping', '-n', '-q', '-I', ip, '-i', '0.2', '-c', '100',
                             host.description['peer']], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.3)
        strict = host.audit(martian_interval=2.0)
    finally:
        ping.send_signal(signal.SIGINT)
        output = ping.communicate(timeout=30)[0]
    counts = re.search(r'(\d+) packets transmitted, (\d+) received', output)
    assert counts and int(counts.group(1)) >= 10 and counts.group(2) == '0', output
    found = finding(strict, 'martians', None, 'warning', 'packets', '2.0 s')
    assert int(found['message'].split('dropped ')[1].split()[0]) >= 3, found
    finding(strict, 'rp_filter', 'ib1', 'error', 'from net.ipv4.conf.all')


# --- discovery -------------------------------------------------------------------------------------

def test_discovery(host):
    host.undo.append(lambda: host.ip('link', 'del', 'mgmt0'))
    host.ip('link', 'add', 'mgmt0', 'type', 'veth', 'peer', 'name', 'mgmt0p')
    host.ip('addr', 'add', '192.168.77.14/24', 'dev', 'mgmt0')
    host.ip('link', 'set', 'mgmt0p', 'up')
    host.ip('link', 'set', 'mgmt0', 'up')
    assert host.audit()['devices'] == RAILS
    by_rules = host.audit(pattern='^nomatch')
    assert (by_rules['devices'], by_rules['discovered']) == (RAILS, True)

    host.ip('rule', 'del', 'pref', '1003')
    assert host.audit(pattern='^nomatch')['devices'] == ['ib0', 'ib1']
    by_name = host.audit()
    assert by_name['devices'] == RAILS
    finding(by_name, 'rule', 'ib2', 'error', '10.0.3.14')
