"""rail_guard against the real kernel, inside throwaway network namespaces.

Without `restore` the module only reads: every check here compares the full
dump before and after. With `restore` it must bring back exactly the snapshot,
foreign objects with every attribute included, and touch nothing else.
"""

import sys

import pytest

from collection_path import COLLECTIONS

sys.path.insert(0, COLLECTIONS)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan  # noqa: E402 pylint: disable=wrong-import-position


def two_rails(ns, sources=None):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    rails = [{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}]
    if sources:
        rails[0]['sources'] = sources
    return rails


def with_mgmt(ns):
    """A management NIC carrying the main table's default route."""
    ns.add_nic('mgmt0', '192.168.50.2/24')
    ns.ip('route', 'add', 'default', 'via', '192.168.50.1', 'dev', 'mgmt0')


def apply(ns, plan, stale=(), remove_foreign=False):
    ns.module('rail_table', {'tables': plan['tables'] + list(stale), 'purge': True})
    ns.module('rail_rule', {'rules': plan['rules'], 'purge': True, 'priority_range': plan['priority_range'],
                            'remove_foreign': remove_foreign})
    ns.module('rail_sysctl', {'conf': plan['conf']})


def guard(ns, plan, expect_failure=False, **args):
    env = args.pop('env', None)
    return ns.module('rail_guard', dict(args, plan=plan), expect_failure=expect_failure, env=env)


def warnings_of(result):
    found = []
    for item in result.get('warnings', []):
        found.append(item['event']['msg'] if isinstance(item, dict) and 'event' in item else str(item))
    return found


# --- management path --------------------------------------------------------

def test_a_clean_plan_passes_and_changes_nothing(ns):
    with_mgmt(ns)
    plan = build_plan(two_rails(ns))
    before = ns.dump()
    result = guard(ns, plan, management=['192.168.50.2'])
    assert result['changed'] is False
    assert result['stale_tables'] == []
    assert result['management'] == [{'given': '192.168.50.2', 'addresses': ['192.168.50.2']}]
    assert warnings_of(result) == []
    assert ns.dump() == before


@pytest.mark.parametrize('given', ['10.0.1.14', '10.0.1.40'])
def test_a_rule_capturing_the_management_address_is_refused(ns, given):
    plan = build_plan(two_rails(ns, sources=['10.0.1.32/27']))
    before = ns.dump()
    result = guard(ns, plan, management=[given], expect_failure=True)
    assert result['msg'].startswith('nothing was changed: ')
    assert 'would capture %s, the address the host is managed on (%s)' % (given, given) in result['msg']
    assert '(rail ib0)' in result['msg'] and 'table 101' in result['msg']
    assert ns.dump() == before


def test_the_ssh_connection_server_address_is_protected(ns):
    plan = build_plan(two_rails(ns))
    result = guard(ns, plan, expect_failure=True, env={'SSH_CONNECTION': '10.0.2.99 51000 10.0.2.14 22'})
    assert 'would capture 10.0.2.14, the address of the SSH connection Ansible uses' in result['msg']
    assert result['management'] == [{'given': 'SSH_CONNECTION', 'addresses': ['10.0.2.14']}]


def test_the_override_turns_the_refusal_into_a_warning(ns):
    plan = build_plan(two_rails(ns))
    before = ns.dump()
    result = guard(ns, plan, management=['10.0.1.14'], allow_management_capture=True)
    assert any(w.startswith('allowed by allow_management_capture: rule "1001:') for w in warnings_of(result))
    assert 'snapshot' in result
    assert ns.dump() == before


def test_a_rail_nic_holding_another_management_address_is_refused(ns):
    plan = build_plan(two_rails(ns))
    ns.ip('addr', 'add', '172.16.0.5/24', 'dev', 'ib1')
    result = guard(ns, plan, management=['172.16.0.5'], expect_failure=True)
    assert "rail ib1 holds 172.16.0.5, the address the host is managed on (172.16.0.5): activating the rail's " \
           "keyfile would take that address off the NIC" in result['msg']


def test_a_source_capturing_the_default_route_is_refused(ns):
    """A VF prefix that holds the management NIC's address sends the host's own traffic into a rail table."""
    with_mgmt(ns)
    plan = build_plan(two_rails(ns, sources=['192.168.50.0/24']))
    before = ns.dump()
    result = guard(ns, plan, expect_failure=True)
    assert ("would capture 192.168.50.2, the source of the host's default route (default via 192.168.50.1 "
            "dev mgmt0)") in result['msg']
    assert ns.dump() == before


