"""The audit at the documented maximum of sources (plan.MAX_SOURCES over 8 rails): still right.

A host after the source_routing role with plan.MAX_SOURCES extra sources, each a /32 address on its rail
with its own rule, as SR-IOV VFs give it. audit() once looked up every rule for every address
(an ip_network parsed per address x rule pair): minutes at this size. These tests check only the
result; how long it takes is measured by bench/audit_scale.py.
"""

import ipaddress

from ansible_collections.roce.multirail.plugins.module_utils.audit import (
    DEFAULT_TARGET, RouteAnswer, Snapshot, audit, discover, own_rules, rail_rule_for, rail_table, rule_index,
    source_rules)
from ansible_collections.roce.multirail.plugins.module_utils.plan import MAX_SOURCES
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule

from test_audit import kernel_rules, link, our_sysctl_file, rail_conf, rail_routes, run

RAILS = 8


def source_addresses(number, count):
    """`count` /32 source addresses of rail `number`: 172.16.0.0/12, 4,096 per rail at most."""
    base = int(ipaddress.ip_address('172.16.0.0')) + (number - 1) * 4096
    return [str(ipaddress.ip_address(base + 1 + k)) for k in range(count)]


def scale_snapshot(rails=RAILS, sources=MAX_SOURCES):
    """A healthy textbook host of `rails` rails sharing `sources` sources, each an address with its rule."""
    devices = ['ib%d' % k for k in range(rails)]
    links = {'lo': link('lo', 1, '127.0.0.1/8', mtu=65536)}
    rules = kernel_rules()
    routes = []
    route_get = {}
    neighbours = {}
    for k, device in enumerate(devices):
        number = k + 1
        extra = source_addresses(number, sources // rails + (1 if k < sources % rails else 0))
        links[device] = link(device, number + 1, '10.0.%d.14/24' % number, *['%s/32' % a for a in extra])
        rules.append(Rule(4, 1000 + number, src='10.0.%d.14/32' % number, table=100 + number))
        rules += [Rule(4, 1000 + number, src='%s/32' % a, table=100 + number) for a in extra]
        routes += rail_routes(number, device)
        for address in ['10.0.%d.14' % number] + extra:
            route_get[(address, DEFAULT_TARGET)] = RouteAnswer(device, 100 + number, '10.0.%d.1' % number)
        neighbours[(device, '10.0.%d.1' % number)] = 'REACHABLE'
    return devices, Snapshot(links=links, rules=sorted(rules, key=lambda r: r.priority), routes=routes,
                             route_get=route_get, neighbours=neighbours, conf=rail_conf(devices),
                             sysctl_files=[our_sysctl_file(devices)], boot=[],
                             martians={'before': 0, 'after': 0, 'interval': 1.0})


def test_the_maximum_of_sources_is_healthy_and_every_source_reported():
    devices, snapshot = scale_snapshot()
    rails, findings, summary = run(snapshot, devices=devices)
    assert findings == [] and summary['status'] == 'ok', findings[:5]
    assert sum(len(r['addresses']) for r in rails) == MAX_SOURCES + RAILS
    assert sum(len(r['rules']) for r in rails) == MAX_SOURCES + RAILS
    assert [r['table'] for r in rails] == [101 + k for k in range(RAILS)]
    assert all(g['ok'] for r in rails for g in r['route_get'])


def test_at_the_maximum_one_missing_rule_and_one_shadowing_rule_are_still_found():
    devices, snapshot = scale_snapshot()
    lost = source_addresses(5, 1)[0]
    rules = [r for r in snapshot.rules if r.src != lost + '/32']
    # An earlier rule for a block of rail 3's sources, into main: it decides before the rail rule.
    rules.append(Rule(4, 900, src='172.16.32.0/28', table=254))
    snapshot = snapshot._replace(rules=sorted(rules, key=lambda r: r.priority))
    _rails, findings, _summary = audit(snapshot, devices)
    missing = [f for f in findings if f['check'] == 'rule']
    assert [(f['device'], lost in f['message']) for f in missing] == [('ib4', True)], missing
    shadowed = [f for f in findings if f['check'] == 'rule_order']
    # 172.16.32.0/28 holds 172.16.32.1-15: rail 3's first 15 sources.
    assert len(shadowed) == 15 and set(f['device'] for f in shadowed) == {'ib2'}, shadowed[:3]


def scan(rules, ip):
    """The source rules of `ip` found the slow way: every rule's prefix parsed and tested."""
    return [r for r in rules if r.family == 4 and r.action == 'lookup' and r.src and not (
        r.dst or r.iif or r.oif or r.fwmask or r.extra) and ipaddress.ip_address(ip) in ipaddress.ip_network(r.src)]


def test_the_index_answers_as_a_scan_of_every_rule_would():
    rules = sorted(kernel_rules() + [
        Rule(4, 900, src='10.0.0.0/8', table=300), Rule(4, 901, src='10.0.1.0/24', table=254),
        Rule(4, 1001, src='10.0.1.14/32', table=101), Rule(4, 950, src='10.0.1.14/32', table=102),
        Rule(4, 960, src='10.0.1.14/32', table=103, iif='lo'), Rule(6, 970, src='fd00::/8', table=104),
        Rule(4, 980, src='10.0.1.14/32', table=105, action='blackhole'), Rule(4, 990, table=106),
        Rule(4, 995, src='0.0.0.0/1', table=107), Rule(4, 996, src='128.0.0.0/1', table=108)],
        key=lambda r: r.priority)
    index = rule_index(rules)
    for ip in ('10.0.1.14', '10.0.1.15', '10.9.9.9', '192.0.2.1', '0.0.0.0', '255.255.255.255'):
        assert source_rules(index, ip) == source_rules(rules, ip) == scan(rules, ip), ip
        assert own_rules(index, ip) == [r for r in scan(rules, ip) if r.table not in (253, 254, 255)], ip
    assert [r.table for r in source_rules(rules, '10.0.1.14')] == [300, 254, 102, 107, 101]
    assert rail_rule_for(rules, '10.0.1.14').table == 300
    assert rail_rule_for(index, '192.0.2.1').table == 108
    assert rail_table(rule_index(rules), ['10.0.1.14', '192.0.2.1']) == 108


def test_discovery_at_the_maximum_finds_the_rails_by_their_rules():
    devices, snapshot = scale_snapshot()
    assert discover(snapshot, lambda name: False) == devices
