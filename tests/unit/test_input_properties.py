"""Bad input is refused with a message naming the field, never with a traceback.

Two halves:

- Properties (hypothesis, deterministic): the planner (plan.build_plan and the
  source_routing_plan filter) and every pure validator a module feeds its
  arguments into before it touches the kernel (rules.desired_rules,
  rules.check_priority_range, routes.desired_tables then routes.validate_routes and
  routes.decide_routes, sysctl.desired_settings, keyfile.render) get arbitrary JSON-like
  values and "almost right" ones (a valid input with one field replaced). The answer is
  the documented error (PlanError / AnsibleFilterError / InvalidArgument) with a
  message that starts with the object and names the field, or a result that satisfies
  invariants checked here independently of the code under test. Anything else fails.
- The explicit malformed inventories of bad_inventories.py, each through the role's
  argument_specs (ansible's ArgumentSpecValidator, as the role's validation task runs
  it) and through the planner: each is refused by the layer it names, with a message
  holding the object, the field and the value.
"""

import ipaddress
import os
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.filter.source_routing import source_routing_plan
from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import render
from ansible_collections.roce.multirail.plugins.module_utils.plan import RAIL_KEYS, PlanError, build_plan
from ansible_collections.roce.multirail.plugins.module_utils.routes import (
    Link,
    Route,
    decide_routes,
    desired_tables,
    validate_routes,
)
from ansible_collections.roce.multirail.plugins.module_utils.rules import check_priority_range, desired_rules
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import desired_settings
from ansible_collections.roce.multirail.plugins.modules.rail_guard import management_addresses, read_plan

from bad_inventories import ARGUMENT_SPECS, CASES, CATEGORIES, PLANNER
from collection_path import REPO

ROLE = os.path.join(REPO, 'roles', 'source_routing')
# The whole file stays within seconds: every property is deterministic and bounded.
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MANY = settings(PROPERTY, max_examples=600)

# --- independent facts (not imported from the code under test) ----------------------------------

U32 = 2 ** 32 - 1
RESERVED_TABLE_IDS = (0, 253, 254, 255)
KERNEL_RULE_PRIORITIES = (0, 32766, 32767)
MEANINGFUL = {'rp_filter': (0, 1, 2), 'arp_ignore': (0, 1, 2, 3, 8), 'arp_announce': (0, 1, 2),
              'accept_local': (0, 1), 'arp_filter': (0, 1)}
INTERFACE_NAME = re.compile(r'[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}\Z')
SYSCTL_LINE = re.compile(r'net\.ipv4\.conf\.[A-Za-z0-9_/-]+\.[a-z0-9_]+ = -?[0-9]+\Z')
LIMIT_RAILS, LIMIT_SOURCES = 64, 1024


def is_interface_name(name):
    if not isinstance(name, str) or not INTERFACE_NAME.match(name) or name in ('.', '..', 'all', 'default'):
        return False
    return not re.fullmatch(r'[0-9]{1,3}(\.[0-9]{1,3}){3}', name)


def ipv4_net(text):
    net = ipaddress.ip_network(text)
    assert net.version == 4, text
    return net


# --- strategies ----------------------------------------------------------------------------------

BOUNDARY_INTS = st.sampled_from([0, 1, -1, 68, 252, 253, 254, 255, 256, 999, 1000, 1001, 1999, 2000, 32765, 32766,
                                 32767, 65535, 65536, 2 ** 31 - 1, 2 ** 31, U32, 2 ** 32, 2 ** 64, 10 ** 30])
# Numbers as Ansible may pass them: text, with spaces, signs, hex, digits of other scripts, too many
# digits (Python refuses to convert more than 4300). The known nasty ones get a strategy of their own,
# so that they are drawn often, not once in a thousand.
NASTY_NUMBERS = ['101', ' 1001 ', '0x65', '1e3', '1_000', '-1', '+5', '', ' ', '9' * 30, '0' * 40 + '7', '9' * 5000,
                 '0' * 5000 + '1', '\u0663', '1\u00b2', 1.0, float('nan'), float('inf'), True, None, 2 ** 64, -2 ** 31 - 1]
NASTY_NUMERIC_TEXT = st.sampled_from([value for value in NASTY_NUMBERS if isinstance(value, str)])
NUMERIC_TEXT = st.one_of(NASTY_NUMERIC_TEXT,
                         st.text(alphabet=st.sampled_from('0123456789 +-x\u00b2\u0663'), min_size=1, max_size=8))
NUMBERS = st.one_of(BOUNDARY_INTS, NASTY_NUMERIC_TEXT, st.integers(-2 ** 34, 2 ** 34), NUMERIC_TEXT, st.floats(),
                    st.booleans())
PREFIX_LENGTHS = st.one_of(st.none(), st.integers(-1, 40).map(str),
                           st.sampled_from(['', '0' * 5000 + '24', '24 ', '255.255.255.0', 'x']))


PADDING = st.sampled_from(['', '', '', ' ', '\n', '\t', ' \n'])


def with_prefix(address, length, padding=''):
    return (str(address) if length is None else '%s/%s' % (address, length)) + padding


