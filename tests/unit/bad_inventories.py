"""Malformed inventories of the source_routing role, one small dict of role variables each.

Shared by tests/unit/test_input_properties.py (the planner and the role's argument_specs,
without a host) and tests/integration/test_bad_input.py (one ansible-playbook run of
playbooks/site.yml with every case as an inventory host reaching the same lab host).

The valid part of every case is the two-rail textbook lab host of tests/lab/roce_lab.py
(ib0 10.0.1.14/24 via 10.0.1.1, ib1 10.0.2.14/24 via 10.0.2.1), so that a case that
wrongly passed validation would really change that host, and the test would see it.

Each case says which layer must refuse it:
- ARGUMENT_SPECS: the role's meta/argument_specs.yml (ansible's "Validating arguments
  against arg spec" task, before the role's first task);
- PLANNER: the source_routing_plan filter (plan.build_plan), in the role's first task.
and the words its message must hold: the object, the field and, where there is one, the value.
"""

from collections import namedtuple

ARGUMENT_SPECS = 'argument_specs'
PLANNER = 'planner'

CATEGORIES = ('wrong type', 'bad CIDR', 'IPv6 for IPv4', 'IPv4 for another kind', 'table out of range',
              'priority out of range', 'duplicate', 'unknown key', 'empty', 'huge', 'device name')

Case = namedtuple('Case', 'name category role_vars caught_by words')

IB0 = {'device': 'ib0', 'address': '10.0.1.14/24', 'gateway': '10.0.1.1'}
IB1 = {'device': 'ib1', 'address': '10.0.2.14/24', 'gateway': '10.0.2.1'}
DROP = object()


def rail(base, **changes):
    spec = dict(base)
    spec.update(changes)
    return {key: value for key, value in spec.items() if value is not DROP}


def second(**changes):
    """Role variables with ib1 changed (or with a key DROPped)."""
    return {'source_routing_rails': [dict(IB0), rail(IB1, **changes)]}


def options(**variables):
    """Role variables with valid rails and these other role variables."""
    return dict({'source_routing_rails': [dict(IB0), dict(IB1)]}, **variables)


