"""roce.multirail.rail_rule against the real kernel, in throwaway namespaces.

Every test runs the module inside its own namespace (the `ns` fixture) and
checks the result against what `ip rule` prints afterwards. No traffic is sent.
"""

import pytest

RANGE = {'start': 1000, 'end': 1999}

RULE_1001 = '1001:\tfrom 10.0.1.14 lookup 101 proto static'
RULE_1002 = '1002:\tfrom 10.0.2.14 lookup 102 proto static'


# --- helpers ---------------------------------------------------------------

def rule(priority, table, src=None, **fields):
    """A rules[] entry; `src` becomes the `from` key (a Python keyword)."""
    spec = {'priority': priority, 'table': table}
    if src is not None:
        spec['from'] = src
    spec.update(fields)
    return spec


# A valid rule every failing call below carries first, so a partial apply would show.
GOOD = rule(1001, 101, '10.0.1.14')


def two_rails(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    return [rule(1001, 101, '10.0.1.14'), rule(1002, 102, '10.0.2.14')]


def apply(ns, rules, check_mode=False, diff=False, expect_failure=False, **options):
    args = dict(options, rules=rules)
    return ns.module('rail_rule', args, check_mode=check_mode, diff=diff, expect_failure=expect_failure)


def rule_lines(ns, family='-4'):
    return ns.ip(family, 'rule', 'show').splitlines()


def priority_of(line):
    return int(line.split(':', 1)[0])


def lines_outside(lines, start, end):
    return [line for line in lines if not start <= priority_of(line) <= end]


def lines_inside(lines, start, end):
    return [line for line in lines if start <= priority_of(line) <= end]


def assert_fails_cleanly(ns, args, *words):
    """The module fails, its message names every word, and the namespace is unchanged."""
    before = ns.dump()
    result = ns.module('rail_rule', args, expect_failure=True)
    for word in words:
        assert word in result['msg'], 'expected %r in %r' % (word, result['msg'])
    assert ns.dump() == before
    return result


# --- apply and idempotency -------------------------------------------------

def test_apply_then_again_is_not_changed(ns):
    rules = two_rails(ns)
    assert apply(ns, rules)['changed']
    lines = rule_lines(ns)
    assert RULE_1001 in lines
    assert RULE_1002 in lines
    second = apply(ns, rules)
    assert not second['changed']
    assert second['added'] == [] and second['removed'] == []
    assert rule_lines(ns) == lines


def test_created_rules_carry_proto_static(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    created = lines_inside(rule_lines(ns), 1000, 1999)
    assert created == [RULE_1001, RULE_1002]
    assert all(line.endswith(' proto static') for line in created)


def test_kernel_default_rules_are_kept(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    assert rule_lines(ns) == ['0:\tfrom all lookup local', RULE_1001, RULE_1002,
                              '32766:\tfrom all lookup main', '32767:\tfrom all lookup default']


def test_ipv6_rule(ns):
    ns.enable_ipv6()
    rules = [rule(1101, 101, '2001:db8:1::14')]
    result = apply(ns, rules)
    assert result['changed']
    assert result['added'][0]['family'] == 'ipv6'
    assert '1101:\tfrom 2001:db8:1::14 lookup 101 proto static' in rule_lines(ns, '-6')
    assert lines_inside(rule_lines(ns, '-4'), 1000, 1999) == []
    assert not apply(ns, rules)['changed']


def test_ipv6_rule_with_family_only(ns):
    ns.enable_ipv6()
    rules = [rule(1201, 301, fwmark='0x20', family='ipv6')]
    assert apply(ns, rules)['changed']
    assert '1201:\tfrom all fwmark 0x20 lookup 301 proto static' in rule_lines(ns, '-6')
    assert lines_inside(rule_lines(ns, '-4'), 1000, 1999) == []
    assert not apply(ns, rules)['changed']


def test_mixed_ipv4_and_ipv6_in_one_call(ns):
    ns.enable_ipv6()
    ns.add_nic('ib0', '10.0.1.14/24')
    rules = [rule(1001, 101, '10.0.1.14'), rule(1101, 101, '2001:db8:1::14'),
             rule(1001, 101, '2001:db8:1::/64')]
    result = apply(ns, rules)
    assert result['changed']
    assert sorted(r['family'] for r in result['added']) == ['ipv4', 'ipv6', 'ipv6']
    assert lines_inside(rule_lines(ns, '-4'), 1000, 1999) == [RULE_1001]
    assert sorted(lines_inside(rule_lines(ns, '-6'), 1000, 1999)) == [
        '1001:\tfrom 2001:db8:1::/64 lookup 101 proto static',
        '1101:\tfrom 2001:db8:1::14 lookup 101 proto static']
    assert not apply(ns, rules)['changed']


def test_fwmark_with_mask(ns):
    rules = [rule(1200, 300, fwmark='0x10/0xff', family='ipv4')]
    assert apply(ns, rules)['changed']
    assert '1200:\tfrom all fwmark 0x10/0xff lookup 300 proto static' in rule_lines(ns)
    assert not apply(ns, rules)['changed']


def test_fwmark_without_mask_and_decimal(ns):
    rules = [rule(1200, 300, fwmark='0x10'), rule(1201, 301, fwmark='32')]
    assert apply(ns, rules)['changed']
    lines = rule_lines(ns)
    assert '1200:\tfrom all fwmark 0x10 lookup 300 proto static' in lines
    assert '1201:\tfrom all fwmark 0x20 lookup 301 proto static' in lines
    assert not apply(ns, rules)['changed']


def test_fwmark_full_mask_equals_plain_mark(ns):
    assert apply(ns, [rule(1200, 300, fwmark='0x10')])['changed']
    assert not apply(ns, [rule(1200, 300, fwmark='0x10/0xffffffff')])['changed']


def test_iif_and_oif(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')
    rules = [rule(1300, 103, iif='ib0'), rule(1301, 104, oif='ib1'),
             rule(1302, 105, '10.0.1.14', iif='lo', oif='ib0')]
    assert apply(ns, rules)['changed']
    lines = rule_lines(ns)
    assert '1300:\tfrom all iif ib0 lookup 103 proto static' in lines
    assert '1301:\tfrom all oif ib1 lookup 104 proto static' in lines
    assert '1302:\tfrom 10.0.1.14 iif lo oif ib0 lookup 105 proto static' in lines
    assert not apply(ns, rules)['changed']


def test_iif_with_a_dot_in_its_name(ns):
    ns.add_nic('eth0.100', '10.0.7.14/24')
    rules = [rule(1300, 103, iif='eth0.100')]
    assert apply(ns, rules)['changed']
    assert '1300:\tfrom all iif eth0.100 lookup 103 proto static' in rule_lines(ns)
    assert not apply(ns, rules)['changed']


def test_to_prefix(ns):
    rules = [rule(1400, 101, '10.0.1.14', to='10.0.0.0/16'), rule(1401, 102, to='10.0.99.99')]
    assert apply(ns, rules)['changed']
    lines = rule_lines(ns)
    assert '1400:\tfrom 10.0.1.14 to 10.0.0.0/16 lookup 101 proto static' in lines
    assert '1401:\tfrom all to 10.0.99.99 lookup 102 proto static' in lines
    assert not apply(ns, rules)['changed']


def test_vf_source_prefix_shares_the_rail_priority(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    rules = [rule(1001, 101, '10.0.1.14'), rule(1001, 101, '10.0.1.32/29')]
    result = apply(ns, rules)
    assert result['changed']
    assert len(result['added']) == 2
    assert sorted(lines_inside(rule_lines(ns), 1000, 1999)) == [
        RULE_1001, '1001:\tfrom 10.0.1.32/29 lookup 101 proto static']
    assert not apply(ns, rules)['changed']


@pytest.mark.parametrize('spec, shown', [
    ({'from': '0.0.0.0/0'}, '1500:\tfrom all oif lo lookup 150 proto static'),
    ({'from': 'default'}, '1500:\tfrom all oif lo lookup 150 proto static'),
    ({'to': '0.0.0.0/0'}, '1500:\tfrom all oif lo lookup 150 proto static'),
], ids=['from-0.0.0.0/0', 'from-default', 'to-0.0.0.0/0'])
def test_from_all_spelled_as_zero_prefix_is_idempotent(ns, spec, shown):
    rules = [rule(1500, 150, oif='lo', **spec)]
    assert apply(ns, rules)['changed']
    assert shown in rule_lines(ns)
    assert not apply(ns, rules)['changed']


def test_table_id_above_255(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    rules = [rule(1001, 300000, '10.0.1.14')]
    result = apply(ns, rules)
    assert result['changed']
    assert result['added'][0]['table'] == 300000
    assert '1001:\tfrom 10.0.1.14 lookup 300000 proto static' in rule_lines(ns)
    again = apply(ns, rules)
    assert not again['changed']
    assert [r['table'] for r in again['rules']] == [300000]


# --- check mode, diff and drift ----------------------------------------------

def test_check_mode_on_a_fresh_host_changes_nothing(ns):
    rules = two_rails(ns)
    before = ns.dump()
    result = apply(ns, rules, check_mode=True)
    assert result['changed']
    assert [r['text'] for r in result['added']] == [RULE_1001, RULE_1002]
    assert ns.dump() == before


def test_check_mode_after_drift_reports_the_missing_rule(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    ns.ip('rule', 'del', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '102')
    before = ns.dump()
    result = apply(ns, rules, check_mode=True)
    assert result['changed']
    assert [r['text'] for r in result['added']] == [RULE_1002]
    assert result['removed'] == []
    assert ns.dump() == before
    assert RULE_1002 not in rule_lines(ns)


def test_drift_is_healed_by_a_normal_run(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    ns.ip('rule', 'del', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '101')
    assert apply(ns, rules)['changed']
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001, RULE_1002]
    assert not apply(ns, rules)['changed']


def test_diff_reads_as_ip_rule_output(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    ns.ip('rule', 'del', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '102')
    shown = rule_lines(ns)
    result = apply(ns, rules, check_mode=True, diff=True)
    assert result['diff']['before'] == RULE_1001 + '\n'
    assert result['diff']['after'] == RULE_1001 + '\n' + RULE_1002 + '\n'
    for line in result['diff']['before'].splitlines():
        assert line in shown
    real = apply(ns, rules, diff=True)
    assert real['diff']['after'].splitlines() == lines_inside(rule_lines(ns), 1000, 1999)


def test_diff_of_purge_shows_removed_rule(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    ns.ip('rule', 'add', 'pref', '1003', 'from', '10.0.3.14', 'lookup', '103', 'proto', 'static')
    result = apply(ns, rules[:1], check_mode=True, diff=True, purge=True, priority_range=RANGE)
    assert result['diff']['before'] == '\n'.join(
        [RULE_1001, RULE_1002, '1003:\tfrom 10.0.3.14 lookup 103 proto static']) + '\n'
    assert result['diff']['after'] == RULE_1001 + '\n'


# --- purge -------------------------------------------------------------------

def test_purge_removes_only_stale_rules_in_range(ns):
    rules = two_rails(ns)
    apply(ns, rules + [rule(1003, 103, '10.0.3.14'), rule(1900, 190, to='10.0.9.0/24')])
    ns.ip('rule', 'add', 'pref', '500', 'from', '10.0.1.14', 'to', '192.168.0.0/16', 'lookup', 'main')
    ns.ip('rule', 'add', 'pref', '5000', 'from', '10.0.1.14', 'lookup', '200')
    ns.ip('rule', 'add', 'pref', '999', 'fwmark', '0x1', 'lookup', '201')
    ns.ip('rule', 'add', 'pref', '2000', 'from', '10.0.4.14', 'lookup', '104', 'proto', 'static')
    ns.ip('rule', 'add', 'pref', '1500', 'from', '10.0.5.14', 'lookup', '105')
    before = rule_lines(ns)
    # Without remove_foreign only the rules made like ours go.
    result = apply(ns, rules, purge=True, priority_range=RANGE)
    assert sorted(r['text'] for r in result['removed']) == ['1003:\tfrom 10.0.3.14 lookup 103 proto static']
    assert '1500:\tfrom 10.0.5.14 lookup 105' in rule_lines(ns)
    result = apply(ns, rules, purge=True, priority_range=RANGE, remove_foreign=True)
    assert result['changed']
    after = rule_lines(ns)
    assert lines_outside(after, 1000, 1999) == lines_outside(before, 1000, 1999)
    assert lines_inside(after, 1000, 1999) == [RULE_1001, RULE_1002]
    assert sorted(r['text'] for r in result['removed']) == [
        '1500:\tfrom 10.0.5.14 lookup 105',
        '1900:\tfrom all to 10.0.9.0/24 lookup 190 proto static']
    assert not apply(ns, rules, purge=True, priority_range=RANGE, remove_foreign=True)['changed']


def test_purge_with_empty_list_empties_the_range(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    ns.ip('rule', 'add', 'pref', '5000', 'from', '10.0.1.14', 'lookup', '200')
    before = rule_lines(ns)
    assert apply(ns, [], purge=True, priority_range=RANGE)['changed']
    after = rule_lines(ns)
    assert lines_inside(after, 1000, 1999) == []
    assert after == lines_outside(before, 1000, 1999)


def test_purge_bounds_are_inclusive(ns):
    ns.ip('rule', 'add', 'pref', '999', 'from', '10.0.9.1', 'lookup', '109')
    ns.ip('rule', 'add', 'pref', '1000', 'from', '10.0.9.2', 'lookup', '109')
    ns.ip('rule', 'add', 'pref', '1999', 'from', '10.0.9.3', 'lookup', '109')
    ns.ip('rule', 'add', 'pref', '2000', 'from', '10.0.9.4', 'lookup', '109')
    apply(ns, [], purge=True, priority_range=RANGE, remove_foreign=True)
    lines = rule_lines(ns)
    assert '999:\tfrom 10.0.9.1 lookup 109' in lines
    assert '2000:\tfrom 10.0.9.4 lookup 109' in lines
    assert not [line for line in lines if '10.0.9.2' in line or '10.0.9.3' in line]


def test_purge_removes_proto_boot_twin_inside_range_only(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [rule(1001, 101, '10.0.1.14'), rule(2001, 101, '10.0.1.14')])
    ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '101', 'proto', 'boot')
    ns.ip('rule', 'add', 'pref', '2001', 'from', '10.0.1.14', 'lookup', '101', 'proto', 'boot')
    assert '1001:\tfrom 10.0.1.14 lookup 101 proto boot' in rule_lines(ns)
    outside_before = lines_outside(rule_lines(ns), 1000, 1999)
    assert not apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE)['changed']
    result = apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE, remove_foreign=True)
    assert result['changed']
    assert [(r['priority'], r['proto']) for r in result['removed']] == [(1001, 'boot')]
    after = rule_lines(ns)
    assert lines_inside(after, 1000, 1999) == [RULE_1001]
    assert lines_outside(after, 1000, 1999) == outside_before
    assert '2001:\tfrom 10.0.1.14 lookup 101 proto boot' in after
    assert '2001:\tfrom 10.0.1.14 lookup 101 proto static' in after
    assert not apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE,
                     remove_foreign=True)['changed']


def test_purge_removes_twin_added_without_proto(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [rule(1001, 101, '10.0.1.14')])
    ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '101')
    result = apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE, remove_foreign=True)
    assert [(r['priority'], r['proto']) for r in result['removed']] == [(1001, 'unspec')]
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001]


def test_purge_removes_hand_added_catch_all_rule_not_ours(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    apply(ns, [rule(1001, 101, '10.0.1.14')])
    ns.ip('rule', 'add', 'pref', '1001', 'lookup', '101')
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001, '1001:\tfrom all lookup 101']
    result = apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE, remove_foreign=True)
    assert [r['text'] for r in result['removed']] == ['1001:\tfrom all lookup 101']
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001]


@pytest.mark.parametrize('action', [['prohibit'], ['unreachable'], ['blackhole'], ['nop'], ['goto', '2000']],
                         ids=lambda action: action[0])
def test_purge_removes_foreign_rules_with_other_actions(ns, action):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.ip('rule', 'add', 'pref', '1500', 'from', '10.0.5.0/24', *action)
    outside = lines_outside(rule_lines(ns), 1000, 1999)
    result = apply(ns, [rule(1001, 101, '10.0.1.14')], purge=True, priority_range=RANGE, remove_foreign=True)
    assert [r['priority'] for r in result['removed']] == [1500]
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001]
    assert lines_outside(rule_lines(ns), 1000, 1999) == outside