IPV4_TEXT = st.builds(with_prefix, st.ip_addresses(v=4), PREFIX_LENGTHS, PADDING)
IPV6_TEXT = st.builds(with_prefix, st.ip_addresses(v=6), PREFIX_LENGTHS, PADDING)
# Text that looks like what the validators parse (digits of other scripts, separators, shell and keyfile syntax).
NEAR_TEXT = st.text(alphabet=st.sampled_from('0123456789./:ib-_ x\n\t;$`|=[]\u00b2\u0663\u00ef'), max_size=20)
SCALARS = st.one_of(
    st.none(), st.booleans(), BOUNDARY_INTS, st.integers(-2 ** 40, 2 ** 40), st.floats(), st.text(max_size=16),
    NEAR_TEXT, NUMERIC_TEXT, IPV4_TEXT, IPV6_TEXT,
    st.sampled_from(['ib0', 'ib1', 'eth0.100', 'default', 'all', '10.0.1.14/24', '10.0.1.1', '10.0.1.0/24',
                     '10.0.0.0/16', '0.0.0.0/0', 'rp_filter', 'ipv4', 'ipv6', 'link', 'global']),
)
KEYS = st.one_of(st.sampled_from(RAIL_KEYS + ('start', 'end', 'table', 'routes', 'dst', 'dev', 'from', 'to',
                                              'rp_filter', 'all', 'ib0', 'rails', 'rules', 'priority')),
                 st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda children: st.one_of(st.lists(children, max_size=4),
                                                        st.dictionaries(KEYS, children, max_size=4)),
                    max_leaves=10)

DEVICES = st.one_of(
    st.sampled_from(['ib0', 'ib1', 'ib2', 'eth0.100', 'eth0/100', 'lo', 'ib0;reboot', '$(id)', '`id`', 'ib 0',
                     'ib0|x', 'a' * 16, '.', '..', 'all', 'default', '', '\u00efb0', 'ib0\n', '-ib0', '10.0.1.14',
                     'ib0\n[ipv4]', '../x']),
    st.text(alphabet=st.sampled_from('ib0123456789.-_;$`| \n:/\u00ef'), max_size=18),
)
ADDRESSES = st.one_of(st.sampled_from([
    '10.0.1.14/24', '10.0.2.14/24', '10.0.1.0/24', '10.0.1.255/24', '10.0.1.14', '10.0.1.1/24', '10.0.1.14/31',
    '10.0.1.15/31', '10.0.1.13/30', '10.0.1.14/30', '10.100.0.1/24', ' 10.0.1.14/24 ', '10.0.1.14/24\n',
    '10.0.1.14/' + '0' * 5000 + '24', '10.0.1.14/\u0662\u0664', 'fd00::14/64', '::ffff:10.0.1.14/120']),
    IPV4_TEXT, IPV6_TEXT, NEAR_TEXT)
GATEWAYS = st.one_of(st.ip_addresses(v=4).map(str), IPV4_TEXT, IPV6_TEXT, NEAR_TEXT,
                     st.sampled_from(['10.0.1.1', '10.0.2.1', '10.0.1.0', '10.0.1.255', '', ' 10.0.1.1 ']))
SOURCE_TEXTS = st.one_of(IPV4_TEXT, IPV6_TEXT, st.sampled_from(['10.0.1.14', '10.0.2.14', '10.100.0.0/28',
                                                                '10.0.0.0/8', '0.0.0.0/0', '10.100.0.3']))
SOURCES = st.one_of(st.lists(SOURCE_TEXTS, max_size=5), JSON)
SYSCTL_KEYS = st.one_of(st.sampled_from(['rp_filter', 'arp_ignore', 'arp_announce', 'accept_local', 'forwarding',
                                         'RP_FILTER', 'rp_filter\n', 'net.ipv4.conf.all.rp_filter', '']),
                        st.text(max_size=8))
SYSCTLS = st.one_of(st.dictionaries(SYSCTL_KEYS, st.one_of(NUMBERS, JSON), max_size=3), JSON)
DESTINATIONS = st.one_of(IPV4_TEXT, IPV6_TEXT, NEAR_TEXT,
                         st.sampled_from(['0.0.0.0/0', '10.0.0.0/16', '10.0.1.0/24', '10.0.1.0/8', 'default', '']))
PRIORITY_RANGES = st.one_of(st.fixed_dictionaries({}, optional={'start': NUMBERS, 'end': NUMBERS, 'step': NUMBERS}),
                            JSON)
RAIL_FIELD_VALUES = {'device': DEVICES, 'address': ADDRESSES, 'gateway': GATEWAYS, 'table': NUMBERS,
                     'priority': NUMBERS, 'sources': SOURCES, 'mtu': NUMBERS, 'sysctls': SYSCTLS}
OPTION_VALUES = {'table_base': NUMBERS, 'priority_base': NUMBERS, 'destination': DESTINATIONS, 'metric': NUMBERS,
                 'rail_sysctls': SYSCTLS, 'all_sysctls': SYSCTLS, 'priority_range': PRIORITY_RANGES}
OPTION_VARIABLES = {'table_base': 'source_routing_table_base', 'priority_base': 'source_routing_priority_base',
                    'destination': 'source_routing_destination', 'metric': 'source_routing_route_metric',
                    'rail_sysctls': 'source_routing_rail_sysctls', 'all_sysctls': 'source_routing_all_sysctls',
                    'priority_range': 'source_routing_priority_range'}


