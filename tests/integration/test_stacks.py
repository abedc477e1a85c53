"""Persistence through the stack a real image sets its rails up with, proved with the real daemons.

For NetworkManager 1.42, systemd-networkd 252 and netplan 0.106 (rendering for networkd), a lab
host starts as such an image would (tests/integration/stacks.py: the image's profiles or files give
the rails their addresses, the daemon sets them up at boot) and site.yml converges it. Then the
stack's own reloads and restarts, `nmcli connection up` of every profile that can activate on a
rail, and power cycles (addresses, rules and tables gone, /run empty, the daemon left to set
everything up on its own) must each leave exactly the live-applied rules, tables, addresses and
sysctls, every rail carrying its own traffic (`ip route get`, pings, per-NIC counters), and a role
run with nothing to do. Removing a rail gives the image's own file back byte for byte. A host the
role cannot persist on is refused before anything changes.
"""

import os
import time

import pytest

from lab import images, roce_lab, system
from lab.images import NM_DIR
from roleruns import PERSIST_TASK, PREFLIGHT_TASK, assert_ok
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import
from stacks import booted  # noqa: F401 pylint: disable=unused-import

STACKS = ('networkmanager', 'networkd', 'netplan')
BOOTS = 2


def nm_up(profile):
    def up(host):
        host.run('nmcli', '--wait', '30', 'connection', 'up', profile)
    return up


def networkctl(*args):
    def call(host):
        host.run('networkctl', *args)
        host.settle()
    return call


def netplan_generate_and_reload(host):
    host.run('netplan', 'generate')
    host.run('networkctl', 'reload')
    host.settle()


# What each stack's operators and packages do to a running host.
EVENTS = {
    'networkmanager': [('nmcli connection up ib0', nm_up('ib0')), ('nmcli connection up ib0-alt', nm_up('ib0-alt')),
                       ('nmcli connection up ib1', nm_up('ib1')),
                       ('a NetworkManager restart', lambda host: host.restart())],
    'networkd': [('networkctl reload', networkctl('reload')), ('networkctl reconfigure', networkctl('reconfigure', 'ib0', 'ib1')),
                 ('a networkd restart', lambda host: host.restart())],
    'netplan': [('netplan generate and networkctl reload', netplan_generate_and_reload),
                ('networkctl reconfigure', networkctl('reconfigure', 'ib0', 'ib1')),
                ('a networkd restart', lambda host: host.restart())],
}
# Where each stack's image keeps ib1, the rail a test removes, and what the role adds for it.
IMAGE_OF_IB1 = {'networkmanager': NM_DIR + '/ib1.nmconnection', 'networkd': 'systemd/network/10-ib1.network',
                'netplan': 'netplan/50-cloud-init.yaml'}
OURS_FOR_IB1 = {'networkmanager': 'NetworkManager/roce-multirail', 'networkd': 'systemd/network/10-ib1.network.d',
                'netplan': 'netplan/90-roce-multirail.yaml'}


def stack_lines(run):
    """The lines of the stack report the preflight printed."""
    return [line.strip().strip('",') for line in run.output.splitlines() if line.strip().startswith('"ib')]


@pytest.mark.parametrize('stack', STACKS)
def test_the_image_keeps_the_live_state_through_reloads_restarts_and_boots(booted, stack):
    host = booted(stack)
    host.boot()
    image = host.files()

    first = host.site()
    assert_ok(first)
    report = stack_lines(first)
    assert len(report) == 2 and all({'networkmanager': 'NetworkManager', 'networkd': 'systemd-networkd',
                                     'netplan': 'netplan'}[stack] in line for line in report), first.output
    if stack == 'networkmanager':
        assert "profile 'ib0' (/etc/NetworkManager/system-connections/ib0.nmconnection)" in report[0], report
        assert "profile 'ib0-alt'" in report[0], report
        assert not any(path.endswith('roce-multirail-ib0.nmconnection') for path in host.files())
    elif stack == 'networkd':
        assert report[0] == 'ib0: systemd-networkd, /etc/systemd/network/10-ib0.network', report
    else:
        assert report[0] == ('ib0: netplan, netplan id ib0 in /etc/netplan/50-cloud-init.yaml (rendered for '
                             'networkd)'), report
    host.assert_proven('the first run')
    live = host.state()
    assert_ok(host.site(), changed=0)

    events = EVENTS[stack] + [('boot %d' % n, lambda h: h.boot()) for n in range(1, BOOTS + 1)]
    for name, event in events:
        event(host)
        host.assert_same_state(live, name)
        host.assert_proven(name)
        again = host.site()
        assert_ok(again, changed=0)

    # Rail ib1 leaves the inventory: what the role added for it goes, the image's file comes back as it was.
    ib0_only = [dict(host.description['rails'][0], sources=[])]
    removed = host.site(source_routing_rails=[{'device': r['device'], 'address': r['address'], 'gateway': r['gateway']}
                                              for r in ib0_only])
    assert_ok(removed)
    files = host.files()
    assert files[IMAGE_OF_IB1[stack]] == image[IMAGE_OF_IB1[stack]], 'the image file of ib1 is not given back'
    if stack == 'networkmanager':
        assert not [path for path in files if path.startswith(OURS_FOR_IB1[stack]) and 'ib1' in files[path][1]]
        assert 'routing-rule' not in host.run('nmcli', '-g', 'ipv4.routing-rules', 'connection', 'show', 'ib1')
    elif stack == 'networkd':
        assert not [path for path in files if path.startswith(OURS_FOR_IB1[stack])]
    else:
        assert '"ib1"' not in files[OURS_FOR_IB1[stack]][1] and '"ib0"' in files[OURS_FOR_IB1[stack]][1]
    assert roce_lab.ip(host.host, '-4', 'rule', 'show', 'pref', '1002').strip() == ''
    host.boot()
    assert roce_lab.ip(host.host, '-4', 'rule', 'show', 'pref', '1002').strip() == ''
    assert host.state()['addresses']['ib1'] == ['10.0.2.14/24'], 'the image no longer sets up ib1'
    results = roce_lab.prove(host.host)
    assert [r['source'] for r in results if r['ok']] == ['10.0.1.14'], roce_lab.format_proof(results)