def many_rails(count):
    return [{'device': 'r%d' % index, 'address': '10.%d.%d.14/24' % (index // 250, index % 250)}
            for index in range(count)]


def many_sources(count, second_octet=100):
    return ['10.%d.%d.%d' % (second_octet + index // 65536, index // 256 % 256, index % 256) for index in range(count)]


def _cases():
    a, p = ARGUMENT_SPECS, PLANNER
    out = [
        # --- wrong types -------------------------------------------------------------------------
        ('rails_is_a_string', 'wrong type', {'source_routing_rails': 'ib0'}, a,
         ['source_routing_rails', 'str', 'dict']),
        ('rails_is_a_mapping', 'wrong type', {'source_routing_rails': dict(IB0)}, a,
         ["'source_routing_rails' is of type dict", 'list']),
        ('rails_is_null', 'wrong type', {'source_routing_rails': None}, a,
         ["'source_routing_rails' is of type NoneType"]),
        ('rail_is_a_string', 'wrong type', {'source_routing_rails': [dict(IB0), 'ib1']}, a,
         ['source_routing_rails', 'str', 'dict']),
        ('table_is_a_word', 'wrong type', second(table='one-o-two'), a,
         ["'table'", 'source_routing_rails', 'one-o-two']),
        ('table_is_a_bool', 'wrong type', second(table=True), p, ['rail ib1: table True is not an integer']),
        ('table_is_a_float', 'wrong type', second(table=102.5), a, ["'table'", '102.5']),
        ('table_is_an_integral_float', 'wrong type', second(table=102.0), p,
         ['rail ib1: table 102.0 is not an integer']),
        ('priority_is_a_list', 'wrong type', second(priority=[1002]), a, ["'priority'", '[1002]']),
        ('sources_is_a_string', 'wrong type', second(sources='10.0.5.1'), p,
         ['rail ib1: sources must be a list', "'10.0.5.1'"]),
        ('sources_is_a_mapping', 'wrong type', second(sources={'vf0': '10.0.5.1'}), a, ["'sources'", 'dict']),
        ('source_is_a_number', 'wrong type', second(sources=[167773441]), p,
         ['rail ib1: source 167773441 is not an IPv4 address or prefix']),
        ('device_is_a_number', 'wrong type', second(device=1), p,
         ['source_routing_rails[1]: device 1 is not an interface name']),
        ('device_is_a_list', 'wrong type', second(device=['ib1']), p,
         ["source_routing_rails[1]: device ['ib1'] is not an interface name"]),
        ('address_is_a_number', 'wrong type', second(address=167772686), p,
         ['rail ib1: address 167772686 must be an IPv4 host address with its prefix length']),
        ('gateway_is_a_bool', 'wrong type', second(gateway=True), p,
         ['rail ib1: gateway True is not an IPv4 address']),
        ('sysctls_is_a_string', 'wrong type', second(sysctls='rp_filter=2'), p,
         ['rail ib1: sysctls: expected a mapping', "'rp_filter=2'"]),
        ('sysctls_is_a_list', 'wrong type', second(sysctls=['rp_filter']), a, ["'sysctls'", 'list', 'dict']),
        ('sysctl_value_is_a_float', 'wrong type', second(sysctls={'rp_filter': 2.0}), p,
         ['rail ib1: sysctls: rp_filter 2.0 is not an integer']),
        ('mtu_is_a_word', 'wrong type', second(mtu='jumbo'), a, ["'mtu'", 'jumbo']),
        ('table_base_is_a_list', 'wrong type', options(source_routing_table_base=[100]), a,
         ["'source_routing_table_base'", '[100]']),
        ('priority_range_is_a_list', 'wrong type', options(source_routing_priority_range=[1000, 1999]), a,
         ["'source_routing_priority_range'", 'list']),
        ('destination_is_a_list', 'wrong type', options(source_routing_destination=['0.0.0.0/0']), p,
         ["source_routing_destination: ['0.0.0.0/0'] is not an IPv4 prefix"]),
        ('rail_sysctls_is_a_string', 'wrong type', options(source_routing_rail_sysctls='rp_filter=2'), p,
         ["source_routing_rail_sysctls: expected a mapping", "'rp_filter=2'"]),
        ('all_sysctls_value_is_a_word', 'wrong type', options(source_routing_all_sysctls={'rp_filter': 'loose'}), p,
         ["source_routing_all_sysctls: rp_filter 'loose' is not an integer"]),
        ('persist_is_not_a_choice', 'wrong type', options(source_routing_persist='yes'), a,
         ['source_routing_persist', 'yes']),
        ('audit_is_not_a_bool', 'wrong type', options(source_routing_audit='maybe'), a,
         ["'source_routing_audit'", 'maybe']),
        ('metric_is_a_word', 'wrong type', options(source_routing_route_metric='low'), a,
         ["'source_routing_route_metric'", 'low']),
        # --- bad CIDRs ---------------------------------------------------------------------------
        ('address_octet_300', 'bad CIDR', second(address='10.0.2.300/24'), p,
         ["rail ib1: address '10.0.2.300/24' is not an IPv4 host address"]),
        ('address_prefix_33', 'bad CIDR', second(address='10.0.2.14/33'), p,
         ["rail ib1: address '10.0.2.14/33' needs a prefix length from 1 to 31"]),
        ('address_prefix_0', 'bad CIDR', second(address='10.0.2.14/0'), p,
         ["rail ib1: address '10.0.2.14/0' needs a prefix length"]),
        ('address_without_prefix', 'bad CIDR', second(address='10.0.2.14'), p,
         ["rail ib1: address '10.0.2.14' must be an IPv4 host address with its prefix length"]),
        ('address_garbage', 'bad CIDR', second(address='ten.zero.two.fourteen/24'), p,
         ["rail ib1: address 'ten.zero.two.fourteen/24' is not an IPv4 host address"]),
        ('address_octal_looking', 'bad CIDR', second(address='010.0.2.14/24'), p,
         ["rail ib1: address '010.0.2.14/24' is not an IPv4 host address"]),
        ('address_is_the_network', 'bad CIDR', second(address='10.0.2.0/24'), p,
         ['rail ib1: address 10.0.2.0/24 is the network address of 10.0.2.0/24']),
        ('address_is_the_broadcast', 'bad CIDR', second(address='10.0.2.255/24'), p,
         ['rail ib1: address 10.0.2.255/24 is the broadcast address of 10.0.2.0/24']),
        ('address_prefix_of_5000_digits', 'bad CIDR', second(address='10.0.2.14/' + '0' * 4998 + '24'), p,
         ["rail ib1: address '10.0.2.14/000", 'needs a prefix length from 1 to 31']),
        ('gateway_outside_subnet', 'bad CIDR', second(gateway='10.0.9.1'), p,
         ['rail ib1: gateway 10.0.9.1 is outside 10.0.2.0/24']),
        ('gateway_is_own_address', 'bad CIDR', second(gateway='10.0.2.14'), p,
         ["rail ib1: gateway 10.0.2.14 is the rail's own address"]),
        ('gateway_with_prefix', 'bad CIDR', second(gateway='10.0.2.1/24'), p,
         ["rail ib1: gateway '10.0.2.1/24' is not an IPv4 address (no prefix length here)"]),
        ('source_with_host_bits', 'bad CIDR', second(sources=['10.0.5.7/24']), p,
         ['rail ib1: source 10.0.5.7/24 has host bits set', '10.0.5.0/24']),
        ('source_is_everything', 'bad CIDR', second(sources=['0.0.0.0/0']), p,
         ['rail ib1: source 0.0.0.0/0 would capture every source address']),
        ('destination_garbage', 'bad CIDR', options(source_routing_destination='10.0.0.0/8x'), p,
         ["source_routing_destination: '10.0.0.0/8x' is not an IPv4 prefix"]),
        ('destination_host_bits', 'bad CIDR', options(source_routing_destination='10.0.1.0/8'), p,
         ['source_routing_destination: 10.0.1.0/8 has host bits set; use 10.0.0.0/8']),
        # --- IPv6 where IPv4 is expected ---------------------------------------------------------
        ('address_ipv6', 'IPv6 for IPv4', second(address='fd00:2::14/64'), p,
         ["rail ib1: address 'fd00:2::14/64' is not an IPv4 host address", 'it is IPv6']),
        ('address_ipv4_mapped_ipv6', 'IPv6 for IPv4', second(address='::ffff:10.0.2.14/120'), p,
         ["rail ib1: address '::ffff:10.0.2.14/120' is not an IPv4 host address", 'it is IPv6']),
        ('gateway_ipv6', 'IPv6 for IPv4', second(gateway='fd00:2::1'), p,
         ["rail ib1: gateway 'fd00:2::1' is not an IPv4 address", 'it is IPv6']),
        ('source_ipv6', 'IPv6 for IPv4', second(sources=['fd00:5::/64']), p,
         ["rail ib1: source 'fd00:5::/64' is not an IPv4 address or prefix", 'it is IPv6']),
        ('destination_ipv6', 'IPv6 for IPv4', options(source_routing_destination='::/0'), p,
         ["source_routing_destination: '::/0' is not an IPv4 prefix", 'it is IPv6']),
        # --- an IPv4 value in a field that must be something else -------------------------------
        ('device_is_an_ipv4_address', 'IPv4 for another kind', second(device='10.0.2.14'), p,
         ["source_routing_rails[1]: device '10.0.2.14' is an IPv4 address, not an interface name"]),
        ('table_is_an_ipv4_address', 'IPv4 for another kind', second(table='10.0.2.1'), a,
         ["'table'", '10.0.2.1']),
        ('priority_is_an_ipv4_address', 'IPv4 for another kind', second(priority='10.0.2.1'), a,
         ["'priority'", '10.0.2.1']),
        ('mtu_is_an_ipv4_address', 'IPv4 for another kind', second(mtu='10.0.2.1'), a, ["'mtu'", '10.0.2.1']),
        ('sysctl_key_is_an_ipv4_address', 'IPv4 for another kind', second(sysctls={'10.0.2.14': 1}), p,
         ["rail ib1: sysctls: '10.0.2.14' is not a net.ipv4.conf key"]),
        ('priority_range_start_is_an_ipv4_address', 'IPv4 for another kind',
         options(source_routing_priority_range={'start': '10.0.0.1', 'end': 1999}), p,
         ["source_routing_priority_range: start '10.0.0.1' is not an integer"]),
        ('table_base_is_an_ipv4_address', 'IPv4 for another kind', options(source_routing_table_base='10.0.0.100'),
         a, ["'source_routing_table_base'", '10.0.0.100']),
        # --- tables out of range -----------------------------------------------------------------
        ('table_0', 'table out of range', second(table=0), p, ['rail ib1: table 0 is reserved (unspec)']),
        ('table_253', 'table out of range', second(table=253), p, ['rail ib1: table 253 is reserved (default)']),
        ('table_254', 'table out of range', second(table=254), p, ['rail ib1: table 254 is reserved (main)']),
        ('table_255', 'table out of range', second(table=255), p, ['rail ib1: table 255 is reserved (local)']),
        ('table_2_to_the_32', 'table out of range', second(table=2 ** 32), p,
         ['rail ib1: table 4294967296 is out of range 0-4294967295']),
        ('table_minus_1', 'table out of range', second(table=-1), p, ['rail ib1: table -1 is out of range']),
        ('table_10_to_the_30', 'table out of range', second(table=10 ** 30), p,
         ['rail ib1: table %d is out of range' % 10 ** 30]),
        ('table_base_lands_on_253', 'table out of range', options(source_routing_table_base=252), p,
         ['rail ib0: table 253 is reserved (default)', 'source_routing_table_base 252 + position 1']),
        ('table_base_overflows', 'table out of range', options(source_routing_table_base=2 ** 32 - 1), p,
         ['rail ib0: table 4294967296 is out of range', 'source_routing_table_base 4294967295 + position 1']),
        ('table_base_negative', 'table out of range', options(source_routing_table_base=-100), p,
         ['source_routing_table_base: value -100 is out of range']),
        # --- priorities out of range -------------------------------------------------------------
        ('priority_0', 'priority out of range', second(priority=0), p,
         ['rail ib1: priority 0 is reserved for the kernel\'s "local" rule']),
        ('priority_32766', 'priority out of range', second(priority=32766), p,
         ['rail ib1: priority 32766 is reserved for the kernel\'s "main" rule']),
        ('priority_32767', 'priority out of range', second(priority=32767), p,
         ['rail ib1: priority 32767 is reserved for the kernel\'s "default" rule']),
        ('priority_40000', 'priority out of range', second(priority=40000), p,
         ["rail ib1: priority 40000 is after the main table's rule"]),
        ('priority_2_to_the_32', 'priority out of range', second(priority=2 ** 32), p,
         ['rail ib1: priority 4294967296 is out of range']),
        ('priority_negative', 'priority out of range', second(priority=-5), p,
         ['rail ib1: priority -5 is out of range']),
        ('priority_outside_managed_range', 'priority out of range', second(priority=2500), p,
         ['rail ib1: priority 2500 is outside the managed range 1001-1999']),
        ('priority_outside_custom_range', 'priority out of range',
         dict(second(priority=1002), source_routing_priority_range={'start': 1001, 'end': 1001}), p,
         ['rail ib1: priority 1002 is outside the managed range 1001-1001']),
        ('priority_base_0', 'priority out of range', options(source_routing_priority_base=0), p,
         ['source_routing_priority_base: value 0 is out of range 1-32765']),
        ('priority_base_32766', 'priority out of range', options(source_routing_priority_base=32766), p,
         ['source_routing_priority_base: value 32766 is out of range 1-32765']),
        ('priority_range_reversed', 'priority out of range',
         options(source_routing_priority_range={'start': 1999, 'end': 1000}), p,
         ['source_routing_priority_range: start 1999 is after end 1000']),
        ('priority_range_over_main', 'priority out of range',
         options(source_routing_priority_range={'start': 1000, 'end': 32766}), p,
         ['source_routing_priority_range: end 32766 is out of range 1-32765']),
        ('priority_range_without_end', 'priority out of range',
         options(source_routing_priority_range={'start': 1000}), p,
         ['source_routing_priority_range: end is required']),
        # --- duplicates --------------------------------------------------------------------------
        ('duplicate_device', 'duplicate', second(device='ib0'), p,
         ['source_routing_rails[1]: device ib0 is already used by source_routing_rails[0]']),
        ('duplicate_address', 'duplicate', second(address='10.0.1.14/24', gateway='10.0.1.1'), p,
         ['rail ib1: address 10.0.1.14 is already used by rail ib0']),
        ('duplicate_table', 'duplicate', second(table=101), p, ['rail ib1: table 101 is already used by rail ib0']),
        ('table_equal_to_a_default', 'duplicate',
         {'source_routing_rails': [rail(IB0, table=102), dict(IB1)]}, p,
         ['rail ib1: table 102 is already used by rail ib0']),
        ('duplicate_priority', 'duplicate', second(priority=1001), p,
         ['rail ib1: priority 1001 is already used by rail ib0']),
        ('source_is_another_rails_address', 'duplicate', second(sources=['10.0.1.14']), p,
         ['rail ib1: source 10.0.1.14 overlaps address 10.0.1.14 of rail ib0']),
        ('source_covers_another_rails_address', 'duplicate', second(sources=['10.0.1.0/28']), p,
         ['rail ib1: source 10.0.1.0/28 overlaps address 10.0.1.14 of rail ib0']),
        ('source_inside_another_rails_source', 'duplicate',
         {'source_routing_rails': [rail(IB0, sources=['10.0.5.0/24']), rail(IB1, sources=['10.0.5.7'])]}, p,
         ['rail ib1: source 10.0.5.7 overlaps source 10.0.5.0/24 of rail ib0']),
        ('source_repeated', 'duplicate', second(sources=['10.0.5.1', '10.0.5.1']), p,
         ['rail ib1: source 10.0.5.1 repeats source 10.0.5.1']),
        ('source_repeats_own_address', 'duplicate', second(sources=['10.0.2.14']), p,
         ["rail ib1: source 10.0.2.14 repeats the rail's own address"]),
        # --- unknown keys ------------------------------------------------------------------------
        ('unknown_rail_key', 'unknown key', second(colour='blue'), a, ['source_routing_rails.colour']),
        ('rail_key_in_capitals', 'unknown key', second(device=DROP, Device='ib1'), a,
         ['source_routing_rails.Device', 'missing required arguments: device']),
        ('rail_key_misspelt', 'unknown key', second(address=DROP, adress='10.0.2.14/24'), a,
         ['source_routing_rails.adress', 'missing required arguments: address']),
        ('priority_range_unknown_key', 'unknown key',
         options(source_routing_priority_range={'start': 1000, 'end': 1999, 'step': 1}), p,
         ['source_routing_priority_range: unknown key step']),
        ('sysctl_key_unknown_form', 'unknown key', second(sysctls={'net.ipv4.conf.ib1.rp_filter': 2}), p,
         ["rail ib1: sysctls: 'net.ipv4.conf.ib1.rp_filter' is not a net.ipv4.conf key"]),
        # --- empty -------------------------------------------------------------------------------
        ('rails_empty', 'empty', {'source_routing_rails': []}, p, ['source_routing_rails: empty;']),
        ('rail_empty_mapping', 'empty', {'source_routing_rails': [dict(IB0), {}]}, a,
         ['missing required arguments: address, device', 'source_routing_rails']),
        ('device_empty', 'empty', second(device=''), p, ['source_routing_rails[1]: device is required']),
        ('address_empty', 'empty', second(address=''), p, ['source_routing_rails[1]: address is required']),
        # --- huge --------------------------------------------------------------------------------
        ('rails_5000', 'huge', {'source_routing_rails': many_rails(5000)}, p,
         ['source_routing_rails: 5000 rails, more than the limit of 64']),
        ('sources_100000', 'huge', second(sources=many_sources(100000)), p,
         ['rail ib1: sources has 100000 entries, more than the limit of 1024 per host']),
        ('sources_800_on_each_rail', 'huge',
         {'source_routing_rails': [rail(IB0, sources=many_sources(800)),
                                   rail(IB1, sources=many_sources(800, second_octet=110))]}, p,
         ['rail ib1: sources has 800 entries, which with the 800 of the earlier rails is more than the limit']),
        ('device_of_10000_characters', 'huge', second(device='ib' * 5000), p,
         ["source_routing_rails[1]: device 'ibibib", 'is not a valid interface name']),
        ('table_of_5000_digits', 'huge', second(table='9' * 5000), p,
         ["rail ib1: table '999", '(5002 characters) is out of range 0-4294967295']),
        ('sysctl_value_of_5000_digits', 'huge', options(source_routing_rail_sysctls={'rp_filter': '9' * 5000}), p,
         ["source_routing_rail_sysctls: rp_filter '999", 'is out of range']),
        ('sysctl_value_out_of_kernel_range', 'huge', options(source_routing_all_sysctls={'rp_filter': 7}), p,
         ['source_routing_all_sysctls: rp_filter 7 is not one of 0, 1, 2']),
    ]
    # --- device names that are not interface names, or carry shell metacharacters ------------------
    for name, device in [('semicolon', 'ib0;reboot'), ('command_substitution', '$(id)'), ('backticks', '`id`'),
                         ('space', 'ib 1'), ('pipe', 'ib0|x'), ('ampersand', 'ib1&&id'), ('redirect', 'ib1>x'),
                         ('16_characters', 'ib0123456789abcd'), ('dot', '.'), ('dot_dot', '..'),
                         ('path', '../../etc/x'), ('slash', 'ib1/0'), ('colon', 'ib1:0'), ('unicode', '\u00efb1'),
                         ('newline', 'ib1\n'), ('newline_inside', 'ib1\n[ipv4]'), ('leading_dash', '-ib1'),
                         ('quote', "ib1'x"), ('tab', 'ib1\t')]:
        out.append(('device_' + name, 'device name', second(device=device), p,
                    ['source_routing_rails[1]: device %r is not a valid interface name' % device]))
    for word in ('all', 'default'):
        out.append(('device_' + word, 'device name', second(device=word), p,
                    ['source_routing_rails[1]: device %r is not a valid interface name' % word, 'not all or default']))
    return [Case(*fields) for fields in out]


CASES = _cases()
assert len(set(case.name for case in CASES)) == len(CASES)
assert set(case.category for case in CASES) == set(CATEGORIES)