@st.composite
def valid_rails(draw, max_rails=4):
    """A valid inventory in one of many shapes: the start of every "almost right" one."""
    rails = []
    for index in range(draw(st.integers(1, max_rails))):
        spec = {'device': draw(st.sampled_from(['ib', 'eth', 'ens1f', 'roce'])) + str(index),
                'address': '10.0.%d.%d/24' % (index + 1, draw(st.integers(2, 254)))}
        if draw(st.booleans()):
            spec['gateway'] = '10.0.%d.1' % (index + 1)
        if draw(st.booleans()):
            spec['table'] = draw(st.sampled_from([200 + index, 300000 + index, str(400 + index)]))
        if draw(st.booleans()):
            spec['priority'] = 1100 + index
        if draw(st.booleans()):
            spec['sources'] = ['10.%d.%d.0/28' % (100 + index, j) for j in range(draw(st.integers(0, 3)))]
        if draw(st.booleans()):
            spec['mtu'] = draw(st.sampled_from([1500, 4200, 9000, '9000']))
        if draw(st.booleans()):
            spec['sysctls'] = {'rp_filter': draw(st.sampled_from([0, 1, 2]))}
        rails.append(spec)
    return rails


@st.composite
def almost_right_inventories(draw):
    """(rails, options, what was changed): a valid inventory with one rail field or one option replaced."""
    rails = draw(valid_rails())
    options = {}
    if draw(st.integers(0, 3)) == 0:
        option = draw(st.sampled_from(sorted(OPTION_VALUES)))
        options[option] = draw(st.one_of(OPTION_VALUES[option], JSON))
        return rails, options, ('option', option)
    index = draw(st.integers(0, len(rails) - 1))
    field = draw(st.sampled_from(RAIL_KEYS + ('unknown', 'drop')))
    if field == 'unknown':
        rails[index][draw(st.sampled_from(['colour', 'Device', 'adress', 'vlan', '']))] = draw(JSON)
    elif field == 'drop':
        field = draw(st.sampled_from(sorted(rails[index])))
        del rails[index][field]
        field = 'drop ' + field
    else:
        rails[index][field] = draw(st.one_of(RAIL_FIELD_VALUES[field], RAIL_FIELD_VALUES[field], JSON))
    return rails, options, ('rail', field)


@st.composite
def arbitrary_inventories(draw):
    rails = draw(st.one_of(st.lists(st.dictionaries(st.one_of(st.sampled_from(RAIL_KEYS), KEYS),
                                                    st.one_of(SCALARS, JSON), max_size=8), max_size=4),
                           st.lists(JSON, max_size=4), JSON))
    options = draw(st.fixed_dictionaries({}, optional={name: JSON for name in OPTION_VALUES}))
    return rails, options, None


# --- the planner ---------------------------------------------------------------------------------

OBJECT = re.compile(r'(source_routing_(rails|table_base|priority_base|destination|route_metric|rail_sysctls|'
                    r'all_sysctls|priority_range)(\[[0-9]+\])?|rail [A-Za-z0-9_.-]{1,15}): \S')
# What a message about a change to one rail field or option may name: the field, or one that
# the change collides with (a new address puts the explicit gateway outside, or overlaps a source).
FIELD_WORDS = {
    'device': ('device',), 'address': ('address', 'gateway', 'source'), 'gateway': ('gateway',),
    'table': ('table',), 'priority': ('priority',), 'sources': ('source',), 'mtu': ('mtu',),
    'sysctls': ('sysctls',), 'unknown': ('unknown key',), 'drop device': ('device is required',),
    'drop address': ('address is required',),
    'table_base': ('source_routing_table_base', 'table'), 'priority_base': ('source_routing_priority_base', 'priority'),
    'destination': ('source_routing_destination',), 'metric': ('source_routing_route_metric',),
    'rail_sysctls': ('source_routing_rail_sysctls',), 'all_sysctls': ('source_routing_all_sysctls',),
    'priority_range': ('source_routing_priority_range',),
}
RAIL_FIELD_WORDS = RAIL_KEYS + ('source', 'unknown key', 'expected a mapping')


def assert_names_a_field(message, changed=None):
    """One short line: the object first, then a field; the changed field (or what it collides with) when known."""
    assert message and '\n' not in message and len(message) < 500, repr(message)
    assert OBJECT.match(message), 'no object first in %r' % message
    if message.startswith(('rail ', 'source_routing_rails[')):
        assert any(word in message for word in RAIL_FIELD_WORDS), 'no rail field in %r' % message
    if changed is not None:
        words = FIELD_WORDS[changed[1]]
        assert any(word in message for word in words), '%r changed, but %r names none of %s' % (
            changed, message, words)