def test_a_default_route_through_a_rail_is_a_warning(ns):
    plan = build_plan(two_rails(ns))
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0')
    result = guard(ns, plan)
    assert warnings_of(result) == [
        "the main table's default route (default via 10.0.1.1 dev ib0) goes through rail ib0: traffic from "
        "addresses without a rail rule leaves through that one rail; route the host's default through its "
        "management NIC"]


def test_management_values_must_be_addresses(ns):
    plan = build_plan(two_rails(ns))
    result = guard(ns, plan, management=['node7;reboot'], expect_failure=True)
    assert result['msg'] == "management: 'node7;reboot' is not an IP address"


# --- NICs, foreign rules, plans ------------------------------------------------

def test_a_missing_nic_is_refused(ns):
    plan = build_plan(two_rails(ns) + [{'device': 'ib2', 'address': '10.0.3.14/24'}])
    result = guard(ns, plan, expect_failure=True)
    assert result['msg'] == 'nothing was changed: rail ib2: the host has no NIC ib2'


def test_a_renamed_nic_is_refused_naming_the_new_name(ns):
    plan = build_plan(two_rails(ns))
    ns.ip('link', 'set', 'ib1', 'down')
    ns.ip('link', 'set', 'ib1', 'name', 'ens7')
    ns.ip('link', 'set', 'ens7', 'up')
    result = guard(ns, plan, expect_failure=True)
    assert result['msg'] == ('nothing was changed: rail ib1: the host has no NIC ib1; its address 10.0.2.14 is on '
                             'ens7 now: was the NIC renamed? Use the new name in the inventory')


def test_a_rail_link_down_is_refused(ns):
    plan = build_plan(two_rails(ns))
    ns.ip('link', 'set', 'ib1', 'down')
    before = ns.dump()
    result = guard(ns, plan, expect_failure=True)
    assert 'dev ib1 is down' in result['msg']
    assert ns.dump() == before


def test_a_foreign_rule_on_a_planned_priority_is_refused(ns):
    plan = build_plan(two_rails(ns))
    ns.ip('rule', 'add', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '200')
    result = guard(ns, plan, expect_failure=True)
    assert 'sits on priority 1002, which this call manages' in result['msg']


@pytest.mark.parametrize('plan, words', [
    ({}, 'plan: has no rails'),
    ({'rails': [], 'rules': [], 'tables': [], 'conf': {}, 'priority_range': 'x'}, 'priority_range'),
])
def test_a_bad_plan_is_refused(ns, plan, words):
    result = ns.module('rail_guard', {'plan': plan}, expect_failure=True)
    assert words in result['msg']


# --- stale tables -------------------------------------------------------------

def test_stale_tables_are_those_only_our_range_points_at(ns):
    plan = build_plan(two_rails(ns))
    for table, pref in ((300, 1500), (301, 1501), (302, 1502)):
        ns.ip('route', 'add', '10.9.%d.0/24' % (table - 300), 'dev', 'ib0', 'table', str(table))
        ns.ip('rule', 'add', 'pref', str(pref), 'from', '10.0.%d.0/24' % (table - 290), 'lookup', str(table),
              'proto', 'static')
    ns.ip('rule', 'add', 'pref', '500', 'fwmark', '7', 'lookup', '301')      # 301 is not only ours
    ns.ip('rule', 'add', 'pref', '1503', 'from', '10.0.20.0/24', 'lookup', 'main', 'proto', 'static')  # never stale
    ns.ip('route', 'add', '10.9.4.0/24', 'dev', 'ib0', 'table', '304')
    ns.ip('rule', 'add', 'pref', '1504', 'from', '10.0.21.0/24', 'lookup', '304')    # not made like ours
    result = guard(ns, plan, remove_foreign_rules=True)
    assert result['stale_tables'] == [{'table': 300, 'routes': []}, {'table': 302, 'routes': []}]
    assert result['snapshot']['tables'] == [101, 102, 300, 302]


# --- snapshot and restore -------------------------------------------------------

