# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source-routing plan: inventory variables in, every table, rule and sysctl out.

Pure Python on the controller (netaddr). build_plan() validates the whole
inventory contract first and raises PlanError naming the rail, the field and
the value; only a fully valid inventory yields a plan. The plan's parts are
shaped as the arguments of rail_table, rail_rule, rail_sysctl and
rail_persist, so the role passes them through unchanged.
"""

from __future__ import annotations

import re
import traceback

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    MAX_U32,
    RESERVED_PRIORITIES,
    RESERVED_TABLES,
    InvalidArgument,
    check_ifname,
    show,
)
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import ALLOWED, check_side_effects

try:
    import netaddr
except ImportError:
    HAS_NETADDR = False
    NETADDR_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_NETADDR = True
    NETADDR_IMPORT_ERROR = None

RAIL_KEYS = ('device', 'address', 'gateway', 'table', 'priority', 'sources', 'mtu', 'sysctls')
DEFAULT_RAIL_SYSCTLS = {'arp_ignore': 1, 'arp_announce': 2, 'rp_filter': 2}
DEFAULT_ALL_SYSCTLS = {'rp_filter': 2, 'accept_local': 1}
MAIN_PRIORITY = 32766
# Far more than any host has. They keep a mistake (a generated list) from planning for
# minutes and from handing rail_rule more rules than it decides in seconds.
MAX_RAILS = 64
MAX_SOURCES = 1024        # all rails of a host together: 8 rails x 127 VFs, converged in seconds
_SYSCTL_KEY = re.compile(r'[a-z0-9_]+')
_DECIMAL = re.compile(r'[0-9]+')
_WORD = re.compile(r'[A-Za-z0-9_.-]+')


class PlanError(InvalidArgument):
    """The inventory cannot be planned; nothing has been changed."""


def _int(obj, field, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        text = value.strip() if isinstance(value, str) else None
        if text is None or not _DECIMAL.fullmatch(text):
            raise PlanError('%s: %s %s is not an integer' % (obj, field, show(value)))
        if len(text.lstrip('0')) > len(str(MAX_U32)):
            # Python refuses to convert texts of more than 4300 digits; none of them is in range.
            raise PlanError('%s: %s %s is out of range %d-%d' % (obj, field, show(value), low, high))
        value = int(text.lstrip('0') or '0')
    if not low <= value <= high:
        raise PlanError('%s: %s %s is out of range %d-%d' % (obj, field, show(value), low, high))
    return value


def _key(key):
    """A key as typed, quoted unless it is a plain word."""
    return key if isinstance(key, str) and _WORD.fullmatch(key) else show(key)


def _ipv6_hint(value):
    """' (IPv6; ...)' when an IPv4 field was given an IPv6 address or prefix."""
    try:
        netaddr.IPNetwork(value.strip(), version=6)
    except (netaddr.AddrFormatError, ValueError, TypeError, AttributeError):
        return ''
    return ' (it is IPv6; source_routing plans IPv4 rails only)'


def _ipv4(obj, field, value):
    """A single IPv4 address, no prefix length."""
    if not isinstance(value, str):
        raise PlanError('%s: %s %s is not an IPv4 address' % (obj, field, show(value)))
    if '/' in value:
        raise PlanError('%s: %s %s is not an IPv4 address (no prefix length here)%s'
                        % (obj, field, show(value), _ipv6_hint(value)))
    try:
        return netaddr.IPAddress(value.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError):
        raise PlanError('%s: %s %s is not an IPv4 address%s' % (obj, field, show(value), _ipv6_hint(value)))


def _interface(obj, value):
    """'10.0.1.14/24' -> IPNetwork with the host address kept, validated."""
    wanted = 'an IPv4 host address with its prefix length, e.g. 10.0.1.14/24'
    if not isinstance(value, str) or '/' not in value:
        raise PlanError('%s: address %s must be %s%s'
                        % (obj, show(value), wanted, _ipv6_hint(value) if isinstance(value, str) else ''))
    ip_text, _sep, length = value.strip().partition('/')
    try:
        ip = netaddr.IPAddress(ip_text.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError):
        raise PlanError('%s: address %s is not %s%s' % (obj, show(value), wanted, _ipv6_hint(value)))
    length = length.strip()
    if not _DECIMAL.fullmatch(length) or len(length) > 2 or not 1 <= int(length) <= 31:
        raise PlanError('%s: address %s needs a prefix length from 1 to 31' % (obj, show(value)))
    net = netaddr.IPNetwork('%s/%s' % (ip, length))
    if net.prefixlen <= 30 and ip in (net.network, net.broadcast):
        raise PlanError('%s: address %s is the %s address of %s, not a host address'
                        % (obj, value.strip(), 'network' if ip == net.network else 'broadcast', net.cidr))
    return net


def _source(obj, value):
    """A VF source: an IPv4 address or prefix without host bits."""
    if not isinstance(value, str):
        raise PlanError('%s: source %s is not an IPv4 address or prefix' % (obj, show(value)))
    try:
        net = netaddr.IPNetwork(value.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('%s: source %s is not an IPv4 address or prefix%s' % (obj, show(value), _ipv6_hint(value)))
    if net.ip != net.network:
        raise PlanError('%s: source %s has host bits set; use %s for the prefix or %s for the address'
                        % (obj, value.strip(), net.cidr, net.ip))
    if net.prefixlen == 0:
        raise PlanError('%s: source %s would capture every source address' % (obj, value.strip()))
    return net.cidr


def _sysctls(obj, value, target='rail'):
    """A mapping of net.ipv4.conf key to integer, for `all` or a rail NIC (target), validated."""
    if not isinstance(value, dict):
        raise PlanError('%s: expected a mapping of net.ipv4.conf key to integer, got %s' % (obj, show(value)))
    out = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not _SYSCTL_KEY.fullmatch(key):
            raise PlanError('%s: %s is not a net.ipv4.conf key' % (obj, show(key)))
        out[key] = _int(obj, key, raw, -2 ** 31, 2 ** 31 - 1)
        # Refused here, not by rail_sysctl after the tables and rules are in place.
        if key in ALLOWED and out[key] not in ALLOWED[key]:
            raise PlanError('%s: %s %s is not one of %s'
                            % (obj, key, show(raw), ', '.join(str(v) for v in ALLOWED[key])))
        try:
            check_side_effects(obj, target, key)
        except InvalidArgument as exc:
            raise PlanError(str(exc))
    return out


def _priority_range(value, priority_base):
    if value is None:
        # From the first rail's priority on: the base itself is left alone (1000 is
        # where the kernel puts a VRF's l3mdev rule).
        return min(priority_base + 1, MAIN_PRIORITY - 1), min(priority_base + 999, MAIN_PRIORITY - 1)
    if not isinstance(value, dict):
        raise PlanError('source_routing_priority_range: expected {start, end}, got %s' % show(value))
    unknown = sorted(_key(key) for key in value if key not in ('start', 'end'))
    if unknown:
        raise PlanError('source_routing_priority_range: unknown key %s (known: start, end)' % ', '.join(unknown))
    for field in ('start', 'end'):
        if value.get(field) is None:
            raise PlanError('source_routing_priority_range: %s is required' % field)
    start = _int('source_routing_priority_range', 'start', value.get('start'), 1, MAIN_PRIORITY - 1)
    end = _int('source_routing_priority_range', 'end', value.get('end'), 1, MAIN_PRIORITY - 1)
    if start > end:
        raise PlanError('source_routing_priority_range: start %d is after end %d' % (start, end))
    return start, end


def build_plan(rails, table_base=100, priority_base=1000, destination='0.0.0.0/0', metric=100,
               rail_sysctls=None, all_sysctls=None, priority_range=None):
    """Validate the inventory contract and compute the host's complete plan."""
    if not HAS_NETADDR:
        raise PlanError('the source_routing planner needs the Python library netaddr on the controller')
    if not isinstance(rails, list):
        raise PlanError('source_routing_rails: expected a list of rails (device and address), got %s' % show(rails))
    if not rails:
        # Planning nothing would remove every rule and table the role manages on the host.
        raise PlanError('source_routing_rails: empty; list at least one rail (device and address) '
                        '- an empty list would remove every rail rule and table of the host')
    if len(rails) > MAX_RAILS:
        raise PlanError('source_routing_rails: %d rails, more than the limit of %d' % (len(rails), MAX_RAILS))
    table_base = _int('source_routing_table_base', 'value', table_base, 0, MAX_U32)
    priority_base = _int('source_routing_priority_base', 'value', priority_base, 1, MAIN_PRIORITY - 1)
    metric = _int('source_routing_route_metric', 'value', metric, 0, MAX_U32)
    low, high = _priority_range(priority_range, priority_base)
    if not isinstance(destination, str):
        raise PlanError('source_routing_destination: %s is not an IPv4 prefix' % show(destination))
    try:
        fabric = netaddr.IPNetwork(destination.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('source_routing_destination: %s is not an IPv4 prefix%s'
                        % (show(destination), _ipv6_hint(destination)))
    if fabric.ip != fabric.network:
        raise PlanError('source_routing_destination: %s has host bits set; use %s'
                        % (destination.strip(), fabric.cidr))
    rail_defaults = _sysctls('source_routing_rail_sysctls',
                             DEFAULT_RAIL_SYSCTLS if rail_sysctls is None else rail_sysctls)
    all_conf = _sysctls('source_routing_all_sysctls', DEFAULT_ALL_SYSCTLS if all_sysctls is None else all_sysctls,
                        'all')

    planned = []
    for position, spec in enumerate(rails, start=1):
        sources_left = MAX_SOURCES - sum(len(rail['sources']) for rail in planned)
        planned.append(_plan_rail(position, spec, table_base, priority_base, metric, fabric, rail_defaults,
                                  low, high, sources_left))
    _check_unique(planned)
    _check_overlaps(planned)
    _check_gateways(planned)

    conf = {'all': all_conf} if all_conf else {}
    for rail in planned:
        if rail['sysctls']:
            conf[rail['device']] = rail['sysctls']
    return {
        'rails': planned,
        'tables': [{'table': r['table'], 'routes': r['routes']} for r in planned],
        'rules': [rule for r in planned for rule in r['rules']],
        'priority_range': {'start': low, 'end': high},
        'conf': conf,
        'sysctl_lines': sysctl_lines(conf),
        'devices': [r['device'] for r in planned],
    }


def _plan_rail(position, spec, table_base, priority_base, metric, fabric, rail_defaults, low, high,
               sources_left=MAX_SOURCES):
    obj = 'source_routing_rails[%d]' % (position - 1)
    if not isinstance(spec, dict):
        raise PlanError('%s: expected a mapping with device and address, got %s' % (obj, show(spec)))
    unknown = sorted(_key(key) for key in spec if key not in RAIL_KEYS)
    if unknown:
        raise PlanError('%s: unknown key %s (known: %s)' % (obj, ', '.join(unknown), ', '.join(RAIL_KEYS)))
    for field in ('device', 'address'):
        if spec.get(field) in (None, ''):
            raise PlanError('%s: %s is required' % (obj, field))
    try:
        device = check_ifname(obj, 'device', spec['device'])
    except InvalidArgument as exc:
        raise PlanError(str(exc))
    obj = 'rail %s' % device
    net = _interface(obj, spec['address'])
    subnet = net.cidr
    if spec.get('gateway') in (None, ''):
        if net.prefixlen == 31:
            gateway = subnet.network if net.ip != subnet.network else netaddr.IPAddress(int(subnet.network) + 1)
        else:
            gateway = netaddr.IPAddress(int(subnet.network) + 1)
        if gateway == net.ip:
            raise PlanError('%s: the default gateway (first host of %s) is the rail\'s own address %s; set gateway'
                            % (obj, subnet, net.ip))
    else:
        gateway = _ipv4(obj, 'gateway', spec['gateway'])
        if gateway not in subnet:
            raise PlanError('%s: gateway %s is outside %s' % (obj, gateway, subnet))
        if gateway == net.ip:
            raise PlanError('%s: gateway %s is the rail\'s own address' % (obj, gateway))
        if net.prefixlen <= 30 and gateway in (subnet.network, subnet.broadcast):
            raise PlanError('%s: gateway %s is the %s address of %s' % (
                obj, gateway, 'network' if gateway == subnet.network else 'broadcast', subnet))
    table, origin = _number(spec, 'table', table_base, position)
    try:
        table = _int(obj, 'table', table, 0, MAX_U32)
        if table in RESERVED_TABLES:
            raise PlanError('%s: table %d is reserved (%s); use 1-252 or 256-%d'
                            % (obj, table, RESERVED_TABLES[table], MAX_U32))
    except PlanError as exc:
        raise PlanError(str(exc) + origin)
    priority, origin = _number(spec, 'priority', priority_base, position)
    try:
        priority = _int(obj, 'priority', priority, 0, MAX_U32)
        if priority in RESERVED_PRIORITIES:
            raise PlanError('%s: priority %d is reserved for the kernel\'s "%s" rule'
                            % (obj, priority, RESERVED_PRIORITIES[priority]))
        if priority > MAIN_PRIORITY:
            raise PlanError('%s: priority %d is after the main table\'s rule (32766); a rail rule must come before it'
                            % (obj, priority))
        if not low <= priority <= high:
            raise PlanError('%s: priority %d is outside the managed range %d-%d (source_routing_priority_range)'
                            % (obj, priority, low, high))
    except PlanError as exc:
        raise PlanError(str(exc) + origin)
    sources = [] if spec.get('sources') is None else spec['sources']
    if not isinstance(sources, list):
        raise PlanError('%s: sources must be a list of addresses or prefixes, got %s' % (obj, show(sources)))
    if len(sources) > sources_left:
        earlier = MAX_SOURCES - sources_left
        raise PlanError('%s: sources has %d entries, %smore than the limit of %d per host (all rails together)'
                        % (obj, len(sources), 'which with the %d of the earlier rails is ' % earlier if earlier else '',
                           MAX_SOURCES))
    sources = [_source(obj, s) for s in sources]
    seen = {netaddr.IPNetwork('%s/32' % net.ip): 'the rail\'s own address'}
    for text, source in zip(spec.get('sources') or [], sources):
        if source in seen:
            raise PlanError('%s: source %s repeats %s' % (obj, text.strip(), seen[source]))
        seen[source] = 'source %s' % text.strip()
    mtu = spec.get('mtu')
    if mtu is not None:
        mtu = _int(obj, 'mtu', mtu, 68, 65535)
    sysctls = dict(rail_defaults)
    if spec.get('sysctls') is not None:
        sysctls.update(_sysctls('%s: sysctls' % obj, spec['sysctls']))

    routes = [{'dst': str(subnet), 'dev': device, 'src': str(net.ip), 'metric': metric}]
    if fabric != subnet:
        routes.append({'dst': str(fabric.cidr), 'gateway': str(gateway), 'dev': device, 'metric': metric})
    rules = [{'priority': priority, 'from': str(net.ip), 'table': table}]
    rules += [{'priority': priority, 'from': str(s) if s.prefixlen < 32 else str(s.ip), 'table': table}
              for s in sources]
    return {
        'device': device, 'address': '%s/%d' % (net.ip, net.prefixlen), 'ip': str(net.ip),
        'subnet': str(subnet), 'gateway': str(gateway), 'table': table, 'priority': priority,
        'sources': [str(s) for s in sources], 'mtu': mtu, 'metric': metric, 'sysctls': sysctls,
        'routes': routes, 'rules': rules,
    }


def _number(spec, field, base, position):
    """A rail's table or priority: its own, or base + position, with where the default came from."""
    value = spec.get(field)
    if value is not None:
        return value, ''
    return base + position, ' (the default: source_routing_%s_base %d + position %d)' % (field, base, position)


def _check_unique(rails):
    seen = {}
    for index, rail in enumerate(rails):
        for field in ('device', 'ip', 'table', 'priority'):
            key = (field, rail[field])
            if key in seen and field == 'device':
                # "rail ib0: device ib0 is already used by rail ib0" would name neither entry.
                raise PlanError('source_routing_rails[%d]: device %s is already used by source_routing_rails[%d]'
                                % (index, rail['device'], seen[key][0]))
            if key in seen:
                raise PlanError('rail %s: %s %s is already used by rail %s'
                                % (rail['device'], 'address' if field == 'ip' else field, rail[field], seen[key][1]))
            seen[key] = (index, rail['device'])


def _check_overlaps(rails):
    """No rail's address or source may be inside (or equal) another rail's address or source.

    CIDR blocks either nest or are disjoint, so one sweep in address order
    with a stack of the blocks still open finds every overlap in
    O(n log n), whatever the number of sources. Of the overlaps found, the
    one reported is the one whose later entry comes first in inventory order.
    """
    owners = []
    for rail in rails:
        nets = [(rail['ip'], 'address %s' % rail['ip'])] + [(text, 'source %s' % text) for text in rail['sources']]
        for text, what in nets:
            net = netaddr.IPNetwork(text)
            owners.append((net.first, net.last, len(owners), rail['device'], what.replace('/32', '')))
    owners.sort(key=lambda owner: (owner[0], -owner[1], owner[2]))
    found = None
    stack = []
    for owner in owners:
        while stack and stack[-1][1] < owner[0]:
            stack.pop()
        for outer in stack:
            if outer[3] != owner[3]:
                pair = (max(outer, owner, key=lambda o: o[2]), min(outer, owner, key=lambda o: o[2]))
                if found is None or (pair[0][2], pair[1][2]) < (found[0][2], found[1][2]):
                    found = pair
        # A block equal to the innermost open one overlaps it already; keeping one keeps the stack short.
        if not stack or stack[-1][:2] != owner[:2]:
            stack.append(owner)
    if found:
        later, earlier = found
        raise PlanError('rail %s: %s overlaps %s of rail %s' % (later[3], later[4], earlier[4], earlier[3]))


def _check_gateways(rails):
    """No rail's gateway may be an address of the host: any rail's address or any rail's source address.

    The host would answer its own ARP and pings for it, and the rail would reach nothing.
    Only gateways a route uses count (a flat fabric's rail has none).
    """
    owners = {}
    for rail in rails:
        owners.setdefault(rail['ip'], 'the address of rail %s' % rail['device'])
        for text in rail['sources']:
            address = text.replace('/32', '')
            owners.setdefault(address, 'source %s of rail %s' % (address, rail['device']))
    for rail in rails:
        for route in rail['routes']:
            what = owners.get(route.get('gateway'))
            if what is not None:
                raise PlanError('rail %s: gateway %s is %s, an address of this host: the host would answer for '
                                'it and the rail would reach nothing; use the leaf switch\'s address'
                                % (rail['device'], route['gateway'], what))


def sysctl_lines(conf):
    """The sysctl.d lines for a rail_sysctl `conf` mapping (dotted names as eth0/100)."""
    lines = []
    for target in sorted(conf, key=lambda t: (t != 'all', t != 'default', t)):
        for key in sorted(conf[target]):
            lines.append('net.ipv4.conf.%s.%s = %d' % (target.replace('.', '/'), key, conf[target][key]))
    return lines