@pytest.mark.parametrize('stack', STACKS)
def test_with_the_daemon_stopped_check_mode_changes_nothing_and_the_files_alone_bring_it_back(booted, stack):
    host = booted(stack)
    host.boot()
    host.stop_daemons()
    before = (host.files(), host.state())

    check = host.site('--check', '--diff')
    assert_ok(check)
    assert (host.files(), host.state()) == before, 'check mode changed the host'
    shown = {'networkmanager': ['/etc/NetworkManager/system-connections/ib0.nmconnection',
                                '+routing-rule1=priority 1001 from 10.0.1.14 table 101'],
             'networkd': ['/etc/systemd/network/10-ib0.network.d/90-roce-multirail.conf', '+From=10.0.1.14'],
             'netplan': ['/etc/netplan/90-roce-multirail.yaml', '+          priority: 1001']}[stack]
    for text in shown:
        assert text in check.output, 'the diff does not show %r:\n%s' % (text, check.output)

    first = host.site()
    assert_ok(first)
    assert first.tasks[PERSIST_TASK] == 'changed'
    host.assert_proven('the run with the daemon stopped')
    live = host.state()
    assert_ok(host.site(), changed=0)
    host.boot()
    host.assert_same_state(live, 'the boot after a run with the daemon stopped')
    host.assert_proven('the boot after a run with the daemon stopped')
    assert_ok(host.site(), changed=0)


def test_rails_split_across_two_stacks_are_refused_and_nothing_changes(booted):
    host = booted('networkmanager')
    ib1 = host.description['rails'][1]
    os.unlink(system.etc(host.host, NM_DIR, 'ib1.nmconnection'))
    with open(system.etc(host.host, 'systemd', 'network', '10-ib1.network'), 'w') as handle:
        handle.write(images.networkd_file(ib1))
    host.boot(daemons=(), managed=())
    system.start(host.host, 'NetworkManager', managed=['ib0'])
    system.start(host.host, 'systemd-networkd')
    system.wait_online(host.host, ['ib1'])
    before = (host.files(), host.state())

    run = host.site()
    assert run.proc.returncode != 0 and PREFLIGHT_TASK in run.fatal, run.output
    message = run.fatal[PREFLIGHT_TASK]['msg']
    for text in ('rails split across stacks', 'ib0 on NetworkManager',
                 "profile 'ib0' (/etc/NetworkManager/system-connections/ib0.nmconnection)",
                 'ib1 on systemd-networkd (/etc/systemd/network/10-ib1.network)'):
        assert text in message, message
    assert (host.files(), host.state()) == before


def test_netplan_rendering_for_networkmanager_without_rules_is_refused(booted):
    """netplan 0.106 renders routes but no routing rules for NetworkManager: accepting it would lose the rules at boot."""
    host = booted('netplan')
    host.image = {'netplan/50-cloud-init.yaml': (images.netplan_yaml(host.description['rails'], 'NetworkManager'),
                                                 0o600)}
    images.write(host.host, host.image)
    host.boot(daemons=('NetworkManager',))
    assert host.state()['addresses']['ib0'] == ['10.0.1.14/24'], 'NetworkManager did not set up what netplan rendered'
    before = (host.files(), host.state())

    run = host.site()
    assert run.proc.returncode != 0 and PREFLIGHT_TASK in run.fatal, run.output
    message = run.fatal[PREFLIGHT_TASK]['msg']
    for text in ('nothing was changed', 'rendered for NetworkManager without', 'priority 1001 from 10.0.1.14 table 101',
                 "netplan's NetworkManager renderer writes routing rules from netplan 1.1.2 on"):
        assert text in message, message
    assert (host.files(), host.state()) == before


