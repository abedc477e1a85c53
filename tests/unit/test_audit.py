"""Unit tests for plugins/module_utils/audit.py: the pure checks behind rail_audit.

Every test starts from a hand-built snapshot of a healthy two-rail textbook host, as rail_audit
gathers it after the source_routing role ran (links, rules, every table, the kernel's `ip route get`
answers, neighbours, sysctls, sysctl.d files, systemd-networkd, the reverse-path drop counter), breaks
exactly one thing the way a real host breaks, and checks the findings that must come out: check,
device and severity of each, in report order, and that the message and the hint name the device and
the value an operator has to act on.
"""

import re

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.audit import (
    CHECKS,
    DEFAULT_TARGET,
    OUR_SYSCTL_FILE,
    Finding,
    RouteAnswer,
    Snapshot,
    audit,
    discover,
    target_for,
)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, Route, main_gateway_routes
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule

RAILS = ['ib0', 'ib1']
OURS = '/etc/sysctl.d/' + OUR_SYSCTL_FILE
LINK_SCOPE = 253


# --- a healthy host -------------------------------------------------------------------------

def link(name, index, *addresses, up=True, carrier=True, mtu=4200):
    return Link(name=name, index=index, up=up, carrier=carrier, mtu=mtu, addresses=tuple(addresses))


def rail_rule(number, table=None, priority=None, src=None):
    return Rule(4, priority or 1000 + number, src=src or '10.0.%d.14/32' % number, table=table or 100 + number)


def rail_routes(number, device, table=None, gateway=None):
    """The two routes the role puts into a textbook rail's table."""
    table = table or 100 + number
    return [Route(table, '10.0.%d.0/24' % number, metric=100, dev=device, src='10.0.%d.14' % number,
                  scope=LINK_SCOPE),
            Route(table, '0.0.0.0/0', metric=100, gateway=gateway or '10.0.%d.1' % number, dev=device)]


def kernel_rules():
    return [Rule(4, 0, table=255, proto=2), Rule(4, 32766, table=254, proto=2), Rule(4, 32767, table=253, proto=2)]


