"""Unit tests for plugins/module_utils/plan.py: the source-routing planner.

The two layouts of the design (textbook: one /24 per NIC; shared: two NICs per /24 behind one
gateway, one route for the whole RoCE space) are checked object by object; every validation error
is checked for a message that names the rail, the field and the value.
"""

import ipaddress

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.plan import (
    MAX_RAILS,
    MAX_SOURCES,
    RAIL_KEYS,
    PlanError,
    build_plan,
)


def textbook(count=4):
    return [{'device': 'ib%d' % index, 'address': '10.0.%d.14/24' % (index + 1)} for index in range(count)]


def rail(**overrides):
    spec = {'device': 'ib0', 'address': '10.0.1.14/24'}
    spec.update(overrides)
    return spec


def plan_error(rails, **kwargs):
    """The message of the PlanError build_plan raises (any other exception fails the test)."""
    with pytest.raises(PlanError) as caught:
        build_plan(rails, **kwargs)
    return str(caught.value)


def assert_names(message, *parts):
    for part in parts:
        assert part in message, 'expected %r in %r' % (part, message)


# --- the textbook layout -------------------------------------------------------------------------

def test_textbook_tables_hold_subnet_and_default_route():
    plan = build_plan(textbook())
    assert plan['tables'] == [
        {'table': 100 + n, 'routes': [
            {'dst': '10.0.%d.0/24' % n, 'dev': 'ib%d' % (n - 1), 'src': '10.0.%d.14' % n, 'metric': 100},
            {'dst': '0.0.0.0/0', 'gateway': '10.0.%d.1' % n, 'dev': 'ib%d' % (n - 1), 'metric': 100},
        ]}
        for n in range(1, 5)
    ]


def test_textbook_one_rule_per_rail_from_its_address():
    plan = build_plan(textbook())
    assert plan['rules'] == [{'priority': 1000 + n, 'from': '10.0.%d.14' % n, 'table': 100 + n} for n in range(1, 5)]


def test_textbook_sysctls():
    plan = build_plan(textbook())
    per_rail = {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2}
    assert plan['conf'] == {'all': {'rp_filter': 2, 'accept_local': 1},
                            'ib0': per_rail, 'ib1': per_rail, 'ib2': per_rail, 'ib3': per_rail}
    lines = ['net.ipv4.conf.all.accept_local = 1', 'net.ipv4.conf.all.rp_filter = 2']
    for device in ('ib0', 'ib1', 'ib2', 'ib3'):
        lines += ['net.ipv4.conf.%s.arp_announce = 2' % device,
                  'net.ipv4.conf.%s.arp_ignore = 1' % device,
                  'net.ipv4.conf.%s.rp_filter = 2' % device]
    assert plan['sysctl_lines'] == lines


def test_textbook_range_devices_and_rails():
    plan = build_plan(textbook())
    assert plan['priority_range'] == {'start': 1001, 'end': 1999}
    assert plan['devices'] == ['ib0', 'ib1', 'ib2', 'ib3']
    first = plan['rails'][0]
    fields = ('device', 'address', 'ip', 'subnet', 'gateway', 'table', 'priority', 'sources', 'mtu', 'metric')
    assert {key: first[key] for key in fields} == {
        'device': 'ib0', 'address': '10.0.1.14/24', 'ip': '10.0.1.14', 'subnet': '10.0.1.0/24',
        'gateway': '10.0.1.1', 'table': 101, 'priority': 1001, 'sources': [], 'mtu': None, 'metric': 100}
    assert first['rules'] == [{'priority': 1001, 'from': '10.0.1.14', 'table': 101}]
    assert first['routes'] == plan['tables'][0]['routes']


def test_plan_error_is_an_invalid_argument():
    assert issubclass(PlanError, InvalidArgument)
    assert issubclass(PlanError, ValueError)


# --- the shared-subnet layout --------------------------------------------------------------------

SHARED = [
    {'device': 'ib0', 'address': '10.0.1.14/24', 'gateway': '10.0.1.1'},
    {'device': 'ib1', 'address': '10.0.1.16/24', 'gateway': '10.0.1.1'},
    {'device': 'ib2', 'address': '10.0.2.14/24', 'gateway': '10.0.2.1'},
    {'device': 'ib3', 'address': '10.0.2.16/24', 'gateway': '10.0.2.1'},
]


def test_shared_layout_routes_roce_space_via_shared_gateway_forcing_the_nic():
    plan = build_plan(SHARED, destination='10.0.0.0/16')
    expected = []
    layout = [('10.0.1.0/24', '10.0.1.14', '10.0.1.1'), ('10.0.1.0/24', '10.0.1.16', '10.0.1.1'),
              ('10.0.2.0/24', '10.0.2.14', '10.0.2.1'), ('10.0.2.0/24', '10.0.2.16', '10.0.2.1')]
    for index, (subnet, ip, gateway) in enumerate(layout):
        device = 'ib%d' % index
        expected.append({'table': 101 + index, 'routes': [
            {'dst': subnet, 'dev': device, 'src': ip, 'metric': 100},
            {'dst': '10.0.0.0/16', 'gateway': gateway, 'dev': device, 'metric': 100},
        ]})
    assert plan['tables'] == expected
    assert plan['rules'] == [{'priority': 1001 + i, 'from': ip, 'table': 101 + i}
                             for i, ip in enumerate(['10.0.1.14', '10.0.1.16', '10.0.2.14', '10.0.2.16'])]


