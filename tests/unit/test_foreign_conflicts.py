"""Unit tests for rules.foreign_conflicts: what rail_rule with exclusive=true must not run over."""

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule, foreign_conflicts

STATIC, BOOT, UNSPEC = 4, 3, 0
RANGE = (1000, 1999)

# What the planner asks for on a two-rail textbook host.
DESIRED = [Rule(family=4, priority=1001, src='10.0.1.14/32', table=101),
           Rule(family=4, priority=1002, src='10.0.2.14/32', table=102)]
# What the kernel always holds.
KERNEL = [Rule(family=4, priority=0, table=255, proto=2),
          Rule(family=4, priority=32766, table=254, proto=2),
          Rule(family=4, priority=32767, table=253, proto=2)]


def rule(priority, table, src='', proto=STATIC, action='lookup', **kwargs):
    return Rule(family=4, priority=priority, src=src, table=table, action=action, proto=proto, **kwargs)


@pytest.mark.parametrize('priority_range', [RANGE, None])
def test_nothing_in_the_way(priority_range):
    assert foreign_conflicts(KERNEL + DESIRED, DESIRED, priority_range) == []
    assert foreign_conflicts(KERNEL, DESIRED, priority_range) == []


@pytest.mark.parametrize('proto, name', [(BOOT, 'boot'), (UNSPEC, 'unspec')])
@pytest.mark.parametrize('priority_range', [RANGE, None])
def test_foreign_rule_on_a_priority_we_use(proto, name, priority_range):
    foreign = rule(1001, 300, src='10.0.9.0/24', proto=proto)
    problems = foreign_conflicts(KERNEL + [foreign] + DESIRED, DESIRED, priority_range)
    assert len(problems) == 1
    assert '1001' in problems[0] and '10.0.9.0/24' in problems[0] and 'lookup 300' in problems[0]
    assert name in problems[0]


def test_foreign_rule_identical_to_ours_but_not_static():
    # `ip rule add priority 1001 from 10.0.1.14 lookup 101` (proto boot): same selector, not ours.
    twin = rule(1001, 101, src='10.0.1.14/32', proto=BOOT)
    problems = foreign_conflicts([twin], DESIRED, RANGE)
    assert len(problems) == 1
    assert '10.0.1.14' in problems[0] and 'boot' in problems[0]


def test_our_own_static_rule_on_our_priority_is_no_conflict():
    # A stale rule of ours (proto static) on a priority we use: purged, not refused.
    stale = rule(1001, 105, src='10.0.5.14/32')
    assert foreign_conflicts(KERNEL + [stale] + DESIRED, DESIRED, RANGE) == []


def test_stale_rule_made_like_ours_inside_range_is_no_conflict():
    # Inside the managed range, on another priority, in our shape: purge takes care of it.
    assert foreign_conflicts([rule(1500, 101, src='10.0.9.9/32')], DESIRED, RANGE) == []


@pytest.mark.parametrize('foreign', [
    rule(1500, 101, src='10.0.9.9/32', proto=BOOT),
    rule(1500, 300, fwmark=0x10, fwmask=0xFFFFFFFF),
    rule(1500, 300, src='10.0.9.9/32', iif='eth0'),
    rule(1500, 300),
    Rule(family=6, priority=1500, src='2001:db8::/64', table=300),
], ids=['proto-boot', 'fwmark', 'iif', 'from-all', 'ipv6'])
def test_foreign_rule_inside_range_is_refused_unless_removal_is_allowed(foreign):
    problems = foreign_conflicts(KERNEL + [foreign] + DESIRED, DESIRED, RANGE)
    assert len(problems) == 1
    assert foreign.render() in problems[0] and '1000-1999' in problems[0]
    assert 'remove_foreign' in problems[0]
    assert foreign_conflicts(KERNEL + [foreign] + DESIRED, DESIRED, RANGE, remove_foreign=True) == []


def test_kernel_rule_inside_range_is_no_conflict():
    # `1000: from all lookup [l3mdev-table] proto kernel`, made when a VRF exists.
    l3mdev = Rule(family=4, priority=1000, table=0, proto=2, extra=(('FRA_L3MDEV', '1'),))
    assert foreign_conflicts(KERNEL + [l3mdev] + DESIRED, DESIRED, RANGE) == []


def test_ipv6_rule_outside_range_on_our_table_number_is_no_conflict():
    # Tables hold routes per family: an IPv6 rule looking up 101 does not use our IPv4 routes.
    ipv6 = Rule(family=6, priority=500, src='2001:db8::/64', table=101)
    assert foreign_conflicts(KERNEL + [ipv6] + DESIRED, DESIRED, RANGE) == []


@pytest.mark.parametrize('proto', [STATIC, BOOT, UNSPEC])
def test_rule_outside_the_range_looking_up_our_table(proto):
    outside = rule(500, 102, src='192.168.7.0/24', proto=proto)
    problems = foreign_conflicts(KERNEL + [outside] + DESIRED, DESIRED, RANGE)
    assert len(problems) == 1
    assert 'table 102' in problems[0] and '500' in problems[0] and '192.168.7.0/24' in problems[0]


def test_rule_inside_the_range_looking_up_our_table_is_no_conflict():
    inside = rule(1999, 102, src='192.168.7.0/24')
    assert foreign_conflicts(KERNEL + [inside] + DESIRED, DESIRED, RANGE) == []


def test_without_a_range_only_our_priorities_are_managed():
    other = rule(1500, 101, src='192.168.7.0/24', proto=BOOT)
    problems = foreign_conflicts([other], DESIRED, None)
    assert len(problems) == 1
    assert 'table 101' in problems[0] and '1500' in problems[0]


@pytest.mark.parametrize('action', ['blackhole', 'unreachable', 'prohibit', 'nop'])
def test_non_lookup_rules_are_ignored_for_the_table_check(action):
    # Non-lookup rules carry table 0 in the kernel; even a stray table id must not count.
    for table in (0, 101):
        assert foreign_conflicts([rule(500, table, action=action, proto=BOOT)], DESIRED, RANGE) == []


def test_rule_outside_the_range_looking_up_another_table_is_no_conflict():
    assert foreign_conflicts([rule(500, 200, src='192.168.7.0/24', proto=BOOT)], DESIRED, RANGE) == []


def test_every_conflict_is_reported():
    current = KERNEL + [rule(1001, 300, proto=BOOT), rule(1002, 301, proto=UNSPEC), rule(100, 101)] + DESIRED
    problems = foreign_conflicts(current, DESIRED, RANGE)
    assert len(problems) == 3
    assert 'priority 1001' in problems[0]
    assert 'priority 1002' in problems[1]
    assert 'table 101' in problems[2]
