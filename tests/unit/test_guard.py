"""Unit tests for plugins/module_utils/guard.py: the management path, owned tables, restores.

The hosts are hand-built: links, the main table and the plan's rules, the way
rail_guard reads them through netlink.
"""

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.guard import (
    Protected,
    default_source,
    main_defaults,
    management_findings,
    owned_tables,
    restore_routes,
    restore_sysctls,
)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, Route, desired_tables
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule, desired_rules

LINK_SCOPE = 253


def links(**extra):
    found = {'lo': Link('lo', 1, True, ('127.0.0.1/8',)),
             'mgmt0': Link('mgmt0', 2, True, ('192.168.50.2/24',)),
             'ib0': Link('ib0', 3, True, ('10.0.1.14/24',)),
             'ib1': Link('ib1', 4, True, ('10.0.2.14/24',))}
    found.update(extra)
    return found


def plan(sources=None):
    rails = [{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}]
    if sources:
        rails[1]['sources'] = sources
    return build_plan(rails)


def findings(the_plan, protected=(), routes=None, the_links=None):
    if routes is None:
        routes = [Route(254, '0.0.0.0/0', gateway='192.168.50.1', dev='mgmt0', proto=3)]
    return management_findings(desired_rules(the_plan['rules']), the_plan['rails'], list(protected), routes,
                               the_links or links(), desired_tables(the_plan['tables']))


def test_a_clean_host_and_plan_have_nothing_to_say():
    assert findings(plan(), [Protected('192.168.50.2', 'x')]) == ([], [])


@pytest.mark.parametrize('address, rail', [('10.0.1.14', 'ib0'), ('10.0.2.14', 'ib1'), ('10.0.2.200', 'ib1')])
def test_a_protected_address_inside_a_rule_source_is_an_error(address, rail):
    errors, warnings = findings(plan(sources=['10.0.2.192/26']), [Protected(address, 'why')])
    assert len(errors) == 1 and warnings == []
    assert 'would capture %s, the address why' % address in errors[0]
    assert '(rail %s)' % rail in errors[0]


def test_an_address_outside_every_source_is_fine():
    assert findings(plan(sources=['10.0.2.192/26']), [Protected('10.0.2.100', 'why')]) == ([], [])


def test_a_protected_address_on_a_rail_nic_that_is_not_the_rails_own():
    the_links = links(ib1=Link('ib1', 4, True, ('10.0.2.14/24', '172.16.0.5/24')))
    errors, _warnings = findings(plan(), [Protected('172.16.0.5', 'why')], the_links=the_links)
    assert errors == ["rail ib1 holds 172.16.0.5, the address why: activating the rail's keyfile would take that "
                      "address off the NIC"]


def test_the_default_routes_source_captured_into_a_table_of_another_nic():
    errors, _warnings = findings(plan(sources=['192.168.50.0/24']))
    assert len(errors) == 1
    assert "would capture 192.168.50.2, the source of the host's default route (default via 192.168.50.1 dev " \
           "mgmt0)" in errors[0]