def main_routes():
    """A freshly installed machine: one default route via the first rail, the kernel's subnet routes."""
    return [Route(254, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0', proto=3),
            Route(254, '10.0.1.0/24', dev='ib0', src='10.0.1.14', scope=LINK_SCOPE, proto=2),
            Route(254, '10.0.2.0/24', dev='ib1', src='10.0.2.14', scope=LINK_SCOPE, proto=2)]


def rail_conf(devices):
    conf = {('all', 'arp_ignore'): 0, ('all', 'arp_announce'): 0, ('all', 'rp_filter'): 2,
            ('all', 'accept_local'): 1}
    for device in devices:
        conf.update({(device, 'arp_ignore'): 1, (device, 'arp_announce'): 2, (device, 'rp_filter'): 2,
                     (device, 'accept_local'): 0})
    return conf


def our_sysctl_file(devices):
    entries = [('net.ipv4.conf.all.accept_local', '1'), ('net.ipv4.conf.all.rp_filter', '2')]
    for device in devices:
        name = device.replace('.', '/')
        entries += [('net.ipv4.conf.%s.arp_announce' % name, '2'), ('net.ipv4.conf.%s.arp_ignore' % name, '1'),
                    ('net.ipv4.conf.%s.rp_filter' % name, '2')]
    return (OURS, entries)


def healthy():
    """Two textbook rails after the role: ib0 10.0.1.14/24 (table 101), ib1 10.0.2.14/24 (table 102)."""
    return Snapshot(
        links={'lo': link('lo', 1, '127.0.0.1/8', mtu=65536),
               'ib0': link('ib0', 2, '10.0.1.14/24'),
               'ib1': link('ib1', 3, '10.0.2.14/24')},
        rules=sorted(kernel_rules() + [rail_rule(1), rail_rule(2)], key=lambda r: r.priority),
        routes=main_routes() + rail_routes(1, 'ib0') + rail_routes(2, 'ib1'),
        route_get={('10.0.1.14', DEFAULT_TARGET): RouteAnswer('ib0', 101, '10.0.1.1'),
                   ('10.0.2.14', DEFAULT_TARGET): RouteAnswer('ib1', 102, '10.0.2.1')},
        neighbours={('ib0', '10.0.1.1'): 'REACHABLE', ('ib1', '10.0.2.1'): 'STALE'},
        conf=rail_conf(RAILS),
        # A distribution's own file first, as systemd-sysctl orders them (by name).
        sysctl_files=[('/usr/lib/sysctl.d/50-default.conf', [
            ('net.ipv4.conf.default.rp_filter', '2'), ('net.ipv4.conf.*.rp_filter', '2'), ('fs.protected_symlinks', '1')]),
            our_sysctl_file(RAILS)],
        boot=[],
        martians={'before': 17, 'after': 17, 'interval': 1.0},
    )


def run(snapshot, devices=None, plan=None, targets=None):
    rails, findings, summary = audit(snapshot, RAILS if devices is None else devices, plan=plan, targets=targets)
    for finding in findings:
        assert set(finding) == {'check', 'device', 'severity', 'message', 'hint'}, finding
        assert finding['check'] in CHECKS and finding['severity'] in ('error', 'warning', 'info'), finding
        assert finding['message'] and finding['hint'], finding
    return rails, findings, summary


def kinds(findings):
    return [(f['check'], f['device'], f['severity']) for f in findings]


def the(findings, check, device):
    """The one finding of `check` on `device`."""
    found = [f for f in findings if f['check'] == check and f['device'] == device]
    assert len(found) == 1, '%d %s findings on %s: %r' % (len(found), check, device, findings)
    return found[0]


def says(text, *words):
    for word in words:
        assert word in text, '%r not in %r' % (word, text)


def replace_rule(snapshot, old_priority, *new):
    rules = [r for r in snapshot.rules if r.priority != old_priority] + list(new)
    return snapshot._replace(rules=sorted(rules, key=lambda r: r.priority))


def without_routes(snapshot, table, dst=None):
    return snapshot._replace(routes=[r for r in snapshot.routes
                                     if not (r.table == table and (dst is None or r.dst == dst))])


def answer(snapshot, source, dev, table, gateway='', target=DEFAULT_TARGET, error=''):
    snapshot.route_get[(source, target)] = RouteAnswer(dev, table, gateway, error)
    return snapshot


# --- the healthy host -------------------------------------------------------------------------

def test_healthy_two_rails_have_no_findings():
    rails, findings, summary = run(healthy())
    assert findings == []
    assert summary == {'status': 'ok', 'errors': 0, 'warnings': 0, 'infos': 0, 'rails': 2}
    assert [r['device'] for r in rails] == RAILS
    ib1 = rails[1]
    assert (ib1['addresses'], ib1['state'], ib1['carrier'], ib1['mtu'], ib1['table']) == (
        ['10.0.2.14/24'], 'up', True, 4200, 102)
    assert ib1['rules'] == [{'priority': 1002, 'from': '10.0.2.14/32', 'table': 102,
                             'text': '1002:\tfrom 10.0.2.14 lookup 102 proto static'}]
    assert sorted(ib1['routes']) == sorted(['10.0.2.0/24 dev ib1 proto static scope link src 10.0.2.14 metric 100',
                                            'default via 10.0.2.1 dev ib1 proto static metric 100'])
    assert ib1['route_get'] == [{'source': '10.0.2.14', 'target': DEFAULT_TARGET, 'dev': 'ib1', 'table': 102,
                                 'ok': True}]
    assert ib1['sysctls']['rp_filter'] == {'value': 2, 'all': 2, 'dev': 2, 'rule': 'max', 'decided_by': 'both'}
    assert ib1['sysctls']['arp_ignore'] == {'value': 1, 'all': 0, 'dev': 1, 'rule': 'max', 'decided_by': 'dev'}
    assert ib1['sysctls']['accept_local'] == {'value': 1, 'all': 1, 'dev': 0, 'rule': 'or', 'decided_by': 'all'}


def test_healthy_host_without_martian_counters_or_sysctl_files():
    snapshot = healthy()._replace(martians=None, sysctl_files=[], boot=[])
    assert run(snapshot)[1] == []


def test_auditing_one_rail_reports_only_that_rail():
    rails, findings, summary = run(healthy(), devices=['ib1'])
    assert [r['device'] for r in rails] == ['ib1'] and findings == [] and summary['rails'] == 1


# --- rule --------------------------------------------------------------------------------------

def test_rule_missing():
    snapshot = answer(replace_rule(healthy(), 1002), '10.0.2.14', 'ib0', 254, '10.0.1.1')
    rails, findings, summary = run(snapshot)
    assert kinds(findings) == [('rule', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    rule = the(findings, 'rule', 'ib1')
    says(rule['message'], '10.0.2.14', 'no rule')
    says(rule['hint'], 'ip rule add from 10.0.2.14 lookup')
    says(the(findings, 'route_get', 'ib1')['message'], '10.0.2.14', 'leaves through ib0, not ib1', 'table main')
    assert rails[1]['table'] is None and rails[1]['rules'] == [] and rails[1]['routes'] == []
    assert rails[1]['route_get'][0]['ok'] is False
    assert summary == {'status': 'error', 'errors': 2, 'warnings': 0, 'infos': 0, 'rails': 2}


def test_rule_into_main_or_local_does_not_count():
    snapshot = replace_rule(healthy(), 1002, Rule(4, 1002, src='10.0.2.14/32', table=254))
    snapshot = answer(snapshot, '10.0.2.14', 'ib0', 254, '10.0.1.1')
    findings = run(snapshot)[1]
    assert ('rule', 'ib1', 'error') in kinds(findings)


@pytest.mark.parametrize('selector', [dict(dst='10.0.3.0/24'), dict(iif='ib1'), dict(oif='ib1'),
                                      dict(fwmark=0x10, fwmask=0xFFFFFFFF), dict(extra=(('FRA_FLAGS', 'not'),))])
def test_rule_with_another_selector_is_not_the_rail_rule(selector):
    snapshot = replace_rule(healthy(), 1002, rail_rule(2)._replace(**selector))
    findings = run(snapshot)[1]
    assert ('rule', 'ib1', 'error') in kinds(findings)


def test_rule_for_a_prefix_holding_the_address_counts():
    snapshot = replace_rule(healthy(), 1002, Rule(4, 1002, src='10.0.2.0/24', table=102))
    assert run(snapshot)[1] == []


def test_rail_without_ipv4_address():
    snapshot = healthy()
    snapshot.links['ib1'] = link('ib1', 3)
    findings = run(snapshot)[1]
    assert kinds(findings) == [('rule', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1', 'no IPv4 address')
    says(findings[0]['hint'], 'address')


def test_rail_that_does_not_exist():
    rails, findings, summary = run(healthy(), devices=['ib0', 'ib1', 'ib7'])
    assert kinds(findings) == [('link', 'ib7', 'error')]
    says(findings[0]['message'], 'ib7', 'does not exist')
    says(findings[0]['hint'], 'ip -br link')
    assert [r['device'] for r in rails] == RAILS and summary['rails'] == 2


# --- rule against the plan -----------------------------------------------------------------------

def plan_of(**overrides):
    rails = [{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}]
    rails[1].update(overrides)
    return build_plan(rails)


def test_rules_as_planned():
    assert run(healthy(), plan=plan_of())[1] == []


@pytest.mark.parametrize('overrides, wants', [
    ({'priority': 1012}, 'priority 1012 and table 102'),
    ({'table': 112}, 'priority 1002 and table 112'),
    ({'priority': 1012, 'table': 112}, 'priority 1012 and table 112'),
])
def test_rule_differs_from_the_plan(overrides, wants):
    findings = run(healthy(), plan=plan_of(**overrides))[1]
    assert kinds(findings) == [('rule', 'ib1', 'error')]
    says(findings[0]['message'], '10.0.2.14', '1002:\tfrom 10.0.2.14 lookup 102', 'the plan wants ' + wants)
    says(findings[0]['hint'], 'source_routing')


def test_plan_compares_the_rule_that_decides():
    """Two rules for one address: the earlier one is the one the kernel uses, and the one compared."""
    snapshot = replace_rule(healthy(), None, Rule(4, 900, src='10.0.2.14/32', table=102))
    findings = run(snapshot, plan=plan_of())[1]
    assert kinds(findings) == [('rule', 'ib1', 'error')]
    says(findings[0]['message'], '900:\tfrom 10.0.2.14 lookup 102', 'priority 1002 and table 102')


# --- rule_order ----------------------------------------------------------------------------------

def test_rule_after_main():
    snapshot = replace_rule(healthy(), 1002, rail_rule(2, priority=32800))
    snapshot = answer(snapshot, '10.0.2.14', 'ib0', 254, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('rule_order', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], '10.0.2.14', 'priority 32800', '32766')
    says(findings[0]['hint'], 'below 32766')


def test_rule_at_main_priority_is_after_main():
    snapshot = replace_rule(healthy(), 1002, rail_rule(2, priority=32766))
    assert ('rule_order', 'ib1', 'error') in kinds(run(snapshot)[1])


def shadowing(snapshot, earlier, *table_routes):
    snapshot = replace_rule(snapshot, None, earlier)
    return snapshot._replace(routes=snapshot.routes + list(table_routes))


def test_rule_shadowed_by_an_earlier_catch_all_with_a_default_route():
    snapshot = shadowing(healthy(), Rule(4, 500, table=200),
                         Route(200, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0'))
    answer(snapshot, '10.0.1.14', 'ib0', 200, '10.0.1.1')
    answer(snapshot, '10.0.2.14', 'ib0', 200, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('rule_order', 'ib0', 'error'), ('rule_order', 'ib1', 'error'),
                               ('route_get', 'ib1', 'error')]
    order = the(findings, 'rule_order', 'ib1')
    says(order['message'], '500:\tfrom all lookup 200', '1002:\tfrom 10.0.2.14 lookup 102', '10.0.2.14')
    says(order['hint'], 'after priority 1002')


def test_rule_shadowed_by_an_earlier_rule_into_main():
    snapshot = replace_rule(healthy(), None, Rule(4, 900, src='10.0.2.0/24', table=254))
    answer(snapshot, '10.0.2.14', 'ib0', 254, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('rule_order', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], '900:\tfrom 10.0.2.0/24 lookup main')


@pytest.mark.parametrize('action', ['blackhole', 'unreachable', 'prohibit'])
def test_rule_shadowed_by_an_earlier_terminal_rule(action):
    snapshot = replace_rule(healthy(), None, Rule(4, 700, src='10.0.2.14/32', action=action))
    answer(snapshot, '10.0.2.14', '', 0, error='Network is unreachable')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('rule_order', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], '700:\tfrom 10.0.2.14 ' + action)
    says(the(findings, 'route_get', 'ib1')['message'], 'fails: Network is unreachable')


@pytest.mark.parametrize('earlier', [
    Rule(4, 500, table=200),                               # table 200 holds no default route
    Rule(4, 500, src='10.0.3.14/32', table=254),           # another address
    Rule(4, 500, dst='192.168.0.0/16', table=254),         # only some destinations
    Rule(4, 500, iif='eth9', table=254),                   # only forwarded traffic
    Rule(4, 500, table=254, extra=(('FRA_SUPPRESS_PREFIXLEN', '0'),)),
    Rule(6, 500, table=254),                               # IPv6
    Rule(4, 500, action='nop'),
], ids=['table-without-default', 'other-source', 'dst', 'iif', 'suppress-prefixlength', 'ipv6', 'nop'])
def test_earlier_rules_that_do_not_shadow(earlier):
    snapshot = shadowing(healthy(), earlier, Route(200, '192.168.7.0/24', gateway='10.0.1.1', dev='ib0'))
    assert run(snapshot)[1] == []


def shared():
    """The shared-subnet layout: ib0 10.0.1.14 and ib1 10.0.1.16 in one /24, tables route 10.0.0.0/16."""
    target = '10.0.255.254'
    routes = [Route(254, '10.0.1.0/24', dev='ib0', src='10.0.1.14', scope=LINK_SCOPE, proto=2)]
    for number, device, ip in ((1, 'ib0', '10.0.1.14'), (2, 'ib1', '10.0.1.16')):
        routes += [Route(100 + number, '10.0.1.0/24', metric=100, dev=device, src=ip, scope=LINK_SCOPE),
                   Route(100 + number, '10.0.0.0/16', metric=100, gateway='10.0.1.1', dev=device)]
    return Snapshot(
        links={'ib0': link('ib0', 2, '10.0.1.14/24'), 'ib1': link('ib1', 3, '10.0.1.16/24')},
        rules=sorted(kernel_rules() + [rail_rule(1, src='10.0.1.14/32'), rail_rule(2, src='10.0.1.16/32')],
                     key=lambda r: r.priority),
        routes=routes,
        route_get={('10.0.1.14', target): RouteAnswer('ib0', 101, '10.0.1.1'),
                   ('10.0.1.16', target): RouteAnswer('ib1', 102, '10.0.1.1')},
        neighbours={}, conf=rail_conf(RAILS), sysctl_files=[our_sysctl_file(RAILS)],
        boot=[])


def test_shared_layout_healthy():
    rails, findings, _summary = run(shared())
    assert findings == []
    assert [r['route_get'][0]['target'] for r in rails] == ['10.0.255.254', '10.0.255.254']


def test_shared_layout_rule_shadowed_by_an_earlier_table_routing_the_fabric():
    """An earlier catch-all whose table routes the fabric prefix takes the rail's fabric traffic.

    In the shared layout the rail tables route 10.0.0.0/16, not a default route, and the audit looks
    up 10.0.255.254; table 200 covers that address through ib0, so rule 500 decides for both rails
    (route_get shows it for ib1) and the rails' own rules are shadowed, as with a default route.
    """
    snapshot = shadowing(shared(), Rule(4, 500, table=200), Route(200, '10.0.0.0/16', gateway='10.0.1.1', dev='ib0'))
    answer(snapshot, '10.0.1.14', 'ib0', 200, '10.0.1.1', target='10.0.255.254')
    answer(snapshot, '10.0.1.16', 'ib0', 200, '10.0.1.1', target='10.0.255.254')
    findings = run(snapshot)[1]
    assert ('route_get', 'ib1', 'error') in kinds(findings)
    assert ('rule_order', 'ib1', 'error') in kinds(findings), findings


# --- table ---------------------------------------------------------------------------------------

def test_table_empty():
    snapshot = answer(without_routes(healthy(), 102), '10.0.2.14', 'ib0', 254, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('table', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], 'table 102', 'ib1', 'empty')
    says(findings[0]['hint'], 'table 102')


def test_table_route_through_another_nic():
    snapshot = healthy()
    snapshot.routes.append(Route(102, '10.0.5.0/24', metric=100, gateway='10.0.1.1', dev='ib0'))
    findings = run(snapshot)[1]
    assert kinds(findings) == [('table', 'ib1', 'error')]
    says(findings[0]['message'], 'table 102', '10.0.5.0/24 via 10.0.1.1 dev ib0', 'through ib0, not ib1')
    says(findings[0]['hint'], 'table 102', 'dev ib1')


def test_table_without_a_gateway_route():
    snapshot = answer(without_routes(healthy(), 102, '0.0.0.0/0'), '10.0.2.14', 'ib0', 254, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('table', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], 'table 102', 'no route via a gateway', DEFAULT_TARGET)
    says(findings[0]['hint'], 'ib1', 'table 102')


def test_table_whose_default_is_not_unicast():
    snapshot = without_routes(healthy(), 102, '0.0.0.0/0')
    snapshot.routes.append(Route(102, '0.0.0.0/0', metric=100, type=7))
    answer(snapshot, '10.0.2.14', '', 0, error='Network is unreachable')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('table', 'ib1', 'error'), ('route_get', 'ib1', 'error')]
    says(findings[0]['message'], 'no route via a gateway')


# --- gateway -------------------------------------------------------------------------------------

def test_gateway_outside_the_rail_subnets():
    snapshot = without_routes(healthy(), 102, '0.0.0.0/0')
    snapshot.routes.extend([Route(102, '10.0.9.0/24', dev='ib1', scope=LINK_SCOPE),
                            Route(102, '0.0.0.0/0', metric=100, gateway='10.0.9.1', dev='ib1')])
    answer(snapshot, '10.0.2.14', 'ib1', 102, '10.0.9.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('gateway', 'ib1', 'error')]
    says(findings[0]['message'], 'gateway 10.0.9.1', 'table 102', 'ib1', '10.0.2.14/24')
    says(findings[0]['hint'], 'ib1')


def test_onlink_gateway_outside_the_subnet_is_accepted():
    snapshot = without_routes(healthy(), 102, '0.0.0.0/0')
    snapshot.routes.append(Route(102, '0.0.0.0/0', metric=100, gateway='10.0.9.1', dev='ib1', onlink=True))
    assert run(snapshot)[1] == []


@pytest.mark.parametrize('state', ['FAILED', 'INCOMPLETE'])
def test_gateway_not_answering_arp(state):
    snapshot = healthy()
    snapshot.neighbours[('ib1', '10.0.2.1')] = state
    findings = run(snapshot)[1]
    assert kinds(findings) == [('gateway', 'ib1', 'error')]
    says(findings[0]['message'], 'gateway 10.0.2.1', 'ib1', state)
    says(findings[0]['hint'], 'ib1')


@pytest.mark.parametrize('state', ['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT'])
def test_gateway_neighbour_states_that_are_fine(state):
    snapshot = healthy()
    snapshot.neighbours[('ib1', '10.0.2.1')] = state
    # The same address failing on another NIC is not this rail's gateway.
    snapshot.neighbours[('ib0', '10.0.2.1')] = 'FAILED'
    assert run(snapshot)[1] == []


def test_gateway_checked_on_the_most_specific_covering_route():
    snapshot = healthy()
    snapshot.routes.append(Route(102, '198.51.100.0/24', metric=100, gateway='10.0.2.9', dev='ib1'))
    snapshot.neighbours[('ib1', '10.0.2.9')] = 'FAILED'
    findings = run(snapshot)[1]
    assert kinds(findings) == [('gateway', 'ib1', 'error')]
    says(findings[0]['message'], '10.0.2.9')


# --- route_get -----------------------------------------------------------------------------------

# What ib1 looking up ib0's table 101 gives: both routes of 101 use ib0, its gateway is off ib1's subnet,
# the kernel sends ib1's traffic out of ib0, and table 101 serves two rails.
IN_RAIL_1_TABLE = [('table', 'ib1', 'error'), ('table', 'ib1', 'error'), ('gateway', 'ib1', 'error'),
                   ('route_get', 'ib1', 'error'), ('duplicate', 'ib0', 'error'), ('duplicate', 'ib1', 'error')]


def test_route_get_leaves_through_another_nic():
    """Rail 2's address sent to rail 1's table by an earlier rule."""
    snapshot = replace_rule(healthy(), None, Rule(4, 900, src='10.0.2.14/32', table=101))
    answer(snapshot, '10.0.2.14', 'ib0', 101, '10.0.1.1')
    findings = run(snapshot)[1]
    route_get = the(findings, 'route_get', 'ib1')
    assert route_get['severity'] == 'error'
    says(route_get['message'], 'from 10.0.2.14 to %s' % DEFAULT_TARGET, 'leaves through ib0, not ib1', 'table 101')
    says(route_get['hint'], '10.0.2.14', 'ib1')
    # Table 101 is now looked up for both rails, and routes ib1's traffic through ib0 and ib0's gateway.
    assert kinds(findings) == IN_RAIL_1_TABLE


def test_route_get_error():
    snapshot = answer(healthy(), '10.0.2.14', '', 0, error='(101, Network is unreachable)')
    findings = run(snapshot)[1]
    assert kinds(findings) == [('route_get', 'ib1', 'error')]
    says(findings[0]['message'], 'ip route get %s from 10.0.2.14 fails' % DEFAULT_TARGET, 'Network is unreachable')
    says(findings[0]['hint'], '10.0.2.14')


def test_route_get_uses_the_given_target():
    snapshot = answer(healthy(), '10.0.2.14', 'ib0', 254, '10.0.1.1', target='10.0.99.99')
    rails, findings, _summary = run(snapshot, targets={'ib1': '10.0.99.99'})
    assert kinds(findings) == [('route_get', 'ib1', 'error')]
    says(findings[0]['message'], '10.0.99.99')
    assert rails[1]['route_get'] == [{'source': '10.0.2.14', 'target': '10.0.99.99', 'dev': 'ib0',
                                      'table': 254, 'ok': False}]


def test_route_get_without_an_answer_is_no_finding():
    snapshot = healthy()
    del snapshot.route_get[('10.0.2.14', DEFAULT_TARGET)]
    rails, findings, _summary = run(snapshot)
    assert findings == [] and rails[1]['route_get'] == []


# --- arp, rp_filter, accept_local ----------------------------------------------------------------

def with_conf(**values):
    snapshot = healthy()
    for name, value in values.items():
        target, key = name.split('__')
        snapshot.conf[(target, key)] = value
    return snapshot


def test_arp_ignore_0():
    findings = run(with_conf(ib1__arp_ignore=0))[1]
    assert kinds(findings) == [('arp', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1', 'arp_ignore 0')
    says(findings[0]['hint'], 'net.ipv4.conf.ib1.arp_ignore=1')


def test_arp_announce_1():
    findings = run(with_conf(ib1__arp_announce=1))[1]
    assert kinds(findings) == [('arp', 'ib1', 'warning')]
    says(findings[0]['message'], 'ib1', 'arp_announce 1')
    says(findings[0]['hint'], 'net.ipv4.conf.ib1.arp_announce=2')


def test_arp_from_all_wins():
    """max(all, dev): all=2 makes a rail's 0 harmless."""
    assert run(with_conf(all__arp_ignore=1, ib1__arp_ignore=0, all__arp_announce=2, ib1__arp_announce=0))[1] == []


def test_rp_filter_strict_on_the_rail():
    findings = run(with_conf(all__rp_filter=0, ib1__rp_filter=1))[1]
    assert kinds(findings) == [('rp_filter', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1', 'rp_filter 1')
    assert 'net.ipv4.conf.all' not in findings[0]['message']
    says(findings[0]['hint'], 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.ib1.rp_filter=2')


def test_rp_filter_strict_from_all():
    findings = run(with_conf(all__rp_filter=1, ib0__rp_filter=0, ib1__rp_filter=0))[1]
    assert kinds(findings) == [('rp_filter', 'ib0', 'error'), ('rp_filter', 'ib1', 'error')]
    says(the(findings, 'rp_filter', 'ib1')['message'], 'rp_filter 1', 'from net.ipv4.conf.all', 'wins over ib1')


def test_rp_filter_strict_on_both():
    findings = run(with_conf(all__rp_filter=1, ib1__rp_filter=1, ib0__rp_filter=1))[1]
    assert kinds(findings) == [('rp_filter', 'ib0', 'error'), ('rp_filter', 'ib1', 'error')]
    says(findings[1]['message'], 'set on both net.ipv4.conf.all and ib1')


def test_rp_filter_all_strict_under_loose_rails_is_loose():
    """The kernel takes max(all, dev): all=1 with the rails at 2 is loose filtering."""
    rails, findings, _summary = run(with_conf(all__rp_filter=1))
    assert findings == []
    assert rails[1]['sysctls']['rp_filter']['value'] == 2


def test_rp_filter_off_is_no_finding():
    assert run(with_conf(all__rp_filter=0, ib1__rp_filter=0))[1] == []


def test_accept_local_off_everywhere():
    findings = run(with_conf(all__accept_local=0))[1]
    assert kinds(findings) == [('accept_local', 'ib0', 'warning'), ('accept_local', 'ib1', 'warning')]
    says(findings[1]['message'], 'ib1', 'accept_local 0')
    says(findings[1]['hint'], 'net.ipv4.conf.all.accept_local=1')


def test_accept_local_on_the_rail_is_enough():
    assert run(with_conf(all__accept_local=0, ib0__accept_local=1, ib1__accept_local=1))[1] == []


def test_sysctls_missing_are_skipped():
    snapshot = healthy()
    snapshot.conf.clear()
    rails, findings, _summary = run(snapshot)
    assert findings == [] and rails[0]['sysctls'] == {}


# --- duplicate -----------------------------------------------------------------------------------

def test_duplicate_address():
    snapshot = healthy()
    snapshot.links['ib1'] = link('ib1', 3, '10.0.2.14/24', '10.0.1.14/24')
    findings = run(snapshot)[1]
    assert ('duplicate', 'ib0', 'error') in kinds(findings) and ('duplicate', 'ib1', 'error') in kinds(findings)
    address = [f for f in findings if f['check'] == 'duplicate' and '10.0.1.14' in f['message']]
    assert sorted(f['device'] for f in address) == ['ib0', 'ib1']
    says(address[0]['message'], 'address 10.0.1.14 is on ib0 and ib1')
    says(address[0]['hint'], 'own address')


def test_duplicate_table():
    snapshot = replace_rule(healthy(), 1002, rail_rule(2, table=101))
    answer(snapshot, '10.0.2.14', 'ib0', 101, '10.0.1.1')
    findings = run(snapshot)[1]
    assert kinds(findings) == IN_RAIL_1_TABLE
    for device in RAILS:
        says(the(findings, 'duplicate', device)['message'], 'table 101 serves ib0 and ib1')
        says(the(findings, 'duplicate', device)['hint'], 'own table')


# --- link, mtu -----------------------------------------------------------------------------------

def test_link_down():
    snapshot = healthy()
    snapshot.links['ib1'] = link('ib1', 3, '10.0.2.14/24', up=False, carrier=False)
    rails, findings, _summary = run(snapshot)
    assert kinds(findings) == [('link', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1', 'administratively down')
    says(findings[0]['hint'], 'ip link set ib1 up')
    assert rails[1]['state'] == 'down'


def test_link_without_carrier():
    snapshot = healthy()
    snapshot.links['ib1'] = link('ib1', 3, '10.0.2.14/24', carrier=False)
    rails, findings, _summary = run(snapshot)
    assert kinds(findings) == [('link', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1', 'no carrier')
    says(findings[0]['hint'], 'ib1')
    assert (rails[1]['state'], rails[1]['carrier']) == ('up', False)


def three_rails():
    snapshot = healthy()
    snapshot.links['ib2'] = link('ib2', 4, '10.0.3.14/24')
    snapshot.rules.append(rail_rule(3))
    snapshot.rules.sort(key=lambda r: r.priority)
    snapshot.routes.extend(rail_routes(3, 'ib2'))
    answer(snapshot, '10.0.3.14', 'ib2', 103, '10.0.3.1')
    snapshot.conf.update(rail_conf(['ib2']))
    return snapshot


def test_mtu_differs_on_one_rail():
    snapshot = three_rails()
    snapshot.links['ib1'] = snapshot.links['ib1']._replace(mtu=1500)
    findings = run(snapshot, devices=['ib0', 'ib1', 'ib2'])[1]
    assert kinds(findings) == [('mtu', 'ib1', 'warning')]
    says(findings[0]['message'], 'ib1', 'MTU 1500', 'the other rails 4200')
    says(findings[0]['hint'], 'same MTU')


def test_mtu_of_non_rails_does_not_matter():
    assert run(three_rails(), devices=['ib0', 'ib1', 'ib2'])[1] == []   # lo has 65536


# --- sysctl_files --------------------------------------------------------------------------------

def with_files(*files):
    snapshot = healthy()
    return snapshot._replace(sysctl_files=sorted([our_sysctl_file(RAILS)] + list(files),
                                                 key=lambda item: item[0].rsplit('/', 1)[1]))


def test_sysctl_file_after_ours_overrides_all_rp_filter():
    findings = run(with_files(('/etc/sysctl.d/99-zzz-cloud.conf', [('net.ipv4.conf.all.rp_filter', '1')])))[1]
    assert kinds(findings) == [('sysctl_files', None, 'error')]
    says(findings[0]['message'], '/etc/sysctl.d/99-zzz-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1',
         OUR_SYSCTL_FILE, 'to 2')
    says(findings[0]['hint'], '/etc/sysctl.d/99-zzz-cloud.conf')


def test_sysctl_file_after_ours_overrides_a_rail_key():
    findings = run(with_files(('/run/sysctl.d/99-zz.conf', [('net.ipv4.conf.ib1.arp_ignore', '0')])))[1]
    assert kinds(findings) == [('sysctl_files', 'ib1', 'error')]
    says(findings[0]['message'], '/run/sysctl.d/99-zz.conf', 'net.ipv4.conf.ib1.arp_ignore = 0')


def test_sysctl_file_after_ours_with_a_glob():
    findings = run(with_files(('/etc/sysctl.d/zz-strict.conf', [('net.ipv4.conf.*.rp_filter', '1')])))[1]
    assert kinds(findings) == [('sysctl_files', None, 'error'), ('sysctl_files', 'ib0', 'error'),
                               ('sysctl_files', 'ib1', 'error')]
    says(findings[2]['message'], 'net.ipv4.conf.ib1.rp_filter = 1')


def test_sysctl_file_after_ours_with_a_slash_key():
    findings = run(with_files(('/etc/sysctl.d/zz.conf', [('net/ipv4/conf/all/rp_filter', '0')])))[1]
    assert kinds(findings) == [('sysctl_files', None, 'error')]


def vlan_rail(*later):
    """ib1 replaced by the VLAN interface eth0.100 (its sysctl keys say eth0/100), with later sysctl.d files."""
    devices = ['ib0', 'eth0.100']
    snapshot = healthy()
    del snapshot.links['ib1']
    snapshot.links['eth0.100'] = link('eth0.100', 3, '10.0.2.14/24')
    routes = [r._replace(dev='eth0.100') if r.dev == 'ib1' else r for r in snapshot.routes]
    answer(snapshot, '10.0.2.14', 'eth0.100', 102, '10.0.2.1')
    conf = rail_conf(devices)
    return devices, snapshot._replace(routes=routes, conf=conf, neighbours={},
                                      sysctl_files=[our_sysctl_file(devices)] + list(later))


def test_vlan_rail_healthy():
    devices, snapshot = vlan_rail()
    assert dict(snapshot.sysctl_files)[OURS][-1] == ('net.ipv4.conf.eth0/100.rp_filter', '2')
    assert run(snapshot, devices=devices)[1] == []


def test_sysctl_file_after_ours_for_a_vlan_rail():
    devices, snapshot = vlan_rail(('/etc/sysctl.d/zz-vlan.conf', [('net.ipv4.conf.eth0/100.rp_filter', '1')]))
    findings = run(snapshot, devices=devices)[1]
    assert kinds(findings) == [('sysctl_files', 'eth0.100', 'error')]
    says(findings[0]['message'], 'net.ipv4.conf.eth0/100.rp_filter = 1', 'zz-vlan.conf')


def test_sysctl_file_after_ours_for_a_vlan_rail_in_slash_form():
    """sysctl.d(5): when the first separator is '/', dots stay part of the name: eth0.100 is the VLAN.

    net/ipv4/conf/eth0.100/rp_filter and net.ipv4.conf.eth0/100.rp_filter are the same key, and
    systemd-sysctl applies this file after ours, so eth0.100 is strict after a reboot.
    """
    devices, snapshot = vlan_rail(('/etc/sysctl.d/zz-vlan.conf', [('net/ipv4/conf/eth0.100/rp_filter', '1')]))
    findings = run(snapshot, devices=devices)[1]
    assert kinds(findings) == [('sysctl_files', 'eth0.100', 'error')], findings


@pytest.mark.parametrize('later', [
    ('/etc/sysctl.d/99-zzz-cloud.conf', [('net.ipv4.conf.all.rp_filter', '2')]),     # the same value
    ('/etc/sysctl.d/99-zzz-cloud.conf', [('net.ipv4.conf.eth5.rp_filter', '1')]),    # not a rail
    ('/etc/sysctl.d/10-cloud.conf', [('net.ipv4.conf.all.rp_filter', '1')]),         # before ours: ours wins
    ('/etc/sysctl.d/99-zzz-cloud.conf', [('net.ipv4.conf.default.rp_filter', '1')]),
], ids=['same-value', 'other-nic', 'earlier-file', 'default'])
def test_sysctl_files_that_are_fine(later):
    assert run(with_files(later))[1] == []


def test_sysctl_file_strict_without_ours():
    snapshot = healthy()._replace(sysctl_files=[('/etc/sysctl.d/50-cloud.conf', [('net.ipv4.conf.all.rp_filter', '1')])])
    findings = run(snapshot)[1]
    assert kinds(findings) == [('sysctl_files', None, 'error')]
    says(findings[0]['message'], '/etc/sysctl.d/50-cloud.conf', 'net.ipv4.conf.all.rp_filter = 1', 'reboot')
    says(findings[0]['hint'], 'set it to 2')


def test_sysctl_file_strict_overridden_later_is_fine():
    snapshot = healthy()._replace(sysctl_files=[('/etc/sysctl.d/50-cloud.conf', [('net.ipv4.conf.all.rp_filter', '1')]),
                                                ('/etc/sysctl.d/60-fix.conf', [('net.ipv4.conf.all.rp_filter', '2')])])
    assert run(snapshot)[1] == []


# --- boot, martians ------------------------------------------------------------------------------

def test_boot_findings_are_reported_as_given():
    """What sets up the rails at boot is judged by boot.boot_findings (tests/unit/test_boot.py); audit lists it."""
    found = Finding('boot', 'ib1', 'error', 'systemd-networkd sets up ib1 from /etc/systemd/network/10-ib1.network, '
                    'which declares no priority 1002 from 10.0.2.14 table 102', 'add a drop-in')
    findings = run(healthy()._replace(boot=[found]))[1]
    assert kinds(findings) == [('boot', 'ib1', 'error')]
    assert findings[0] == found._asdict()


def test_martians_rising():
    snapshot = healthy()._replace(martians={'before': 17, 'after': 27, 'interval': 2.0})
    findings = run(snapshot)[1]
    assert kinds(findings) == [('martians', None, 'warning')]
    says(findings[0]['message'], '10 packets', '2.0 s')
    says(findings[0]['hint'], 'rp_filter')


# --- summary and order ---------------------------------------------------------------------------

def test_summary_of_warnings_only():
    findings_summary = run(with_conf(ib1__arp_announce=1))[2]
    assert findings_summary == {'status': 'warning', 'errors': 0, 'warnings': 1, 'infos': 0, 'rails': 2}


def test_findings_errors_first_then_check_order_then_device():
    snapshot = healthy()._replace(martians={'before': 0, 'after': 3, 'interval': 1.0})
    snapshot.conf[('ib1', 'arp_announce')] = 1          # arp warning on ib1
    snapshot.conf[('ib1', 'arp_ignore')] = 0            # arp error on ib1
    snapshot.conf[('ib0', 'arp_ignore')] = 0            # arp error on ib0
    snapshot.links['ib0'] = snapshot.links['ib0']._replace(up=False)     # link error on ib0
    snapshot.neighbours[('ib1', '10.0.2.1')] = 'FAILED'                  # gateway error on ib1
    rails, findings, summary = run(snapshot)
    assert kinds(findings) == [
        ('gateway', 'ib1', 'error'), ('arp', 'ib0', 'error'), ('arp', 'ib1', 'error'), ('link', 'ib0', 'error'),
        ('arp', 'ib1', 'warning'), ('martians', None, 'warning')]
    assert summary == {'status': 'error', 'errors': 4, 'warnings': 2, 'infos': 0, 'rails': 2}


# --- target_for ----------------------------------------------------------------------------------

@pytest.mark.parametrize('routes, target', [
    ([], DEFAULT_TARGET),
    ([Route(101, '10.0.1.0/24', dev='ib0', scope=LINK_SCOPE)], DEFAULT_TARGET),     # no gateway route
    (rail_routes(1, 'ib0'), DEFAULT_TARGET),                                          # default route
    ([Route(101, '10.0.0.0/16', gateway='10.0.1.1', dev='ib0')], '10.0.255.254'),
    ([Route(101, '10.0.5.0/24', gateway='10.0.1.1', dev='ib0'),
      Route(101, '10.0.0.0/16', gateway='10.0.1.1', dev='ib0'),
      Route(101, '10.0.6.0/24', gateway='10.0.1.1', dev='ib0')], '10.0.255.254'),     # the widest one
    ([Route(101, '10.0.5.0/24', gateway='10.0.1.1', dev='ib0')], '10.0.5.254'),
    ([Route(101, '10.0.5.8/31', gateway='10.0.1.1', dev='ib0')], '10.0.5.8'),
    ([Route(101, '10.0.5.9/32', gateway='10.0.1.1', dev='ib0')], '10.0.5.9'),
])
def test_target_for(routes, target):
    assert target_for(routes) == target


# --- discover ------------------------------------------------------------------------------------

def discovery_host():
    snapshot = healthy()
    snapshot.links.update({
        'eth0': link('eth0', 4, '192.168.1.10/24'),           # management: no rule, no pattern
        'ens1': link('ens1', 5, '10.0.7.14/24'),              # a rail with an odd name, through its rule
        'ens2': link('ens2', 6, '10.0.8.14/24'),              # a rule into main is no rail rule
        'ens3': link('ens3', 7, '10.0.9.14/24'),              # a rule with another selector neither
        'mlx5': link('mlx5', 8),                              # an RDMA netdev without an address
        'roce9': link('roce9', 9),                            # by name
    })
    snapshot.rules.extend([Rule(4, 1007, src='10.0.7.0/24', table=107), Rule(4, 1008, src='10.0.8.14/32', table=254),
                           Rule(4, 1009, src='10.0.9.14/32', iif='ens3', table=109)])
    return snapshot


PATTERN = re.compile(r'^(ib|roce)[0-9]').search


def test_discover_by_rule_pattern_and_rdma_in_interface_order():
    assert discover(discovery_host(), PATTERN, {'mlx5'}) == ['ib0', 'ib1', 'ens1', 'mlx5', 'roce9']


def test_discover_by_rules_only():
    snapshot = discovery_host()
    assert discover(snapshot, re.compile('^nomatch').search) == ['ib0', 'ib1', 'ens1']
    snapshot = replace_rule(snapshot, 1002)
    assert discover(snapshot, re.compile('^nomatch').search) == ['ib0', 'ens1']


def test_discover_never_lo():
    snapshot = discovery_host()
    snapshot.rules.append(Rule(4, 1010, src='127.0.0.1/32', table=110))
    assert 'lo' not in discover(snapshot, lambda name: True, {'lo'})
    assert discover(snapshot, lambda name: True) == ['ib0', 'ib1', 'eth0', 'ens1', 'ens2', 'ens3', 'mlx5', 'roce9']


@pytest.mark.parametrize('value', [3, 4, 7, 9])
def test_arp_ignore_values_the_kernel_treats_as_0(value):
    findings = run(with_conf(ib1__arp_ignore=value))[1]
    assert kinds(findings) == [('arp', 'ib1', 'error')]
    says(findings[0]['message'], 'ib1 answers ARP for addresses of other NICs (arp_ignore %d)' % value)


def test_arp_ignore_8_on_all_silences_every_rail():
    findings = run(with_conf(all__arp_ignore=8))[1]
    assert kinds(findings) == [('arp', 'ib0', 'error'), ('arp', 'ib1', 'error')]
    says(findings[1]['message'], 'ib1 answers no ARP request at all (arp_ignore 8, from net.ipv4.conf.all')
    says(findings[1]['hint'], 'net.ipv4.conf.all.arp_ignore=0')


def test_arp_announce_above_2_is_like_0():
    findings = run(with_conf(all__arp_announce=3))[1]
    assert kinds(findings) == [('arp', 'ib0', 'warning'), ('arp', 'ib1', 'warning')]


# --- kept_routes: what the host had before the run ---------------------------------------------------

def test_main_gateway_routes_are_the_main_tables_routes_through_a_gateway_without_their_protocol():
    routes = main_routes() + rail_routes(1, 'ib0') + [
        Route(254, '198.18.0.0/15', gateway='10.0.1.1', dev='ib0', metric=50, proto=3),
        Route(254, '203.0.113.0/24', gateway='10.0.2.1', dev='ib1', proto=4)]
    assert main_gateway_routes(routes) == ['198.18.0.0/15 via 10.0.1.1 dev ib0 metric 50',
                                           '203.0.113.0/24 via 10.0.2.1 dev ib1',
                                           'default via 10.0.1.1 dev ib0']


def test_a_kept_route_that_is_gone_is_an_error_naming_it_and_one_still_there_is_not():
    kept = ['198.18.0.0/15 via 10.0.1.1 dev ib0 metric 50', 'default via 10.0.1.1 dev ib0']
    snapshot = healthy()
    # Still there under another protocol (a stack re-added it): kept.
    back = snapshot._replace(routes=snapshot.routes + [
        Route(254, '198.18.0.0/15', gateway='10.0.1.1', dev='ib0', metric=50, proto=4)])
    _rails, findings, _summary = audit(back, RAILS, kept_routes=kept)
    assert [f for f in findings if f['check'] == 'kept_routes'] == []
    _rails, findings, summary = audit(snapshot, RAILS, kept_routes=kept + ['default via 10.0.2.1 dev ib1'])
    gone = [f for f in findings if f['check'] == 'kept_routes']
    assert len(gone) == 2 and summary['status'] == 'error'
    assert gone[0]['device'] == 'ib0' and gone[0]['severity'] == 'error'
    assert '"198.18.0.0/15 via 10.0.1.1 dev ib0 metric 50" is gone' in gone[0]['message']
