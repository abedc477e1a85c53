"""Unit tests for plugins/module_utils/boot.py: which stack persists each rail (decide) and whether
what sets a rail up at boot carries its routes and rules (boot_findings), on host views built
by hand.
"""

import uuid

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.audit import Finding
from ansible_collections.roce.multirail.plugins.module_utils.boot import UNSUPPORTED, RailChoice, boot_findings, decide
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import connection_uuid
from ansible_collections.roce.multirail.plugins.module_utils.netplan import Definition, Rendered
from ansible_collections.roce.multirail.plugins.module_utils.networkd import render_dropin

from persist_cases import CONNECTED, DEFAULT, IB0, IB1, RULE, host, network_file, profile, rail

IB0_RAIL = rail(IB0)

IB0_NETWORK = network_file('/etc/systemd/network/10-ib0.network',
                           '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n')
IB1_NETWORK = network_file('/etc/systemd/network/10-ib1.network',
                           '[Match]\nName=ib1\n[Network]\nAddress=10.0.2.14/24\n')

# What netplan 0.106 renders for the image's definition of ib0, alone and with this collection's file.
NETPLAN_NETWORKD = """\
[Match]
Name=ib0

[Network]
LinkLocalAddressing=ipv6
Address=10.0.1.14/24
"""
NETPLAN_NETWORKD_ROUTED = NETPLAN_NETWORKD + """
[Route]
Destination=10.0.1.0/24
PreferredSource=10.0.1.14
Scope=link
Metric=100
Table=101

[Route]
Destination=0.0.0.0/0
Gateway=10.0.1.1
Metric=100
Table=101

[RoutingPolicyRule]
From=10.0.1.14
Table=101
Priority=1001
"""
NETPLAN_NM_ROUTED = """\
[connection]
id=netplan-ib0
type=infiniband
interface-name=ib0

[infiniband]
transport-mode=datagram

[ipv4]
method=manual
address1=10.0.1.14/24
route1=10.0.1.0/24,,100
route1_options=table=101,src=10.0.1.14
route2=0.0.0.0/0,10.0.1.1,100
route2_options=table=101

[ipv6]
method=ignore
"""
IB0_DEFINITION = Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',))


def image_profile(**fields):
    values = dict(id='Wired ib0', interface_name='ib0', method='manual', addresses=('10.0.1.14/24',))
    values.update(fields)
    return profile(str(uuid.uuid5(uuid.NAMESPACE_URL, values['id'])), **values)


def nm_host(*profiles, **fields):
    return host(nm_installed=True, nm_profiles=dict((p.uuid, p) for p in profiles), **fields)


def networkd_host(*files, **fields):
    return host(networkd_installed=True, networkd_files=tuple(files), **fields)


def netplan_host(text=NETPLAN_NETWORKD, **fields):
    """A host whose netplan renders ib0 for networkd (the rendered file is among networkd's files)."""
    rendered = Rendered('ib0', 'networkd', '10-netplan-ib0.network', text)
    values = dict(netplan_installed=True, netplan_files=('/etc/netplan/10-image.yaml',),
                  netplan_definitions={'ib0': IB0_DEFINITION}, netplan_rendered={'ib0': rendered},
                  networkd_installed=True, networkd_files=(rendered.as_network_file(),))
    values.update(fields)
    return host(**values)


# --- decide: one stack describes the rail --------------------------------------------------------

def test_a_rail_only_networkmanager_profiles_describe_is_adopted():
    image = image_profile()
    decision = decide(nm_host(image, nm_running=True), [IB0_RAIL])
    assert decision == ('networkmanager', (RailChoice('ib0', 'networkmanager', 'adopt', image.describe()),), (), ())
    assert decision.report() == ["ib0: NetworkManager, profile 'Wired ib0' (%s)" % image.path]


