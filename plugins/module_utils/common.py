# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument parsing shared by the rail_* modules: addresses, tables, names.

Everything here is pure: it turns what the operator typed into canonical
values, or raises InvalidArgument with a message that names the object, the
field and the value.
"""

from __future__ import annotations

import ipaddress
import re
import socket

RESERVED_TABLES = {0: 'unspec', 253: 'default', 254: 'main', 255: 'local'}
MAX_U32 = 2 ** 32 - 1
# Priorities the kernel's own default rules sit on (local, main, default).
RESERVED_PRIORITIES = {0: 'local', 32766: 'main', 32767: 'default'}

# Stricter than the kernel's dev_valid_name() (1..15 bytes, not "." or "..",
# no "/", ":" or space): interface names also end up in keyfile names, sysctl
# keys, command lines and reports, so only letters, digits, ".", "-" and "_"
# are accepted, and not "-" first (a command would take the name for an option).
_IFNAME = re.compile(r'[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}')
# How much of an operator's value a message repeats.
SHOW_LIMIT = 60


class InvalidArgument(ValueError):
    """Operator input that cannot be applied; nothing has been changed."""


def show(value, limit=SHOW_LIMIT):
    """repr() of an operator's value for a message, cut short so a huge value keeps the message readable."""
    try:
        text = repr(value)
    except ValueError:            # an integer too long to print (sys.get_int_max_str_digits)
        return 'a %d-bit integer' % value.bit_length()
    if len(text) > limit:
        return '%s... (%d characters)' % (text[:limit], len(text))
    return text


def mappings(name, value):
    """Yield (index, label, item) for a list of mappings, refusing anything else."""
    if not isinstance(value, list):
        raise InvalidArgument('%s: expected a list, got %s' % (name, show(value)))
    for index, item in enumerate(value):
        label = '%s[%d]' % (name, index)
        if not isinstance(item, dict):
            raise InvalidArgument('%s: expected a mapping, got %s' % (label, show(item)))
        yield index, label, item


def required(obj, spec, field):
    value = spec.get(field)
    if value is None:
        raise InvalidArgument('%s: %s is required' % (obj, field))
    return value


def check_u32(obj, field, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument('%s: %s %s is not an integer' % (obj, field, show(value)))
    if value < minimum or value > MAX_U32:
        raise InvalidArgument('%s: %s %s is out of range %d-%d' % (obj, field, show(value), minimum, MAX_U32))
    return value


def check_table(obj, value, field='table'):
    check_u32(obj, field, value)
    if value in RESERVED_TABLES:
        raise InvalidArgument(
            '%s: %s %d is reserved (%s); use 1-252 or 256-%d'
            % (obj, field, value, RESERVED_TABLES[value], MAX_U32))
    return value


def check_priority(obj, value, field='priority'):
    check_u32(obj, field, value)
    if value in RESERVED_PRIORITIES:
        raise InvalidArgument(
            '%s: %s %d is reserved for the kernel\'s "%s" rule'
            % (obj, field, value, RESERVED_PRIORITIES[value]))
    return value


def check_ifname(obj, field, value):
    if not isinstance(value, str) or not value:
        raise InvalidArgument('%s: %s %s is not an interface name' % (obj, field, show(value)))
    if value in ('.', '..', 'all', 'default') or not _IFNAME.fullmatch(value):
        raise InvalidArgument(
            '%s: %s %s is not a valid interface name (1-15 letters, digits, ".", "-" or "_", not "-" first; '
            'not all or default)' % (obj, field, show(value)))
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise InvalidArgument('%s: %s %r is an IPv4 address, not an interface name' % (obj, field, value))


def parse_prefix(obj, field, value, family=None):
    """'10.0.1.14' -> IPv4Network('10.0.1.14/32'); 'default' -> 0.0.0.0/0.

    Host bits set in a prefix ('10.0.1.14/24') are an error: the operator
    meant either the host or the subnet, and guessing would be wrong.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument('%s: %s %s is not an address or prefix' % (obj, field, show(value)))
    text = value.strip()
    if text in ('default', 'all', 'any'):
        net = ipaddress.ip_network('::/0' if family == 6 else '0.0.0.0/0')
    else:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                iface = ipaddress.ip_interface(text)
            except ValueError:
                raise InvalidArgument('%s: %s %s is not an address or prefix' % (obj, field, show(value)))
            raise InvalidArgument(
                '%s: %s %s has host bits set; use %s for the subnet or %s for the host'
                % (obj, field, text, iface.network, iface.ip))
    if family is not None and net.version != family:
        raise InvalidArgument('%s: %s %s is not an IPv%d address' % (obj, field, text, family))
    return net


def parse_address(obj, field, value, family=None):
    """A single host address (no prefix length)."""
    if not isinstance(value, str):
        raise InvalidArgument('%s: %s %s is not an IP address' % (obj, field, show(value)))
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidArgument('%s: %s %s is not an IP address' % (obj, field, show(value)))
    if family is not None and addr.version != family:
        raise InvalidArgument('%s: %s %s is not an IPv%d address' % (obj, field, value.strip(), family))
    return addr


def hex_c(value):
    """C's %#x, as iproute2 prints marks: 0 is '0', not '0x0'."""
    return '%#x' % value if value else '0'


def host_form(prefix):
    """How `ip` prints a prefix: hosts without /32 or /128, 0/0 as 'default'."""
    address, _slash, length = str(prefix).partition('/')
    if length == '32':
        # An IPv4 host, what most rules and routes are: the socket module checks it ten times faster.
        try:
            socket.inet_pton(socket.AF_INET, address)
        except (OSError, ValueError):
            pass
        else:
            return address
    net = ipaddress.ip_network(prefix)
    if net.prefixlen == 0:
        return 'default'
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def parse_int(obj, field, value):
    """Integers given as int or as decimal/hex text (Ansible passes strings)."""
    if isinstance(value, bool):
        raise InvalidArgument('%s: %s %s is not an integer' % (obj, field, show(value)))
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            pass
    raise InvalidArgument('%s: %s %s is not an integer' % (obj, field, show(value)))