@pytest.mark.parametrize('selector', [['not', 'from', '10.0.5.0/24'], ['tos', '0x10'],
                                      ['ipproto', 'udp', 'dport', '4791'], ['fwmark', '0x1/0x1']],
                         ids=lambda selector: selector[0])
def test_purge_removes_foreign_rules_with_other_selectors(ns, selector):
    ns.ip('rule', 'add', 'pref', '1500', *selector, 'lookup', '105')
    ns.ip('rule', 'add', 'pref', '2500', *selector, 'lookup', '105')
    outside = lines_outside(rule_lines(ns), 1000, 1999)
    refused = apply(ns, [], purge=True, exclusive=True, priority_range=RANGE, expect_failure=True)
    assert 'inside the managed priority range' in refused['msg'], refused
    result = apply(ns, [], purge=True, priority_range=RANGE, remove_foreign=True)
    assert [r['priority'] for r in result['removed']] == [1500]
    assert lines_inside(rule_lines(ns), 1000, 1999) == []
    assert lines_outside(rule_lines(ns), 1000, 1999) == outside


@pytest.mark.parametrize('proto', ['boot', 'kernel', 'unspec', 'static', 'dhcp'])
def test_returned_text_of_a_foreign_rule_is_what_ip_prints(ns, proto):
    ns.ip('rule', 'add', 'pref', '1500', 'from', '10.0.5.14', 'lookup', '105', 'proto', proto)
    shown = lines_inside(rule_lines(ns), 1000, 1999)
    result = apply(ns, [], purge=True, priority_range=RANGE, diff=True, remove_foreign=True)
    assert result['diff']['before'].splitlines() == shown
    if proto == 'kernel':
        # The kernel's rules are never removed, not even with remove_foreign.
        assert result['removed'] == [] and lines_inside(rule_lines(ns), 1000, 1999) == shown
    else:
        assert [r['text'] for r in result['removed']] == shown


