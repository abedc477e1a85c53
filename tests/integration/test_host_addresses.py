"""The host's own addresses outside its rails, and rails the network stacks cannot hold.

Seen: a VF source prefix (sources: [192.168.0.0/16]) covering the address of the
management NIC mg0 (192.168.50.5) passed the guard and the audit; the rule sent
mg0's replies into the rail table and the management peer's pings went from 2/2
to 0/2. Every address of every NIC that is not a rail is the host's: a rail
rule capturing one is refused before the first change, naming the rule, the
address and the NIC.

Seen too: a rail whose link type is neither Ethernet nor InfiniBand (here a tun
device, ARPHRD_NONE) was refused only by the persist step, after the live apply.
It is refused in the preflight, before any change.
"""

import os

import pytest

from lab import roce_lab
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import
from roleruns import (PREFLIGHT_TASK, RULE_TASK, SYSCTL_TASK, TABLE_TASK, assert_ok, assert_same, full_dump,
                      inventory, site)

MG_ADDRESS = '192.168.50.5'
MG_PEER_ADDRESS = '192.168.50.1'
APPLY_TASKS = (TABLE_TASK, RULE_TASK, SYSCTL_TASK)


@pytest.fixture
def managed_host(lab_host):
    """A two-rail lab host with a non-rail NIC mg0 (192.168.50.5/24) wired to a management peer namespace."""
    lab = lab_host(2)
    peer = 'mgp%d' % (os.getpid() % 100000)
    roce_lab.run(['ip', 'netns', 'del', peer], check=False)
    roce_lab.run(['ip', 'netns', 'add', peer])
    try:
        roce_lab.ip(lab['host'], 'link', 'add', 'mg0', 'type', 'veth', 'peer', 'name', 'mgp', 'netns', peer)
        roce_lab.ip(lab['host'], 'addr', 'add', MG_ADDRESS + '/24', 'dev', 'mg0')
        roce_lab.ip(lab['host'], 'link', 'set', 'mg0', 'up')
        roce_lab.ip(peer, 'addr', 'add', MG_PEER_ADDRESS + '/24', 'dev', 'mgp')
        roce_lab.ip(peer, 'link', 'set', 'mgp', 'up')
        roce_lab.ip(peer, 'link', 'set', 'lo', 'up')
        assert roce_lab.ping(peer, MG_ADDRESS, count=2) == (2, 2), 'the management peer cannot reach mg0'
        yield lab, peer
    finally:
        roce_lab.run(['ip', 'netns', 'del', peer], check=False)


def with_sources(lab, sources):
    host_vars = inventory(lab)
    host_vars['source_routing_rails'][0]['sources'] = sources
    return host_vars


def assert_refused_in_preflight(run, *words):
    assert run.proc.returncode != 0 and PREFLIGHT_TASK in run.fatal, run.output
    message = run.fatal[PREFLIGHT_TASK]['msg']
    for word in words:
        assert word in message, message
    assert run.recap['changed'] == 0, run.output
    assert not [task for task in APPLY_TASKS if run.tasks.get(task) not in (None, 'skipping')], run.tasks


def test_a_source_prefix_covering_a_non_rail_nic_is_refused(managed_host, tmp_path):
    lab, peer = managed_host
    before = full_dump(lab)
    run = site(lab, tmp_path, with_sources(lab, ['192.168.0.0/16']))
    assert_refused_in_preflight(
        run, 'rule "1001:\tfrom 192.168.0.0/16 lookup 101 proto static" (rail ib0) would capture 192.168.50.5, '
             'the address of mg0, a NIC that is not a rail')
    assert_same(before, full_dump(lab), 'although the preflight refused the plan')
    assert roce_lab.ping(peer, MG_ADDRESS, count=2) == (2, 2)

    # A source that does not cover mg0's address converges, and the management path still answers.
    assert_ok(site(lab, tmp_path, with_sources(lab, ['192.168.60.0/24'])))
    assert 'from 192.168.60.0/24 lookup 101' in roce_lab.ip(lab['host'], '-4', 'rule')
    assert roce_lab.ping(peer, MG_ADDRESS, count=2) == (2, 2)


def test_a_source_in_the_loopback_prefix_is_refused(lab_host, tmp_path):
    lab = lab_host(2)
    before = full_dump(lab)
    host_vars = inventory(lab)
    host_vars['source_routing_rails'][1]['sources'] = ['127.0.0.0/16']
    run = site(lab, tmp_path, host_vars)
    assert_refused_in_preflight(run, 'from 127.0.0.0/16 lookup 102', '(rail ib1) would capture 127.0.0.0/8, '
                                'the address of lo')
    assert_same(before, full_dump(lab), 'although the preflight refused the plan')


def test_a_rail_neither_ethernet_nor_infiniband_is_refused_in_preflight(lab_host, tmp_path):
    lab = lab_host(2)
    roce_lab.ns_exec(lab['host'], 'ip', 'tuntap', 'add', 'mode', 'tun', 'name', 'ib2')
    roce_lab.ip(lab['host'], 'addr', 'add', '10.0.3.14/24', 'dev', 'ib2')
    roce_lab.ip(lab['host'], 'link', 'set', 'ib2', 'up')
    assert roce_lab.ns_exec(lab['host'], 'cat', '/sys/class/net/ib2/type').strip() == '65534'
    before = full_dump(lab)
    host_vars = inventory(lab)
    host_vars['source_routing_rails'].append({'device': 'ib2', 'address': '10.0.3.14/24'})
    run = site(lab, tmp_path, host_vars)
    assert_refused_in_preflight(run, 'rail ib2: link type 65534 is neither Ethernet (1) nor InfiniBand (32)')
    assert_same(before, full_dump(lab), 'although the preflight refused the rail')
