"""roce.multirail.rail_table against the real kernel, in throwaway namespaces.

Every test runs the module inside its own namespace (the `ns` fixture) and
checks the result against what `ip route` prints afterwards. No traffic is sent.
"""

import pytest

# What `ip route show table N` prints for the textbook layout (trailing blanks stripped).
T101 = ['default via 10.0.1.1 dev ib0 proto static metric 100',
        '10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100']
T102 = ['default via 10.0.2.1 dev ib1 proto static metric 100',
        '10.0.2.0/24 dev ib1 proto static scope link src 10.0.2.14 metric 100']


# --- helpers ---------------------------------------------------------------

def route(dst, dev=None, **fields):
    spec = {'dst': dst}
    if dev is not None:
        spec['dev'] = dev
    spec.update(fields)
    return spec


def rail_routes(n, dev):
    """The textbook table of rail n: subnet route with src, default via .1."""
    return [route('10.0.%d.0/24' % n, dev, src='10.0.%d.14' % n, metric=100),
            route('default', dev, gateway='10.0.%d.1' % n, metric=100)]


# A valid table every failing call below carries first, so a partial apply would show.
GOOD = {'table': 101, 'routes': rail_routes(1, 'ib0')}


def textbook(ns):
    """Two rails, each in its own /24; returns the `tables` list for both."""
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    return [{'table': 101, 'routes': rail_routes(1, 'ib0')},
            {'table': 102, 'routes': rail_routes(2, 'ib1')}]


def lab(ns):
    """ib0 up in 10.0.1.0/24, ib1 up in 10.0.2.0/24, ib2 down in 10.0.3.0/24."""
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    ns.add_nic('ib2', '10.0.3.14/24', up=False)


def three_tables_with_bad_last_route(bad):
    return [GOOD,
            {'table': 102, 'routes': rail_routes(2, 'ib1')},
            {'table': 103, 'routes': [route('10.0.3.0/24', 'ib1', metric=100), bad]}]


def apply(ns, tables, check_mode=False, diff=False, expect_failure=False, **options):
    args = dict(options, tables=tables)
    return ns.module('rail_table', args, check_mode=check_mode, diff=diff, expect_failure=expect_failure)


def route_lines(text):
    """`ip route` output, one line per route: multipath `nexthop` lines join their route."""
    lines = []
    for line in text.splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += ' ' + line.strip()
        else:
            lines.append(line.rstrip())
    return lines


def table_lines(ns, table):
    """`ip route show table N`; a table the kernel never created reads as empty."""
    return route_lines(ns.ip('-4', 'route', 'show', 'table', str(table), check=False))


def all_route_lines(ns):
    return route_lines(ns.ip('-4', 'route', 'show', 'table', 'all'))


def lines_not_in_table(ns, table):
    """Every IPv4 route of every other table (main included), as `ip` prints them."""
    marker = ' table %d ' % table
    return [line for line in all_route_lines(ns) if marker not in line + ' ']


def assert_fails_cleanly(ns, tables, *words, **options):
    """The module fails, its message names every word, and the namespace is unchanged."""
    before = ns.dump()
    result = apply(ns, tables, expect_failure=True, **options)
    for word in words:
        assert word in result['msg'], 'expected %r in %r' % (word, result['msg'])
    assert ns.dump() == before
    return result


# --- apply and idempotency -------------------------------------------------

def test_apply_then_again_is_not_changed(ns):
    tables = textbook(ns)
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == T101
    assert table_lines(ns, 102) == T102
    second = apply(ns, tables)
    assert not second['changed']
    assert second['added'] == [] and second['replaced'] == [] and second['removed'] == []


def test_routes_carry_proto_static_and_the_given_metric(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [{'table': 101, 'routes': [route('10.0.0.0/16', 'ib0', gateway='10.0.1.1', metric=7),
                                         route('10.0.1.0/24', 'ib0', metric=250)]}])
    assert table_lines(ns, 101) == ['10.0.0.0/16 via 10.0.1.1 dev ib0 proto static metric 7',
                                    '10.0.1.0/24 dev ib0 proto static scope link metric 250']