def check_plan(plan, rails):
    """Invariants of a plan, checked without the planner's own helpers; then every module accepts it."""
    assert 1 <= len(plan['rails']) == len(rails) <= LIMIT_RAILS
    start, end = plan['priority_range']['start'], plan['priority_range']['end']
    assert 1 <= start <= end < 32766
    devices = [rail['device'] for rail in plan['rails']]
    assert plan['devices'] == devices and len(set(devices)) == len(devices)
    tables = [table['table'] for table in plan['tables']]
    assert tables == [rail['table'] for rail in plan['rails']] and len(set(tables)) == len(tables)
    priorities = [rail['priority'] for rail in plan['rails']]
    assert len(set(priorities)) == len(priorities)
    owners = []
    for rail in plan['rails']:
        device = rail['device']
        assert is_interface_name(device), device
        assert isinstance(rail['table'], int) and 1 <= rail['table'] <= U32
        assert rail['table'] not in RESERVED_TABLE_IDS
        assert isinstance(rail['priority'], int) and start <= rail['priority'] <= end
        assert rail['priority'] not in KERNEL_RULE_PRIORITIES
        interface = ipaddress.IPv4Interface(rail['address'])
        subnet = interface.network
        assert rail['ip'] == str(interface.ip) and rail['subnet'] == str(subnet)
        assert 1 <= subnet.prefixlen <= 31
        if subnet.prefixlen <= 30:
            assert interface.ip not in (subnet.network_address, subnet.broadcast_address)
        gateway = ipaddress.IPv4Address(rail['gateway'])
        assert gateway in subnet and gateway != interface.ip
        assert rail['mtu'] is None or 68 <= rail['mtu'] <= 65535
        assert 0 <= rail['metric'] <= U32
        for route in rail['routes']:
            ipv4_net(route['dst'])
            assert route['dev'] == device and route['metric'] == rail['metric']
            assert route.get('src', rail['ip']) == rail['ip']
            assert route.get('gateway', rail['gateway']) == rail['gateway']
        assert len(rail['rules']) == 1 + len(rail['sources'])
        for rule in rail['rules']:
            assert (rule['priority'], rule['table']) == (rail['priority'], rail['table'])
            assert ipv4_net(rule['from']).prefixlen > 0
        owners.append((ipaddress.IPv4Network(rail['ip']), device))
        for source in rail['sources']:
            owners.append((ipv4_net(source), device))
            assert owners[-1][0].prefixlen > 0
        for key, value in rail['sysctls'].items():
            assert isinstance(value, int) and -2 ** 31 <= value < 2 ** 31
            assert value in MEANINGFUL.get(key, (value,)), (key, value)
    assert len(owners) - len(rails) <= LIMIT_SOURCES
    for index, (net, device) in enumerate(owners):
        for other, other_device in owners[index + 1:]:
            assert device == other_device or not net.overlaps(other), (net, device, other, other_device)
    assert plan['rules'] == [rule for rail in plan['rails'] for rule in rail['rules']]
    assert {rule['table'] for rule in plan['rules']} <= set(tables)
    assert all(SYSCTL_LINE.match(line) for line in plan['sysctl_lines']), plan['sysctl_lines']
    for target, keys in plan['conf'].items():
        assert target == 'all' or target in devices
        assert all(value in MEANINGFUL.get(key, (value,)) for key, value in keys.items())
    # What the role hands the modules, they take as it is.
    assert len(desired_tables(plan['tables'])) == len(tables)
    assert len(desired_rules(plan['rules'])) == len(plan['rules'])
    assert check_priority_range(plan['priority_range']) == (start, end)
    for rail in plan['rails']:
        assert 'interface-name=%s\n' % rail['device'] in render(rail, 'infiniband')


def plan_both_ways(rails, options):
    """build_plan and the filter: the same plan, or the same message (PlanError / AnsibleFilterError)."""
    try:
        plan = build_plan(rails, **options)
    except PlanError as exc:
        with pytest.raises(AnsibleFilterError) as caught:
            source_routing_plan(rails, **options)
        assert caught.value.message == str(exc)
        return None, str(exc)
    assert source_routing_plan(rails, **options) == plan
    return plan, None


def check_planning(rails, options, changed=None):
    """A valid plan, or a one-line message naming the object and the field (the changed one when known)."""
    plan, message = plan_both_ways(rails, options)
    if message is None:
        check_plan(plan, rails)
    else:
        assert_names_a_field(message, changed)


@MANY
@given(almost_right_inventories())
def test_almost_right_inventory_gives_a_valid_plan_or_names_the_changed_field(inventory):
    check_planning(*inventory)


@PROPERTY
@given(arbitrary_inventories())
@example(([{'\n': None}], {}, None))
@example(([{'device': 'ib0', 'address': '10.0.1.14/24'}], {'priority_range': {'start': 1000, 'end': 1999, '\n': 1}},
          None))
def test_arbitrary_values_give_a_valid_plan_or_a_plan_error(inventory):
    check_planning(*inventory)


@PROPERTY
@given(valid_rails(max_rails=8))
def test_valid_inventories_always_plan(rails):
    plan, message = plan_both_ways(rails, {})
    assert message is None, message
    check_plan(plan, rails)


# Every known nasty value in every field, not left to chance.
NASTY_TEXTS = ['', ' ', '\n', 'ib0;reboot', '$(id)', '`id`', 'ib0\n[ipv4]', '\u00efb0', 'a' * 10000, '10.0.1.14',
               '10.0.1.14/' + '0' * 5000 + '24', '10.0.1.14/\u0662\u0664', 'fd00::14/64', '::ffff:10.0.1.14/120',
               '10.0.1.14/24\n', '10.0.1.0/24', '0.0.0.0/0', 'default', '1' * 5000, '10.0.1.14%eth0', '\x00']