def test_a_default_route_through_a_rail_is_only_a_warning():
    routes = [Route(254, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0', proto=3)]
    errors, warnings = findings(plan(), routes=routes)
    assert errors == []     # the rail's rule keeps that traffic on ib0 via 10.0.1.1, where it went anyway
    assert warnings == ["the main table's default route (default via 10.0.1.1 dev ib0) goes through rail ib0: "
                        "traffic from addresses without a rail rule leaves through that one rail; route the "
                        "host's default through its management NIC"]


def test_messages_are_not_repeated():
    errors, _warnings = findings(plan(), [Protected('10.0.1.14', 'a'), Protected('10.0.1.14', 'a')])
    assert len(errors) == 1


def test_main_defaults_best_first_and_only_unicast_main():
    routes = [Route(254, '0.0.0.0/0', metric=200, gateway='10.0.1.1', dev='ib0'),
              Route(254, '0.0.0.0/0', metric=50, gateway='192.168.50.1', dev='mgmt0'),
              Route(101, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0'),
              Route(254, '0.0.0.0/0', metric=10, type=6)]
    assert [r.dev for r in main_defaults(routes)] == ['mgmt0', 'ib0']


@pytest.mark.parametrize('route, expected', [
    (Route(254, '0.0.0.0/0', gateway='192.168.50.1', dev='mgmt0', src='192.168.50.9'), '192.168.50.9'),
    (Route(254, '0.0.0.0/0', gateway='192.168.50.1', dev='mgmt0'), '192.168.50.2'),
    (Route(254, '0.0.0.0/0', gateway='172.16.9.1', dev='mgmt0', onlink=True), '192.168.50.2'),
    (Route(254, '0.0.0.0/0', dev='gone0'), ''),
])
def test_default_source(route, expected):
    the_links = links(mgmt0=Link('mgmt0', 2, True, ('192.168.50.2/24', '192.168.60.2/24')))
    assert default_source(route, the_links) == expected


def rule(priority, table, src='10.0.9.9/32', action='lookup', **fields):
    return Rule(4, priority, src=src, table=table, action=action, **fields)


def test_owned_and_stale_tables():
    rules = [rule(0, 255, src=''), rule(500, 301), rule(1001, 101), rule(1500, 300), rule(1501, 301),
             rule(1502, 254), rule(1503, 0, action='blackhole'), rule(2500, 400), rule(32766, 254, src='')]
    owned, stale = owned_tables(rules, (1000, 1999), [101, 102])
    assert stale == [300]
    assert owned == [101, 102, 300]


def test_tables_of_rules_not_made_like_ours_are_not_ours():
    # Inside the range but another protocol, a mark, from all, or IPv6: their tables are never emptied.
    rules = [rule(1500, 300, proto=3), rule(1501, 301, src='', fwmark=0x10, fwmask=0xFFFFFFFF),
             rule(1502, 302, src=''), Rule(6, 1503, src='2001:db8::/64', table=303),
             rule(1504, 304)]
    owned, stale = owned_tables(rules, (1000, 1999), [101])
    assert stale == [304]
    assert owned == [101, 304]


def test_an_ipv6_rule_does_not_keep_an_ipv4_table():
    # Table 300 is looked up by our stale IPv4 rule and by an IPv6 rule outside the range: the IPv4
    # routes in it are ours to empty, the IPv6 routes (never dumped) are not touched.
    rules = [rule(1500, 300), Rule(6, 500, src='2001:db8::/64', table=300)]
    assert owned_tables(rules, (1000, 1999), [101]) == ([101, 300], [300])


def route(table, dst, **fields):
    return Route(table, dst, **fields)


def test_restore_routes_adds_replaces_and_removes_only_in_its_tables():
    snapshot = [route(101, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0'), route(101, '10.50.0.0/16', dev='ib0'),
                route(300, '10.60.0.0/16', dev='ib1')]
    current = [route(101, '0.0.0.0/0', gateway='10.0.2.1', dev='ib1'), route(101, '10.70.0.0/16', dev='ib0'),
               route(254, '10.80.0.0/16', dev='ib0')]
    changes = restore_routes(current, snapshot, [101, 300])
    assert changes.add == (snapshot[1], snapshot[2])
    assert changes.replace == ((current[0], snapshot[0]),)
    assert changes.remove == (current[1],)
    assert changes.before == {101: (current[0], current[1]), 300: ()}
    assert changes.after == {101: (snapshot[0], snapshot[1]), 300: (snapshot[2],)}


def test_restore_routes_of_an_unchanged_table_is_nothing():
    same = [route(101, '0.0.0.0/0', gateway='10.0.1.1', dev='ib0')]
    changes = restore_routes(same, list(same), [101])
    assert (changes.add, changes.replace, changes.remove) == ((), (), ())


def test_restore_sysctls_writes_back_what_differs_and_skips_what_is_gone():
    kept = {('all', 'rp_filter'): 1, ('ib0', 'arp_ignore'): 0, ('ib9', 'rp_filter'): 1, ('ib1', 'rp_filter'): 2}
    now = {('all', 'rp_filter'): 2, ('ib0', 'arp_ignore'): 1, ('ib9', 'rp_filter'): None, ('ib1', 'rp_filter'): 2}
    assert restore_sysctls(now, kept) == [('all', 'rp_filter', 2, 1), ('ib0', 'arp_ignore', 1, 0)]