def test_without_purge_stale_rules_stay(ns):
    rules = two_rails(ns)
    apply(ns, rules + [rule(1003, 103, '10.0.3.14')])
    assert not apply(ns, rules)['changed']
    assert '1003:\tfrom 10.0.3.14 lookup 103 proto static' in rule_lines(ns)


# --- state=absent ----------------------------------------------------------

def test_absent_removes_matching_rules_whatever_their_proto(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    for proto in (['proto', 'boot'], ['proto', 'kernel'], []):
        ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.14', 'lookup', '101', *proto)
    ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.15', 'lookup', '101')
    result = apply(ns, [rule(1001, 101, '10.0.1.14')], state='absent')
    assert result['changed']
    assert sorted(r['proto'] for r in result['removed']) == ['boot', 'kernel', 'static', 'unspec']
    assert result['added'] == []
    assert lines_inside(rule_lines(ns), 1000, 1999) == [
        '1001:\tfrom 10.0.1.15 lookup 101', RULE_1002]
    assert not apply(ns, [rule(1001, 101, '10.0.1.14')], state='absent')['changed']


def test_absent_check_mode_changes_nothing(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    before = ns.dump()
    result = apply(ns, rules, state='absent', check_mode=True)
    assert result['changed']
    assert sorted(r['text'] for r in result['removed']) == [RULE_1001, RULE_1002]
    assert ns.dump() == before


def test_absent_of_missing_rule_is_not_changed(ns):
    before = ns.dump()
    assert not apply(ns, [rule(1001, 101, '10.0.1.14')], state='absent')['changed']
    assert ns.dump() == before


# --- RETURN values ---------------------------------------------------------

def test_return_values_of_an_apply(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    result = apply(ns, [rule(1001, 101, '10.0.1.14'), rule(1200, 300, fwmark='0x10/0xff')])
    expected_1001 = {'family': 'ipv4', 'priority': 1001, 'from': '10.0.1.14/32', 'table': 101,
                     'action': 'lookup', 'proto': 'static', 'text': RULE_1001}
    expected_1200 = {'family': 'ipv4', 'priority': 1200, 'from': 'all', 'table': 300,
                     'action': 'lookup', 'proto': 'static', 'fwmark': '0x10/0xff',
                     'text': '1200:\tfrom all fwmark 0x10/0xff lookup 300 proto static'}
    assert result['added'] == [expected_1001, expected_1200]
    assert result['removed'] == []
    assert result['rules'] == [expected_1001, expected_1200]
    lines = rule_lines(ns)
    for returned in result['rules']:
        assert returned['text'] in lines


def test_return_values_of_a_purge(ns):
    rules = two_rails(ns)
    apply(ns, rules + [rule(1003, 103, '10.0.3.14', to='10.0.0.0/16', iif='ib0')])
    result = apply(ns, rules, purge=True, priority_range=RANGE, remove_foreign=True)
    assert result['added'] == []
    assert result['removed'] == [{
        'family': 'ipv4', 'priority': 1003, 'from': '10.0.3.14/32', 'to': '10.0.0.0/16',
        'iif': 'ib0', 'table': 103, 'action': 'lookup', 'proto': 'static',
        'text': '1003:\tfrom 10.0.3.14 to 10.0.0.0/16 iif ib0 lookup 103 proto static'}]
    assert [r['text'] for r in result['rules']] == [RULE_1001, RULE_1002]


def test_returned_rules_are_the_rules_in_scope(ns):
    rules = two_rails(ns)
    ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.99', 'lookup', '109')
    ns.ip('rule', 'add', 'pref', '5000', 'from', '10.0.1.14', 'lookup', '200')
    result = apply(ns, rules)
    assert sorted(r['text'] for r in result['rules']) == sorted(
        [RULE_1001, '1001:\tfrom 10.0.1.99 lookup 109', RULE_1002])


def test_returned_rules_are_in_kernel_order(ns):
    rules = two_rails(ns)
    ns.ip('rule', 'add', 'pref', '1001', 'from', '10.0.1.99', 'lookup', '109')
    result = apply(ns, rules)
    assert [r['text'] for r in result['rules']] == lines_inside(rule_lines(ns), 1000, 1999)


# --- bad arguments: fail, name the field and value, change nothing ------------

@pytest.mark.parametrize('priority', [0, 32766, 32767])
def test_reserved_priority_is_refused(ns, priority):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(priority, 102, '10.0.2.14')]},
                         'priority %d' % priority, 'reserved')


