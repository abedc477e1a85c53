"""Faults and drift on a converged lab host: each is healed by a re-run of site.yml or refused, never more.

One textbook lab host with three rails is converged with playbooks/site.yml,
then given state the role does not own and must leave alone (a rule outside
the managed range and its table, a route in main, sysctls the plan does not
name). The full dump of that host (every rule, every table, net.ipv4.conf and
the persisted files with their stat) is the reference. Each case injects one
fault or drift and re-runs site.yml:

- healed: the run succeeds and changes only the tasks that own the drift, the
  host is exactly the reference again (foreign state included, files not even
  rewritten), and a further run changes nothing;
- refused: rail_guard fails the host before the first change with a message
  naming the device, and the host is exactly as the fault left it; once the
  fault is repaired a run converges it again.

Fourteen faults and drifts (FAULT_COUNT): ten healed, four refused. One more,
all.arp_ignore=8, which the plan does not own, is caught by the audit after the
apply and rolled back.
The cases share the host: each starts by making sure it is the reference (a
run of site.yml when an earlier case left it otherwise).
"""

import os

import pytest

from lab import roce_lab
from roleruns import (
    PREFLIGHT_TASK, REASON_TASK, RULE_TASK, SYSCTL_TASK, TABLE_TASK, assert_ok, assert_proven, assert_same,
    full_dump, inventory, rules_at, site, table)

RAILS = 3
HOST = 'fz%d' % (os.getpid() % 10000)

# State the role does not own; every case checks that it survives untouched.
FOREIGN_RULES = (('pref', '500', 'from', '192.0.2.0/24', 'lookup', '300'),
                 ('pref', '2500', 'to', '198.51.100.0/24', 'lookup', '300'))