def test_shared_layout_default_gateway_is_first_host():
    plan = build_plan([{k: v for k, v in spec.items() if k != 'gateway'} for spec in SHARED],
                      destination='10.0.0.0/16')
    assert [r['gateway'] for r in plan['rails']] == ['10.0.1.1', '10.0.1.1', '10.0.2.1', '10.0.2.1']


def test_destination_equal_to_subnet_yields_only_the_subnet_route():
    plan = build_plan([rail()], destination='10.0.1.0/24')
    assert plan['tables'] == [{'table': 101, 'routes': [
        {'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 100}]}]


# --- SR-IOV sources ------------------------------------------------------------------------------

def test_eight_rails_with_vf_sources():
    rails = []
    for index in range(8):
        rails.append({'device': 'ib%d' % index, 'address': '10.0.%d.14/24' % (index + 1),
                      'sources': ['10.1.%d.20' % index, '10.1.%d.21/32' % index, '10.2.%d.0/28' % index]})
    plan = build_plan(rails)
    assert len(plan['tables']) == 8
    expected_rules = []
    for index in range(8):
        table, priority = 101 + index, 1001 + index
        for source in ('10.0.%d.14' % (index + 1), '10.1.%d.20' % index, '10.1.%d.21' % index,
                       '10.2.%d.0/28' % index):
            expected_rules.append({'priority': priority, 'from': source, 'table': table})
    assert plan['rules'] == expected_rules
    assert plan['rails'][3]['sources'] == ['10.1.3.20/32', '10.1.3.21/32', '10.2.3.0/28']
    assert plan['rails'][3]['rules'] == expected_rules[12:16]
    assert plan['priority_range'] == {'start': 1001, 'end': 1999}


# --- defaults and overrides ----------------------------------------------------------------------

def test_table_and_priority_base():
    plan = build_plan(textbook(3), table_base=200, priority_base=5000)
    assert [t['table'] for t in plan['tables']] == [201, 202, 203]
    assert plan['rules'] == [{'priority': 5001 + i, 'from': '10.0.%d.14' % (i + 1), 'table': 201 + i}
                             for i in range(3)]
    assert plan['priority_range'] == {'start': 5001, 'end': 5999}


def test_priority_base_near_main_caps_the_range_below_main():
    plan = build_plan([rail()], priority_base=32000)
    assert plan['priority_range'] == {'start': 32001, 'end': 32765}
    assert plan['rules'][0]['priority'] == 32001


def test_default_table_landing_on_a_reserved_id_is_refused():
    message = plan_error(textbook(4), table_base=250)
    assert_names(message, 'rail ib2', 'table', '253', 'reserved')


def test_per_rail_overrides():
    rails = textbook(2)
    rails[0].update(gateway='10.0.1.254', table=300000, priority=1500, mtu=4092,
                    sysctls={'arp_ignore': 2, 'arp_filter': 1})
    plan = build_plan(rails, metric=7)
    first, second = plan['rails']
    assert first['gateway'] == '10.0.1.254'
    assert first['table'] == 300000 and first['priority'] == 1500 and first['mtu'] == 4092
    assert plan['tables'][0] == {'table': 300000, 'routes': [
        {'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 7},
        {'dst': '0.0.0.0/0', 'gateway': '10.0.1.254', 'dev': 'ib0', 'metric': 7}]}
    assert plan['rules'][0] == {'priority': 1500, 'from': '10.0.1.14', 'table': 300000}
    assert plan['conf']['ib0'] == {'arp_ignore': 2, 'arp_announce': 2, 'rp_filter': 2, 'arp_filter': 1}
    # the second rail keeps its defaults
    assert (second['table'], second['priority'], second['mtu'], second['gateway']) == (102, 1002, None, '10.0.2.1')
    assert plan['conf']['ib1'] == {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2}


def test_numeric_strings_are_integers():
    plan = build_plan([rail(table='150', priority='1200', mtu='9000')], table_base='100', priority_base='1000',
                      metric='5')
    assert (plan['rails'][0]['table'], plan['rails'][0]['priority'], plan['rails'][0]['mtu']) == (150, 1200, 9000)
    assert plan['tables'][0]['routes'][0]['metric'] == 5


def test_global_sysctl_overrides():
    plan = build_plan(textbook(2), rail_sysctls={'arp_ignore': 2, 'rp_filter': 0},
                      all_sysctls={'rp_filter': 0, 'accept_local': 1, 'arp_ignore': 1})
    assert plan['conf'] == {'all': {'rp_filter': 0, 'accept_local': 1, 'arp_ignore': 1},
                            'ib0': {'arp_ignore': 2, 'rp_filter': 0},
                            'ib1': {'arp_ignore': 2, 'rp_filter': 0}}
    assert plan['sysctl_lines'] == [
        'net.ipv4.conf.all.accept_local = 1', 'net.ipv4.conf.all.arp_ignore = 1', 'net.ipv4.conf.all.rp_filter = 0',
        'net.ipv4.conf.ib0.arp_ignore = 2', 'net.ipv4.conf.ib0.rp_filter = 0',
        'net.ipv4.conf.ib1.arp_ignore = 2', 'net.ipv4.conf.ib1.rp_filter = 0']


def test_empty_sysctl_overrides_leave_nothing_to_set():
    plan = build_plan([rail()], rail_sysctls={}, all_sysctls={})
    assert plan['conf'] == {}
    assert plan['sysctl_lines'] == []


def test_per_rail_sysctls_override_global_rail_sysctls():
    plan = build_plan([rail(sysctls={'rp_filter': 1})], rail_sysctls={'rp_filter': 2, 'arp_ignore': 1})
    assert plan['conf']['ib0'] == {'rp_filter': 1, 'arp_ignore': 1}


def test_vlan_device_is_slashed_in_sysctl_lines():
    plan = build_plan([rail(device='eth0.100')], all_sysctls={})
    assert plan['conf'] == {'eth0.100': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2}}
    assert plan['sysctl_lines'] == ['net.ipv4.conf.eth0/100.arp_announce = 2',
                                    'net.ipv4.conf.eth0/100.arp_ignore = 1',
                                    'net.ipv4.conf.eth0/100.rp_filter = 2']


def test_custom_priority_range():
    plan = build_plan([rail(priority=500)], priority_range={'start': 100, 'end': 32765})
    assert plan['priority_range'] == {'start': 100, 'end': 32765}
    assert plan['rules'][0]['priority'] == 500


def test_custom_priority_range_must_hold_default_priorities():
    message = plan_error([rail()], priority_range={'start': 2000, 'end': 2999})
    assert_names(message, 'rail ib0', 'priority', '1001', '2000-2999')


@pytest.mark.parametrize('address, ip, gateway, subnet', [
    ('10.0.1.0/31', '10.0.1.0', '10.0.1.1', '10.0.1.0/31'),
    ('10.0.1.1/31', '10.0.1.1', '10.0.1.0', '10.0.1.0/31'),
])
def test_slash_31_rail_defaults_to_the_other_address(address, ip, gateway, subnet):
    plan = build_plan([rail(address=address)])
    assert plan['rails'][0]['gateway'] == gateway
    assert plan['tables'][0]['routes'] == [
        {'dst': subnet, 'dev': 'ib0', 'src': ip, 'metric': 100},
        {'dst': '0.0.0.0/0', 'gateway': gateway, 'dev': 'ib0', 'metric': 100}]
    assert plan['rules'] == [{'priority': 1001, 'from': ip, 'table': 101}]


def test_slash_31_explicit_gateway():
    plan = build_plan([rail(address='10.0.1.0/31', gateway='10.0.1.1')])
    assert plan['rails'][0]['gateway'] == '10.0.1.1'
    assert_names(plan_error([rail(address='10.0.1.0/31', gateway='10.0.1.0')]), 'rail ib0', 'gateway', '10.0.1.0')


def test_empty_gateway_means_default():
    assert build_plan([rail(gateway='')])['rails'][0]['gateway'] == '10.0.1.1'


# --- validation: the rails list and each rail's shape ----------------------------------------------

@pytest.mark.parametrize('rails, shown', [
    ('ib0', "'ib0'"),
    ({'device': 'ib0'}, "'device'"),
    (None, 'None'),
])
def test_rails_must_be_a_list(rails, shown):
    assert_names(plan_error(rails), 'source_routing_rails: expected a list', shown)


def test_empty_rails_are_refused_not_planned_as_removing_everything():
    # An empty plan would purge every rule in the managed priority range and every rail table.
    message = plan_error([])
    assert message.startswith('source_routing_rails: empty;'), message
    assert_names(message, 'remove every rail rule')


def test_rail_must_be_a_mapping():
    assert_names(plan_error([rail(), 'ib1']), 'source_routing_rails[1]', "'ib1'")


def test_unknown_key():
    message = plan_error([rail(), {'device': 'ib1', 'adress': '10.0.2.14/24'}])
    assert_names(message, 'source_routing_rails[1]', 'adress')


@pytest.mark.parametrize('missing', ['device', 'address'])
@pytest.mark.parametrize('empty', [None, '', 'absent'])
def test_required_fields(missing, empty):
    spec = rail()
    if empty == 'absent':
        del spec[missing]
    else:
        spec[missing] = empty
    message = plan_error([rail(device='ib9', address='10.0.9.14/24'), spec])
    assert missing in message and 'required' in message
    assert 'source_routing_rails[1]' in message or 'rail ib0' in message


@pytest.mark.parametrize('device', [
    'ib0;rm',
    'ib0123456789abcd',   # 16 characters
    '..',
    '.',
    'ib 0',
    'ib0/1',
    'ib0:1',
    5,
])
def test_invalid_device(device):
    message = plan_error([rail(), rail(device=device, address='10.0.2.14/24')])
    assert_names(message, 'source_routing_rails[1]', 'device', repr(device))


def test_device_with_trailing_newline_is_invalid():
    # It would end up in the keyfile's interface-name= and in a sysctl.d key.
    message = plan_error([rail(device='ib0\n')])
    assert_names(message, 'source_routing_rails[0]', 'device', repr('ib0\n'))


@pytest.mark.parametrize('device', ['all', 'default'])
def test_device_named_like_a_conf_directory_is_invalid(device):
    # The kernel refuses these names (their net.ipv4.conf entries exist); planning one
    # would silently replace net.ipv4.conf.all/default settings with the rail's.
    message = plan_error([rail(device=device)])
    assert_names(message, 'device', repr(device))


# --- validation: address ---------------------------------------------------------------------------

@pytest.mark.parametrize('address, shown', [
    ('10.0.1.14', '10.0.1.14'),            # no prefix
    ('10.0.1.14/32', '10.0.1.14/32'),
    ('10.0.1.14/0', '10.0.1.14/0'),
    ('10.0.1.14/33', '10.0.1.14/33'),
    ('10.0.1.14/x', '10.0.1.14/x'),
    ('garbage/24', 'garbage'),
    ('10.0.1/24', '10.0.1'),
    ('10.0.1.300/24', '10.0.1.300'),
    ('2001:db8::1/64', '2001:db8::1'),
    ('10.0.1.0/24', '10.0.1.0/24'),         # network address
    ('10.0.1.255/24', '10.0.1.255/24'),     # broadcast address
    (1234, '1234'),
    (['10.0.1.14/24'], "['10.0.1.14/24']"),
])
def test_invalid_address(address, shown):
    message = plan_error([rail(address=address)])
    assert_names(message, 'rail ib0', 'address', shown)


@pytest.mark.parametrize('address, which', [('10.0.1.0/24', 'network'), ('10.0.1.255/24', 'broadcast')])
def test_network_and_broadcast_addresses_are_called_so(address, which):
    assert which in plan_error([rail(address=address)])


def test_address_with_non_ascii_digit_prefix_is_a_plan_error():
    # '²'.isdigit() is True but int('²') raises ValueError.
    message = plan_error([rail(address='10.0.1.14/\u00b2')])
    assert_names(message, 'rail ib0', 'address')


# --- validation: gateway ---------------------------------------------------------------------------

@pytest.mark.parametrize('gateway, shown, why', [
    ('10.0.9.1', '10.0.9.1', 'outside 10.0.1.0/24'),
    ('gw', "'gw'", 'not an IPv4 address'),
    ('10.0.1.1/24', "'10.0.1.1/24'", 'not an IPv4 address'),
    ('2001:db8::1', "'2001:db8::1'", 'not an IPv4 address'),
    (17, '17', 'not an IPv4 address'),
    ('10.0.1.14', '10.0.1.14', "own address"),
    ('10.0.1.0', '10.0.1.0', 'network'),
    ('10.0.1.255', '10.0.1.255', 'broadcast'),
])
def test_invalid_gateway(gateway, shown, why):
    message = plan_error([rail(gateway=gateway)])
    assert_names(message, 'rail ib0', 'gateway', shown, why)


def test_default_gateway_equal_to_own_address():
    message = plan_error([rail(address='10.0.1.1/24')])
    assert_names(message, 'rail ib0', 'gateway', '10.0.1.1')


# --- validation: table and priority ----------------------------------------------------------------

@pytest.mark.parametrize('table, shown', [
    (0, '0'), (253, '253'), (254, '254'), (255, '255'),
    ('main', "'main'"), (1.5, '1.5'), (True, 'True'), ([101], '[101]'),
    (2 ** 32, '4294967296'), (-1, '-1'),
])
def test_invalid_table(table, shown):
    message = plan_error([rail(table=table)])
    assert_names(message, 'rail ib0', 'table', shown)


@pytest.mark.parametrize('table', [0, 253, 254, 255])
def test_reserved_table_says_reserved(table):
    assert 'reserved' in plan_error([rail(table=table)])


@pytest.mark.parametrize('base, message', [
    (252, 'rail ib0: table 253 is reserved (default); use 1-252 or 256-4294967295 '
          '(the default: source_routing_table_base 252 + position 1)'),
    (2 ** 32 - 1, 'rail ib0: table 4294967296 is out of range 0-4294967295 '
                  '(the default: source_routing_table_base 4294967295 + position 1)'),
])
def test_default_table_out_of_range_says_where_it_came_from(base, message):
    assert plan_error([rail()], table_base=base) == message


@pytest.mark.parametrize('value', ['9' * 5000, '9' * 11])
def test_numbers_with_too_many_digits_are_out_of_range_not_a_traceback(value):
    # int() refuses texts of more than 4300 digits with a ValueError.
    for spec in (rail(table=value), rail(priority=value), rail(mtu=value), rail(sysctls={'rp_filter': value})):
        message = plan_error([spec], priority_range={'start': 1, 'end': 32765})
        assert 'is out of range' in message and 'rail ib0' in message, message
        assert len(message) < 300, message


def test_leading_zeros_however_many_are_a_number():
    planned = build_plan([rail(table='0' * 5000 + '101', priority='0' * 5000 + '1001')])['rails'][0]
    assert (planned['table'], planned['priority']) == (101, 1001)


def test_table_as_non_ascii_digit_is_a_plan_error():
    # '²'.isdigit() is True but int('²') raises ValueError.
    assert_names(plan_error([rail(table='\u00b2')]), 'rail ib0', 'table')


@pytest.mark.parametrize('table', [1, 252, 256, 2 ** 32 - 1])
def test_table_limits_accepted(table):
    assert build_plan([rail(table=table)])['tables'][0]['table'] == table


@pytest.mark.parametrize('priority, shown', [
    (0, '0'), (32766, '32766'), (32767, '32767'), (40000, '40000'),
    ('first', "'first'"), (False, 'False'), (-5, '-5'), ([1001], '[1001]'),
])
def test_invalid_priority(priority, shown):
    message = plan_error([rail(priority=priority)], priority_range={'start': 1, 'end': 32765})
    assert_names(message, 'rail ib0', 'priority', shown)


@pytest.mark.parametrize('priority, reason', [
    (0, 'is reserved for the kernel\'s "local" rule'),
    (32766, 'is reserved for the kernel\'s "main" rule'),
    (32767, 'is reserved for the kernel\'s "default" rule'),
    (40000, "is after the main table's rule (32766)"),
])
def test_kernel_priorities_say_why(priority, reason):
    assert plan_error([rail(priority=priority)]) == 'rail ib0: priority %d %s' % (priority, reason) + (
        '; a rail rule must come before it' if priority == 40000 else '')


def test_priority_outside_managed_range():
    message = plan_error([rail(priority=2500)])
    assert_names(message, 'rail ib0', 'priority', '2500', 'managed range', '1001-1999')


def test_priority_at_range_edges_accepted():
    plan = build_plan([rail(priority=1001), rail(device='ib1', address='10.0.2.14/24', priority=1999)])
    assert [r['priority'] for r in plan['rules']] == [1001, 1999]


def test_priority_base_itself_is_outside_the_default_range():
    # 1000 is where the kernel puts a VRF's l3mdev rule; the default range starts after it.
    message = plan_error([rail(priority=1000)])
    assert_names(message, 'rail ib0', 'priority', '1000', 'managed range', '1001-1999')


# --- validation: duplicates across rails ----------------------------------------------------------

def test_duplicate_device():
    message = plan_error([rail(), rail(address='10.0.2.14/24')])
    assert message == 'source_routing_rails[1]: device ib0 is already used by source_routing_rails[0]'


def test_duplicate_address():
    message = plan_error([rail(), rail(device='ib1', address='10.0.1.14/16')])
    assert_names(message, 'rail ib1', 'address', '10.0.1.14', 'rail ib0')


def test_duplicate_table():
    message = plan_error([rail(table=101), rail(device='ib1', address='10.0.2.14/24', table=101)])
    assert_names(message, 'rail ib1', 'table', '101', 'rail ib0')


def test_explicit_table_colliding_with_a_default():
    message = plan_error([rail(table=102), rail(device='ib1', address='10.0.2.14/24')])
    assert_names(message, 'rail ib1', 'table', '102', 'rail ib0')


def test_duplicate_priority():
    message = plan_error([rail(priority=1005), rail(device='ib1', address='10.0.2.14/24', priority=1005)])
    assert_names(message, 'rail ib1', 'priority', '1005', 'rail ib0')


# --- validation: sources -------------------------------------------------------------------------

@pytest.mark.parametrize('sources', ['10.0.1.20', {'vf0': '10.0.1.20'}, 5])
def test_sources_not_a_list(sources):
    message = plan_error([rail(sources=sources)])
    assert_names(message, 'rail ib0', 'sources', repr(sources))


@pytest.mark.parametrize('source, shown', [
    ('vf0', "'vf0'"),
    ('10.0.2.300', "'10.0.2.300'"),
    ('2001:db8::/64', "'2001:db8::/64'"),
    (42, '42'),
    (None, 'None'),
    ('10.0.2.5/24', '10.0.2.5/24'),      # host bits
    ('0.0.0.0/0', '0.0.0.0/0'),
])
def test_invalid_source(source, shown):
    message = plan_error([rail(sources=['10.0.2.20', source])])
    assert_names(message, 'rail ib0', 'source', shown)


def test_source_with_host_bits_suggests_both_forms():
    assert_names(plan_error([rail(sources=['10.0.2.5/24'])]), '10.0.2.0/24', '10.0.2.5')


def test_source_overlapping_another_rails_address():
    message = plan_error([rail(), rail(device='ib1', address='10.0.2.14/24', sources=['10.0.1.14'])])
    assert_names(message, 'rail ib1', 'source', '10.0.1.14', 'rail ib0')


def test_source_prefix_covering_another_rails_address():
    message = plan_error([rail(), rail(device='ib1', address='10.0.2.14/24', sources=['10.0.1.0/28'])])
    assert_names(message, 'rail ib1', 'source', '10.0.1.0/28', '10.0.1.14', 'rail ib0')


def test_source_overlapping_another_rails_source():
    message = plan_error([rail(sources=['10.5.0.0/24']),
                          rail(device='ib1', address='10.0.2.14/24', sources=['10.5.0.7'])])
    assert_names(message, 'rail ib1', 'source', '10.5.0.7', '10.5.0.0/24', 'rail ib0')


def test_earlier_rails_source_covering_a_later_rails_address_names_the_source():
    # ib0's source 10.0.2.0/24 captures ib1's address: the message must call the
    # offending source a source, not ib1's address.
    message = plan_error([rail(sources=['10.0.2.0/24']), rail(device='ib1', address='10.0.2.14/24')])
    assert_names(message, 'rail ib0', 'rail ib1', '10.0.2.0/24', '10.0.2.14')
    assert 'source 10.0.2.0/24' in message
    assert 'source 10.0.2.14' not in message


def test_rails_limit():
    rails = [rail(device='r%d' % index, address='10.0.%d.14/24' % index) for index in range(MAX_RAILS + 1)]
    assert len(build_plan(rails[:MAX_RAILS])['rails']) == MAX_RAILS
    assert plan_error(rails) == 'source_routing_rails: 65 rails, more than the limit of 64'


def test_sources_limit_per_host():
    sources = ['10.%d.%d.%d' % (100 + index // 65536, index // 256 % 256, index % 256) for index in range(MAX_SOURCES)]
    assert len(build_plan([rail(sources=sources)])['rules']) == MAX_SOURCES + 1
    assert plan_error([rail(sources=sources + ['10.99.0.1'])]) == (
        'rail ib0: sources has 1025 entries, more than the limit of 1024 per host (all rails together)')
    message = plan_error([rail(sources=sources[:1000]),
                          rail(device='ib1', address='10.0.2.14/24', sources=['10.99.0.%d' % n for n in range(25)])])
    assert message == ('rail ib1: sources has 25 entries, which with the 1000 of the earlier rails is more than '
                       'the limit of 1024 per host (all rails together)')


def test_overlap_found_among_thousands_of_sources():
    rails = [rail(device='ib%d' % index, address='10.0.%d.14/24' % index,
                  sources=['10.%d.%d.0/28' % (100 + index, n) for n in range(16)]) for index in range(64)]
    assert len(build_plan(rails)['rules']) == 64 * 17
    rails[63]['sources'][15] = '10.100.7.0/24'
    assert plan_error(rails) == 'rail ib63: source 10.100.7.0/24 overlaps source 10.100.7.0/28 of rail ib0'


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.sets(st.tuples(st.integers(0, 63), st.integers(26, 32)), max_size=5), min_size=2, max_size=4))
def test_overlap_sweep_agrees_with_the_pairwise_check(blocks):
    """The O(n log n) sweep refuses exactly the inventories where two rails' blocks overlap."""
    rails = []
    for index, pairs in enumerate(blocks):
        nets = sorted(set(ipaddress.ip_network('10.200.0.%d/%d' % pair, strict=False) for pair in pairs))
        rails.append(rail(device='ib%d' % index, address='10.0.%d.14/24' % (index + 1),
                          sources=[str(net) for net in nets]))
    owners = [(ipaddress.ip_network(source), index) for index, spec in enumerate(rails) for source in spec['sources']]
    overlapping = any(net.overlaps(other) for net, index in owners for other, other_index in owners
                      if index != other_index)
    try:
        build_plan(rails)
    except PlanError as exc:
        assert overlapping and 'overlaps' in str(exc), str(exc)
    else:
        assert not overlapping


def test_source_may_overlap_its_own_rails_subnet():
    plan = build_plan([rail(sources=['10.0.1.0/28'])])
    assert plan['rules'] == [{'priority': 1001, 'from': '10.0.1.14', 'table': 101},
                             {'priority': 1001, 'from': '10.0.1.0/28', 'table': 101}]


@pytest.mark.parametrize('sources', [['10.0.1.14'], ['10.0.1.20', '10.0.1.20'], ['10.0.1.20', '10.0.1.20/32']])
def test_sources_duplicating_a_rule_are_refused(sources):
    # rail_rule refuses duplicate rules ("rules[1] (priority 1001): duplicates rules[0]"),
    # naming neither the rail nor its sources: the planner must catch them first.
    message = plan_error([rail(sources=sources)])
    assert_names(message, 'rail ib0', 'source')


def test_empty_sources_are_no_sources():
    for sources in (None, []):
        assert build_plan([rail(sources=sources)])['rules'] == [{'priority': 1001, 'from': '10.0.1.14', 'table': 101}]


# --- validation: mtu and sysctls -----------------------------------------------------------------

@pytest.mark.parametrize('mtu, shown', [(67, '67'), (65536, '65536'), (0, '0'), ('jumbo', "'jumbo'"), (True, 'True')])
def test_invalid_mtu(mtu, shown):
    assert_names(plan_error([rail(mtu=mtu)]), 'rail ib0', 'mtu', shown)


@pytest.mark.parametrize('mtu', [68, 65535])
def test_mtu_limits_accepted(mtu):
    assert build_plan([rail(mtu=mtu)])['rails'][0]['mtu'] == mtu


@pytest.mark.parametrize('sysctls, shown', [
    ('rp_filter=2', "'rp_filter=2'"),
    (['rp_filter'], "['rp_filter']"),
    ({'rp-filter': 2}, "'rp-filter'"),
    ({'RP_FILTER': 2}, "'RP_FILTER'"),
    ({'conf.rp_filter': 2}, "'conf.rp_filter'"),
    ({'': 2}, "''"),
    ({3: 2}, '3'),
    ({'rp_filter': 'loose'}, "'loose'"),
    ({'rp_filter': 1.5}, '1.5'),
    ({'rp_filter': None}, 'None'),
])
def test_invalid_rail_sysctls(sysctls, shown):
    message = plan_error([rail(sysctls=sysctls)])
    assert_names(message, 'rail ib0', 'sysctls', shown)


def test_sysctl_key_with_trailing_newline_is_invalid():
    # '$' in the key pattern matches before a final newline; the key would break the sysctl.d file.
    message = plan_error([rail(sysctls={'rp_filter\n': 1})])
    assert_names(message, 'rail ib0', 'sysctls', repr('rp_filter\n'))


@pytest.mark.parametrize('argument', ['rail_sysctls', 'all_sysctls'])
@pytest.mark.parametrize('value, shown', [('loose', "'loose'"), ({'rp-filter': 1}, "'rp-filter'"),
                                          ({'rp_filter': 'x'}, "'x'"), ({'rp_filter': 7}, 'rp_filter 7 is not one of 0, 1, 2'),
                                          ({'arp_ignore': 4}, 'arp_ignore 4 is not one of 0, 1, 2, 3, 8')])
def test_invalid_global_sysctls(argument, value, shown):
    message = plan_error([rail()], **{argument: value})
    assert_names(message, 'source_routing_' + argument, shown)


# --- validation: destination, priority_range and the bases -------------------------------------------

@pytest.mark.parametrize('destination, shown', [
    ('roce', "'roce'"),
    ('10.0.0.0/33', "'10.0.0.0/33'"),
    ('10.0.1.0/16', '10.0.1.0/16'),      # host bits
    ('2001:db8::/32', "'2001:db8::/32'"),
    (None, 'None'),
    (16, '16'),
])
def test_invalid_destination(destination, shown):
    message = plan_error([rail()], destination=destination)
    assert_names(message, 'source_routing_destination', shown)


@pytest.mark.parametrize('field, value', [('address', 'fd00::14/64'), ('gateway', 'fd00::1'),
                                          ('sources', ['fd00:5::/64'])])
def test_ipv6_where_ipv4_is_expected_says_ipv6(field, value):
    message = plan_error([rail(**{field: value})])
    assert_names(message, 'rail ib0', field.rstrip('s'), repr(value[0] if isinstance(value, list) else value),
                 'it is IPv6')


def test_values_are_shown_on_one_line_and_cut_short():
    assert plan_error([rail(sources=['10.0.5.7/24\n'])]).startswith('rail ib0: source 10.0.5.7/24 has host bits')
    message = plan_error([rail(device='ib' * 5000)])
    assert "device 'ibibib" in message and '(10002 characters)' in message and len(message) < 300


def test_destination_host_bits_suggest_the_prefix():
    assert '10.0.0.0/16' in plan_error([rail()], destination='10.0.1.0/16')


@pytest.mark.parametrize('priority_range, shown', [
    ({'start': 2000, 'end': 1000}, '2000'),
    ({'begin': 1000, 'end': 1999}, 'begin'),
    ({'start': 1000, 'end': 1999, 'step': 1}, 'unknown key step'),
    ({'start': 1000}, 'end is required'),
    ({'end': 1999, 'start': None}, 'start is required'),
    ({'start': 1000, 'end': 32766}, '32766'),
    ({'start': 1000, 'end': 40000}, '40000'),
    ({'start': 0, 'end': 1999}, '0'),
    ({'start': 'low', 'end': 1999}, "'low'"),
    ([1000, 1999], '[1000, 1999]'),
    ('1000-1999', "'1000-1999'"),
])
def test_invalid_priority_range(priority_range, shown):
    message = plan_error([rail()], priority_range=priority_range)
    assert_names(message, 'source_routing_priority_range', shown)


@pytest.mark.parametrize('argument, value, name, shown', [
    ('table_base', 'hundred', 'source_routing_table_base', "'hundred'"),
    ('table_base', 1.5, 'source_routing_table_base', '1.5'),
    ('table_base', None, 'source_routing_table_base', 'None'),
    ('table_base', -1, 'source_routing_table_base', '-1'),
    ('priority_base', 'thousand', 'source_routing_priority_base', "'thousand'"),
    ('priority_base', True, 'source_routing_priority_base', 'True'),
    ('priority_base', 0, 'source_routing_priority_base', '0'),
    ('priority_base', 32766, 'source_routing_priority_base', '32766'),
    ('metric', 'low', 'source_routing_route_metric', "'low'"),
    ('metric', [100], 'source_routing_route_metric', '[100]'),
    ('metric', 2 ** 32, 'source_routing_route_metric', '4294967296'),
])
def test_invalid_bases_and_metric(argument, value, name, shown):
    assert_names(plan_error([rail()], **{argument: value}), name, shown)


# --- properties ----------------------------------------------------------------------------------

# Text that looks like the values the planner parses (digits of other scripts included).
NEAR_TEXT = st.text(alphabet=st.sampled_from('0123456789./:ib-_ x\n\u00b2\u0663'), max_size=20)
# Numbers as Ansible may pass them: text, sometimes in digits of other scripts.
NUMERIC_TEXT = st.text(alphabet=st.sampled_from('0123456789\u00b2\u0663'), min_size=1, max_size=6)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2 ** 40, max_value=2 ** 40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    NEAR_TEXT,
    NUMERIC_TEXT,
    st.sampled_from(['ib0', 'ib1', 'eth0.100', '10.0.1.14/24', '10.0.1.16/24', '10.0.1.1', '10.0.2.1',
                     '10.0.1.0/24', '10.0.0.0/16', '101', '1001', '4092', 'rp_filter', 'all']),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(['rp_filter', 'arp_ignore']), st.text(max_size=8)),
                                               children, max_size=4)),
    max_leaves=8,
)
RANDOM_RAIL_DICTS = st.dictionaries(st.one_of(st.sampled_from(RAIL_KEYS), st.text(max_size=8)), VALUES, max_size=10)
# A valid rail with one or two fields replaced by arbitrary values, so that the checks
# after device and address are reached as often as the first ones.
OVERLAID_RAILS = st.builds(
    lambda index, extra: dict({'device': 'ib%d' % index, 'address': '10.0.%d.14/24' % (index + 1)}, **extra),
    st.integers(0, 3),
    st.dictionaries(st.one_of(st.sampled_from(RAIL_KEYS[2:]), st.sampled_from(RAIL_KEYS)),
                    st.one_of(SCALARS, VALUES), min_size=1, max_size=2),
)