@pytest.mark.parametrize('priority', [-1, 2 ** 32])
def test_out_of_range_priority_is_refused(ns, priority):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(priority, 102, '10.0.2.14')]},
                         'priority %d' % priority)


@pytest.mark.parametrize('table', [0, 253, 254, 255])
def test_reserved_table_is_refused(ns, table):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, table, '10.0.2.14')]},
                         'table %d' % table, 'reserved')


def test_from_with_host_bits_is_refused(ns):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, 102, '10.0.1.14/24')]},
                         'from', '10.0.1.14/24', 'host bits')


@pytest.mark.parametrize('field', ['from', 'to'])
def test_garbage_address_is_refused(ns, field):
    bad = rule(1002, 102, **{field: '10.0.300.1'})
    assert_fails_cleanly(ns, {'rules': [GOOD, bad]}, field, '10.0.300.1')


def test_family_mismatch_between_from_and_to_is_refused(ns):
    ns.enable_ipv6()
    bad = rule(1002, 102, '10.0.2.14', to='2001:db8::1')
    assert_fails_cleanly(ns, {'rules': [GOOD, bad]}, 'to', '2001:db8::1', 'IPv6')


def test_family_mismatch_with_family_option_is_refused(ns):
    bad = rule(1002, 102, '10.0.2.14', family='ipv6')
    assert_fails_cleanly(ns, {'rules': [GOOD, bad]}, 'from', '10.0.2.14', 'IPv6')