NUMERIC_FIELDS = [('rail', 'table'), ('rail', 'priority'), ('rail', 'mtu'), ('sysctl', 'rp_filter'),
                  ('sysctl', 'forwarding'), ('option', 'table_base'), ('option', 'priority_base'),
                  ('option', 'metric'), ('range', 'start'), ('range', 'end')]
TEXT_FIELDS = [('rail', 'device'), ('rail', 'address'), ('rail', 'gateway'), ('source', 'sources'),
               ('option', 'destination'), ('sysctl_key', 'rail_sysctls')]


def with_value(where, field, value):
    """(rails, options): the two-rail textbook inventory with value in one field."""
    rails = [{'device': 'ib0', 'address': '10.0.1.14/24'}, {'device': 'ib1', 'address': '10.0.2.14/24'}]
    options = {}
    if where == 'rail':
        rails[1][field] = value
    elif where == 'source':
        rails[1]['sources'] = [value]
    elif where == 'sysctl':
        rails[1]['sysctls'] = {field: value}
    elif where == 'sysctl_key':
        options[field] = {value: 1}
    elif where == 'range':
        options['priority_range'] = dict({'start': 1000, 'end': 1999}, **{field: value})
    else:
        options[field] = value
    return rails, options


@pytest.mark.parametrize('where, field', NUMERIC_FIELDS + TEXT_FIELDS)
def test_every_nasty_value_in_every_field(where, field):
    for value in NASTY_NUMBERS + NASTY_TEXTS:
        check_planning(*with_value(where, field, value))


# --- rail_rule: desired_rules and check_priority_range ----------------------------------------------

RULE_OBJECT = re.compile(r'rules(\[[0-9]+\]( \(priority [0-9]+\))?)?: \S')
RULE_FIELDS = ('priority', 'table', 'from', 'to', 'iif', 'oif', 'fwmark', 'family')
RULE_FIELD_VALUES = {
    'priority': NUMBERS, 'table': NUMBERS, 'from': st.one_of(SOURCE_TEXTS, GATEWAYS),
    'to': st.one_of(SOURCE_TEXTS, GATEWAYS), 'iif': DEVICES, 'oif': DEVICES,
    'fwmark': st.one_of(NUMBERS, st.sampled_from(['0x10', '0x10/0xff', '16/0', '0x10/', '/0xff', '0x1/0x100000000'])),
    'family': st.sampled_from(['ipv4', 'ipv6', 'inet', 4, '', None]),
}


@st.composite
def almost_right_rules(draw):
    count = draw(st.integers(1, 4))
    rules = []
    for index in range(count):
        rule = {'priority': 1001 + index, 'from': '10.0.%d.14' % (index + 1), 'table': 101 + index}
        if draw(st.booleans()):
            rule['to'] = '10.0.0.0/16'
        if draw(st.booleans()):
            rule['iif'] = 'ib%d' % index
        if draw(st.booleans()):
            rule['fwmark'] = '0x%x' % (index + 1)
        rules.append(rule)
    field = draw(st.sampled_from(RULE_FIELDS))
    rules[draw(st.integers(0, count - 1))][field] = draw(st.one_of(RULE_FIELD_VALUES[field], JSON))
    return rules, field


def check_rules(rules):
    assert len(set(rules)) == len(rules)
    for rule in rules:
        assert rule.family in (4, 6)
        assert 0 <= rule.priority <= U32 and rule.priority not in KERNEL_RULE_PRIORITIES
        assert 0 <= rule.table <= U32 and rule.table not in RESERVED_TABLE_IDS
        for prefix in (rule.src, rule.dst):
            if prefix:
                net = ipaddress.ip_network(prefix)
                assert net.version == rule.family and net.prefixlen > 0
        assert rule.iif == '' or is_interface_name(rule.iif)
        assert rule.oif == '' or is_interface_name(rule.oif)
        assert 0 <= rule.fwmark <= U32 and 0 <= rule.fwmask <= U32
        assert (rule.fwmark, rule.fwmask) == (0, 0) or rule.fwmask != 0


def parse(function, *arguments):
    """(result, None) or (None, the InvalidArgument's message); any other exception fails the test."""
    try:
        return function(*arguments), None
    except InvalidArgument as exc:
        return None, str(exc)


def assert_refused(message, pattern, field, words):
    """One line, the object first; when one field was changed, the message names it (or what it collides with)."""
    assert message and '\n' not in message and pattern.match(message), repr(message)
    if field is not None:
        assert any(word in message for word in words), (field, message)


@PROPERTY
@given(st.one_of(almost_right_rules(), st.tuples(JSON, st.none())), st.sampled_from(['present', 'absent']))
def test_desired_rules_gives_rules_or_invalid_argument(case, state):
    specs, field = case
    rules, message = parse(desired_rules, specs, state)
    if message is None:
        check_rules(rules)
    else:
        assert_refused(message, RULE_OBJECT, field,
                       (field, 'duplicates') + (('IPv',) if field in ('family', 'from', 'to') else ()))


