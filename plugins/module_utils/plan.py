# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source-routing plan: inventory variables in, every table, rule and sysctl out.

Pure Python on the controller (netaddr). build_plan() validates the whole
inventory contract first and raises PlanError naming the rail, the field and
the value; only a fully valid inventory yields a plan. The plan's parts are
shaped as the arguments of rail_table, rail_rule, rail_sysctl and
rail_keyfiles, so the role passes them through unchanged.
"""

from __future__ import annotations

import re
import traceback

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    RESERVED_PRIORITIES,
    RESERVED_TABLES,
    InvalidArgument,
    check_ifname,
)

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
_SYSCTL_KEY = re.compile(r'[a-z0-9_]+')
_DECIMAL = re.compile(r'[0-9]+')


class PlanError(InvalidArgument):
    """The inventory cannot be planned; nothing has been changed."""


def _int(obj, field, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            value = int(value.strip())
        else:
            raise PlanError('%s: %s %r is not an integer' % (obj, field, value))
    if not low <= value <= high:
        raise PlanError('%s: %s %d is out of range %d-%d' % (obj, field, value, low, high))
    return value


def _ipv4(obj, field, value):
    """A single IPv4 address, no prefix length."""
    if not isinstance(value, str) or '/' in value:
        raise PlanError('%s: %s %r is not an IPv4 address' % (obj, field, value))
    try:
        return netaddr.IPAddress(value.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError):
        raise PlanError('%s: %s %r is not an IPv4 address' % (obj, field, value))


def _interface(obj, value):
    """'10.0.1.14/24' -> IPNetwork with the host address kept, validated."""
    if not isinstance(value, str) or '/' not in value:
        raise PlanError('%s: address %r must be an IPv4 host address with its prefix length, e.g. 10.0.1.14/24'
                        % (obj, value))
    ip_text, _sep, length = value.strip().partition('/')
    ip = _ipv4(obj, 'address', ip_text)
    if not _DECIMAL.fullmatch(length) or not 1 <= int(length) <= 31:
        raise PlanError('%s: address %s needs a prefix length from 1 to 31' % (obj, value))
    net = netaddr.IPNetwork('%s/%s' % (ip, length))
    if net.prefixlen <= 30 and ip in (net.network, net.broadcast):
        raise PlanError('%s: address %s is the %s address of %s, not a host address'
                        % (obj, value, 'network' if ip == net.network else 'broadcast', net.cidr))
    return net


def _source(obj, value):
    """A VF source: an IPv4 address or prefix without host bits."""
    if not isinstance(value, str):
        raise PlanError('%s: source %r is not an IPv4 address or prefix' % (obj, value))
    try:
        net = netaddr.IPNetwork(value.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('%s: source %r is not an IPv4 address or prefix' % (obj, value))
    if net.ip != net.network:
        raise PlanError('%s: source %s has host bits set; use %s for the prefix or %s for the address'
                        % (obj, value, net.cidr, net.ip))
    if net.prefixlen == 0:
        raise PlanError('%s: source %s would capture every source address' % (obj, value))
    return net.cidr


def _sysctls(obj, value):
    if not isinstance(value, dict):
        raise PlanError('%s: expected a mapping of net.ipv4.conf key to integer, got %r' % (obj, value))
    out = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not _SYSCTL_KEY.fullmatch(key):
            raise PlanError('%s: %r is not a net.ipv4.conf key' % (obj, key))
        out[key] = _int(obj, key, raw, -2 ** 31, 2 ** 31 - 1)
    return out


def _priority_range(value, priority_base):
    if value is None:
        return priority_base, min(priority_base + 999, MAIN_PRIORITY - 1)
    if not isinstance(value, dict) or set(value) - {'start', 'end'}:
        raise PlanError('source_routing_priority_range: expected {start, end}, got %r' % (value,))
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
    if not isinstance(rails, list) or not rails:
        raise PlanError('source_routing_rails: expected a non-empty list of rails, got %r' % (rails,))
    table_base = _int('source_routing_table_base', 'value', table_base, 0, 2 ** 32 - 1)
    priority_base = _int('source_routing_priority_base', 'value', priority_base, 1, MAIN_PRIORITY - 1)
    metric = _int('source_routing_route_metric', 'value', metric, 0, 2 ** 32 - 1)
    low, high = _priority_range(priority_range, priority_base)
    if not isinstance(destination, str):
        raise PlanError('source_routing_destination: %r is not an IPv4 prefix' % (destination,))
    try:
        fabric = netaddr.IPNetwork(destination.strip(), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('source_routing_destination: %r is not an IPv4 prefix' % (destination,))
    if fabric.ip != fabric.network:
        raise PlanError('source_routing_destination: %s has host bits set; use %s' % (destination, fabric.cidr))
    rail_defaults = _sysctls('source_routing_rail_sysctls',
                             DEFAULT_RAIL_SYSCTLS if rail_sysctls is None else rail_sysctls)
    all_conf = _sysctls('source_routing_all_sysctls', DEFAULT_ALL_SYSCTLS if all_sysctls is None else all_sysctls)

    planned = [_plan_rail(position, spec, table_base, priority_base, metric, fabric, rail_defaults, low, high)
               for position, spec in enumerate(rails, start=1)]
    _check_unique(planned)

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


def _plan_rail(position, spec, table_base, priority_base, metric, fabric, rail_defaults, low, high):
    obj = 'source_routing_rails[%d]' % (position - 1)
    if not isinstance(spec, dict):
        raise PlanError('%s: expected a mapping with device and address, got %r' % (obj, spec))
    unknown = sorted(str(key) for key in spec if key not in RAIL_KEYS)
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
    table = spec.get('table')
    table = table_base + position if table is None else table
    table = _int(obj, 'table', table, 1, 2 ** 32 - 1)
    if table in RESERVED_TABLES:
        raise PlanError('%s: table %d is reserved (%s); use 1-252 or 256-4294967295'
                        % (obj, table, RESERVED_TABLES[table]))
    priority = spec.get('priority')
    priority = priority_base + position if priority is None else priority
    priority = _int(obj, 'priority', priority, 0, 2 ** 32 - 1)
    if priority in RESERVED_PRIORITIES or priority >= MAIN_PRIORITY:
        raise PlanError('%s: priority %d must be before main\'s 32766 and not 0' % (obj, priority))
    if not low <= priority <= high:
        raise PlanError('%s: priority %d is outside the managed range %d-%d (source_routing_priority_range)'
                        % (obj, priority, low, high))
    sources = [] if spec.get('sources') is None else spec['sources']
    if not isinstance(sources, list):
        raise PlanError('%s: sources must be a list of addresses or prefixes, got %r' % (obj, sources))
    sources = [_source(obj, s) for s in sources]
    seen = {netaddr.IPNetwork('%s/32' % net.ip): 'the rail\'s own address'}
    for text, source in zip(spec.get('sources') or [], sources):
        if source in seen:
            raise PlanError('%s: source %s repeats %s' % (obj, text, seen[source]))
        seen[source] = 'source %s' % text
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


def _check_unique(rails):
    seen = {}
    for rail in rails:
        for field in ('device', 'ip', 'table', 'priority'):
            key = (field, rail[field])
            if key in seen:
                raise PlanError('rail %s: %s %s is already used by rail %s'
                                % (rail['device'], 'address' if field == 'ip' else field, rail[field], seen[key]))
            seen[key] = rail['device']
    owners = []
    for rail in rails:
        owners.append((netaddr.IPNetwork(rail['ip']), rail['device'], 'address %s' % rail['ip']))
        for text in rail['sources']:
            owners.append((netaddr.IPNetwork(text), rail['device'], 'source %s' % text))
    for index, (net, device, what) in enumerate(owners):
        for other_net, other_device, other_what in owners[index + 1:]:
            if other_device != device and (net in other_net or other_net in net):
                raise PlanError('rail %s: %s overlaps %s of rail %s' % (other_device, other_what, what, device))


def sysctl_lines(conf):
    """The sysctl.d lines for a rail_sysctl `conf` mapping (dotted names as eth0/100)."""
    lines = []
    for target in sorted(conf, key=lambda t: (t != 'all', t != 'default', t)):
        for key in sorted(conf[target]):
            lines.append('net.ipv4.conf.%s.%s = %d' % (target.replace('.', '/'), key, conf[target][key]))
    return lines


def stale_tables(plan, removed_rules):
    """Tables to empty after a purge: looked up by removed rules, used by no rail.

    removed_rules is rail_rule's `removed` return value. Returns the `tables`
    argument of rail_table with state=absent (a table listed with no routes is
    emptied), [] when nothing is stale.
    """
    planned = set(table['table'] for table in plan['tables'])
    stale = sorted(set(rule['table'] for rule in removed_rules or []
                       if rule.get('action', 'lookup') == 'lookup') - planned)
    return [{'table': table} for table in stale]