@pytest.mark.parametrize('fwmark, named', [
    ('0xzz', "fwmark '0xzz'"),
    ('mark', "fwmark 'mark'"),
    ('0x10/0', "fwmark mask in '0x10/0'"),
    ('0x10/0xgg', "fwmark mask '0xgg'"),
    ('0x100000000', 'fwmark 4294967296'),
    ('-1', 'fwmark -1'),
])
def test_bad_fwmark_is_refused(ns, fwmark, named):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, 102, fwmark=fwmark)]}, named)


@pytest.mark.parametrize('field', ['iif', 'oif'])
@pytest.mark.parametrize('name', ['eth0/rm', 'eth0 rm', 'eth0:1', 'a' * 16, '..'])
def test_bad_interface_name_is_refused(ns, field, name):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, 102, **{field: name})]}, field, repr(name))


@pytest.mark.parametrize('field', ['iif', 'oif'])
def test_interface_name_with_shell_metacharacter_is_refused(ns, field):
    assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, 102, **{field: 'eth0;rm'})]}, field, 'eth0;rm')


def test_duplicate_rules_are_refused(ns):
    result = assert_fails_cleanly(ns, {'rules': [GOOD, rule(1002, 102, '10.0.2.14'), dict(GOOD)]},
                                  'rules[2]', 'duplicates rules[0]')
    assert '10.0.1.14' in result['msg']