@PROPERTY
@given(st.fixed_dictionaries({}, optional={'start': st.one_of(NUMBERS, JSON), 'end': st.one_of(NUMBERS, JSON)}))
def test_priority_range_gives_a_range_or_invalid_argument(value):
    # rail_rule's argument_spec makes priority_range a dict: that much is given.
    try:
        start, end = check_priority_range(value)
    except InvalidArgument as exc:
        assert str(exc).startswith('priority_range: '), str(exc)
    else:
        assert 1 <= start <= end <= U32 and not start <= 32766 <= end and not start <= 32767 <= end


# --- rail_table: desired_tables, then validate_routes and decide_routes -------------------------

TABLE_OBJECT = re.compile(r'(tables(\[[0-9]+\])?|table [0-9]+ routes?( [^:]+)?(\[[0-9]+\])?): \S')
ROUTE_FIELDS = ('dst', 'gateway', 'dev', 'src', 'scope', 'metric', 'onlink')
ROUTE_FIELD_VALUES = {
    'dst': st.one_of(SOURCE_TEXTS, DESTINATIONS), 'gateway': GATEWAYS, 'dev': DEVICES, 'src': GATEWAYS,
    'scope': st.one_of(NUMBERS, st.sampled_from(['link', 'global', 'host', 'site', 'nowhere', 'LINK', 'universe'])),
    'metric': NUMBERS, 'onlink': st.one_of(st.booleans(), JSON),
}
LINKS = {'ib0': Link('ib0', 2, True, ('10.0.1.14/24',)), 'ib1': Link('ib1', 3, False, ('10.0.2.14/24',)),
         'lo': Link('lo', 1, True, ('127.0.0.1/8',))}
CURRENT = [Route(table=101, dst='10.0.1.0/24', metric=100, dev='ib0', src='10.0.1.14', scope=253),
           Route(table=254, dst='10.0.9.0/24', dev='ib0', scope=253),
           Route(table=102, dst='0.0.0.0/0', metric=100, gateway='10.0.2.1', dev='ib1')]


@st.composite
def almost_right_tables(draw):
    tables = []
    for index in range(draw(st.integers(1, 3))):
        net = '10.0.%d' % (index + 1)
        tables.append({'table': 101 + index, 'routes': [
            {'dst': net + '.0/24', 'dev': 'ib%d' % index, 'src': net + '.14', 'metric': 100},
            {'dst': draw(st.sampled_from(['default', '0.0.0.0/0', '10.0.0.0/16'])), 'gateway': net + '.1',
             'dev': 'ib%d' % index, 'metric': 100}]})
    table = draw(st.integers(0, len(tables) - 1))
    field = draw(st.sampled_from(('table', 'routes') + ROUTE_FIELDS))
    if field == 'table':
        tables[table]['table'] = draw(st.one_of(NUMBERS, JSON))
    elif field == 'routes':
        tables[table]['routes'] = draw(JSON)
    else:
        route = draw(st.integers(0, 1))
        tables[table]['routes'][route][field] = draw(st.one_of(ROUTE_FIELD_VALUES[field], JSON))
    return tables, field


def check_tables(tables, state):
    assert len({spec.table for spec in tables}) == len(tables)
    for spec in tables:
        assert 1 <= spec.table <= U32 and spec.table not in RESERVED_TABLE_IDS
        assert len({route.key() for route in spec.routes}) == len(spec.routes)
        for route in spec.routes:
            assert route.table == spec.table and ipv4_net(route.dst)
            assert is_interface_name(route.dev)
            assert route.gateway == '' or ipaddress.IPv4Address(route.gateway)
            assert route.src == '' or ipaddress.IPv4Address(route.src)
            assert 0 <= route.scope <= 255 and 0 <= route.metric <= U32
            assert not route.onlink or route.gateway
        if state == 'present':
            assert not spec.matches
        for dst, metric, gateway, dev in spec.matches:
            ipv4_net(dst)
            assert metric is None or 0 <= metric <= U32
            assert gateway == '' or ipaddress.IPv4Address(gateway)
            assert dev == '' or is_interface_name(dev)


@PROPERTY
@given(st.one_of(almost_right_tables(), st.tuples(JSON, st.none())), st.sampled_from(['present', 'absent']),
       st.booleans())
@example(([{'table': 101, 'routes': [{'dst': '::\n', 'dev': 'ib0'}]}], 'dst'), 'present', False)
def test_desired_tables_gives_tables_or_invalid_argument(case, state, purge):
    specs, field = case
    tables, message = parse(desired_tables, specs, state)
    if message is not None:
        words = (field, 'same dst and metric', 'already listed')
        # A new routes list is refused for its shape or for any field of a route in it.
        words += {'routes': ('expected', 'required') + ROUTE_FIELDS, 'gateway': ('onlink',)}.get(field, ())
        assert_refused(message, TABLE_OBJECT, field, words)
        return
    check_tables(tables, state)
    # What rail_table does next with the parsed tables, against a fixed host.
    if state == 'present':
        _valid, message = parse(validate_routes, tables, LINKS, CURRENT, purge)
        assert message is None or TABLE_OBJECT.match(message), message
    changes = decide_routes(CURRENT, tables, state, purge)
    assert set(changes.before) == set(changes.after) == {spec.table for spec in tables}


