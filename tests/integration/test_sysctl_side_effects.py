"""Sysctl writes the kernel carries further than the key written are refused: proved on this kernel.

Seen: `forwarding: 1` in source_routing_all_sysctls also turned on forwarding of
every interface and of default and turned all.accept_redirects off; the diff
showed all.forwarding alone and the rollback "as it was" left ib1.forwarding on.

The first test is the proof the refusals rest on: for every writable key of
net.ipv4.conf, written on all, on default and on one NIC in a fresh namespace,
the keys that changed besides it must be exactly those sysctl.side_effects()
names (nothing for a key it accepts). The others show each refusal end to end:
the role refuses in the plan, rail_sysctl before its first write, and nothing
on the host changes.
"""

import os
import sys

import pytest

from collection_path import COLLECTIONS
from lab import roce_lab
from nslab import Namespace
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import
from roleruns import PLAN_TASK, assert_same, full_dump, inventory, site

sys.path.insert(0, COLLECTIONS)
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import side_effects  # noqa: E402 pylint: disable=wrong-import-position

CONF = '/proc/sys/net/ipv4/conf'
NICS = ('ib0', 'ib1')


def read_conf(ns):
    """{(target, key): value text} of every net.ipv4.conf key in the namespace."""
    found = {}
    for line in ns.run('grep', '-r', '.', CONF).splitlines():
        path, _sep, value = line.partition(':')
        target, key = path[len(CONF) + 1:].split('/')
        found[(target, key)] = value
    return found


def as_described(target, key, changed, interfaces):
    """Whether `changed` (the other keys a write of target.key changed) is what side_effects() describes."""
    effects = side_effects(target, key)
    if not effects:
        return not changed
    if target == 'all' and key == 'forwarding':
        return changed == {(i, 'forwarding') for i in interfaces} | {('default', 'forwarding'),
                                                                     ('all', 'accept_redirects')}
    # default.<key>: copied into the interfaces whose own key was never written; the NICs made here never were.
    return target == 'default' and {(nic, key) for nic in NICS} <= changed <= {(i, key) for i in interfaces}


@pytest.mark.parametrize('target', ['all', 'default', 'ib0'])
def test_the_kernel_changes_exactly_what_side_effects_names(target):
    with Namespace() as ns:
        for nic in NICS:
            ns.add_nic(nic)
        interfaces = sorted(set(t for t, _k in read_conf(ns)) - {'all', 'default'})
        assert set(NICS) < set(interfaces) and 'lo' in interfaces, interfaces
        keys = sorted(os.listdir(os.path.join(CONF, 'all')))
        checked, wrong = [], []
        for key in keys:
            if not os.stat(os.path.join(CONF, 'all', key)).st_mode & 0o200:
                continue                               # read-only (mc_forwarding)
            path = os.path.join(CONF, target, key)
            before = read_conf(ns)
            old = int(before[(target, key)])
            new = 1 if old == 0 else 0
            ns.run('sh', '-c', 'echo %d > %s' % (new, path))
            after = read_conf(ns)
            assert after[(target, key)] == str(new), (target, key)
            changed = {k for k in after if after[k] != before[k]} - {(target, key)}
            if not as_described(target, key, changed, interfaces):
                wrong.append('%s.%s %d -> %d also changed %s; side_effects says %r'
                             % (target, key, old, new, sorted(changed) or 'nothing', side_effects(target, key)))
            ns.run('sh', '-c', 'echo %d > %s' % (old, path))
            assert read_conf(ns) == before, 'writing %s.%s back did not restore the namespace' % (target, key)
            checked.append(key)
        assert {'rp_filter', 'arp_ignore', 'arp_announce', 'accept_local', 'arp_filter', 'forwarding'} <= set(checked)
        assert not wrong, '\n'.join(wrong)


def test_the_role_refuses_all_forwarding_in_the_plan(lab_host, tmp_path):
    lab = lab_host(2)
    before = full_dump(lab)
    host_vars = inventory(lab, source_routing_all_sysctls={'rp_filter': 2, 'accept_local': 1, 'forwarding': 1})
    run = site(lab, tmp_path, host_vars)
    assert run.proc.returncode != 0 and PLAN_TASK in run.fatal, run.output
    message = run.fatal[PLAN_TASK]['msg']
    assert 'source_routing_all_sysctls: net.ipv4.conf.all.forwarding is refused: it also sets forwarding on ' \
           'every interface and on default' in message, message
    assert 'all.accept_redirects' in message and 'net.ipv4.conf.<nic>.forwarding' in message, message
    assert run.recap['changed'] == 0, run.output
    assert_same(before, full_dump(lab), 'although the plan was refused')
    assert roce_lab.ns_exec(lab['host'], 'sysctl', '-n', 'net.ipv4.conf.ib1.forwarding').strip() == '0'


@pytest.mark.parametrize('conf, key', [
    ({'ib0': {'rp_filter': 2}, 'all': {'forwarding': 1}}, 'net.ipv4.conf.all.forwarding'),
    ({'ib0': {'rp_filter': 2}, 'default': {'rp_filter': 2}}, 'net.ipv4.conf.default.rp_filter'),
    ({'ib0': {'rp_filter': 2}, 'default': {'arp_ignore': 1}}, 'net.ipv4.conf.default.arp_ignore'),
])
def test_rail_sysctl_refuses_before_writing_anything(ns, conf, key):
    for nic in NICS:
        ns.add_nic(nic)
    before = ns.dump()
    result = ns.module('rail_sysctl', {'conf': conf}, expect_failure=True)
    assert '%s is refused: ' % key in result['msg'], result['msg']
    assert ns.dump() == before


def test_rail_sysctl_still_sets_forwarding_of_one_nic(ns):
    for nic in NICS:
        ns.add_nic(nic)
    result = ns.module('rail_sysctl', {'conf': {'ib0': {'forwarding': 1}}})
    assert result['changes'] == [{'key': 'net.ipv4.conf.ib0.forwarding', 'before': 0, 'after': 1}]
    assert ns.read_sysctl('net.ipv4.conf.ib1.forwarding') == 0
    assert ns.read_sysctl('net.ipv4.conf.all.forwarding') == 0