def test_a_rail_nothing_describes_gets_a_profile_of_its_own_where_networkmanager_is_installed():
    assert decide(nm_host(), [IB0_RAIL]) == (
        'networkmanager', (RailChoice('ib0', 'networkmanager', 'create', "profile 'roce-multirail-ib0' of this "
                                      "collection"),), (), ())


def test_a_rail_nothing_describes_gets_a_network_file_where_only_networkd_runs():
    decision = decide(networkd_host(networkd_running=True, networkd_foreign_rules=True), [IB0_RAIL])
    assert decision.rails == (RailChoice('ib0', 'networkd', 'create',
                                         '/etc/systemd/network/50-roce-multirail-ib0.network'),)


def test_a_rail_nothing_describes_on_a_host_without_any_stack_is_refused():
    decision = decide(host(), [IB0_RAIL])
    assert decision.stack is None
    assert decision.errors == ('rail ib0: nothing sets it up at boot (no NetworkManager, systemd-networkd or netplan '
                               'holds it, and none of their daemons runs here); set source_routing_persist, or none to '
                               'apply live only',)


def test_a_rail_a_network_file_sets_up_gets_a_drop_in():
    decision = decide(networkd_host(IB1_NETWORK, IB0_NETWORK), [IB0_RAIL])
    assert decision == ('networkd', (RailChoice('ib0', 'networkd', 'dropin', IB0_NETWORK.path),), (), ())


def test_a_rail_whose_network_file_takes_dhcp_gets_a_drop_in():
    dhcp = network_file('/etc/systemd/network/10-ib0.network', '[Match]\nName=ib0\n[Network]\nDHCP=yes\n')
    assert decide(networkd_host(dhcp), [IB0_RAIL]).rails[0].how == 'dropin'


def test_a_rail_a_netplan_definition_sets_up_is_persisted_with_netplan():
    decision = decide(netplan_host(), [IB0_RAIL])
    assert decision == ('netplan', (RailChoice('ib0', 'netplan', 'netplan', 'netplan id ib0 in '
                                               '/etc/netplan/10-image.yaml (rendered for networkd)'),), (), ())


def test_a_rail_on_a_nic_the_host_lacks_is_refused():
    assert decide(nm_host(links={}), [IB0_RAIL]).errors == ('rail ib0: the host has no NIC ib0',)


# --- decide: refusals ---------------------------------------------------------------------------

def test_two_rails_on_two_stacks_are_refused_naming_both():
    image = image_profile()
    view = nm_host(image, networkd_installed=True, networkd_files=(IB1_NETWORK,))
    decision = decide(view, [IB0_RAIL, rail(IB1)])
    assert decision.stack is None
    assert decision.errors == (
        "rails split across stacks, which this collection cannot persist in one run: ib0 on NetworkManager "
        "(profile 'Wired ib0' (%s)); ib1 on systemd-networkd (/etc/systemd/network/10-ib1.network); set up every "
        "rail with one stack, or run the role per stack with source_routing_persist" % image.path,)


@pytest.mark.parametrize('nm_running, networkd_running, stack', [
    (False, False, None),
    (True, False, 'networkmanager'),
    (False, True, 'networkd'),
    (True, True, None),
])
def test_a_nic_two_stacks_describe_goes_to_the_one_daemon_that_runs(nm_running, networkd_running, stack):
    view = nm_host(image_profile(), nm_running=nm_running, networkd_installed=True, networkd_running=networkd_running,
                   networkd_files=(IB0_NETWORK,), networkd_foreign_rules=False)
    decision = decide(view, [IB0_RAIL])
    assert decision.stack == stack
    if stack is None:
        assert len(decision.errors) == 1 and decision.errors[0].startswith(
            "rail ib0 is described by NetworkManager (profile 'Wired ib0' (")
        assert 'and systemd-networkd (/etc/systemd/network/10-ib0.network): which one sets it up at boot cannot ' \
               'be told' in decision.errors[0]


