"""netlink.py's own rtnetlink socket against the real kernel, in throwaway namespaces.

Changes go to the kernel in batches of BATCH messages per write, each
acknowledged; the kernel carries out every message of a write even after one
fails. These tests make one message of a large call fail mid-way, for a reason
the planner could not see (a rule another tool added after the dump, a NIC
removed after it), and check that every change the kernel made, before and
after the failed one, is undone; and that dumps longer than one datagram and
batches larger than the socket's buffers lose nothing.
"""

import json
import os
import subprocess

import pytest

from collection_path import COLLECTIONS
from nslab import PYTHON

from ansible_collections.roce.multirail.plugins.module_utils import netlink

HERE = os.path.dirname(os.path.abspath(__file__))
with netlink.connect() as _probe:
    BATCH = _probe.batch        # messages per write, from the receive buffer the kernel grants


def step(ns, name, **args):
    """Run a step of netlink_steps.py inside the namespace; its JSON answer."""
    proc = subprocess.run(['ip', 'netns', 'exec', ns.name, PYTHON, '-m', 'netlink_steps', name],
                          input=json.dumps(args), capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS, HERE])))
    assert proc.returncode == 0, 'step %s failed: %s' % (name, proc.stderr)
    return json.loads(proc.stdout)


def lines(ns, *argv):
    """What `ip -4 ARGV` prints, line by line."""
    return [line.rstrip() for line in ns.ip('-4', *argv).splitlines()]


def sources(count):
    """`count` distinct host addresses, in the order add_order and the kernel keep them."""
    return ['10.5.%d.%d' % (i // 250, i % 250 + 1) for i in range(count)]


def undone(position, count):
    """How many changes a call of `count` has made when the one at `position` is refused:
    all the others of its batch and of the batches before; later batches are not sent."""
    return min(count, (position // BATCH + 1) * BATCH) - 1


COUNT = 2 * BATCH + 44


@pytest.mark.parametrize('position', [0, BATCH - 1, BATCH + 72, COUNT - 1])
def test_a_rule_add_that_collides_mid_batch_undoes_every_change_of_the_call(ns, position):
    ns.add_nic('ib0', '10.0.1.14/24')
    wanted = sources(COUNT)
    theirs = ['rule', 'add', 'from', wanted[position], 'lookup', '101', 'pref', '1001', 'proto', 'static']
    before = ns.ip('-4', 'rule', 'show').splitlines()
    result = step(ns, 'add_rules', sources=wanted, meanwhile=[theirs])
    assert result['sent'] == COUNT
    assert result['error'] == ('adding rule "1001:\tfrom %s lookup 101 proto static" failed: (17, \'File exists\'); '
                               'rolled back the %d change(s) it had made' % (wanted[position], undone(position, COUNT)))
    # Exactly what was there, and the rule the other tool added.
    assert ns.ip('-4', 'rule', 'show').splitlines() == \
        before[:1] + ['1001:\tfrom %s lookup 101 proto static' % wanted[position]] + before[1:]


@pytest.mark.parametrize('position', [3, BATCH + 1])
def test_a_route_whose_device_vanished_undoes_every_change_of_the_call(ns, position):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib9', '10.0.9.14/24')
    ns.ip('route', 'add', '10.0.7.0/24', 'dev', 'ib0', 'table', '101', 'metric', '5')   # stays as it is
    wanted = [[101, source + '/32', 'ib9' if index == position else 'ib0']
              for index, source in enumerate(sources(COUNT))]
    before = ns.dump()
    result = step(ns, 'add_routes', routes=wanted, meanwhile=[['link', 'del', 'ib9']])
    assert result['sent'] == COUNT
    assert result['error'] == ('adding "%s dev ib9 proto static scope link metric 100" to table 101 failed: '
                               '(19, \'No such device\'); rolled back the %d change(s) it had made'
                               % (sources(COUNT)[position], undone(position, COUNT)))
    assert lines(ns, 'route', 'show', 'table', '101') == ['10.0.7.0/24 dev ib0 scope link metric 5']
    assert ns.dump() == '\n'.join(line for line in before.split('\n') if 'ib9' not in line and '10.0.9.' not in line)


def test_thousands_of_changes_in_one_call_and_dumps_of_many_datagrams(ns):
    """More acks than the receive buffer holds at once, and dumps the kernel sends in many parts."""
    ns.add_nic('ib0', '10.0.1.14/24')
    count = 3000
    assert step(ns, 'add_rules', sources=sources(count)) == {'error': None, 'sent': count}
    routes = [[101 + index % 2, source + '/32', 'ib0'] for index, source in enumerate(sources(count))]
    assert step(ns, 'add_routes', routes=routes) == {'error': None, 'sent': count}
    found = step(ns, 'dump')
    assert [text for text in found['rules'] if not text.startswith('[ipv6]')] == lines(ns, 'rule', 'show')
    for table in (101, 102):
        assert [text for number, text in found['routes'] if number == table] == \
            lines(ns, 'route', 'show', 'table', str(table))
    assert len(found['rules']) > count and len(found['routes']) > count
    assert found['links']['ib0'] == [True, ['10.0.1.14/24']]
