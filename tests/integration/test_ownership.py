"""The role removes only what it made: kernel rules, foreign rules in its range and tables per family.

One textbook lab host with two rails (persist none: this is about the live
rules and tables). Every case compares a full dump (ip -d rule for IPv4 and
IPv6, every IPv4 table, net.ipv4.conf, the persisted files) before and after.

- The kernel's l3mdev rule (what a VRF puts at priority 1000, IPv4 and IPv6)
  is left alone; an IPv6 rule outside the range that looks up table 101 is
  left alone and does not stop the IPv4 plan.
- Rules inside the managed range that were not made like the role's
  (`proto boot`, a fwmark, an IPv6 rule) fail the host in preflight, naming
  each, and nothing changes; with source_routing_remove_foreign_rules the run
  removes exactly those rules and leaves the tables they looked up, including
  the IPv4 routes of a table only the IPv6 rule used.
"""

import pytest

from lab import roce_lab
# lab_host is a fixture: imported so that pytest finds it here, used as an argument only.
from roleruns import (  # noqa: F401 pylint: disable=unused-import
    PREFLIGHT_TASK, assert_ok, assert_proven, assert_same, full_dump, inventory, lab_host, site)

KERNEL_RULES = (('-4', 'pref', '1000', 'l3mdev', 'proto', 'kernel'),
                ('-6', 'pref', '1000', 'l3mdev', 'proto', 'kernel'))
IPV6_ON_TABLE_101 = ('-6', 'pref', '500', 'from', '2001:db8::/64', 'lookup', '101')
FOREIGN_IN_RANGE = {
    '1500:\tfrom 10.9.9.9 lookup 300 proto boot': ('-4', 'pref', '1500', 'from', '10.9.9.9', 'lookup', '300',
                                                   'proto', 'boot'),
    '1600:\tfrom all fwmark 0x10 lookup 300': ('-4', 'pref', '1600', 'fwmark', '0x10', 'lookup', '300'),
    '[ipv6] 1700:\tfrom 2001:db8:1::/64 lookup 150': ('-6', 'pref', '1700', 'from', '2001:db8:1::/64',
                                                      'lookup', '150'),
}
FOREIGN_ROUTES = (('192.0.2.0/24', 'dev', 'ib0', 'table', '150'),
                  ('198.51.100.0/24', 'dev', 'ib1', 'table', '300'))


def rule_lines(dump, family):
    return dump['ip %s rule' % family].splitlines()


def without(dump, family, *needles):
    """The dump with the rule lines of `family` holding any of the needles taken out."""
    out = dict(dump)
    key = 'ip %s rule' % family
    out[key] = ''.join(line + '\n' for line in dump[key].splitlines()
                       if not any(needle in line for needle in needles))
    return out


@pytest.fixture
def host(lab_host):
    lab = lab_host(2)
    for argv in KERNEL_RULES:
        roce_lab.ip(lab['host'], argv[0], 'rule', 'add', *argv[1:])
    return lab


def test_kernel_rules_are_left_alone(host, tmp_path):
    host_vars = inventory(host, source_routing_persist='none')
    run = site(host, tmp_path, host_vars)
    assert_ok(run)
    assert_proven(host)
    after = full_dump(host)
    for family in ('-4', '-6'):
        assert any(line.startswith('1000:') and 'l3mdev-table' in line and 'proto kernel' in line
                   for line in rule_lines(after, family)), after['ip %s rule' % family]
    assert any(line.startswith('1001:') and 'lookup 101' in line for line in rule_lines(after, '-4'))
    assert_ok(site(host, tmp_path, host_vars), changed=0)
    assert_same(after, full_dump(host), 'a second run')


def test_foreign_rules_in_the_range_are_refused_or_removed_when_allowed(host, tmp_path):
    # An IPv6 rule outside the range on table 101 does not stop the IPv4 plan using table 101.
    roce_lab.ip(host['host'], IPV6_ON_TABLE_101[0], 'rule', 'add', *IPV6_ON_TABLE_101[1:])
    host_vars = inventory(host, source_routing_persist='none')
    assert_ok(site(host, tmp_path, host_vars))
    assert any(line.startswith('500:') and 'lookup 101' in line for line in rule_lines(full_dump(host), '-6'))
    for argv in FOREIGN_IN_RANGE.values():
        roce_lab.ip(host['host'], argv[0], 'rule', 'add', *argv[1:])
    for route in FOREIGN_ROUTES:
        roce_lab.ip(host['host'], '-4', 'route', 'add', *route)
    before = full_dump(host)

    refused = site(host, tmp_path, host_vars)
    assert refused.proc.returncode != 0 and refused.tasks.get(PREFLIGHT_TASK) == 'fatal', refused.output
    message = refused.fatal[PREFLIGHT_TASK]['msg']
    assert message.startswith('nothing was changed'), message
    for text in FOREIGN_IN_RANGE:
        assert '"%s"' % text in message, (text, message)
    assert 'source_routing_remove_foreign_rules' in message
    assert_same(before, full_dump(host), 'a refused run')

    allowed = dict(host_vars, source_routing_remove_foreign_rules=True)
    run = site(host, tmp_path, allowed)
    assert_ok(run)
    expected = without(before, '-4', '1500:', '1600:')
    expected = without(expected, '-6', '1700:')
    after = full_dump(host)
    assert_same(expected, after, 'foreign rules removed on request')
    # The tables they looked up keep their routes: 150 (only the IPv6 rule used it) and 300.
    assert '192.0.2.0/24 dev ib0 table 150' in after['ip -4 route show table all']
    assert '198.51.100.0/24 dev ib1 table 300' in after['ip -4 route show table all']
    assert_proven(host)