FOREIGN_ROUTES = (('192.0.2.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '300'),
                  ('198.51.100.0/24', 'via', '10.0.1.1', 'dev', 'ib0'))
FOREIGN_SYSCTLS = {'net.ipv4.conf.all.log_martians': 1, 'net.ipv4.conf.ib1.accept_redirects': 0,
                   'net.ipv4.conf.lo.arp_announce': 1}


class Host:
    """The shared lab host, its inventory and the reference dump."""

    def __init__(self, lab, tmp_path):
        self.lab, self.name, self.tmp_path = lab, lab['host'], tmp_path
        self.host_vars = inventory(lab)
        self.reference = None

    def run(self):
        return site(self.lab, self.tmp_path, self.host_vars)

    def dump(self):
        return full_dump(self.lab)

    def ensure_reference(self):
        """Bring the host back to the reference when an earlier case left it otherwise."""
        if self.dump() != self.reference:
            assert_ok(self.run())
            assert_same(self.reference, self.dump(), 'when putting the host back to the reference')


@pytest.fixture(scope='module')
def host(tmp_path_factory):
    roce_lab.destroy_host(HOST)
    lab = roce_lab.create_host(HOST, 'textbook', RAILS, owner_pid=os.getpid())
    try:
        shared = Host(lab, tmp_path_factory.mktemp('faults'))
        assert_ok(shared.run())
        for rule in FOREIGN_RULES:
            roce_lab.ip(HOST, 'rule', 'add', *rule)
        for route in FOREIGN_ROUTES:
            roce_lab.ip(HOST, 'route', 'add', *route)
        roce_lab.write_sysctls(HOST, FOREIGN_SYSCTLS)
        assert len(rules_at(lab, 500, 2500)) == 2 and len(table(lab, 300).splitlines()) == 1
        assert_ok(shared.run(), changed=0)
        shared.reference = shared.dump()
        assert_proven(lab)
        yield shared
    finally:
        roce_lab.destroy_host(HOST)


# --- drift a re-run heals ----------------------------------------------------

def _rule_deleted(name):
    roce_lab.ip(name, 'rule', 'del', 'pref', '1002')


def _rule_into_wrong_table(name):
    # What NetworkManager or an earlier version could leave: proto static, on a rail's priority.
    roce_lab.ip(name, 'rule', 'del', 'pref', '1002')
    roce_lab.ip(name, 'rule', 'add', 'pref', '1002', 'from', '10.0.2.14', 'lookup', '101', 'proto', 'static')


def _stale_rule_into_rail_table(name):
    # Made like ours (what an earlier plan or NetworkManager leaves): the purge takes it.
    roce_lab.ip(name, 'rule', 'add', 'pref', '1500', 'from', '10.0.3.0/24', 'lookup', '103', 'proto', 'static')


def _stale_rule_into_unused_table(name):
    # Left by a rail that is gone: its rule and its table, which must be emptied too.
    roce_lab.ip(name, 'rule', 'add', 'pref', '1004', 'from', '10.0.4.14', 'lookup', '104', 'proto', 'static')
    roce_lab.ip(name, 'route', 'add', '10.0.4.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '104')
    roce_lab.ip(name, 'route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '104')


def _stale_rule_into_foreign_table(name):
    # Its rule goes; table 300 stays, as a rule outside the range looks it up.
    roce_lab.ip(name, 'rule', 'add', 'pref', '1600', 'from', '10.0.2.0/24', 'lookup', '300', 'proto', 'static')


def _route_through_wrong_nic(name):
    roce_lab.ip(name, 'route', 'replace', 'default', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '102',
                'proto', 'static', 'metric', '100')


def _route_deleted(name):
    roce_lab.ip(name, 'route', 'del', '10.0.3.0/24', 'table', '103')


def _extra_route(name):
    roce_lab.ip(name, 'route', 'add', '203.0.113.0/24', 'via', '10.0.1.1', 'dev', 'ib0', 'table', '101')


def _sysctl_flipped_on_all(name):
    roce_lab.write_sysctls(name, {'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.all.accept_local': 0})


def _sysctl_flipped_on_rail(name):
    roce_lab.write_sysctls(name, {'net.ipv4.conf.ib1.arp_ignore': 0, 'net.ipv4.conf.ib1.rp_filter': 1})


HEALED = {
    # case: (the drift, the tasks that must report changed when healing it)
    'rule_deleted': (_rule_deleted, [RULE_TASK]),
    'rule_into_wrong_table': (_rule_into_wrong_table, [RULE_TASK]),
    'stale_rule_into_rail_table': (_stale_rule_into_rail_table, [RULE_TASK]),
    'stale_rule_into_unused_table': (_stale_rule_into_unused_table, [RULE_TASK, TABLE_TASK]),
    'stale_rule_into_foreign_table': (_stale_rule_into_foreign_table, [RULE_TASK]),
    'route_through_wrong_nic': (_route_through_wrong_nic, [TABLE_TASK]),
    'route_deleted': (_route_deleted, [TABLE_TASK]),
    'extra_route_in_rail_table': (_extra_route, [TABLE_TASK]),
    'sysctl_flipped_on_all': (_sysctl_flipped_on_all, [SYSCTL_TASK]),
    'sysctl_flipped_on_rail': (_sysctl_flipped_on_rail, [SYSCTL_TASK]),
}


@pytest.mark.parametrize('case', list(HEALED))
def test_drift_is_healed_and_nothing_else_changes(host, case):
    host.ensure_reference()
    drift, tasks = HEALED[case]
    drift(host.name)
    assert host.dump() != host.reference, 'the drift %s changed nothing' % case

    heal = host.run()
    assert_ok(heal)
    assert heal.changed_tasks() == sorted(tasks), heal.output
    assert_same(host.reference, host.dump(), 'after healing %s (compared with the converged host)' % case)
    assert_ok(host.run(), changed=0)


# --- faults the role refuses ------------------------------------------------

def _link_down(name):
    roce_lab.ip(name, 'link', 'set', 'ib1', 'down')


def _link_up(lab):
    roce_lab.ip(lab['host'], 'link', 'set', 'ib1', 'up')


def _nic_missing(name):
    roce_lab.ip(name, 'link', 'del', 'ib2')


def _nic_back(lab):
    """ib2 and its leaf side made again as the lab makes them."""
    rail = lab['rails'][2]
    roce_lab.ip_batch(lab['host'], ['link add ib2 type veth peer name to-ib2 netns %s' % rail['leaf'],
                                    'addr add %s dev ib2' % rail['address'], 'link set ib2 up'])
    roce_lab.ip_batch(rail['leaf'], ['addr add %s/24 dev to-ib2' % rail['gateway'], 'link set to-ib2 up'])


def _nic_renamed(name):
    roce_lab.ip(name, 'link', 'set', 'ib2', 'name', 'ib20')


def _name_back(lab):
    roce_lab.ip(lab['host'], 'link', 'set', 'ib20', 'name', 'ib2')


def _foreign_rule_in_range(name):
    roce_lab.ip(name, 'rule', 'add', 'pref', '1700', 'fwmark', '0x10', 'lookup', '300', 'proto', 'boot')


def _foreign_rule_gone(lab):
    roce_lab.ip(lab['host'], 'rule', 'del', 'pref', '1700')


REFUSED = {
    # case: (the fault, its repair, words the message of rail_guard must hold)
    'foreign_rule_in_range': (_foreign_rule_in_range, _foreign_rule_gone,
                              ['rule "1700:\tfrom all fwmark 0x10 lookup 300 proto boot" is inside the managed '
                               'priority range 1001-1999']),
    'rail_link_down': (_link_down, _link_up,
                       ['table 102 route 10.0.2.0/24: dev ib1 is down']),
    'rail_nic_missing': (_nic_missing, _nic_back,
                         ['rail ib2: the host has no NIC ib2']),
    'rail_nic_renamed': (_nic_renamed, _name_back,
                         ['rail ib2: the host has no NIC ib2', 'its address 10.0.3.14 is on ib20 now']),
}

# Faults and drifts injected by the cases above (the finding below adds one more).
FAULT_COUNT = len(HEALED) + len(REFUSED)


@pytest.mark.parametrize('case', list(REFUSED))
def test_fault_is_refused_and_nothing_changes(host, case):
    host.ensure_reference()
    fault, repair, words = REFUSED[case]
    fault(host.name)
    try:
        faulted = host.dump()
        assert faulted != host.reference, 'the fault %s changed nothing' % case

        run = host.run()
        assert run.proc.returncode != 0 and run.recap['failed'] == 1, run.output
        assert run.recap['changed'] == 0 and run.recap['rescued'] == 0, run.output
        assert list(run.fatal) == [PREFLIGHT_TASK], run.output
        message = run.fatal[PREFLIGHT_TASK]['msg']
        assert message.startswith('nothing was changed: '), message
        for word in words:
            assert word in message, '%r not in %r' % (word, message)
        assert TABLE_TASK not in run.tasks, run.output
        assert_same(faulted, host.dump(), 'although the run was refused (%s)' % case)
    finally:
        repair(host.lab)
        roce_lab.wait_links_up(host.lab)

    healed = host.run()
    assert_ok(healed)
    assert_same(host.reference, host.dump(), 'after repairing %s and a run' % case)
    assert_proven(host.lab)


# --- drift outside the plan, caught by the verification ---------------------

def test_arp_ignore_8_on_all_is_rolled_back_and_refused(host):
    """all.arp_ignore=8 silences ARP on every rail (max(all, dev)); the plan does not own the key."""
    host.ensure_reference()
    roce_lab.write_sysctls(host.name, {'net.ipv4.conf.all.arp_ignore': 8})
    try:
        roce_lab.ip(host.name, 'rule', 'del', 'pref', '1002')      # something for the run to change
        faulted = host.dump()
        run = host.run()
        assert run.proc.returncode != 0 and run.recap['rescued'] == 1, run.output
        message = ' '.join(run.fatal[REASON_TASK]['msg'])
        assert message.startswith('the host was put back as it was before the run'), message
        assert 'ib1 answers no ARP request at all (arp_ignore 8, from net.ipv4.conf.all' in message, message
        assert_same(faulted, host.dump(), 'although the run was rolled back')
    finally:
        roce_lab.write_sysctls(host.name, {'net.ipv4.conf.all.arp_ignore': 0})