def test_metric_defaults_to_zero(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.1')]}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == ['default via 10.0.1.1 dev ib0 proto static']
    assert not apply(ns, tables)['changed']


def test_gatewayless_route_defaults_to_scope_link(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    result = apply(ns, [{'table': 101, 'routes': [route('10.0.1.0/24', 'ib0', metric=100)]}])
    assert result['added'][0]['scope'] == 'link'
    assert table_lines(ns, 101) == ['10.0.1.0/24 dev ib0 proto static scope link metric 100']


def test_explicit_scope_global_without_gateway(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 101, 'routes': [route('10.0.1.0/24', 'ib0', scope='global', metric=100)]}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == ['10.0.1.0/24 dev ib0 proto static metric 100']
    assert not apply(ns, tables)['changed']


def test_route_through_gateway_and_dev(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.1.16/24')
    shared = route('10.0.0.0/16', 'ib1', gateway='10.0.1.1', src='10.0.1.16', metric=100)
    apply(ns, [{'table': 102, 'routes': [shared]}])
    assert table_lines(ns, 102) == ['10.0.0.0/16 via 10.0.1.1 dev ib1 proto static src 10.0.1.16 metric 100']


def test_shared_subnet_layout(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.1.16/24')
    tables = [
        {'table': 101, 'routes': [route('10.0.0.0/16', 'ib0', gateway='10.0.1.1', src='10.0.1.14', metric=100)]},
        {'table': 102, 'routes': [route('10.0.0.0/16', 'ib1', gateway='10.0.1.1', src='10.0.1.16', metric=100)]},
    ]
    assert apply(ns, tables, purge=True)['changed']
    assert table_lines(ns, 101) == ['10.0.0.0/16 via 10.0.1.1 dev ib0 proto static src 10.0.1.14 metric 100']
    assert table_lines(ns, 102) == ['10.0.0.0/16 via 10.0.1.1 dev ib1 proto static src 10.0.1.16 metric 100']
    assert not apply(ns, tables, purge=True)['changed']


def test_multiple_tables_in_one_call(ns):
    tables = textbook(ns)
    ns.add_nic('ib2', '10.0.3.14/24')
    tables.append({'table': 103, 'routes': rail_routes(3, 'ib2')})
    result = apply(ns, tables)
    assert len(result['added']) == 6
    assert sorted(result['tables']) == ['101', '102', '103']
    assert table_lines(ns, 101) == T101
    assert table_lines(ns, 102) == T102
    assert table_lines(ns, 103) == [line.replace('10.0.2.', '10.0.3.').replace('ib1', 'ib2') for line in T102]
    assert not apply(ns, tables)['changed']


def test_table_id_above_255(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 300000, 'routes': rail_routes(1, 'ib0')}]
    result = apply(ns, tables)
    assert result['changed']
    assert {r['table'] for r in result['added']} == {300000}
    assert table_lines(ns, 300000) == T101
    assert 'default via 10.0.1.1 dev ib0 table 300000 proto static metric 100' in all_route_lines(ns)
    assert table_lines(ns, 252) == []
    assert not apply(ns, tables)['changed']


def test_table_252_and_256_are_usable(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 252, 'routes': rail_routes(1, 'ib0')},
              {'table': 256, 'routes': rail_routes(1, 'ib0')}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 252) == T101
    assert table_lines(ns, 256) == T101
    assert not apply(ns, tables)['changed']


def test_onlink_gateway_is_accepted(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.9.1', onlink=True, metric=100)]}]
    result = apply(ns, tables)
    assert result['added'][0]['onlink'] is True
    assert table_lines(ns, 101) == ['default via 10.0.9.1 dev ib0 proto static metric 100 onlink']
    assert not apply(ns, tables)['changed']


def test_gateway_reachable_through_a_direct_route_in_the_same_table(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    tables = [{'table': 101, 'routes': [route('10.0.5.0/24', 'ib0', metric=100),
                                        route('default', 'ib0', gateway='10.0.5.1', metric=100)]}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == ['default via 10.0.5.1 dev ib0 proto static metric 100',
                                    '10.0.5.0/24 dev ib0 proto static scope link metric 100']
    assert not apply(ns, tables)['changed']


def test_gateway_reachable_through_a_direct_route_in_main(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('route', 'add', '10.0.6.0/24', 'dev', 'ib0')
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.6.1', metric=100)]}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == ['default via 10.0.6.1 dev ib0 proto static metric 100']


def test_route_on_a_nic_without_carrier_stays_idempotent(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('link', 'set', 'ib0p', 'down')
    tables = [{'table': 101, 'routes': rail_routes(1, 'ib0')}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == [line + ' linkdown' for line in T101]
    again = apply(ns, tables)
    assert not again['changed']
    assert again['replaced'] == []


def test_carrier_lost_after_apply_stays_idempotent(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('link', 'set', 'ib0p', 'down')
    assert table_lines(ns, 101) == [line + ' linkdown' for line in T101]
    assert not apply(ns, tables)['changed']


def test_nic_name_with_a_dot(ns):
    ns.add_nic('eth0.100', '10.0.7.14/24')
    tables = [{'table': 107, 'routes': [route('default', 'eth0.100', gateway='10.0.7.1', metric=100)]}]
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 107) == ['default via 10.0.7.1 dev eth0.100 proto static metric 100']
    assert not apply(ns, tables)['changed']


# --- replace -----------------------------------------------------------------

def test_gateway_change_is_a_replace(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.1', metric=100)]}])
    result = apply(ns, [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.254', metric=100)]}])
    assert result['changed']
    assert result['added'] == [] and result['removed'] == []
    assert [(r['before']['gateway'], r['after']['gateway']) for r in result['replaced']] == [
        ('10.0.1.1', '10.0.1.254')]
    assert result['replaced'][0]['before']['text'] == 'default via 10.0.1.1 dev ib0 proto static metric 100'
    assert result['replaced'][0]['after']['text'] == 'default via 10.0.1.254 dev ib0 proto static metric 100'
    assert table_lines(ns, 101) == ['default via 10.0.1.254 dev ib0 proto static metric 100']


def test_src_change_is_a_replace(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('addr', 'add', '10.0.1.15/24', 'dev', 'ib0')
    apply(ns, [{'table': 101, 'routes': [route('10.0.1.0/24', 'ib0', src='10.0.1.14', metric=100)]}])
    result = apply(ns, [{'table': 101, 'routes': [route('10.0.1.0/24', 'ib0', src='10.0.1.15', metric=100)]}])
    assert [(r['before']['src'], r['after']['src']) for r in result['replaced']] == [('10.0.1.14', '10.0.1.15')]
    assert result['added'] == [] and result['removed'] == []
    assert table_lines(ns, 101) == ['10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.15 metric 100']


def test_dev_change_is_a_replace(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.1.16/24')
    apply(ns, [{'table': 101, 'routes': [route('10.0.0.0/16', 'ib0', gateway='10.0.1.1', metric=100)]}])
    result = apply(ns, [{'table': 101, 'routes': [route('10.0.0.0/16', 'ib1', gateway='10.0.1.1', metric=100)]}])
    assert [(r['before']['dev'], r['after']['dev']) for r in result['replaced']] == [('ib0', 'ib1')]
    assert table_lines(ns, 101) == ['10.0.0.0/16 via 10.0.1.1 dev ib1 proto static metric 100']


def test_hand_made_twin_with_other_proto_is_replaced(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'metric', '100')
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.1', metric=100)]}]
    result = apply(ns, tables)
    assert [(r['before']['proto'], r['after']['proto']) for r in result['replaced']] == [('boot', 'static')]
    assert table_lines(ns, 101) == ['default via 10.0.1.1 dev ib0 proto static metric 100']
    assert not apply(ns, tables)['changed']


def test_other_metric_is_another_route(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.1', metric=100)]}])
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.1', metric=50)]}]
    result = apply(ns, tables)
    assert result['replaced'] == []
    assert [r['metric'] for r in result['added']] == [50]
    assert table_lines(ns, 101) == ['default via 10.0.1.1 dev ib0 proto static metric 50',
                                    'default via 10.0.1.1 dev ib0 proto static metric 100']
    purged = apply(ns, tables, purge=True)
    assert [r['metric'] for r in purged['removed']] == [100]
    assert table_lines(ns, 101) == ['default via 10.0.1.1 dev ib0 proto static metric 50']


# --- purge -------------------------------------------------------------------

def test_purge_leaves_exactly_the_listed_routes_and_other_tables_alone(ns):
    tables = textbook(ns)
    apply(ns, tables + [{'table': 200, 'routes': [route('10.0.9.0/24', 'ib1', gateway='10.0.2.1')]}])
    ns.ip('route', 'add', '10.9.0.0/16', 'dev', 'ib0', 'table', '101')
    ns.ip('route', 'add', 'blackhole', '10.8.0.0/16', 'table', '101')
    ns.ip('route', 'add', '10.7.0.0/16', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'mtu', '1400')
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'metric', '5')
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0')
    ns.ip('route', 'add', '10.0.8.0/24', 'via', '10.0.2.1', 'dev', 'ib1', 'table', '200', 'proto', 'boot')
    others = lines_not_in_table(ns, 101)
    assert 'default via 10.0.1.1 dev ib0' in others
    result = apply(ns, tables[:1], purge=True)
    assert result['changed']
    assert len(result['removed']) == 4
    assert table_lines(ns, 101) == T101
    assert lines_not_in_table(ns, 101) == others
    assert table_lines(ns, 102) == T102
    assert not apply(ns, tables[:1], purge=True)['changed']


def test_purge_removes_foreign_routes_of_every_kind(ns):
    tables = textbook(ns)
    apply(ns, tables)
    for spec in (['10.0.9.0/24', 'nexthop', 'via', '10.0.1.1', 'dev', 'ib0',
                  'nexthop', 'via', '10.0.2.1', 'dev', 'ib1'],
                 ['unreachable', '10.0.6.0/24'], ['throw', '10.0.2.0/24'], ['prohibit', '10.0.12.0/24'],
                 ['10.0.4.0/24', 'tos', '0x10', 'via', '10.0.1.1', 'dev', 'ib0'],
                 ['10.0.3.0/24', 'dev', 'ib0', 'scope', 'host'],
                 ['10.0.11.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'proto', 'unspec'],
                 ['10.0.13.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'src', '10.0.2.14', 'proto', 'dhcp']):
        ns.ip('route', 'add', 'table', '101', *spec)
    others = lines_not_in_table(ns, 101)
    result = apply(ns, tables[:1], purge=True)
    assert len(result['removed']) == 8
    assert table_lines(ns, 101) == T101
    assert lines_not_in_table(ns, 101) == others


def test_purge_removes_foreign_route_using_a_nexthop_object(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('nexthop', 'add', 'id', '7', 'via', '10.0.1.1', 'dev', 'ib0')
    ns.ip('route', 'add', '10.0.9.0/24', 'nhid', '7', 'table', '101')
    others = lines_not_in_table(ns, 101)
    result = apply(ns, tables[:1], purge=True)
    assert [r['dst'] for r in result['removed']] == ['10.0.9.0/24']
    assert table_lines(ns, 101) == T101
    assert lines_not_in_table(ns, 101) == others


def test_purge_of_the_direct_route_a_listed_gateway_needs_is_refused(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('route', 'add', '10.0.5.0/24', 'dev', 'ib0', 'table', '101')
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.5.1', metric=100)]}]
    assert_fails_cleanly(ns, tables, 'gateway 10.0.5.1', purge=True)


def test_without_purge_extra_routes_stay(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('route', 'add', '10.9.0.0/16', 'dev', 'ib0', 'table', '101')
    result = apply(ns, tables)
    assert not result['changed']
    assert '10.9.0.0/16 dev ib0 scope link' in table_lines(ns, 101)
    assert sorted(r['dst'] for r in result['tables']['101']) == ['0.0.0.0/0', '10.0.1.0/24', '10.9.0.0/16']


def test_purge_with_empty_routes_empties_only_that_table(ns):
    tables = textbook(ns)
    apply(ns, tables)
    others = lines_not_in_table(ns, 101)
    result = apply(ns, [{'table': 101, 'routes': []}], purge=True)
    assert len(result['removed']) == 2
    assert table_lines(ns, 101) == []
    assert lines_not_in_table(ns, 101) == others


def test_purge_and_absent_leave_ipv6_routes_of_the_table_alone(ns):
    ns.enable_ipv6()
    tables = textbook(ns)
    ns.ip('-6', 'route', 'add', '2001:db8:1::/64', 'dev', 'ib0', 'table', '101')
    v6 = ns.ip('-6', 'route', 'show', 'table', '101')
    assert '2001:db8:1::/64' in v6
    apply(ns, tables)
    apply(ns, [{'table': 101, 'routes': [route('10.0.1.0/24', 'ib0', src='10.0.1.14', metric=100)]}], purge=True)
    assert ns.ip('-6', 'route', 'show', 'table', '101') == v6
    apply(ns, [{'table': 101}], state='absent')
    assert table_lines(ns, 101) == []
    assert ns.ip('-6', 'route', 'show', 'table', '101') == v6


# --- check mode, diff and drift ----------------------------------------------

def test_check_mode_on_a_fresh_host_changes_nothing(ns):
    tables = textbook(ns)
    before = ns.dump()
    result = apply(ns, tables, check_mode=True)
    assert result['changed']
    assert len(result['added']) == 4
    assert ns.dump() == before


def test_check_mode_after_deleted_route_reports_it(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('route', 'del', 'default', 'table', '101')
    before = ns.dump()
    result = apply(ns, tables, check_mode=True)
    assert result['changed']
    assert [r['text'] for r in result['added']] == [T101[0]]
    assert result['replaced'] == [] and result['removed'] == []
    assert ns.dump() == before


def test_check_mode_after_gateway_drift_reports_a_replace(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('route', 'replace', 'default', 'via', '10.0.1.254', 'dev', 'ib0', 'table', '101',
          'proto', 'static', 'metric', '100')
    before = ns.dump()
    result = apply(ns, tables, check_mode=True)
    assert result['changed']
    assert [(r['before']['text'], r['after']['text']) for r in result['replaced']] == [
        ('default via 10.0.1.254 dev ib0 proto static metric 100', T101[0])]
    assert result['added'] == [] and result['removed'] == []
    assert ns.dump() == before


def test_drift_is_healed_by_a_normal_run(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('route', 'replace', 'default', 'via', '10.0.1.254', 'dev', 'ib0', 'table', '101', 'metric', '100')
    ns.ip('route', 'del', '10.0.2.0/24', 'table', '102')
    assert apply(ns, tables)['changed']
    assert table_lines(ns, 101) == T101
    assert table_lines(ns, 102) == T102
    assert not apply(ns, tables)['changed']


def test_diff_shows_tables_as_ip_prints_them(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('route', 'del', 'default', 'table', '101')
    shown = table_lines(ns, 101)
    result = apply(ns, tables[:1], check_mode=True, diff=True)
    before = result['diff']['before'].splitlines()
    after = result['diff']['after'].splitlines()
    assert before[0] == 'table 101:' and after[0] == 'table 101:'
    assert sorted(line.strip() for line in before[1:]) == sorted(shown)
    assert sorted(line.strip() for line in after[1:]) == sorted(T101)


# --- state=absent ----------------------------------------------------------

def test_absent_removes_the_listed_route_only(ns):
    tables = textbook(ns)
    apply(ns, tables)
    others = lines_not_in_table(ns, 101)
    result = apply(ns, [{'table': 101, 'routes': [route('default')]}], state='absent')
    assert result['changed']
    assert [r['text'] for r in result['removed']] == [T101[0]]
    assert table_lines(ns, 101) == T101[1:]
    assert lines_not_in_table(ns, 101) == others
    assert not apply(ns, [{'table': 101, 'routes': [route('default')]}], state='absent')['changed']


def test_absent_matches_only_the_given_fields(ns):
    tables = textbook(ns)
    apply(ns, tables)
    before = ns.dump()
    for wrong in (route('default', metric=5), route('default', gateway='10.0.1.254'),
                  route('default', 'ib1')):
        assert not apply(ns, [{'table': 101, 'routes': [wrong]}], state='absent')['changed']
    assert ns.dump() == before
    right = route('default', 'ib0', gateway='10.0.1.1', metric=100)
    assert apply(ns, [{'table': 101, 'routes': [right]}], state='absent')['changed']
    assert table_lines(ns, 101) == T101[1:]


def test_absent_table_without_routes_flushes_only_that_table(ns):
    tables = textbook(ns)
    apply(ns, tables + [{'table': 200, 'routes': [route('10.0.9.0/24', 'ib1', gateway='10.0.2.1')]}])
    ns.ip('route', 'add', '10.9.0.0/16', 'dev', 'ib0', 'table', '101')
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0')
    others = lines_not_in_table(ns, 101)
    result = apply(ns, [{'table': 101}], state='absent')
    assert len(result['removed']) == 3
    assert result['tables'] == {'101': []}
    assert table_lines(ns, 101) == []
    assert lines_not_in_table(ns, 101) == others
    assert not apply(ns, [{'table': 101}], state='absent')['changed']


def test_absent_check_mode_changes_nothing(ns):
    tables = textbook(ns)
    apply(ns, tables)
    before = ns.dump()
    result = apply(ns, [{'table': 101}, {'table': 102}], state='absent', check_mode=True)
    assert len(result['removed']) == 4
    assert ns.dump() == before


def test_absent_of_a_missing_device_is_fine(ns):
    tables = textbook(ns)
    apply(ns, tables)
    ns.ip('link', 'del', 'ib1')
    assert table_lines(ns, 102) == []
    assert not apply(ns, [{'table': 102, 'routes': [route('default', 'ib1')]}], state='absent')['changed']


# --- RETURN values ---------------------------------------------------------

def test_return_values_of_an_apply(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    result = apply(ns, [{'table': 101, 'routes': rail_routes(1, 'ib0')}])
    subnet = {'table': 101, 'dst': '10.0.1.0/24', 'metric': 100, 'dev': 'ib0', 'scope': 'link',
              'proto': 'static', 'type': 'unicast', 'src': '10.0.1.14', 'text': T101[1]}
    default = {'table': 101, 'dst': '0.0.0.0/0', 'metric': 100, 'dev': 'ib0', 'scope': 'global',
               'proto': 'static', 'type': 'unicast', 'gateway': '10.0.1.1', 'text': T101[0]}
    assert sorted(result['added'], key=lambda r: r['dst']) == [default, subnet]
    assert result['replaced'] == [] and result['removed'] == []
    assert list(result['tables']) == ['101']
    assert sorted(result['tables']['101'], key=lambda r: r['dst']) == [default, subnet]
    again = apply(ns, [{'table': 101, 'routes': rail_routes(1, 'ib0')}])
    assert again['tables'] == result['tables']


def test_returned_texts_are_what_ip_prints(ns):
    tables = textbook(ns)
    ns.ip('route', 'add', '10.9.0.0/16', 'dev', 'ib0', 'table', '101')
    ns.ip('route', 'add', 'blackhole', '10.8.0.0/16', 'table', '101')
    result = apply(ns, tables)
    assert sorted(r['text'] for r in result['tables']['101']) == sorted(table_lines(ns, 101))
    removed = apply(ns, [{'table': 101}], state='absent')
    assert sorted(r['text'] for r in removed['removed']) == sorted(
        T101 + ['10.9.0.0/16 dev ib0 scope link', 'blackhole 10.8.0.0/16'])


# --- bad arguments and host state: fail before any change -------------------

BAD_ROUTES = {
    'device missing': (route('default', 'ib9', gateway='10.0.2.1', metric=100), ['dev ib9', 'does not exist']),
    'device down': (route('10.0.3.0/24', 'ib2', metric=100), ['dev ib2', 'down']),
    'gateway outside subnets': (route('default', 'ib1', gateway='10.0.9.1', metric=100),
                                ['gateway 10.0.9.1', 'ib1', '10.0.2.0/24']),
    'gateway on another nic': (route('default', 'ib1', gateway='10.0.1.1', metric=100),
                               ['gateway 10.0.1.1', 'ib1']),
    'src not local': (route('10.0.2.0/24', 'ib1', src='10.0.2.99', metric=100), ['src 10.0.2.99']),
    'src garbage': (route('10.0.2.0/24', 'ib1', src='10.0.2', metric=100), ['src', '10.0.2']),
    'dst ipv6': (route('2001:db8::/64', 'ib1', metric=100), ['dst 2001:db8::/64', 'IPv6']),
    'dst host bits': (route('10.0.2.14/24', 'ib1', metric=100), ['dst 10.0.2.14/24', 'host bits']),
    'dst garbage': (route('10.0.2.0/33', 'ib1', metric=100), ['dst', '10.0.2.0/33']),
    'gateway garbage': (route('default', 'ib1', gateway='10.0.2.300', metric=100), ['gateway', '10.0.2.300']),
    'gateway ipv6': (route('default', 'ib1', gateway='fe80::1', metric=100), ['gateway', 'fe80::1']),
    'onlink without gateway': (route('10.0.2.0/24', 'ib1', onlink=True, metric=100), ['onlink', 'gateway']),
    'missing dev': (route('default', gateway='10.0.2.1', metric=100), ['dev', 'required']),
    'bad dev name': (route('default', 'ib1/x', gateway='10.0.2.1', metric=100), ['dev', 'ib1/x']),
    'bad scope': (route('10.0.2.0/24', 'ib1', scope='planet', metric=100), ['scope', 'planet']),
    'unknown key': (route('10.0.2.0/24', 'ib1', via='10.0.2.1', metric=100), ['via']),
}


@pytest.mark.parametrize('case', sorted(BAD_ROUTES))
def test_bad_route_fails_before_any_change(ns, case):
    lab(ns)
    bad, words = BAD_ROUTES[case]
    tables = [GOOD, {'table': 102, 'routes': [route('10.0.2.0/24', 'ib1', metric=50), bad]}]
    assert_fails_cleanly(ns, tables, *words)
    assert table_lines(ns, 101) == []


@pytest.mark.parametrize('table', [0, 253, 254, 255, -1, 2 ** 32])
def test_bad_table_id_is_refused(ns, table):
    lab(ns)
    tables = [GOOD, {'table': table, 'routes': [route('10.0.2.0/24', 'ib1', metric=100)]}]
    assert_fails_cleanly(ns, tables, 'table %d' % table)


def test_duplicate_table_is_refused(ns):
    lab(ns)
    tables = [GOOD, {'table': 101, 'routes': [route('10.0.9.0/24', 'ib0', metric=100)]}]
    assert_fails_cleanly(ns, tables, 'tables[1]', 'table 101', 'tables[0]')


def test_duplicate_dst_and_metric_is_refused(ns):
    lab(ns)
    tables = [GOOD, {'table': 102, 'routes': [route('default', 'ib1', gateway='10.0.2.1', metric=100),
                                              route('0.0.0.0/0', 'ib1', gateway='10.0.2.2', metric=100)]}]
    assert_fails_cleanly(ns, tables, 'table 102', 'default', 'route 1', 'route 0', 'metric')


def test_duplicate_dst_with_default_metrics_is_refused(ns):
    lab(ns)
    tables = [GOOD, {'table': 102, 'routes': [route('default', 'ib1', gateway='10.0.2.1'),
                                              route('default', 'ib1', gateway='10.0.2.2', metric=0)]}]
    assert_fails_cleanly(ns, tables, 'table 102', 'metric')


def test_purge_with_state_absent_is_refused(ns):
    lab(ns)
    assert_fails_cleanly(ns, [GOOD], 'purge', 'state', purge=True, state='absent')


def test_missing_dst_is_refused(ns):
    lab(ns)
    tables = [GOOD, {'table': 102, 'routes': [{'dev': 'ib1', 'metric': 100}]}]
    assert_fails_cleanly(ns, tables, 'dst')


def test_refused_call_leaves_existing_routes_alone(ns):
    lab(ns)
    apply(ns, [GOOD])
    tables = [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.254', metric=100)]},
              {'table': 102, 'routes': [route('default', 'ib9', gateway='10.0.2.1', metric=100)]}]
    assert_fails_cleanly(ns, tables, 'dev ib9', purge=True)
    assert table_lines(ns, 101) == T101


# --- only the last route of a multi-table call is bad: nothing is applied -----

@pytest.mark.parametrize('bad, words', [
    (route('default', 'ib1', gateway='10.0.9.1', metric=100), ['table 103', 'gateway 10.0.9.1']),
    (route('default', 'ib9', gateway='10.0.2.1', metric=100), ['table 103', 'dev ib9']),
    (route('default', 'ib2', metric=100), ['table 103', 'dev ib2']),
    (route('default', 'ib1', src='10.0.1.99', metric=100), ['table 103', 'src 10.0.1.99']),
], ids=['gateway-unreachable', 'device-missing', 'device-down', 'src-not-local'])
def test_bad_last_route_of_many_tables_applies_nothing(ns, bad, words):
    lab(ns)
    assert_fails_cleanly(ns, three_tables_with_bad_last_route(bad), *words)
    for table in (101, 102, 103):
        assert table_lines(ns, table) == []


@pytest.mark.parametrize('bad', [
    route('default', 'ib1', gateway='10.0.2.1', scope='host', metric=100),
    route('default', 'ib1', scope='nowhere', metric=100),
], ids=['host-scope-gateway', 'scope-nowhere'])
def test_kernel_refusal_of_last_route_rolls_back_everything(ns, bad):
    lab(ns)
    apply(ns, [{'table': 101, 'routes': [route('default', 'ib0', gateway='10.0.1.254', metric=100)]}])
    before = ns.dump()
    result = apply(ns, three_tables_with_bad_last_route(bad), expect_failure=True)
    assert 'table 103' in result['msg']
    assert 'rolled back' in result['msg']
    assert ns.dump() == before
    assert table_lines(ns, 101) == ['default via 10.0.1.254 dev ib0 proto static metric 100']
    assert table_lines(ns, 102) == [] and table_lines(ns, 103) == []


def test_kernel_refusal_restores_a_replaced_foreign_route_exactly(ns):
    lab(ns)
    ns.ip('route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101', 'metric', '100', 'mtu', '1400')
    before = ns.dump()
    bad = route('default', 'ib1', gateway='10.0.2.1', scope='host', metric=100)
    result = apply(ns, [GOOD, {'table': 102, 'routes': [bad]}], expect_failure=True)
    assert 'table 102' in result['msg']
    assert table_lines(ns, 101) == ['default via 10.0.1.1 dev ib0 metric 100 mtu 1400']
    assert ns.dump() == before
