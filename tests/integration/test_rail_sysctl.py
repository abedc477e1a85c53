"""rail_sysctl against the real kernel, inside throwaway network namespaces.

Every value the module reports is checked against what `sysctl` reads inside
the namespace, and every error case is checked to leave the namespace
byte-for-byte as it was.
"""

import pytest

# The layout the source_routing role applies by default, for two rails.
RAIL_CONF = {
    'all': {'rp_filter': 2, 'accept_local': 1},
    'ib0': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
    'ib1': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
}


def two_rails(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.add_nic('ib1', '10.0.2.14/24')


def host_value(key):
    """A sysctl of the namespace the test process itself runs in."""
    with open('/proc/sys/net/ipv4/conf/%s' % key.replace('.', '/')) as handle:
        return int(handle.read().split()[0])


def key_of(target, key):
    return 'net.ipv4.conf.%s.%s' % (target.replace('.', '/'), key)


def live(ns, conf):
    """{sysctl key: value} as sysctl(8) reads them inside the namespace."""
    return dict((key_of(target, key), ns.read_sysctl(key_of(target, key)))
                for target, keys in conf.items() for key in keys)


def expected_changes(before, conf):
    return sorted((dict(key=key_of(t, k), before=before[key_of(t, k)], after=v)
                   for t, keys in conf.items() for k, v in keys.items()
                   if before[key_of(t, k)] != v), key=lambda c: c['key'])


def test_sets_every_key_then_reports_nothing_to_do(ns):
    two_rails(ns)
    host_before = (host_value('all.rp_filter'), host_value('all.accept_local'))
    before = live(ns, RAIL_CONF)
    wanted = dict((key_of(t, k), v) for t, keys in RAIL_CONF.items() for k, v in keys.items())
    assert before != wanted, 'a fresh namespace already holds the target values; the test proves nothing'

    first = ns.module('rail_sysctl', {'conf': RAIL_CONF})
    assert first['changed'] is True
    assert sorted(first['changes'], key=lambda c: c['key']) == expected_changes(before, RAIL_CONF)
    assert first['values'] == RAIL_CONF
    assert live(ns, RAIL_CONF) == wanted
    shown = ns.run('sysctl', 'net.ipv4.conf.ib1.arp_announce', 'net.ipv4.conf.all.accept_local')
    assert shown.splitlines() == ['net.ipv4.conf.ib1.arp_announce = 2', 'net.ipv4.conf.all.accept_local = 1']

    dump = ns.dump()
    second = ns.module('rail_sysctl', {'conf': RAIL_CONF})
    assert second['changed'] is False
    assert second['changes'] == []
    assert ns.dump() == dump
    assert (host_value('all.rp_filter'), host_value('all.accept_local')) == host_before


def test_host_namespace_sysctls_are_untouched(ns):
    host_rp, host_local = host_value('all.rp_filter'), host_value('all.accept_local')
    # Values that differ from the host's, so a write to the wrong namespace would show.
    rp = 1 if host_rp != 1 else 2
    local = 1 - host_local
    ns.add_nic('ib0', '10.0.1.14/24')
    conf = {'all': {'rp_filter': rp, 'accept_local': local}, 'ib0': {'rp_filter': rp}}
    ns.module('rail_sysctl', {'conf': conf})
    assert ns.read_sysctl('net.ipv4.conf.all.rp_filter') == rp
    assert ns.read_sysctl('net.ipv4.conf.all.accept_local') == local
    assert host_value('all.rp_filter') == host_rp
    assert host_value('all.accept_local') == host_local


def effective_of(ns, conf, device, key):
    result = ns.module('rail_sysctl', {'conf': conf})
    reported = result['effective'][device][key]
    all_value = ns.read_sysctl(key_of('all', key))
    dev_value = ns.read_sysctl(key_of(device, key))
    assert (reported['all'], reported['dev']) == (all_value, dev_value)
    return reported


def test_effective_rp_filter_decided_by_the_device(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    reported = effective_of(ns, {'all': {'rp_filter': 1}, 'ib0': {'rp_filter': 2}}, 'ib0', 'rp_filter')
    assert reported == {'value': 2, 'all': 1, 'dev': 2, 'rule': 'max', 'decided_by': 'dev'}


def test_effective_rp_filter_decided_by_all(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    reported = effective_of(ns, {'all': {'rp_filter': 2}, 'ib0': {'rp_filter': 1}}, 'ib0', 'rp_filter')
    assert reported == {'value': 2, 'all': 2, 'dev': 1, 'rule': 'max', 'decided_by': 'all'}


def test_effective_accept_local_set_on_all_only(ns):
    two_rails(ns)
    for nic in ('ib0', 'ib1'):
        ns.sysctl('net.ipv4.conf.%s.accept_local=0' % nic)
    conf = {'all': {'accept_local': 1}, 'ib0': {'rp_filter': 2}, 'ib1': {'rp_filter': 2}}
    result = ns.module('rail_sysctl', {'conf': conf})
    assert sorted(result['effective']) == ['ib0', 'ib1']
    for nic in ('ib0', 'ib1'):
        assert ns.read_sysctl(key_of(nic, 'accept_local')) == 0
        assert result['effective'][nic]['accept_local'] == {
            'value': 1, 'all': 1, 'dev': 0, 'rule': 'or', 'decided_by': 'all'}
        assert result['effective'][nic]['rp_filter']['value'] == max(
            ns.read_sysctl('net.ipv4.conf.all.rp_filter'), 2)


@pytest.mark.parametrize('spelling, other', [('eth0.100', 'eth0/100'), ('eth0/100', 'eth0.100')])
def test_dotted_interface_names(ns, spelling, other):
    ns.add_nic('eth0.100', '10.0.5.14/24')
    ns.sysctl('net.ipv4.conf.eth0/100.rp_filter=0')
    ns.sysctl('net.ipv4.conf.eth0/100.arp_ignore=0')
    result = ns.module('rail_sysctl', {'conf': {spelling: {'rp_filter': 2, 'arp_ignore': 1}}})
    assert result['changed'] is True
    assert sorted(result['changes'], key=lambda c: c['key']) == [
        {'key': 'net.ipv4.conf.eth0/100.arp_ignore', 'before': 0, 'after': 1},
        {'key': 'net.ipv4.conf.eth0/100.rp_filter', 'before': 0, 'after': 2},
    ]
    assert ns.run('sysctl', 'net.ipv4.conf.eth0/100.rp_filter').strip() == 'net.ipv4.conf.eth0/100.rp_filter = 2'
    assert ns.read_sysctl('net.ipv4.conf.eth0/100.arp_ignore') == 1
    # The same interface under its other spelling: nothing left to do.
    again = ns.module('rail_sysctl', {'conf': {other: {'rp_filter': 2, 'arp_ignore': 1}}}, diff=True)
    assert again['changed'] is False
    assert again['diff']['after'] == ('net.ipv4.conf.eth0/100.rp_filter = 2\n'
                                      'net.ipv4.conf.eth0/100.arp_ignore = 1\n')


def test_check_mode_reports_and_changes_nothing(ns):
    two_rails(ns)
    ns.sysctl('net.ipv4.conf.all.rp_filter=0')
    ns.sysctl('net.ipv4.conf.ib0.rp_filter=1')
    before = live(ns, RAIL_CONF)
    dump = ns.dump()
    result = ns.module('rail_sysctl', {'conf': RAIL_CONF}, check_mode=True, diff=True)
    assert result['changed'] is True
    assert sorted(result['changes'], key=lambda c: c['key']) == expected_changes(before, RAIL_CONF)
    # The effective values are the ones the call would give, not the current ones.
    assert result['effective']['ib0']['rp_filter'] == {
        'value': 2, 'all': 2, 'dev': 2, 'rule': 'max', 'decided_by': 'both'}
    assert result['effective']['ib1']['accept_local']['value'] == 1
    assert 'net.ipv4.conf.ib0.rp_filter = 1\n' in result['diff']['before']
    assert 'net.ipv4.conf.ib0.rp_filter = 2\n' in result['diff']['after']
    assert ns.dump() == dump


def test_diff_lines_in_sysctl_form(ns):
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.sysctl('net.ipv4.conf.ib0.rp_filter=1')
    ns.sysctl('net.ipv4.conf.ib0.arp_announce=2')
    result = ns.module('rail_sysctl', {'conf': {'ib0': {'rp_filter': 2, 'arp_announce': 2}}}, diff=True)
    assert result['changed'] is True
    assert result['diff']['before'] == 'net.ipv4.conf.ib0.rp_filter = 1\nnet.ipv4.conf.ib0.arp_announce = 2\n'
    assert result['diff']['after'] == 'net.ipv4.conf.ib0.rp_filter = 2\nnet.ipv4.conf.ib0.arp_announce = 2\n'
    assert result['changes'] == [{'key': 'net.ipv4.conf.ib0.rp_filter', 'before': 1, 'after': 2}]


def test_default_target(ns):
    # default.forwarding is not copied into existing interfaces (default.rp_filter would be, and is
    # refused: test_sysctl_side_effects.py), only into interfaces created afterwards.
    ns.sysctl('net.ipv4.conf.default.forwarding=0')
    conf = {'default': {'forwarding': 1}}
    result = ns.module('rail_sysctl', {'conf': conf})
    assert result['changed'] is True
    assert result['effective'] == {}
    assert ns.read_sysctl('net.ipv4.conf.default.forwarding') == 1
    assert ns.read_sysctl('net.ipv4.conf.lo.forwarding') == 0
    assert ns.module('rail_sysctl', {'conf': conf})['changed'] is False
    ns.add_nic('ib7')
    assert ns.read_sysctl('net.ipv4.conf.ib7.forwarding') == 1


# A valid change comes first in every bad batch, so "nothing changed" means something.

BAD = {
    'unknown interface': ({'ib0': {'rp_filter': 2}, 'ib9': {'rp_filter': 2}}, ['ib9']),
    'unknown key': ({'ib0': {'rp_filter': 2, 'arp_ingore': 1}}, ['conf.ib0', 'arp_ingore']),
    'non-integer value': ({'ib0': {'rp_filter': 2}, 'ib1': {'arp_ignore': 'one'}}, ['conf.ib1', 'arp_ignore', 'one']),
    'rp_filter 3': ({'all': {'accept_local': 1}, 'ib0': {'rp_filter': 3}}, ['conf.ib0', 'rp_filter', '3']),
    'arp_ignore 5': ({'ib0': {'rp_filter': 2, 'arp_ignore': 5}}, ['conf.ib0', 'arp_ignore', '5']),
    'keys not a mapping': ({'ib0': {'rp_filter': 2}, 'ib1': 2}, ['conf.ib1', '2']),
    'same interface twice': ({'ib0': {'rp_filter': 2}, 'eth0.100': {'rp_filter': 2}, 'eth0/100': {'arp_ignore': 1}},
                             ['eth0.100', 'eth0/100']),
    'read-only key': ({'ib0': {'rp_filter': 2}, 'all': {'mc_forwarding': 1}},
                      ['net.ipv4.conf.all.mc_forwarding', 'read-only']),
}


def error_host(ns):
    two_rails(ns)
    ns.add_nic('eth0.100', '10.0.5.14/24')
    for nic in ('ib0', 'ib1', 'eth0/100'):
        ns.sysctl('net.ipv4.conf.%s.rp_filter=0' % nic)
        ns.sysctl('net.ipv4.conf.%s.arp_ignore=0' % nic)
    ns.sysctl('net.ipv4.conf.all.accept_local=0')


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_input_names_field_and_value_and_changes_nothing(ns, case):
    conf, words = BAD[case]
    error_host(ns)
    dump = ns.dump()
    result = ns.module('rail_sysctl', {'conf': conf}, expect_failure=True)
    for word in words:
        assert word in result['msg'], '%r not in %r' % (word, result['msg'])
    assert 'Traceback' not in result['msg']
    assert ns.dump() == dump


@pytest.mark.parametrize('conf', [[{'ib0': {'rp_filter': 2}}], {}, 'ib0'], ids=['list', 'empty', 'string'])
def test_conf_not_a_mapping(ns, conf):
    error_host(ns)
    dump = ns.dump()
    result = ns.module('rail_sysctl', {'conf': conf}, expect_failure=True)
    assert 'conf' in result['msg']
    assert ns.dump() == dump


@pytest.mark.parametrize('name', ['..', '.'])
def test_path_like_interface_name_is_refused(ns, name):
    """'..' is no interface (the kernel refuses the name); it must not reach /proc/sys/net/ipv4."""
    ns.add_nic('ib0', '10.0.1.14/24')
    ns.sysctl('net.ipv4.ip_forward=0')
    dump = ns.dump()
    result = ns.module('rail_sysctl', {'conf': {name: {'ip_forward': 1}}}, expect_failure=True)
    assert name in result['msg']
    assert ns.read_sysctl('net.ipv4.ip_forward') == 0
    assert ns.dump() == dump


def test_batch_with_invalid_last_key_changes_nothing(ns):
    error_host(ns)
    conf = {
        'all': {'rp_filter': 2, 'accept_local': 1},
        'ib0': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
        'ib1': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
        'eth0.100': {'rp_filter': 2, 'arp_announce': 7},   # the very last key is out of range
    }
    assert list(conf)[-1] == 'eth0.100' and list(conf['eth0.100'])[-1] == 'arp_announce'
    dump = ns.dump()
    result = ns.module('rail_sysctl', {'conf': conf}, expect_failure=True)
    assert 'arp_announce' in result['msg'] and '7' in result['msg']
    assert ns.dump() == dump
