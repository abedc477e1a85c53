"""Unit tests for what a restore decides and re-creates: guard.restore_routes, guard.not_restored,
guard.unrestorable_sysctls, the nexthop normalization of routes.py and the requests netlink.py builds.

The kernel side (a link-down multipath route, appended routes, a deleted NIC) is
tested in tests/integration/test_rollback_whole.py.
"""

import pytest

from ansible_collections.roce.multirail.plugins.module_utils import netlink
from ansible_collections.roce.multirail.plugins.module_utils.guard import (
    not_restored,
    restore_routes,
    unrestorable_sysctls,
)
from ansible_collections.roce.multirail.plugins.module_utils.netlink import DeviceGone, Raw, reindexed
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, Route, route_from_dump
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule, decide_rules
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import SysctlChange

IFNAMES = {3: 'ib0', 4: 'ib1', 5: 'fx0'}
LINKDOWN, DEAD, OFFLOAD, TRAP, ONLINK = 0x10, 0x1, 0x8, 0x40, 0x4


def header(**fields):
    found = {'family': 2, 'dst_len': 16, 'src_len': 0, 'tos': 0, 'table': 101, 'proto': 3, 'scope': 0, 'type': 1,
             'flags': 0}
    found.update(fields)
    return found


def multipath(*hops):
    """RTA_MULTIPATH as a dump gives it: (gateway, oif, weight, flags) per nexthop."""
    return [{'attrs': [['RTA_GATEWAY', gateway]], 'oif': oif, 'hops': weight - 1, 'flags': flags}
            for gateway, oif, weight, flags in hops]


def mp_route(*hops):
    attrs = {'RTA_TABLE': 101, 'RTA_DST': '10.60.0.0', 'RTA_MULTIPATH': multipath(*hops)}
    return route_from_dump(header(), attrs, IFNAMES)


# --- nexthops: what a route is, not the kernel's report of its state ---------------

def test_a_link_down_or_dead_nexthop_is_the_same_route():
    up = mp_route(('10.0.1.1', 3, 2, 0), ('10.9.0.1', 5, 1, 0))
    assert mp_route(('10.0.1.1', 3, 2, 0), ('10.9.0.1', 5, 1, LINKDOWN)) == up
    assert mp_route(('10.0.1.1', 3, 2, OFFLOAD | TRAP), ('10.9.0.1', 5, 1, LINKDOWN | DEAD)) == up
    assert up.extra == (('RTA_MULTIPATH', '[via=10.0.1.1,dev=ib0,weight=2;via=10.9.0.1,dev=fx0]'),)


@pytest.mark.parametrize('hops', [
    (('10.0.1.1', 3, 2, 0), ('10.9.0.1', 4, 1, 0)),             # another device
    (('10.0.1.1', 3, 1, 0), ('10.9.0.1', 5, 1, 0)),             # another weight
    (('10.0.1.1', 3, 2, ONLINK), ('10.9.0.1', 5, 1, 0)),        # onlink, a request flag
    (('10.9.0.1', 5, 1, 0), ('10.0.1.1', 3, 2, 0)),             # another order
], ids=['dev', 'weight', 'onlink', 'order'])
def test_what_a_nexthop_is_tells_routes_apart(hops):
    assert mp_route(*hops) != mp_route(('10.0.1.1', 3, 2, 0), ('10.9.0.1', 5, 1, 0))