def test_a_nic_netplan_and_networkmanager_describe_is_refused_even_with_one_daemon_running():
    decision = decide(netplan_host(nm_installed=True, nm_running=True, nm_profiles={'p': image_profile()},
                                   networkd_foreign_rules=False), [IB0_RAIL])
    assert decision.stack is None
    assert decision.errors[0].startswith('rail ib0 is described by netplan (netplan id ib0 in ')


@pytest.mark.parametrize('kind, path', [('ifupdown', '/etc/network/interfaces'),
                                        ('ifcfg', '/etc/sysconfig/network-scripts/ifcfg-ib0')])
def test_a_rail_ifupdown_or_ifcfg_sets_up_is_refused_with_the_unsupported_message(kind, path):
    decision = decide(nm_host(**{kind: {'ib0': path}}), [IB0_RAIL])
    assert (decision.stack, decision.errors) == (None, ('rail ib0 is set up by %s: %s' % (path, UNSUPPORTED[kind]),))


def test_a_network_file_that_sets_up_two_rails_is_refused_naming_the_other_nic():
    shared = network_file('/etc/systemd/network/10-ib.network', '[Match]\nName=ib*\n[Network]\nDHCP=yes\n')
    decision = decide(networkd_host(shared), [IB0_RAIL])
    assert decision.errors == ("rail ib0: /etc/systemd/network/10-ib.network also sets up ib1, and a drop-in would "
                               "give them this rail's routes; give ib0 a .network file of its own",)


@pytest.mark.parametrize('network, given', [('Address=10.0.9.14/24\n', '10.0.9.14/24'),
                                            ('Address=10.0.1.14/16\n', '10.0.1.14/16'),
                                            ('LinkLocalAddressing=no\n', 'no address')])
def test_a_network_file_giving_the_nic_another_address_is_refused(network, given):
    other = network_file('/etc/systemd/network/10-ib0.network', '[Match]\nName=ib0\n[Network]\n' + network)
    assert decide(networkd_host(other), [IB0_RAIL]).errors == (
        'rail ib0: /etc/systemd/network/10-ib0.network gives ib0 %s, not the rail address 10.0.1.14/24' % given,)


UNSURE_NETWORK = network_file('/etc/systemd/network/05-pci.network', '[Match]\nPath=pci-*\n[Network]\nDHCP=yes\n')


def test_a_network_file_networkd_cannot_be_told_to_apply_is_refused():
    assert decide(networkd_host(UNSURE_NETWORK), [IB0_RAIL]).errors[0] == (
        'rail ib0: cannot tell whether /etc/systemd/network/05-pci.network sets it up (Path=pci-*); say which '
        'stack does with source_routing_persist')


def test_naming_the_stack_settles_a_network_file_networkd_cannot_be_told_to_apply():
    view = nm_host(image_profile(), networkd_installed=True, networkd_files=(UNSURE_NETWORK,))
    decision = decide(view, [IB0_RAIL], 'networkmanager')
    assert (decision.stack, decision.errors) == ('networkmanager', ())


NETPLAN_PROFILE = image_profile(id='netplan-ib0',
                                path='/run/NetworkManager/system-connections/netplan-ib0.nmconnection')


def test_a_profile_netplan_generated_without_netplan_to_persist_it_is_refused():
    decision = decide(nm_host(NETPLAN_PROFILE, nm_running=True), [IB0_RAIL])
    assert decision.stack is None and len(decision.errors) == 1
    assert decision.errors[0].startswith('rail ib0: its NetworkManager ')
    assert decision.errors[0].endswith(' is generated by netplan; persist it with netplan')


def test_the_refusal_of_a_netplan_profile_names_it_once():
    decision = decide(nm_host(NETPLAN_PROFILE, nm_running=True), [IB0_RAIL])
    assert decision.errors == ("rail ib0: its NetworkManager profile 'netplan-ib0' (%s) is generated by netplan; "
                               "persist it with netplan" % NETPLAN_PROFILE.path,)