# --- rail_sysctl: desired_settings --------------------------------------------------------------

CONF_TARGETS = ('all', 'default', 'ib0', 'ib1', 'eth0.100')
CONF_KEYS = ('rp_filter', 'arp_ignore', 'arp_announce', 'accept_local', 'arp_filter', 'forwarding', 'tag')


@pytest.fixture(scope='module')
def conf_root(tmp_path_factory):
    """A fake /proc/sys/net/ipv4/conf (desired_settings takes its root as an argument)."""
    root = tmp_path_factory.mktemp('ipv4') / 'conf'
    for target in CONF_TARGETS:
        (root / target).mkdir(parents=True)
        for key in CONF_KEYS:
            (root / target / key).write_text('0\n')
    return str(root)


@st.composite
def almost_right_conf(draw):
    conf = {'all': {'rp_filter': 2, 'accept_local': 1}, 'ib0': {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2},
            'eth0/100': {'rp_filter': 2}}
    what = draw(st.sampled_from(['target', 'key', 'value', 'keys']))
    if what == 'target':
        conf[draw(st.one_of(DEVICES, JSON.filter(lambda v: v.__hash__ is not None)))] = {'rp_filter': 2}
    elif what == 'keys':
        conf[draw(st.sampled_from(sorted(conf)))] = draw(JSON)
    else:
        keys = conf[draw(st.sampled_from(sorted(conf)))]
        if what == 'key':
            keys[draw(SYSCTL_KEYS)] = 1
        else:
            keys[draw(st.sampled_from(sorted(keys)))] = draw(st.one_of(NUMBERS, JSON))
    return conf


@PROPERTY
@given(st.one_of(almost_right_conf(), JSON))
def test_desired_settings_gives_settings_or_invalid_argument(conf_root, conf):
    try:
        found = desired_settings(conf, root=conf_root)
    except InvalidArgument as exc:
        assert '\n' not in str(exc) and re.match(r'conf(\.[^:]*)?: \S', str(exc)), repr(str(exc))
        return
    for setting in found:
        assert setting.target in CONF_TARGETS and setting.key in CONF_KEYS
        assert isinstance(setting.value, int) and -2 ** 31 <= setting.value < 2 ** 31
        assert setting.value in MEANINGFUL.get(setting.key, (setting.value,))


# --- rail_keyfiles: keyfile.render -------------------------------------------------------------

KEYFILE_LINE = re.compile(
    r'(# Managed by roce\.multirail .*|\[(connection|ethernet|infiniband|ipv4|ipv6)\]|'
    r'id=roce-multirail-[A-Za-z0-9_.-]+|uuid=[0-9a-f-]{36}|type=(ethernet|infiniband)|interface-name=[A-Za-z0-9_.-]+|'
    r'autoconnect=true|mtu=[0-9]+|method=(manual|ignore)|address1=[0-9.]+/[0-9]+|never-default=true|may-fail=false|'
    r'route[0-9]+=[0-9.]+/[0-9]+,[0-9.]+,[0-9]+|route[0-9]+_options=(src=[0-9.]+,)?table=[0-9]+(,onlink=true)?|'
    r'routing-rule[0-9]+=priority [0-9]+ from [0-9.]+(/[0-9]+)? table [0-9]+|)\Z')
PLANNED = build_plan([{'device': 'ib0', 'address': '10.0.1.14/24', 'mtu': 9000, 'sources': ['10.0.5.0/28']},
                      {'device': 'ib1', 'address': '10.0.2.14/24'}], destination='10.0.0.0/16')['rails']
KEYFILE_RAIL_VALUES = {'device': DEVICES, 'address': ADDRESSES, 'table': NUMBERS, 'mtu': NUMBERS,
                       'routes': JSON, 'rules': JSON}
KEYFILE_ROUTE_VALUES = {'dst': ROUTE_FIELD_VALUES['dst'], 'gateway': GATEWAYS, 'src': GATEWAYS, 'metric': NUMBERS,
                        'onlink': ROUTE_FIELD_VALUES['onlink']}
KEYFILE_RULE_VALUES = {'priority': NUMBERS, 'from': RULE_FIELD_VALUES['from'], 'table': NUMBERS}


@st.composite
def almost_right_planned_rails(draw):
    rail = dict(draw(st.sampled_from(PLANNED)))
    rail['routes'] = [dict(route) for route in rail['routes']]
    rail['rules'] = [dict(rule) for rule in rail['rules']]
    where = draw(st.sampled_from(['rail', 'route', 'rule', 'drop']))
    if where == 'rail':
        field = draw(st.sampled_from(sorted(KEYFILE_RAIL_VALUES)))
        rail[field] = draw(st.one_of(KEYFILE_RAIL_VALUES[field], JSON))
    elif where == 'drop':
        del rail[draw(st.sampled_from(sorted(rail)))]
    else:
        items, values = (rail['routes'], KEYFILE_ROUTE_VALUES) if where == 'route' else (rail['rules'],
                                                                                         KEYFILE_RULE_VALUES)
        field = draw(st.sampled_from(sorted(values)))
        items[draw(st.integers(0, len(items) - 1))][field] = draw(st.one_of(values[field], JSON))
    return rail


