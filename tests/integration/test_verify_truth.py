"""Verification tells the truth about a rail's gateway: a dead or local gateway never passes.

A gateway counts as alive only on an answer obtained during the run: a fresh ARP resolution and an
ICMP echo reply from that gateway, to the rail's address, arriving on the rail. A neighbour entry
the kernel still holds from earlier traffic is no evidence, and neither is the host's own answer.

- A leaf loses its gateway address while the host still has the gateway in its neighbour cache
  (REACHABLE or STALE): the run must fail its verification and put the host back as it was.
- A rail's gateway is another rail's address (the shared layout, ib1's own): the plan refuses it.
- A rail's gateway is an address of a NIC that is not a rail: rail_guard refuses it before any
  change, naming the rail, the gateway and the NIC; and rail_audit's probe of such a gateway, set up
  by hand, does not count the host's own reply.

Each run compares a full dump of the host (rules, every table, net.ipv4.conf, persisted files)
before and after. Traffic goes only to the lab host's own leaves.
"""

import pytest

from lab import roce_lab
# lab_host is a fixture: imported so that pytest finds it here, used as an argument only.
from roleruns import (  # noqa: F401 pylint: disable=unused-import
    AUDIT_TASK, PLAN_TASK, PREFLIGHT_TASK, REASON_TASK, RESTORE_TASK, TABLE_TASK, assert_same, full_dump,
    inventory, lab_host, site)
from test_rail_audit import run_module

CACHED = ('REACHABLE', 'STALE', 'DELAY', 'PROBE')


def neighbour_state(host, device, address):
    words = roce_lab.ip(host, 'neigh', 'show', address, 'dev', device).split()
    return words[-1] if words else None


def assert_refused(run, task, words):
    assert run.proc.returncode != 0 and run.recap['failed'] == 1, run.output
    assert run.recap['changed'] == 0 and run.recap['rescued'] == 0, run.output
    assert list(run.fatal) == [task], run.output
    message = run.fatal[task]['msg']
    for word in words:
        assert word in message, '%r not in %r' % (word, message)
    assert TABLE_TASK not in run.tasks, run.output


def _address_removed(description, rail):
    """The leaf loses the gateway address (and the subnet with it)."""
    roce_lab.ip(rail['leaf'], 'addr', 'del', '%s/24' % rail['gateway'], 'dev', 'to-' + rail['device'])


def _address_moved_behind_the_leaf(description, rail):
    """The leaf keeps the subnet on another address; the gateway's address now lives on the peer.

    Nothing on the rail's segment answers ARP for the gateway any more, but an echo sent to the
    leaf's MAC (the cached entry) is forwarded to the peer, which replies from the gateway address:
    a reply from that address, not from the gateway.
    """
    _leaf_side, peer_side, _plen = roce_lab._transit(2)   # pylint: disable=protected-access
    port = 'to-' + rail['device']
    roce_lab.ip_batch(rail['leaf'], ['addr add 10.0.2.2/24 dev %s' % port,
                                     'addr del %s/24 dev %s' % (rail['gateway'], port),
                                     'route add %s/32 via %s dev to-peer' % (rail['gateway'], peer_side)])
    roce_lab.ip(roce_lab.peer_name(description['host']), 'addr', 'add', '%s/32' % rail['gateway'], 'dev', 'lo')


GONE = {'address_removed_from_the_leaf': _address_removed,
        'address_answered_from_behind_the_leaf': _address_moved_behind_the_leaf}


@pytest.mark.parametrize('case', list(GONE))
def test_a_gone_gateway_still_in_the_neighbour_cache_fails_verification_and_is_rolled_back(lab_host, tmp_path, case):
    """ib1's gateway left its leaf a moment ago; the host's neighbour entry for it is still cached."""
    description = lab_host(2, 'textbook')
    host = description['host']
    rail = description['rails'][1]
    # One exchange with the gateway, then the gateway goes: its entry stays REACHABLE for a while.
    assert roce_lab.ping(host, rail['gateway'], roce_lab.rail_ip(rail), count=1) == (1, 1)
    GONE[case](description, rail)
    assert neighbour_state(host, 'ib1', rail['gateway']) in CACHED
    before = full_dump(description)

    run = site(description, tmp_path, inventory(description))
    assert run.proc.returncode != 0 and run.recap['rescued'] == 1, run.output
    assert run.tasks.get(RESTORE_TASK) == 'changed' and AUDIT_TASK in run.tasks, run.output
    message = ' '.join(run.fatal[REASON_TASK]['msg'])
    assert message.startswith('the host was put back as it was before the run'), message
    assert 'gateway 10.0.2.1 is not reachable from 10.0.2.14 on ib1' in message, message
    assert 'ib0' not in message, message
    assert_same(before, full_dump(description), 'although the run was rolled back')
    # Nothing on the rail's segment answers for its gateway: the run was right not to call it verified.
    roce_lab.ip(host, 'neigh', 'flush', 'dev', 'ib1')
    assert roce_lab.ping(host, rail['gateway'], roce_lab.rail_ip(rail), count=1)[1] == 0


def test_a_gateway_that_is_another_rails_address_is_refused_by_the_plan(lab_host, tmp_path):
    """The shared layout: ib0's gateway set to 10.0.1.16, which is ib1's own address."""
    description = lab_host(2, 'shared')
    host_vars = inventory(description)
    host_vars['source_routing_rails'][0]['gateway'] = '10.0.1.16'
    before = full_dump(description)

    run = site(description, tmp_path, host_vars)
    assert_refused(run, PLAN_TASK, ['rail ib0: gateway 10.0.1.16 is the address of rail ib1'])
    assert PREFLIGHT_TASK not in run.tasks, run.output
    assert_same(before, full_dump(description), 'although the plan was refused')


def test_a_gateway_owned_by_a_nic_that_is_no_rail_is_refused_and_never_counted_alive(lab_host, tmp_path):
    """ib1's gateway 10.0.2.50 is the address of mg0, a NIC of the host that is not a rail."""
    description = lab_host(2, 'textbook')
    host = description['host']
    roce_lab.ip_batch(host, ['link add mg0 type veth peer name mg0-peer', 'addr add 10.0.2.50/32 dev mg0',
                             'link set mg0-peer up', 'link set mg0 up'])
    host_vars = inventory(description)
    host_vars['source_routing_rails'][1]['gateway'] = '10.0.2.50'
    before = full_dump(description)

    run = site(description, tmp_path, host_vars)
    assert_refused(run, PREFLIGHT_TASK, ['nothing was changed: ', 'rail ib1: gateway 10.0.2.50', 'on mg0'])
    assert_same(before, full_dump(description), 'although rail_guard refused the plan')

    # The same rail made by hand: the probe's echo is answered by the host itself, which is no answer.
    roce_lab.ip_batch(host, ['rule add pref 1002 from 10.0.2.14 lookup 102',
                             'route add 10.0.2.0/24 dev ib1 src 10.0.2.14 table 102',
                             'route add default via 10.0.2.50 dev ib1 table 102'])
    result = run_module(host, 'rail_audit', {'devices': ['ib1'], 'probe': True, 'probe_timeout': 0.5,
                                             'martian_interval': 0, 'boot': False})
    assert not result.get('failed'), result
    probe = result['rails'][0]['probe']
    assert probe['gateway'] == '10.0.2.50' and probe['error'], probe
    gateway = [f for f in result['findings'] if f['check'] == 'gateway']
    assert [(f['device'], f['severity']) for f in gateway] == [('ib1', 'error')], result['findings']
    assert 'gateway 10.0.2.50 of table 102 is an address of this host (on mg0)' in gateway[0]['message'], gateway