def test_duplicate_rules_spelled_differently_are_refused(ns):
    twin = rule(1001, 101, '10.0.1.14/32')
    assert_fails_cleanly(ns, {'rules': [GOOD, twin]}, 'rules[1]', 'duplicates rules[0]')


def test_purge_without_priority_range_is_refused(ns):
    assert_fails_cleanly(ns, {'rules': [GOOD], 'purge': True}, 'priority_range')


@pytest.mark.parametrize('end', [32766, 32767, 40000])
def test_priority_range_over_kernel_rules_is_refused(ns, end):
    reserved = '32766' if end != 32767 else '32767'
    args = {'rules': [GOOD], 'purge': True, 'priority_range': {'start': 1000, 'end': end}}
    assert_fails_cleanly(ns, args, 'priority_range', reserved)


def test_priority_range_start_after_end_is_refused(ns):
    args = {'rules': [GOOD], 'purge': True, 'priority_range': {'start': 2000, 'end': 1000}}
    assert_fails_cleanly(ns, args, 'priority_range', 'start 2000', 'end 1000')


def test_priority_range_starting_at_zero_is_refused(ns):
    args = {'rules': [GOOD], 'purge': True, 'priority_range': {'start': 0, 'end': 1999}}
    assert_fails_cleanly(ns, args, 'priority_range', 'start 0')


def test_purge_with_state_absent_is_refused(ns):
    args = {'rules': [GOOD], 'purge': True, 'priority_range': RANGE, 'state': 'absent'}
    assert_fails_cleanly(ns, args, 'purge', 'state')


def test_unknown_suboption_is_refused(ns):
    bad = rule(1002, 102, '10.0.2.14', gateway='10.0.2.1')
    assert_fails_cleanly(ns, {'rules': [GOOD, bad]}, 'gateway')


def test_missing_table_is_refused(ns):
    assert_fails_cleanly(ns, {'rules': [GOOD, {'priority': 1002, 'from': '10.0.2.14'}]}, 'table')


def test_refused_call_leaves_existing_rules_alone(ns):
    rules = two_rails(ns)
    apply(ns, rules)
    args = {'rules': [rule(1003, 103, '10.0.3.14'), rule(1004, 254, '10.0.4.14')],
            'purge': True, 'priority_range': RANGE}
    assert_fails_cleanly(ns, args, 'table 254')
    assert lines_inside(rule_lines(ns), 1000, 1999) == [RULE_1001, RULE_1002]