def test_the_requested_stack_overrides_auto_and_warns_about_the_others():
    image = image_profile()
    view = nm_host(image, networkd_installed=True, networkd_files=(IB0_NETWORK,))
    decision = decide(view, [IB0_RAIL], 'networkd')
    assert (decision.stack, decision.errors) == ('networkd', ())
    assert decision.warnings == ("rail ib0: NetworkManager also describes it (profile 'Wired ib0' (%s)); "
                                 "it is persisted with systemd-networkd, as asked" % image.path,)


def test_requesting_netplan_does_not_warn_about_the_network_file_netplan_renders():
    assert decide(netplan_host(), [IB0_RAIL], 'netplan') == decide(netplan_host(), [IB0_RAIL])


def test_networkd_deleting_foreign_rules_beside_a_networkmanager_rail_is_refused():
    view = nm_host(image_profile(), nm_running=True, networkd_installed=True, networkd_running=True,
                   networkd_foreign_rules=True)
    decision = decide(view, [IB0_RAIL])
    assert decision.stack is None
    assert len(decision.errors) == 1 and decision.errors[0].startswith(
        'systemd-networkd runs on this host and, whenever it reconfigures a link it manages')
    assert 'persisted with NetworkManager' in decision.errors[0]
    assert decide(view._replace(networkd_foreign_rules=False), [IB0_RAIL]).stack == 'networkmanager'


def test_networkd_deleting_foreign_rules_is_no_obstacle_to_netplan_rendering_for_networkd():
    assert decide(netplan_host(networkd_running=True, networkd_foreign_rules=True), [IB0_RAIL]).errors == ()


# --- boot_findings --------------------------------------------------------------------------

def test_a_rail_everything_carries_has_no_findings():
    image = image_profile(routes=(CONNECTED, DEFAULT), rules=(RULE,))
    assert boot_findings(nm_host(image, nm_running=True), [IB0_RAIL]) == []


def test_a_second_autoconnect_profile_lacking_the_rule_is_an_error_naming_it_with_an_nmcli_hint():
    image = image_profile(routes=(CONNECTED, DEFAULT), rules=(RULE,))
    spare = image_profile(id='ib0 spare', routes=(CONNECTED, DEFAULT))
    assert boot_findings(nm_host(image, spare, nm_running=True), [IB0_RAIL]) == [Finding(
        'boot', 'ib0', 'error', "NetworkManager profile 'ib0 spare' (%s) can activate on ib0 (autoconnect yes) but "
        "lacks priority 1001 from 10.0.1.14 table 101: a boot that picks it, or nmcli connection up ib0 spare, drops "
        "the rail's routing" % spare.path,
        "run the source_routing role; or by hand: nmcli connection modify %s +ipv4.routing-rules 'priority 1001 from "
        "10.0.1.14 table 101'" % spare.uuid)]


def test_the_nmcli_hint_for_a_missing_route_is_in_nmclis_route_syntax():
    spare = image_profile(id='ib0 spare', routes=(CONNECTED,), rules=(RULE,))
    (finding,) = boot_findings(nm_host(spare, nm_running=True), [IB0_RAIL])
    assert "+ipv4.routes '0.0.0.0/0 10.0.1.1 100 table=101'" in finding.hint


def test_our_own_profile_lacking_a_route_is_an_error_too():
    ours = profile(connection_uuid('ib0'), id='roce-multirail-ib0', interface_name='ib0', method='manual',
                   addresses=('10.0.1.14/24',), routes=(CONNECTED,), rules=(RULE,))
    (finding,) = boot_findings(nm_host(ours), [IB0_RAIL])
    assert (finding.severity, finding.device) == ('error', 'ib0')
    assert 'lacks default via 10.0.1.1 table 101 metric 100' in finding.message


