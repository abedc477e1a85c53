"""Unit tests for plugins/module_utils/networkd.py: which .network file systemd-networkd applies to
a rail NIC, what it declares, and the drop-in or file that declares the rail's routes and rules.
"""

import os

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.networkd import (
    NetworkFile,
    dropin_paths,
    file_for,
    from_netplan,
    is_created,
    manages_foreign_rules,
    matches,
    network_files,
    parse,
    render_dropin,
    render_network,
    route_of,
    rule_of,
    settings,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import Rule

from persist_cases import CONNECTED, DEFAULT, IB0, LINKS, RULE, eth_link, network_file, rail

IB0_LINK = LINKS['ib0']


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def match_file(text):
    return network_file('/etc/systemd/network/10-test.network', '[Match]\n' + text)


# --- parsing ------------------------------------------------------------------------------

def test_parse_keeps_repeated_sections_apart_and_skips_comments():
    text = ('# comment\n; also a comment\n[Match]\nName=ib0\n\n[Route]\nDestination=10.9.0.0/16\n'
            '# Gateway=10.0.1.9\n[Route]\n  Destination = 10.8.0.0/16  \nGateway=10.0.1.1\n')
    assert parse(text) == [('Match', [('Name', 'ib0')]), ('Route', [('Destination', '10.9.0.0/16')]),
                           ('Route', [('Destination', '10.8.0.0/16'), ('Gateway', '10.0.1.1')])]


def test_parse_joins_a_continued_line_with_a_space():
    assert parse('[Match]\nName=ib0 \\\n  ib1\\\nib2\n') == [('Match', [('Name', 'ib0  ib1 ib2')])]


def test_parse_ignores_keys_before_the_first_section():
    assert parse('Name=ib0\n[Network]\nDHCP=yes\n') == [('Network', [('DHCP', 'yes')])]


# --- which files networkd reads -------------------------------------------------------------------

def test_network_files_are_in_name_order_across_directories(tmp_path):
    etc, run, lib = tmp_path / 'etc', tmp_path / 'run', tmp_path / 'lib'
    write(lib / '99-default.network', '[Match]\nName=*\n')
    write(run / '10-netplan-ib0.network', '[Match]\nName=ib0\n')
    write(etc / '50-ib1.network', '[Match]\nName=ib1\n')
    found = network_files([str(etc), str(run), str(lib)])
    assert [f.path for f in found] == [str(run / '10-netplan-ib0.network'), str(etc / '50-ib1.network'),
                                       str(lib / '99-default.network')]


def test_a_file_in_etc_hides_the_file_of_the_same_name_in_run(tmp_path):
    etc, run = tmp_path / 'etc', tmp_path / 'run'
    write(etc / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n')
    write(run / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nDHCP=yes\n')
    found = network_files([str(etc), str(run)])
    assert [(f.path, settings(f)[:2]) for f in found] == [(str(etc / '10-ib0.network'), (('10.0.1.14/24',), False))]


@pytest.mark.parametrize('mask', ['symlink to /dev/null', 'empty file'])
def test_a_masked_file_in_etc_hides_the_file_and_is_not_read(tmp_path, mask):
    etc, run = tmp_path / 'etc', tmp_path / 'run'
    write(run / '10-ib0.network', '[Match]\nName=ib0\n')
    write(run / '20-ib1.network', '[Match]\nName=ib1\n')
    etc.mkdir()
    if mask == 'empty file':
        (etc / '10-ib0.network').write_text('')
    else:
        os.symlink('/dev/null', str(etc / '10-ib0.network'))
    assert [f.name for f in network_files([str(etc), str(run)])] == ['20-ib1.network']


def test_drop_ins_apply_in_name_order_etc_hiding_run_and_masked_ones_left_out(tmp_path):
    etc, run = tmp_path / 'etc', tmp_path / 'run'
    write(etc / '10-ib0.network.d' / '50-mtu.conf', '[Link]\nMTUBytes=4092\n')
    write(run / '10-ib0.network.d' / '50-mtu.conf', '[Link]\nMTUBytes=2044\n')
    write(run / '10-ib0.network.d' / '10-first.conf', '[Network]\nDHCP=yes\n')
    write(run / '10-ib0.network.d' / '90-masked.conf', '[Network]\nAddress=10.0.9.14/24\n')
    (etc / '10-ib0.network.d' / '90-masked.conf').symlink_to('/dev/null')
    write(run / '10-ib0.network.d' / 'not-a-dropin.txt', '[Network]\nDHCP=no\n')
    assert dropin_paths('10-ib0.network', [str(etc), str(run)]) == (
        str(run / '10-ib0.network.d' / '10-first.conf'), str(etc / '10-ib0.network.d' / '50-mtu.conf'))


def test_a_network_files_sections_are_followed_by_those_of_its_drop_ins(tmp_path):
    etc = tmp_path / 'etc'
    write(etc / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n')
    write(etc / '10-ib0.network.d' / '90-roce-multirail.conf', '[RoutingPolicyRule]\nFrom=10.0.1.14\n'
                                                               'Table=101\nPriority=1001\n')
    (nfile,) = network_files([str(etc)])
    assert nfile.sections == (('Match', [('Name', 'ib0')]), ('Network', [('Address', '10.0.1.14/24')]),
                              ('RoutingPolicyRule', [('From', '10.0.1.14'), ('Table', '101'), ('Priority', '1001')]))
    assert nfile.dropins == (str(etc / '10-ib0.network.d' / '90-roce-multirail.conf'),)


# --- [Match] ---------------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('Name=ib0\n', True),
    ('Name=ib*\n', True),
    ('Name=eth* ib?\n', True),
    ('Name=ib1\n', False),
    ('Name=!ib1\n', True),
    ('Name=!ib*\n', False),
    ('Name=!eth0 ib0\n', False),
    ('Name=ib1\nName=ib0\n', True),
    ('Name=ib1\nName=\nName=ib0\n', True),
    ('Name=ib0\nName=\n', True),
    ('', True),
])
def test_name_globs_match_like_networkd(text, expected):
    assert matches(match_file(text), IB0_LINK) == (expected, '')


@pytest.mark.parametrize('text, expected', [
    ('Name=ib* !ib0\n', False),
    ('Name=ib*\nName=!ib0\n', False),
    ('Name=!ib1\nName=eth*\n', False),
])
def test_name_globs_mixing_negated_and_plain_patterns_match_like_networkd(text, expected):
    assert matches(match_file(text), IB0_LINK) == (expected, '')


def test_mac_address_matches_whatever_its_case():
    assert matches(match_file('MACAddress=52:54:00:12:34:00\n'), eth_link('eth0', 0)) == (True, '')
    assert matches(match_file('MACAddress=52:54:00:12:34:0a 52:54:00:12:34:0B\n'), eth_link('eth0', 11)) == (True, '')
    assert matches(match_file('MACAddress=52:54:00:12:34:01\n'), eth_link('eth0', 0)) == (False, '')


@pytest.mark.parametrize('text, link, expected', [
    ('Type=ether\n', eth_link('eth0'), True),
    ('Type=ether\n', IB0_LINK, False),
    ('Type=infiniband\n', IB0_LINK, True),
    ('Type=infiniband\n', eth_link('eth0'), False),
], ids=['ether on ARPHRD 1', 'ether on ARPHRD 32', 'infiniband on ARPHRD 32', 'infiniband on ARPHRD 1'])
def test_type_is_the_links_arphrd_type_as_networkd_names_it(text, link, expected):
    assert matches(match_file(text), link) == (expected, '')


def test_driver_matches_the_links_driver():
    assert matches(match_file('Driver=mlx5_*\n'), IB0_LINK) == (True, '')
    assert matches(match_file('Driver=virtio_net\n'), IB0_LINK) == (False, '')


def test_a_key_that_cannot_be_judged_from_the_link_is_unknown_with_the_reason():
    assert matches(match_file('Name=ib*\nPath=pci-0000:3b:00.0\nProperty=ID_BUS=pci\n'), IB0_LINK) == (
        None, 'Path=pci-0000:3b:00.0, Property=ID_BUS=pci')


def test_a_known_key_that_fails_wins_over_an_unknown_one():
    assert matches(match_file('Path=pci-*\nName=ib1\n'), IB0_LINK) == (False, '')


def test_system_keys_say_nothing_about_the_link():
    assert matches(match_file('Name=ib0\nHost=compute-17\nVirtualization=no\nKernelCommandLine=quiet\n'),
                   IB0_LINK) == (True, '')


def test_file_for_is_the_first_file_in_order_that_matches():
    first = network_file('/etc/systemd/network/10-ib0.network', '[Match]\nName=ib0\n')
    files = [network_file('/etc/systemd/network/05-eth.network', '[Match]\nName=eth*\n'), first,
             network_file('/etc/systemd/network/99-all.network', '[Match]\nName=*\n')]
    assert file_for(files, IB0_LINK) == (first, '')
    assert file_for(files[:1], IB0_LINK) == (None, '')


def test_file_for_stops_at_a_file_it_cannot_judge():
    unsure = network_file('/etc/systemd/network/05-pci.network', '[Match]\nPath=pci-*\n')
    assert file_for([unsure, network_file('/etc/systemd/network/10-ib0.network', '[Match]\nName=ib0\n')],
                    IB0_LINK) == (unsure, 'Path=pci-*')


# --- what a file declares ---------------------------------------------------------------------

def test_settings_collect_addresses_from_network_and_address_sections():
    nfile = network_file('/etc/systemd/network/10-ib0.network',
                         '[Network]\nAddress=10.0.1.14/24\nAddress=10.0.7.14/24\n[Address]\nAddress=10.0.8.14/24\n'
                         '[Address]\nPeer=10.0.9.1\n')
    assert settings(nfile) == (('10.0.1.14/24', '10.0.7.14/24', '10.0.8.14/24'), False, (), ())


@pytest.mark.parametrize('value, dhcp', [('yes', True), ('ipv4', True), ('true', True), ('both', True),
                                         ('ipv6', False), ('no', False)])
def test_settings_tell_whether_dhcp_gives_the_ipv4_address(value, dhcp):
    assert settings(network_file('/x.network', '[Network]\nDHCP=%s\n' % value))[1] is dhcp


def test_settings_read_routes_and_rules_of_the_file_and_its_drop_ins(tmp_path):
    etc = tmp_path / 'etc'
    write(etc / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n[Route]\nGateway=10.0.1.1\n')
    write(etc / '10-ib0.network.d' / '90-roce-multirail.conf', render_dropin(rail(IB0)))
    (nfile,) = network_files([str(etc)])
    assert settings(nfile) == (('10.0.1.14/24',), False, (CONNECTED, DEFAULT), (RULE,))


@pytest.mark.parametrize('values, route', [
    ({'Destination': '10.0.1.0/24', 'PreferredSource': '10.0.1.14', 'Table': '101', 'Metric': '100',
      'Scope': 'link'}, CONNECTED),
    ({'Gateway': '10.0.1.1', 'Table': '101', 'Metric': '100', 'Protocol': 'static'}, DEFAULT),
    ({'Gateway': '10.0.1.1', 'Table': '101', 'GatewayOnLink': 'yes'}, DEFAULT._replace(metric=0, onlink=True)),
], ids=['connected', 'default without Destination', 'onlink, kernel metric'])
def test_route_of_reads_a_rail_route(values, route):
    assert route_of(values) == route


@pytest.mark.parametrize('values', [
    {'Gateway': '10.0.1.1', 'Metric': '100'},
    {'Gateway': '10.0.1.1', 'Table': 'main'},
    {'Destination': 'fd00::/64', 'Table': '101'},
    {'Gateway': 'fe80::1', 'Table': '101'},
    {'Gateway': '10.0.1.1', 'Table': '101', 'Protocol': 'kernel'},
    {'Gateway': '10.0.1.1', 'Table': '101', 'Type': 'blackhole'},
    {'Gateway': '10.0.1.1', 'Table': '101', 'Metric': 'low'},
], ids=['no table', 'table by name', 'IPv6', 'IPv6 gateway', 'another protocol', 'another key', 'bad metric'])
def test_route_of_what_a_rail_table_never_holds_is_none(values):
    assert route_of(values) is None


def test_rule_of_reads_a_source_rule_as_every_stack_prints_it():
    assert rule_of({'From': '10.0.1.14/32', 'Table': '101', 'Priority': '1001'}) == RULE
    assert rule_of({'From': '10.0.1.48/29', 'Table': '101', 'Priority': '1001'}) == Rule(1001, '10.0.1.48/29', 101)


@pytest.mark.parametrize('values', [
    {'From': '10.0.1.14', 'Table': '101'},
    {'From': '10.0.1.14', 'Table': '101', 'Priority': '1001', 'IncomingInterface': 'ib0'},
    {'From': 'fd00::14', 'Table': '101', 'Priority': '1001'},
    {'From': '10.0.1.14', 'Table': 'main', 'Priority': '1001'},
    {'From': 'ib0', 'Table': '101', 'Priority': '1001'},
], ids=['no priority', 'another key', 'IPv6', 'table by name', 'not an address'])
def test_rule_of_another_kind_of_rule_is_none(values):
    assert rule_of(values) is None


# --- what this collection writes -------------------------------------------------------------

def test_render_dropin_declares_the_rails_routes_and_rules():
    assert render_dropin(rail(IB0)) == """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
# The routes and rules of rail ib0, so that systemd-networkd keeps them.

[Route]
Destination=10.0.1.0/24
PreferredSource=10.0.1.14
Table=101
Metric=100
Scope=link

[Route]
Destination=0.0.0.0/0
Gateway=10.0.1.1
Table=101
Metric=100
Scope=global

[RoutingPolicyRule]
From=10.0.1.14
Table=101
Priority=1001
"""


def test_render_network_sets_up_the_rail_with_its_mtu_and_sources():
    spec = dict(IB0, mtu=4092, sources=['10.0.1.48/29'])
    assert render_network(rail(spec, destination='10.0.1.0/24', metric=5)) == """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
[Match]
Name=ib0

[Link]
MTUBytes=4092

[Network]
Address=10.0.1.14/24
LinkLocalAddressing=no
IPv6AcceptRA=no

[Route]
Destination=10.0.1.0/24
PreferredSource=10.0.1.14
Table=101
Metric=5
Scope=link

[RoutingPolicyRule]
From=10.0.1.14
Table=101
Priority=1001

[RoutingPolicyRule]
From=10.0.1.48/29
Table=101
Priority=1001
"""


@pytest.mark.parametrize('spec, plan_args', [
    (IB0, {}),
    (dict(IB0, gateway='10.0.1.254', sources=['10.0.1.40', '10.0.1.48/29'], mtu=2044), {'metric': 0}),
    (dict(IB0, address='10.0.1.15/31'), {'destination': '10.0.0.0/8'}),
], ids=['textbook', 'sources, mtu, metric 0', '/31'])
def test_settings_of_the_created_network_file_are_exactly_the_rail(spec, plan_args):
    planned = rail(spec, **plan_args)
    nfile = network_file('/etc/systemd/network/50-roce-multirail-ib0.network', render_network(planned))
    assert settings(nfile) == ((planned.address,), False, planned.routes, planned.rules)
    assert matches(nfile, IB0_LINK) == (True, '')


def test_is_created_takes_only_a_file_named_like_ours_that_starts_with_the_header(tmp_path):
    ours = write(tmp_path / '50-roce-multirail-ib0.network', render_network(rail(IB0)))
    hand = write(tmp_path / '50-roce-multirail-ib1.network', '[Match]\nName=ib1\n')
    other = write(tmp_path / '10-ib0.network', render_network(rail(IB0)))
    assert [is_created(NetworkFile(p, os.path.basename(p), (), ())) for p in (ours, hand, other)] == [
        True, False, False]


def test_from_netplan_is_a_netplan_file_in_run():
    assert from_netplan(network_file('/run/systemd/network/10-netplan-ib0.network', ''))
    assert not from_netplan(network_file('/etc/systemd/network/10-netplan-ib0.network', ''))


# --- ManageForeignRoutingPolicyRules -----------------------------------------------------------

def conf_dirs(tmp_path):
    return [str(tmp_path / d) for d in ('etc', 'run', 'usr-lib')]


def test_networkd_manages_foreign_rules_by_default(tmp_path):
    assert manages_foreign_rules(conf_dirs(tmp_path)) is True


def test_networkd_conf_turns_managing_foreign_rules_off(tmp_path):
    write(tmp_path / 'etc' / 'networkd.conf', '[Network]\n#ManageForeignRoutes=yes\n'
                                              'ManageForeignRoutingPolicyRules=no\n')
    assert manages_foreign_rules(conf_dirs(tmp_path)) is False


def test_a_key_of_another_section_changes_nothing(tmp_path):
    write(tmp_path / 'etc' / 'networkd.conf', '[DHCPv4]\nManageForeignRoutingPolicyRules=no\n')
    assert manages_foreign_rules(conf_dirs(tmp_path)) is True


def test_a_drop_in_overrides_networkd_conf(tmp_path):
    write(tmp_path / 'etc' / 'networkd.conf', '[Network]\nManageForeignRoutingPolicyRules=no\n')
    write(tmp_path / 'run' / 'networkd.conf.d' / '50-vendor.conf', '[Network]\nManageForeignRoutingPolicyRules=yes\n')
    assert manages_foreign_rules(conf_dirs(tmp_path)) is True


def test_the_last_drop_in_by_name_wins_and_etc_hides_the_same_name_elsewhere(tmp_path):
    write(tmp_path / 'usr-lib' / 'networkd.conf.d' / '60-keep.conf', '[Network]\nManageForeignRoutingPolicyRules=yes\n')
    write(tmp_path / 'etc' / 'networkd.conf.d' / '60-keep.conf', '[Network]\nManageForeignRoutingPolicyRules=no\n')
    write(tmp_path / 'run' / 'networkd.conf.d' / '10-early.conf', '[Network]\nManageForeignRoutingPolicyRules=yes\n')
    assert manages_foreign_rules(conf_dirs(tmp_path)) is False


def test_networkd_conf_in_etc_hides_the_one_in_usr_lib(tmp_path):
    write(tmp_path / 'usr-lib' / 'networkd.conf', '[Network]\nManageForeignRoutingPolicyRules=no\n')
    write(tmp_path / 'etc' / 'networkd.conf', '[Network]\n#ManageForeignRoutingPolicyRules=yes\n')
    assert manages_foreign_rules(conf_dirs(tmp_path)) is True