def put_foreign_state(ns):
    """Objects of other tools inside our scope, with attributes the modules never create."""
    ns.ip('rule', 'add', 'pref', '1500', 'from', '10.0.1.0/24', 'uidrange', '100-200', 'lookup', '101')
    ns.ip('rule', 'add', 'pref', '1501', 'iif', 'lo', 'ipproto', 'tcp', 'dport', '80-90', 'lookup', '70000')
    ns.ip('route', 'add', '10.50.0.0/16', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'mtu', 'lock', '1400',
          'advmss', '1300', 'proto', 'boot')
    ns.ip('route', 'add', '10.60.0.0/16', 'table', '70000', 'nexthop', 'via', '10.0.1.1', 'dev', 'ib0', 'weight',
          '2', 'nexthop', 'via', '10.0.2.1', 'dev', 'ib1')
    ns.sysctl('net.ipv4.conf.ib1.arp_ignore=2')


def test_restore_brings_back_exactly_the_snapshot(ns):
    plan = build_plan(two_rails(ns))
    put_foreign_state(ns)
    ns.ip('rule', 'add', 'pref', '200', 'from', '192.0.2.0/24', 'lookup', '300')     # outside, never touched
    before = ns.dump()
    refused = guard(ns, plan, expect_failure=True)
    assert 'uid_range 100:200' in refused['msg'] and 'dport_range 80:90' in refused['msg'], refused['msg']
    assert ns.dump() == before
    taken = guard(ns, plan, remove_foreign_rules=True)
    # The foreign rules go on request, never the tables they look up.
    assert taken['stale_tables'] == []
    apply(ns, plan, taken['stale_tables'], remove_foreign=True)
    applied = ns.dump()
    assert applied != before and 'uidrange' not in applied and '10.60.0.0/16' in applied

    checked = ns.module('rail_guard', {'restore': taken['snapshot']}, check_mode=True, diff=True)
    assert checked['changed'] is True
    assert ns.dump() == applied
    restored = checked['restored']
    assert sorted(restored['rules_removed']) == ['1001:\tfrom 10.0.1.14 lookup 101 proto static',
                                                 '1002:\tfrom 10.0.2.14 lookup 102 proto static']
    assert len(restored['rules_added']) == 2 and len(restored['routes_added']) == 1
    assert 'net.ipv4.conf.all.rp_filter = 0' in restored['sysctls']
    assert 'uid_range 100:200' in checked['diff']['after']

    result = ns.module('rail_guard', {'restore': taken['snapshot']})
    assert result['changed'] is True and result['restored'] == restored
    assert ns.dump() == before
    again = ns.module('rail_guard', {'restore': taken['snapshot']})
    assert again['changed'] is False


def test_restore_after_drift_of_every_kind(ns):
    """Rules added and deleted, routes replaced, a sysctl changed by hand: all put back."""
    plan = build_plan(two_rails(ns))
    apply(ns, plan)
    before = ns.dump()
    taken = guard(ns, plan)
    ns.ip('rule', 'del', 'pref', '1001')
    ns.ip('rule', 'add', 'pref', '1999', 'from', '10.0.2.0/24', 'lookup', '102')
    ns.ip('route', 'replace', 'default', 'via', '10.0.2.1', 'dev', 'ib1', 'table', '101', 'metric', '100',
          'proto', 'static')
    ns.ip('route', 'add', '10.70.0.0/16', 'dev', 'ib1', 'table', '102')
    ns.sysctl('net.ipv4.conf.ib0.rp_filter=1')
    ns.ip('rule', 'add', 'pref', '100', 'from', '192.0.2.0/24', 'lookup', '300')      # outside the range: kept
    ns.module('rail_guard', {'restore': taken['snapshot']})
    after = ns.dump()
    assert after == before.replace('0:\tfrom all lookup local\n',
                                   '0:\tfrom all lookup local\n100:\tfrom 192.0.2.0/24 lookup 300\n', 1)


def test_restore_refuses_what_is_not_a_snapshot(ns):
    result = ns.module('rail_guard', {'restore': {'tables': 'x'}}, expect_failure=True)
    assert result['msg'].startswith('restore: not a snapshot returned by rail_guard')


def test_check_mode_of_the_guard_is_the_same_read(ns):
    plan = build_plan(two_rails(ns))
    before = ns.dump()
    normal = guard(ns, plan)
    checked = ns.module('rail_guard', {'plan': plan}, check_mode=True)
    assert checked['snapshot'] == normal['snapshot']
    assert ns.dump() == before