def test_a_route_re_created_from_a_dump_carries_no_state_flag():
    raw = Raw(header(flags=LINKDOWN | ONLINK | 0x4000),
              [('RTA_TABLE', 101), ('RTA_DST', '10.60.0.0'), ('RTA_CACHEINFO', {'rta_clntref': 0}),
               ('RTA_MULTIPATH', multipath(('10.0.1.1', 3, 2, ONLINK | OFFLOAD), ('10.9.0.1', 5, 1, LINKDOWN | DEAD)))])
    sent = netlink._route_for_create(raw)
    assert sent.header['flags'] == ONLINK
    assert [name for name, _value in sent.attrs] == ['RTA_TABLE', 'RTA_DST', 'RTA_MULTIPATH']
    hops = dict(sent.attrs)['RTA_MULTIPATH']
    assert [(hop['oif'], hop['hops'], hop['flags']) for hop in hops] == [(3, 1, ONLINK), (5, 0, 0)]
    # The dumped message itself is left as it was (a later request may need it).
    assert dict(raw.attrs)['RTA_MULTIPATH'][1]['flags'] == LINKDOWN | DEAD
    # pyroute2 packs it, and reads back the same nexthops.
    message = netlink._ROUTE.encode(netlink.RTM_NEWROUTE, netlink.NLM_F_CREATE, 1, sent)
    _header, attrs = netlink._ROUTE._decode_by_pyroute2(message)
    assert [(hop['oif'], hop['hops'], hop['flags']) for hop in dict(attrs)['RTA_MULTIPATH']] == \
        [(3, 1, ONLINK), (5, 0, 0)]


# --- interface indexes of a snapshot ------------------------------------------------

LINKS_NOW = {'ib0': Link('ib0', 13, True, ()), 'fx0': Link('fx0', 15, True, ())}


def test_a_snapshot_route_goes_through_the_same_nics_by_name():
    raw = Raw(header(), [('RTA_TABLE', 101), ('RTA_OIF', 3), ('RTA_MULTIPATH', multipath(('10.0.1.1', 3, 1, 0),
                                                                                         ('10.9.0.1', 5, 1, 0)))])
    moved = reindexed(raw, IFNAMES, LINKS_NOW)
    assert dict(moved.attrs)['RTA_OIF'] == 13
    assert [hop['oif'] for hop in dict(moved.attrs)['RTA_MULTIPATH']] == [13, 15]
    assert reindexed(raw, None, LINKS_NOW) is raw


def test_a_snapshot_route_through_a_nic_that_is_gone_is_not_sent():
    raw = Raw(header(), [('RTA_TABLE', 101), ('RTA_GATEWAY', '10.0.2.1'), ('RTA_OIF', 4)])
    with pytest.raises(DeviceGone, match='^dev ib1 is gone$'):
        reindexed(raw, IFNAMES, LINKS_NOW)
    with pytest.raises(DeviceGone, match='^dev with index 9 is gone$'):
        reindexed(Raw(header(), [('RTA_OIF', 9)]), IFNAMES, LINKS_NOW)


# --- restore_routes: same-key routes, order, requests ---------------------------------

def via(gateway, dst='10.70.0.0/16', metric=7, table=101, dev='ib0'):
    return Route(table, dst, metric=metric, gateway=gateway, dev=dev)


A, B, C = via('10.0.1.1'), via('10.0.1.2'), Route(101, '10.70.0.0/16', metric=7, dev='ib0', scope=253, proto=3)


def test_appended_routes_are_each_restored_in_order():
    """Three routes share table, dst and metric: the first is added, the others appended after it."""
    changes = restore_routes([], [A, B, C], [101])
    assert changes.ops == (('add', A, None), ('append', B, None), ('append', C, None))
    assert changes.add == (A, B, C) and changes.remove == () and changes.replace == ()


def test_missing_appended_routes_go_before_and_after_those_left():
    assert restore_routes([B], [A, B, C], [101]).ops == (('prepend', A, None), ('append', C, None))
    assert restore_routes([C], [A, B, C], [101]).ops == (('prepend', B, None), ('prepend', A, None))
    assert restore_routes([A, B], [A, B, C], [101]).ops == (('append', C, None),)


def test_appended_routes_out_of_order_are_laid_again():
    other = via('10.0.1.9')
    changes = restore_routes([B, A, other], [A, B, C], [101])
    removed = [route for op, route, _old in changes.ops if op == 'remove']
    assert sorted(removed) == sorted([B, A, other])
    assert changes.ops[len(removed):] == (('add', A, None), ('append', B, None), ('append', C, None))