@PROPERTY
@given(st.one_of(almost_right_planned_rails(), JSON), st.sampled_from(['infiniband', 'ethernet', 'wifi', None]))
def test_keyfile_render_gives_a_well_formed_keyfile_or_invalid_argument(rail, link_type):
    try:
        text = render(rail, link_type)
    except InvalidArgument as exc:
        assert '\n' not in str(exc), repr(str(exc))
        assert re.match(r'(rail( [A-Za-z0-9_.-]+)?(: (routes|rules)\[[0-9]+\])?|link type): \S', str(exc)) or \
            str(exc).startswith('link type '), str(exc)
        return
    lines = text.split('\n')
    bad = [line for line in lines if not KEYFILE_LINE.match(line)]
    assert not bad, bad
    assert lines.count('interface-name=%s' % rail['device']) == 1 and lines.count('[ipv4]') == 1


# --- rail_guard: read_plan and management_addresses ----------------------------------------------

GUARDED_PLAN = build_plan([{'device': 'ib0', 'address': '10.0.1.14/24', 'sources': ['10.0.5.0/28']},
                           {'device': 'ib1', 'address': '10.0.2.14/24'}])


@PROPERTY
@given(st.sampled_from(['rails', 'rules', 'tables', 'conf', 'priority_range', 'drop']), JSON,
       st.sampled_from(sorted(GUARDED_PLAN)))
def test_guard_reads_a_plan_or_refuses_it(part, value, dropped):
    # rail_guard's argument_spec makes plan a dict: that much is given.
    plan = dict(GUARDED_PLAN)
    if part == 'drop':
        del plan[dropped]
    else:
        plan[part] = value
    try:
        rails, rules, tables, (start, end) = read_plan(plan)
    except InvalidArgument as exc:
        assert re.match(r'(plan|rules|tables|table [0-9]+ routes?|priority_range)\S*( \(priority [0-9]+\))?: \S',
                        str(exc)), str(exc)
    else:
        assert isinstance(rails, list) and all('device' in rail and 'table' in rail for rail in rails)
        check_rules(rules)
        check_tables(tables, 'present')
        assert 1 <= start <= end <= U32


@PROPERTY
@given(st.lists(st.one_of(IPV4_TEXT, IPV6_TEXT, NEAR_TEXT, st.text(max_size=12)), max_size=4))
def test_guard_takes_management_addresses_or_refuses_them(given_addresses):
    try:
        management_addresses(given_addresses)
    except InvalidArgument as exc:
        assert str(exc).startswith('management'), str(exc)


# --- the explicit malformed inventories ------------------------------------------------------------

with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as handle:
    ARGUMENT_SPEC = yaml.safe_load(handle)['argument_specs']['main']['options']
with open(os.path.join(ROLE, 'defaults', 'main.yml')) as handle:
    DEFAULTS = yaml.safe_load(handle)


def argument_spec_errors(role_vars):
    """What the role's "Validating arguments against arg spec 'main'" task says (defaults under the inventory)."""
    provided = dict(DEFAULTS, **role_vars)
    arguments = {name: value for name, value in provided.items() if name in ARGUMENT_SPEC}
    return ArgumentSpecValidator(ARGUMENT_SPEC).validate(arguments, validate_role_argument_spec=True).error_messages


def filter_message(role_vars):
    """The role's preflight call of the filter with these role variables: its error message, or None."""
    provided = dict(DEFAULTS, **role_vars)
    options = {option: provided[variable] for option, variable in OPTION_VARIABLES.items()}
    try:
        source_routing_plan(provided['source_routing_rails'], **options)
    except AnsibleFilterError as exc:
        return exc.message
    return None


def test_the_list_covers_every_category():
    assert len(CASES) >= 45
    for category in CATEGORIES:
        assert len([case for case in CASES if case.category == category]) >= 2, category


@pytest.mark.parametrize('case', CASES, ids=[case.name for case in CASES])
def test_bad_inventory_is_refused_by_the_layer_it_names(case):
    errors = argument_spec_errors(case.role_vars)
    if case.caught_by == ARGUMENT_SPECS:
        message = '\n'.join(errors)
    else:
        assert case.caught_by == PLANNER
        assert errors == [], 'argument_specs refuse it first: %s' % errors
        message = filter_message(case.role_vars)
        assert message is not None, 'planned'
        assert_names_a_field(message)
    for word in case.words:
        assert word in message, '%r not in %r' % (word, message)


ARG_SPEC_CASES = [case for case in CASES if case.caught_by == ARGUMENT_SPECS
                  and not {'source_routing_persist', 'source_routing_audit'} & set(case.role_vars)]


@pytest.mark.parametrize('case', ARG_SPEC_CASES, ids=[case.name for case in ARG_SPEC_CASES])
def test_planner_refuses_what_argument_specs_catch_too(case):
    """The filter is public: used without the role, it refuses the same inventories itself."""
    message = filter_message(case.role_vars)
    assert message is not None, 'planned'
    assert_names_a_field(message)