def test_networkd_next_to_networkmanager_rails_is_refused_because_it_deletes_their_rules(booted):
    """networkd manages another NIC; reconfiguring it drops every rule no .network file declares."""
    host = booted('networkmanager')
    roce_lab.ip(host.host, 'link', 'add', 'mgmt0', 'type', 'veth', 'peer', 'name', 'mgmt0p')
    roce_lab.ip(host.host, 'link', 'set', 'mgmt0p', 'up')
    with open(system.etc(host.host, 'systemd', 'network', '10-mgmt0.network'), 'w') as handle:
        handle.write('[Match]\nName=mgmt0\n\n[Network]\nAddress=192.0.2.10/24\nLinkLocalAddressing=no\n')
    host.boot(daemons=('NetworkManager',))
    system.start(host.host, 'systemd-networkd')
    system.wait_online(host.host, ['mgmt0'])

    run = host.site()
    assert run.proc.returncode != 0 and PREFLIGHT_TASK in run.fatal, run.output
    assert 'ManageForeignRoutingPolicyRules=no' in run.fatal[PREFLIGHT_TASK]['msg']

    # The reason, shown: the rails' rules, made live, go when networkd reconfigures the other NIC.
    roce_lab.ip(host.host, 'rule', 'add', 'priority', '1001', 'from', '10.0.1.14', 'table', '101', 'proto', 'static')
    host.run('networkctl', 'reconfigure', 'mgmt0')
    deadline = time.monotonic() + 10
    while roce_lab.ip(host.host, '-4', 'rule', 'show', 'pref', '1001').strip() and time.monotonic() < deadline:
        time.sleep(0.05)      # networkd reconfigures asynchronously
    assert roce_lab.ip(host.host, '-4', 'rule', 'show', 'pref', '1001').strip() == ''

    # Told to keep foreign rules, networkd is no danger: the role converges and the rules survive a reconfigure.
    conf = system.etc(host.host, 'systemd', 'networkd.conf')
    with open(conf, 'w') as handle:
        handle.write('[Network]\nManageForeignRoutingPolicyRules=no\n')
    system.restart(host.host, 'systemd-networkd')
    system.wait_online(host.host, ['mgmt0'])
    assert_ok(host.site())
    host.run('networkctl', 'reconfigure', 'mgmt0')
    system.wait_online(host.host, ['mgmt0'])
    host.assert_proven('networkd reconfigured another NIC')


def boot_findings(host):
    _rc, result = host.ansible('roce.multirail.rail_audit', {'devices': ['ib0', 'ib1'], 'martian_interval': 0})
    return [f for f in result['findings'] if f['check'] == 'boot']


@pytest.mark.parametrize('stack', STACKS)
def test_the_audit_names_what_a_boot_would_set_up_without_the_rails_routing(booted, stack):
    """rail_audit's boot check: a networkd file that lost its drop-in, a second profile that lost the rule,
    a netplan file that lost a rail."""
    host = booted(stack)
    host.boot()
    assert_ok(host.site())
    assert boot_findings(host) == []

    if stack == 'networkd':
        os.unlink(system.etc(host.host, 'systemd', 'network', '10-ib1.network.d', '90-roce-multirail.conf'))
        device, message, hint = ('ib1', 'systemd-networkd sets up ib1 from /etc/systemd/network/10-ib1.network, which '
                                 'declares no default via 10.0.2.1 table 102 metric 100; 10.0.2.0/24 src 10.0.2.14 '
                                 'table 102 metric 100; priority 1002 from 10.0.2.14 table 102',
                                 '/etc/systemd/network/10-ib1.network.d/90-roce-multirail.conf')
    elif stack == 'netplan':
        ours = system.etc(host.host, 'netplan', '90-roce-multirail.yaml')
        with open(ours) as handle:
            text = handle.read()
        with open(ours, 'w') as handle:
            handle.write(text[:text.index('    "ib1":')])
        device, message, hint = ('ib1', 'netplan sets up ib1 from id ib1 (/etc/netplan/50-cloud-init.yaml), rendered '
                                 'for networkd without default via 10.0.2.1 table 102 metric 100',
                                 'routing-policy of id ib1 in /etc/netplan/90-roce-multirail.yaml')
    else:
        host.run('nmcli', 'connection', 'modify', 'ib0-alt', '-ipv4.routing-rules', 'priority 1001 from 10.0.1.14 table 101')
        device, message, hint = ('ib0', "profile 'ib0-alt' (/etc/NetworkManager/system-connections/ib0-alt.nmconnection) "
                                 'can activate on ib0 (autoconnect no) but lacks priority 1001 from 10.0.1.14 table 101',
                                 "+ipv4.routing-rules 'priority 1001 from 10.0.1.14 table 101'")
    found = boot_findings(host)
    assert [(f['device'], f['severity']) for f in found] == [(device, 'error')], found
    assert message in found[0]['message'], found[0]
    assert hint in found[0]['hint'], found[0]