@st.composite
def weighted(draw, *choices):
    """Draw from one of (weight, strategy) choices."""
    pick = draw(st.integers(0, sum(weight for weight, _strategy in choices) - 1))
    for weight, strategy in choices:
        if pick < weight:
            return draw(strategy)
        pick -= weight
    raise AssertionError('unreachable')


RAIL_DICTS = weighted((3, OVERLAID_RAILS), (1, RANDOM_RAIL_DICTS))
INVENTORIES = weighted((7, st.lists(RAIL_DICTS, min_size=1, max_size=4)),
                       (2, st.lists(st.one_of(RAIL_DICTS, VALUES), max_size=4)),
                       (1, VALUES))


@settings(max_examples=300, deadline=None)
@given(INVENTORIES)
@example([{'device': 'ib0', 'address': '10.0.1.14/24', 'mtu': '9\u00b2'}])
def test_any_input_yields_a_plan_or_a_plan_error(rails):
    try:
        plan = build_plan(rails)
    except PlanError as exc:
        assert str(exc)
    else:
        assert len(plan['rails']) == len(rails) >= 1


@st.composite
def valid_inventories(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    tables = draw(st.lists(st.one_of(st.none(), st.integers(min_value=101, max_value=110),
                                     st.sampled_from([1, 252, 256, 300000, 2 ** 32 - 1])),
                           min_size=count, max_size=count))
    priorities = draw(st.lists(st.one_of(st.none(), st.integers(min_value=1001, max_value=1010)),
                               min_size=count, max_size=count))
    rails = []
    for index in range(count):
        spec = {'device': 'ib%d' % index, 'address': '10.0.%d.%d/24' % (index + 1, draw(st.integers(2, 254)))}
        if tables[index] is not None:
            spec['table'] = tables[index]
        if priorities[index] is not None:
            spec['priority'] = priorities[index]
        hosts = draw(st.lists(st.integers(0, 255), unique=True, max_size=4))
        if hosts:
            spec['sources'] = ['10.200.%d.%d' % (index, host) for host in hosts]
        if draw(st.booleans()):
            spec['sources'] = spec.get('sources', []) + ['10.201.%d.0/28' % index]
        rails.append(spec)
    return rails


@settings(max_examples=300, deadline=None)
@given(valid_inventories())
def test_valid_plans_are_consistent(rails):
    tables = [spec.get('table', 100 + position) for position, spec in enumerate(rails, start=1)]
    priorities = [spec.get('priority', 1000 + position) for position, spec in enumerate(rails, start=1)]
    if len(set(tables)) < len(tables) or len(set(priorities)) < len(priorities):
        message = plan_error(rails)
        assert 'already used' in message
        return
    plan = build_plan(rails)
    plan_tables = [table['table'] for table in plan['tables']]
    assert plan_tables == tables
    assert len(set(plan_tables)) == len(plan_tables)
    assert len(set(r['priority'] for r in plan['rails'])) == len(rails)
    assert {rule['table'] for rule in plan['rules']} <= set(plan_tables)
    rule_keys = [(rule['priority'], rule['from'], rule['table']) for rule in plan['rules']]
    assert len(set(rule_keys)) == len(rule_keys)
    for spec, planned, priority, table in zip(rails, plan['rails'], priorities, tables):
        assert planned['table'] == table and planned['priority'] == priority
        assert len(planned['rules']) == 1 + len(spec.get('sources', []))
        assert all(rule['priority'] == priority and rule['table'] == table for rule in planned['rules'])
        assert all(route['dev'] == spec['device'] for route in planned['routes'])
        assert plan['priority_range']['start'] <= priority <= plan['priority_range']['end']


# --- a gateway that is an address of the host --------------------------------------------------

SHARED_PAIR = [{'device': 'ib0', 'address': '10.0.1.14/24', 'gateway': '10.0.1.1'},
               {'device': 'ib1', 'address': '10.0.1.16/24', 'gateway': '10.0.1.1'}]


@pytest.mark.parametrize('position, gateway, owner', [
    (0, '10.0.1.16', 'the address of rail ib1'),                    # the shared layout: ib1's own address
    (1, '10.0.1.14', 'the address of rail ib0'),
    (1, '10.0.1.40', 'source 10.0.1.40 of rail ib0'),
])
def test_a_gateway_that_is_an_address_of_the_host_is_refused(position, gateway, owner):
    rails = [dict(r) for r in SHARED_PAIR]
    rails[0]['sources'] = ['10.0.1.40']
    rails[position]['gateway'] = gateway
    message = plan_error(rails, destination='10.0.0.0/16')
    assert_names(message, 'rail ib%d: gateway %s is %s' % (position, gateway, owner), 'address of this host')


def test_a_flat_rail_whose_unused_gateway_is_another_rails_address_is_planned():
    rails = [dict(r) for r in SHARED_PAIR]
    rails[0]['gateway'] = '10.0.1.16'
    plan = build_plan(rails, destination='10.0.1.0/24')
    assert [route.get('gateway') for route in plan['rails'][0]['routes']] == [None]


def test_shared_gateway_of_two_rails_is_planned():
    plan = build_plan([dict(r) for r in SHARED_PAIR], destination='10.0.0.0/16')
    assert [r['gateway'] for r in plan['rails']] == ['10.0.1.1', '10.0.1.1']
