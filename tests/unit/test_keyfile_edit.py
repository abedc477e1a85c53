"""Unit tests for plugins/module_utils/keyfile.py: reading NetworkManager keyfiles someone else
wrote, and editing the rail's routes and rules into them with every other line left as it was.
"""

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import (
    entries,
    edit,
    mac_form,
    parse,
    parse_route,
    parse_rule,
    read_profile,
    render,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import Rule

from persist_cases import CONNECTED, DEFAULT, IB0, IMAGE, IMAGE_ADOPTED, RULE, rail


# --- routes and rules -----------------------------------------------------------------------

@pytest.mark.parametrize('value, options', [
    ('10.0.1.0/24,0.0.0.0,100', 'src=10.0.1.14,table=101'),
    ('10.0.1.0/24,,100', 'table=101,src=10.0.1.14'),
    ('10.0.1.0/24 100', 'src=10.0.1.14 table=101'),
], ids=['keyfile', 'keyfile as netplan writes it', 'nmcli'])
def test_a_route_reads_the_same_in_keyfile_and_nmcli_spelling(value, options):
    assert parse_route(value, options) == CONNECTED


def test_a_gateway_route_keeps_its_gateway_and_onlink():
    assert parse_route('0.0.0.0/0,10.0.1.1,100', 'table=101,onlink=true') == DEFAULT._replace(onlink=True)


def test_a_route_without_a_metric_gets_minus_one():
    assert parse_route('0.0.0.0/0,10.0.1.1', 'table=101') == DEFAULT._replace(metric=-1)


@pytest.mark.parametrize('value, options', [
    ('fd00:1::/64,::,100', 'table=101'),
    ('0.0.0.0/0,fd00::1,100', 'table=101'),
    ('10.0.1.0/24,0.0.0.0,100', 'src=10.0.1.14'),
    ('10.0.1.0/24,0.0.0.0,100', 'table=main'),
    ('10.0.1.0/24,0.0.0.0,100', 'table=101,lock-mtu=true'),
    ('10.0.1.0/24,0.0.0.0,100', 'table=101,type=blackhole'),
    ('10.0.1.0/24,0.0.0.0,100,7', 'table=101'),
    ('not-a-prefix,0.0.0.0,100', 'table=101'),
], ids=['IPv6', 'IPv6 gateway', 'no table', 'table by name', 'lock-mtu', 'route type', 'four fields', 'garbage'])
def test_what_a_rail_never_holds_is_not_a_rail_route(value, options):
    assert parse_route(value, options) is None


@pytest.mark.parametrize('value, rule', [
    ('priority 1001 from 10.0.1.14 table 101', RULE),
    ('priority 1001 from 10.0.1.14/32 table 101', RULE),
    ('priority 1001 from 10.0.1.48/29 table 101', Rule(1001, '10.0.1.48/29', 101)),
])
def test_a_source_rule_reads_with_its_source_as_every_stack_prints_it(value, rule):
    assert parse_rule(value) == rule


@pytest.mark.parametrize('value', [
    'priority 1001 from 10.0.1.14 iif ib0 table 101',
    'priority 1001 to 10.0.0.0/8 table 101',
    'priority 1001 from fd00::14 table 101',
    'from 10.0.1.14 table 101',
    'priority 1001 from 10.0.1.14 table main',
])
def test_a_rule_of_another_kind_is_not_a_rail_rule(value):
    assert parse_rule(value) is None


def test_entries_pair_each_route_with_its_options_wherever_they_stand():
    lines = parse('[ipv4]\nroute2_options=table=101\nroute1=10.0.1.0/24,0.0.0.0,100\n'
                  'route2=0.0.0.0/0,10.0.1.1,100\nroute1_options=src=10.0.1.14,table=101\n'
                  'routing-rule4=priority 1001 from 10.0.1.14 table 101\n'
                  '[ipv6]\nroute1=fd00::/64,::,5\nroute1_options=table=101\n')
    routes, rules = entries(lines)
    assert routes == {'route1': (CONNECTED, '10.0.1.0/24,0.0.0.0,100'), 'route2': (DEFAULT, '0.0.0.0/0,10.0.1.1,100')}
    assert rules == {'routing-rule4': (RULE, 'priority 1001 from 10.0.1.14 table 101')}


def test_entries_keep_the_key_of_an_entry_that_is_not_the_rails():
    routes, _rules = entries(parse('[ipv4]\nroute7=10.9.0.0/16,10.0.1.1\nroutes2=10.8.0.0/16,10.0.1.1\n'))
    assert routes == {'route7': (None, '10.9.0.0/16,10.0.1.1'), 'routes2': (None, '10.8.0.0/16,10.0.1.1')}


# --- MAC addresses --------------------------------------------------------------------------

@pytest.mark.parametrize('value, mac', [
    ('aa:bb:cc:dd:ee:ff', 'AA:BB:CC:DD:EE:FF'),
    (' AA:bb:CC:dd:EE:ff ', 'AA:BB:CC:DD:EE:FF'),
    ('170;187;204;221;238;255;', 'AA:BB:CC:DD:EE:FF'),
    ('80:00:00:48:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:7d:4e:2a',
     '80:00:00:48:FE:80:00:00:00:00:00:00:0C:42:A1:03:00:7D:4E:2A'),
], ids=['colons', 'mixed case', 'old byte list', 'InfiniBand'])
def test_mac_form_upper_cases_every_spelling_of_a_mac(value, mac):
    assert mac_form(value) == mac


@pytest.mark.parametrize('value', ['', 'aa:bb:cc:dd:ee:f', 'aa-bb-cc-dd-ee-ff', '170;x;204;', 'permanent'])
def test_mac_form_of_what_is_not_a_mac_is_empty(value):
    assert mac_form(value) == ''


# --- profiles -------------------------------------------------------------------------------

def test_read_profile_takes_networkmanagers_defaults_for_missing_keys():
    info = read_profile('[connection]\nid=bare\nuuid=u-1\ntype=infiniband\n')
    assert (info.autoconnect, info.method, info.interface_name, info.mac, info.match, info.master,
            info.addresses, info.routes, info.rules) == (True, 'auto', '', '', (), '', (), (), ())


def test_read_profile_reads_autoconnect_off():
    assert read_profile('[connection]\ntype=infiniband\nautoconnect=false\n').autoconnect is False


def test_read_profile_reads_an_ethernet_profile_in_both_group_spellings():
    info = read_profile('[connection]\nuuid=u-2\ntype=802-3-ethernet\n[802-3-ethernet]\n'
                        'mac-address=82;84;0;18;52;1;\n[match]\ninterface-name=eth*;!eth9;\n'
                        '[ipv4]\nmethod=manual\naddress1=10.0.5.14/24,10.0.5.1\n')
    assert (info.type, info.mac, info.match, info.method, info.addresses) == (
        'ethernet', '52:54:00:12:34:01', ('eth*', '!eth9'), 'manual', ('10.0.5.14/24',))


def test_read_profile_of_a_port_names_its_controller():
    assert read_profile('[connection]\ntype=ethernet\ncontroller=bond0\n').master == 'bond0'


def test_read_profile_of_the_created_keyfile_gives_back_the_rails_routing():
    ib0 = rail(IB0)
    info = read_profile(render(ib0, 'infiniband'))
    assert (info.addresses, info.routes, info.rules) == (('10.0.1.14/24',), ib0.routes, ib0.rules)


# --- editing --------------------------------------------------------------------------------

def test_edit_adds_the_rails_entries_at_the_end_of_ipv4_after_the_profiles_own():
    ib0 = rail(IB0)
    assert edit(IMAGE, add_routes=ib0.routes, add_rules=ib0.rules) == IMAGE_ADOPTED


def test_edit_numbers_new_entries_after_the_highest_index_in_use():
    text = ('[ipv4]\nmethod=auto\nroute1=192.168.7.0/24,10.0.1.254\nroute3=192.168.8.0/24,10.0.1.254\n'
            'routing-rule2=priority 50 from 192.168.9.0/24 table 7\n')
    assert edit(text, add_routes=[DEFAULT], add_rules=[RULE]) == (
        '[ipv4]\nmethod=auto\nroute1=192.168.7.0/24,10.0.1.254\nroute3=192.168.8.0/24,10.0.1.254\n'
        'routing-rule2=priority 50 from 192.168.9.0/24 table 7\n'
        'route4=0.0.0.0/0,10.0.1.1,100\nroute4_options=table=101\n'
        'routing-rule3=priority 1001 from 10.0.1.14 table 101\n')


def test_edit_removes_a_route_with_its_options_line_and_nothing_else():
    text = """\
[connection]
id=adopted
[ipv4]
route2_options=src=10.0.1.14,table=101
method=manual
route1=192.168.7.0/24,10.0.1.254
route1_options=table=7
route2=10.0.1.0/24,0.0.0.0,100
# keep me
routing-rule1=priority 1001 from 10.0.1.14 table 101
routing-rule2=priority 50 from 192.168.9.0/24 table 7

[ipv6]
route2=fd00::/64,::,100
"""
    assert edit(text, remove_routes=[CONNECTED], remove_rules=[RULE]) == """\
[connection]
id=adopted
[ipv4]
method=manual
route1=192.168.7.0/24,10.0.1.254
route1_options=table=7
# keep me
routing-rule2=priority 50 from 192.168.9.0/24 table 7

[ipv6]
route2=fd00::/64,::,100
"""


def test_edit_removes_every_copy_of_a_route_the_profile_holds_twice():
    text = ('[ipv4]\nroute1=0.0.0.0/0,10.0.1.1,100\nroute1_options=table=101\n'
            'route5=0.0.0.0/0,10.0.1.1,100\nroute5_options=table=101\n')
    # An [ipv4] group left without a key is no group at all to NetworkManager: it goes too.
    assert edit(text, remove_routes=[DEFAULT]) == ''


def test_edit_with_nothing_to_do_gives_the_text_back_unchanged():
    assert edit(IMAGE) == IMAGE
    assert edit(IMAGE, remove_routes=[DEFAULT], remove_rules=[RULE]) == IMAGE


def test_edit_appends_an_ipv4_group_to_a_profile_without_one():
    text = '[connection]\nid=plain\ntype=infiniband\ninterface-name=ib0\n\n\n'
    assert edit(text, add_routes=[DEFAULT], add_rules=[RULE]) == (
        '[connection]\nid=plain\ntype=infiniband\ninterface-name=ib0\n\n[ipv4]\n'
        'route1=0.0.0.0/0,10.0.1.1,100\nroute1_options=table=101\n'
        'routing-rule1=priority 1001 from 10.0.1.14 table 101\n')


def test_edit_adding_then_removing_the_rail_gives_back_the_original_byte_for_byte():
    ib0 = rail(IB0)
    added = edit(IMAGE, add_routes=ib0.routes, add_rules=ib0.rules)
    assert edit(added, remove_routes=ib0.routes, remove_rules=ib0.rules) == IMAGE


def test_edit_adding_then_removing_gives_back_a_profile_that_had_no_ipv4_group():
    text = '[connection]\nid=plain\ntype=infiniband\ninterface-name=ib0\n'
    added = edit(text, add_routes=[DEFAULT], add_rules=[RULE])
    assert edit(added, remove_routes=[DEFAULT], remove_rules=[RULE]) == text
