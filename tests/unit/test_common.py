"""Unit tests for plugins/module_utils/common.py: operator input -> canonical values."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    MAX_U32,
    InvalidArgument,
    check_ifname,
    check_priority,
    check_table,
    check_u32,
    host_form,
    parse_address,
    parse_int,
    parse_prefix,
    show,
)


# --- check_table -------------------------------------------------------------

@pytest.mark.parametrize('value, name', [(0, 'unspec'), (253, 'default'), (254, 'main'), (255, 'local')])
def test_check_table_refuses_reserved_ids(value, name):
    with pytest.raises(InvalidArgument) as err:
        check_table('rail ib0', value)
    msg = str(err.value)
    assert msg.startswith('rail ib0: table %d ' % value)
    assert name in msg
    assert '1-252' in msg and '256-%d' % MAX_U32 in msg


def test_check_table_names_the_field_it_was_given():
    with pytest.raises(InvalidArgument, match=r'^rules\[2\]: lookup 254 is reserved'):
        check_table('rules[2]', 254, field='lookup')


@pytest.mark.parametrize('value', [1, 100, 252, 256, 300000, MAX_U32])
def test_check_table_accepts_usable_ids(value):
    assert check_table('t', value) == value


@pytest.mark.parametrize('value', [MAX_U32 + 1, 2 ** 40, -1])
def test_check_table_refuses_out_of_u32_range(value):
    with pytest.raises(InvalidArgument, match=r'^t: table %d is out of range 0-%d$' % (value, MAX_U32)):
        check_table('t', value)


@pytest.mark.parametrize('value', [True, False, '101', 101.0, None, [101]])
def test_check_table_refuses_non_integers(value):
    with pytest.raises(InvalidArgument, match=r'^t: table .* is not an integer$'):
        check_table('t', value)


# --- check_priority ----------------------------------------------------------

@pytest.mark.parametrize('value, name', [(0, 'local'), (32766, 'main'), (32767, 'default')])
def test_check_priority_refuses_kernel_rule_priorities(value, name):
    with pytest.raises(InvalidArgument) as err:
        check_priority('rules[0]', value)
    assert str(err.value) == 'rules[0]: priority %d is reserved for the kernel\'s "%s" rule' % (value, name)


@pytest.mark.parametrize('value', [1, 1001, 32765, 32768, MAX_U32])
def test_check_priority_accepts_other_u32(value):
    assert check_priority('r', value) == value


@pytest.mark.parametrize('value', [-1, MAX_U32 + 1, True, '1001', None])
def test_check_priority_refuses_bad_values(value):
    with pytest.raises(InvalidArgument, match=r'^r: priority '):
        check_priority('r', value)


# --- check_ifname ------------------------------------------------------------

@pytest.mark.parametrize('name', ['ib0', 'eth0.100', 'enp65s0f0np0', 'a' * 15, 'mlx5_0-v1', 'a..b'])
def test_check_ifname_accepts_kernel_valid_names(name):
    assert check_ifname('rail', 'device', name) == name


@pytest.mark.parametrize('name', [
    'a' * 16,                 # IFNAMSIZ is 16 including the NUL
    '\u00e9' * 8,             # 8 characters but 16 bytes
    'eth0/1',
    'eth0:1',
    'eth 0',
    'eth\t0',
    '.',
    '..',
])
def test_check_ifname_refuses_what_the_kernel_refuses(name):
    with pytest.raises(InvalidArgument) as err:
        check_ifname('rail ib2', 'device', name)
    msg = str(err.value)
    assert msg.startswith('rail ib2: device %r ' % name)
    assert 'not a valid interface name' in msg


@pytest.mark.parametrize('name', ['', None, 5, ['ib0']])
def test_check_ifname_refuses_empty_and_non_text(name):
    with pytest.raises(InvalidArgument, match=r'^o: dev .* is not an interface name$'):
        check_ifname('o', 'dev', name)


@pytest.mark.parametrize('name', ['ib0;reboot', 'ib$(x)', 'ib`id`', 'ib0|x'])
def test_check_ifname_refuses_shell_metacharacters(name):
    # Names end up in files, templates and command lines; no real NIC is called 'ib0;reboot'.
    with pytest.raises(InvalidArgument):
        check_ifname('rail', 'device', name)


def test_check_ifname_refuses_a_leading_dash():
    # A command line (nmcli, ip, sysctl) would take '-ib0' for an option.
    with pytest.raises(InvalidArgument, match=r"^rail: device '-ib0' is not a valid interface name .*not \"-\" first"):
        check_ifname('rail', 'device', '-ib0')
    assert check_ifname('rail', 'device', 'ib-0') == 'ib-0'


@pytest.mark.parametrize('name', ['10.0.1.14', '0.0.0.0', '255.255.255.255'])
def test_check_ifname_refuses_ipv4_addresses(name):
    # The kernel would take them; an operator who writes one meant the address field.
    with pytest.raises(InvalidArgument) as err:
        check_ifname('rail', 'device', name)
    assert str(err.value) == "rail: device %r is an IPv4 address, not an interface name" % name


@pytest.mark.parametrize('name', ['10.0', '1.2.3', '10.0.1.256', '101'])
def test_check_ifname_accepts_dotted_digits_that_are_no_ipv4_address(name):
    assert check_ifname('rail', 'device', name) == name


def test_show_cuts_long_values_short_and_survives_huge_integers():
    assert show('ib0') == "'ib0'"
    assert show('x' * 1000) == "'%s... (1002 characters)" % ('x' * 59)
    assert show(10 ** 5000) == 'a 16610-bit integer'
    with pytest.raises(InvalidArgument, match=r'^o: table a 16610-bit integer is out of range 0-4294967295$'):
        check_u32('o', 'table', 10 ** 5000)


# --- parse_prefix ------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('10.0.1.14', '10.0.1.14/32'),
    (' 10.0.1.14 ', '10.0.1.14/32'),
    ('10.0.1.14/32', '10.0.1.14/32'),
    ('10.0.1.0/24', '10.0.1.0/24'),
    ('10.0.0.0/16', '10.0.0.0/16'),
    ('0.0.0.0/0', '0.0.0.0/0'),
    ('2001:db8::1', '2001:db8::1/128'),
    ('2001:db8::/32', '2001:db8::/32'),
])
def test_parse_prefix_host_and_prefix(text, expected):
    assert parse_prefix('o', 'from', text) == ipaddress.ip_network(expected)


@pytest.mark.parametrize('word', ['default', 'all', 'any'])
def test_parse_prefix_default_words(word):
    assert parse_prefix('o', 'dst', word) == ipaddress.ip_network('0.0.0.0/0')
    assert parse_prefix('o', 'dst', word, family=4) == ipaddress.ip_network('0.0.0.0/0')
    assert parse_prefix('o', 'dst', word, family=6) == ipaddress.ip_network('::/0')


def test_parse_prefix_host_bits_set_suggests_subnet_and_host():
    with pytest.raises(InvalidArgument) as err:
        parse_prefix('rail ib0', 'address', '10.0.1.14/24')
    assert str(err.value) == ('rail ib0: address 10.0.1.14/24 has host bits set; '
                              'use 10.0.1.0/24 for the subnet or 10.0.1.14 for the host')


def test_parse_prefix_host_bits_set_ipv6():
    with pytest.raises(InvalidArgument, match=r'use 2001:db8::/64 for the subnet or 2001:db8::5 for the host'):
        parse_prefix('o', 'from', '2001:db8::5/64')


def test_parse_prefix_family_mismatch():
    with pytest.raises(InvalidArgument, match=r'^o: dst 2001:db8::1 is not an IPv4 address$'):
        parse_prefix('o', 'dst', '2001:db8::1', family=4)
    with pytest.raises(InvalidArgument, match=r'^o: dst 10.0.0.0/8 is not an IPv6 address$'):
        parse_prefix('o', 'dst', '10.0.0.0/8', family=6)
    assert parse_prefix('o', 'dst', '10.0.0.0/8', family=4).version == 4
    assert parse_prefix('o', 'dst', '2001:db8::/32', family=6).version == 6


@pytest.mark.parametrize('value', ['', '   ', 'foo', '10.0.1', '10.0.1.256', '10.0.1.0/33', '10.0.1.0/24/1',
                                   'ib0', '::g', None, 5, ['10.0.0.0/8'], b'10.0.0.0/8'])
def test_parse_prefix_garbage(value):
    with pytest.raises(InvalidArgument) as err:
        parse_prefix('rail ib0', 'from', value)
    assert str(err.value) == 'rail ib0: from %r is not an address or prefix' % (value,)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), family=st.sampled_from([None, 4, 6]))
def test_parse_prefix_arbitrary_text_returns_network_or_invalid_argument(text, family):
    try:
        net = parse_prefix('o', 'f', text, family=family)
    except InvalidArgument:
        return
    assert isinstance(net, (ipaddress.IPv4Network, ipaddress.IPv6Network))
    if family is not None:
        assert net.version == family


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(
    st.text(alphabet='0123456789./', max_size=20),
    st.text(alphabet='0123456789abcdef:./', max_size=45),
    st.builds(lambda a, n: '%s/%d' % (ipaddress.IPv4Address(a), n),
              st.integers(0, 2 ** 32 - 1), st.integers(0, 40)),
))
def test_parse_prefix_address_like_text_returns_network_or_invalid_argument(text):
    try:
        net = parse_prefix('o', 'f', text)
    except InvalidArgument:
        return
    assert net == ipaddress.ip_network(text.strip())


@settings(max_examples=200, deadline=None)
@given(address=st.integers(0, 2 ** 32 - 1), length=st.integers(0, 32))
def test_parse_prefix_of_host_form_round_trips_ipv4(address, length):
    net = ipaddress.ip_network((address, length), strict=False)
    assert parse_prefix('o', 'f', host_form(net)) == net


# --- parse_address -----------------------------------------------------------

def test_parse_address_ok():
    assert parse_address('o', 'gateway', '10.0.1.1') == ipaddress.ip_address('10.0.1.1')
    assert parse_address('o', 'gateway', ' 10.0.1.1 ', family=4) == ipaddress.ip_address('10.0.1.1')
    assert parse_address('o', 'gateway', 'fe80::1', family=6) == ipaddress.ip_address('fe80::1')


@pytest.mark.parametrize('value', ['10.0.1.0/24', '10.0.1.1/32', 'gw', '', None, 167772417, ['10.0.1.1']])
def test_parse_address_refuses_non_addresses(value):
    with pytest.raises(InvalidArgument) as err:
        parse_address('rail ib0', 'gateway', value)
    assert str(err.value) == 'rail ib0: gateway %r is not an IP address' % (value,)


def test_parse_address_family_mismatch():
    with pytest.raises(InvalidArgument, match=r'^rail ib0: gateway fe80::1 is not an IPv4 address$'):
        parse_address('rail ib0', 'gateway', 'fe80::1', family=4)


# --- host_form ---------------------------------------------------------------

@pytest.mark.parametrize('prefix, text', [
    ('10.0.1.14/32', '10.0.1.14'),
    ('10.0.1.0/24', '10.0.1.0/24'),
    ('0.0.0.0/0', 'default'),
    ('::/0', 'default'),
    ('2001:db8::1/128', '2001:db8::1'),
    ('2001:db8::/32', '2001:db8::/32'),
])
def test_host_form(prefix, text):
    assert host_form(prefix) == text
    assert host_form(ipaddress.ip_network(prefix)) == text


# --- parse_int ---------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (0, 0), (16, 16), (MAX_U32, MAX_U32), ('16', 16), (' 42 ', 42), ('0x10', 16), ('0XFF', 255),
    ('0xffffffff', MAX_U32), ('0', 0), ('-1', -1),
])
def test_parse_int(value, expected):
    assert parse_int('o', 'fwmark', value) == expected


@pytest.mark.parametrize('value', [True, False, None, 1.0, '', ' ', 'abc', '0x', '1.5', '0xfg', [1], {'a': 1}])
def test_parse_int_refuses_non_integers(value):
    with pytest.raises(InvalidArgument) as err:
        parse_int('conf.ib0', 'rp_filter', value)
    assert str(err.value) == 'conf.ib0: rp_filter %r is not an integer' % (value,)