def test_a_group_of_one_is_replaced_and_unchanged_groups_are_left():
    old = via('10.0.1.9', dst='10.80.0.0/16')
    new = via('10.0.1.1', dst='10.80.0.0/16')
    changes = restore_routes([A, B, old], [A, B, new], [101])
    assert changes.ops == (('replace', new, old),)
    assert changes.replace == ((old, new),)


def test_removals_go_first_then_direct_routes_before_gateway_routes():
    subnet = Route(101, '10.0.1.0/24', dev='ib0', scope=253)
    default = via('10.0.1.1', dst='0.0.0.0/0', metric=0)
    stray = via('10.0.1.1', dst='10.90.0.0/16', metric=0)
    elsewhere = via('10.0.1.1', dst='10.91.0.0/16', table=254, metric=0)
    changes = restore_routes([stray, elsewhere], [default, subnet], [101])
    assert changes.ops == (('remove', stray, None), ('add', subnet, None), ('add', default, None))


def test_a_multipath_route_is_added_after_direct_routes():
    subnet = Route(101, '10.9.0.0/24', dev='fx0', scope=253)
    spread = mp_route(('10.0.1.1', 3, 2, 0), ('10.9.0.1', 5, 1, LINKDOWN))
    assert [route for _op, route, _old in restore_routes([], [spread, subnet], [101]).ops] == [subnet, spread]


# --- what could not be restored -------------------------------------------------------

def test_each_object_left_otherwise_is_named_with_what_it_is_now():
    ours = Rule(family=4, priority=1001, src='10.0.1.14/32', table=101)
    lost = Rule(family=4, priority=1500, src='10.0.3.0/24', table=101)
    rules = decide_rules([ours], [lost], 'present', (1001, 1999))
    now_old = via('10.0.1.9', dst='10.80.0.0/16')
    routes = restore_routes([A, now_old, C], [A, B, via('10.0.1.1', dst='10.80.0.0/16')], [101])
    errors = {('rule', lost): 'Invalid argument', ('route', B): 'dev ib9 is gone',
              ('sysctl', ('ib0', 'rp_filter')): 'Permission denied'}
    lines = not_restored(rules, routes, [SysctlChange('ib0', 'rp_filter', 2, 1)], [('ib1', 'arp_ignore', 0)],
                         errors)
    assert lines == [
        'rule "1500:\tfrom 10.0.3.0/24 lookup 101 proto static": not restored (Invalid argument); now absent',
        'rule "1001:\tfrom 10.0.1.14 lookup 101 proto static": not removed; still present',
        'route "10.70.0.0/16 via 10.0.1.2 dev ib0 proto static metric 7" (table 101): not restored '
        '(dev ib9 is gone); now absent',
        'route "10.80.0.0/16 via 10.0.1.1 dev ib0 proto static metric 7" (table 101): not restored; '
        'now "10.80.0.0/16 via 10.0.1.9 dev ib0 proto static metric 7"',
        'route "10.70.0.0/16 dev ib0 scope link metric 7" (table 101): not removed; still present',
        'sysctl net.ipv4.conf.ib0.rp_filter: not restored to 1 (Permission denied); now 2',
        'sysctl net.ipv4.conf.ib1.arp_ignore: not restored to 0 (ib1 is gone); now absent',
    ]


def test_routes_all_there_in_another_order_are_named():
    assert not_restored(routes=restore_routes([B, A], [A, B], [101])) == [
        'table 101: its routes are all there, in another order than in the snapshot']
    assert not_restored(routes=restore_routes([A, B], [A, B], [101])) == []


def test_a_sysctl_of_a_nic_that_is_gone_cannot_be_written_back():
    kept = {('all', 'rp_filter'): 1, ('ib1', 'rp_filter'): 2, ('ib9', 'arp_ignore'): None}
    now = {('all', 'rp_filter'): 2, ('ib1', 'rp_filter'): None, ('ib9', 'arp_ignore'): None}
    assert unrestorable_sysctls(now, kept) == [('ib1', 'rp_filter', 2)]