def test_a_network_file_without_the_drop_in_is_an_error_naming_it_and_the_drop_in():
    assert boot_findings(networkd_host(IB0_NETWORK), [IB0_RAIL]) == [Finding(
        'boot', 'ib0', 'error', 'systemd-networkd sets up ib0 from /etc/systemd/network/10-ib0.network, which declares '
        'no 10.0.1.0/24 src 10.0.1.14 table 101 metric 100; default via 10.0.1.1 table 101 metric 100; priority 1001 '
        'from 10.0.1.14 table 101: networkd deletes them at its next start, reload or reconfigure',
        'add them to a drop-in /etc/systemd/network/10-ib0.network.d/90-roce-multirail.conf (the source_routing role '
        'writes it)')]


def test_a_network_file_with_the_drop_in_has_no_findings():
    nfile = IB0_NETWORK._replace(sections=IB0_NETWORK.sections + tuple(
        network_file('/x.conf', render_dropin(IB0_RAIL)).sections))
    assert boot_findings(networkd_host(nfile, networkd_running=True), [IB0_RAIL]) == []


def test_the_drop_in_hint_names_the_networkd_directory_of_the_view():
    (finding,) = boot_findings(networkd_host(IB0_NETWORK, networkd_dir='/run/systemd/network'), [IB0_RAIL])
    assert '/run/systemd/network/10-ib0.network.d/90-roce-multirail.conf' in finding.hint


def test_a_rail_nothing_describes_is_a_warning():
    (finding,) = boot_findings(host(), [IB0_RAIL])
    assert (finding.check, finding.device, finding.severity) == ('boot', 'ib0', 'warning')
    assert finding.message.startswith('nothing known sets up ib0 at boot') and '10.0.1.14/24' in finding.message


def test_a_rail_on_a_nic_the_host_lacks_has_no_findings():
    assert boot_findings(host(links={}), [IB0_RAIL]) == []


def test_netplan_rendering_the_rails_routing_for_networkd_has_no_findings():
    rendered = {'ib0': Rendered('ib0', 'networkd', '10-netplan-ib0.network', NETPLAN_NETWORKD_ROUTED)}
    assert boot_findings(netplan_host(networkd_running=True), [IB0_RAIL], rendered) == []


def test_netplan_without_our_file_is_an_error_naming_the_id_and_our_file():
    (finding,) = boot_findings(netplan_host(), [IB0_RAIL])
    assert finding.message.startswith('netplan sets up ib0 from id ib0 (/etc/netplan/10-image.yaml), rendered for '
                                      'networkd without 10.0.1.0/24 src 10.0.1.14 table 101 metric 100; ')
    assert finding.hint == ('add them as routes and routing-policy of id ib0 in /etc/netplan/90-roce-multirail.yaml '
                            '(the source_routing role writes it)')


def test_netplan_rendering_for_networkmanager_without_the_rules_is_an_error_that_says_why():
    rendered = Rendered('ib0', 'NetworkManager', 'netplan-ib0.nmconnection', NETPLAN_NM_ROUTED)
    generated = NETPLAN_PROFILE._replace(routes=(CONNECTED, DEFAULT))
    view = nm_host(generated, nm_running=True, netplan_installed=True, netplan_definitions={'ib0': IB0_DEFINITION},
                   netplan_rendered={'ib0': rendered})
    (finding,) = boot_findings(view, [IB0_RAIL], {'ib0': rendered})
    assert finding.message == (
        "netplan sets up ib0 from id ib0 (/etc/netplan/10-image.yaml), rendered for NetworkManager without priority "
        "1001 from 10.0.1.14 table 101 (netplan's NetworkManager renderer writes routing rules from netplan 1.1.2 on): "
        "every boot renders it again without them")


def test_networkd_deleting_foreign_rules_beside_a_networkmanager_rail_is_an_error():
    image = image_profile(routes=(CONNECTED, DEFAULT), rules=(RULE,))
    view = nm_host(image, nm_running=True, networkd_installed=True, networkd_running=True)
    (finding,) = boot_findings(view, [IB0_RAIL])
    assert finding.severity == 'error' and 'ManageForeignRoutingPolicyRules=yes' in finding.message
    assert boot_findings(view._replace(networkd_foreign_rules=False), [IB0_RAIL]) == []
