# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkManager keyfiles for rails: pure rendering, stable identities.

A rail's keyfile describes exactly the kernel objects the live modules
create: the address, the rail table's routes with their table, source and
metric (NetworkManager would pick a metric per device otherwise and replace
the live routes), and the rail's rules with their priorities. NetworkManager
creates all of them with proto static, as rail_table and rail_rule do.
"""

from __future__ import annotations

import ipaddress
import uuid

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    InvalidArgument,
    check_ifname,
    check_priority,
    check_table,
    check_u32,
    mappings,
    parse_address,
    parse_prefix,
    required,
    show,
)

PREFIX = 'roce-multirail-'
SUFFIX = '.nmconnection'
HEADER = '# Managed by roce.multirail (source_routing role); local changes are overwritten.\n'
# A fixed namespace makes every rail's UUID stable across runs and hosts.
UUID_NAMESPACE = uuid.UUID('6f1d0c1e-8a53-5b7e-9b61-2f1c3b8f7a10')
# ARPHRD_* from /sys/class/net/<dev>/type.
LINK_TYPES = {1: 'ethernet', 32: 'infiniband'}


def connection_id(device):
    return PREFIX + device


def connection_uuid(device):
    return str(uuid.uuid5(UUID_NAMESPACE, connection_id(device)))


def file_name(device):
    return connection_id(device) + SUFFIX


def check_rail(rail, obj='rail'):
    """Validate one planned rail (see plan.build_plan) and return it with canonical values.

    rail_keyfiles takes its rails from the task's arguments, so anything may
    arrive: every value that reaches the keyfile is checked here, and the
    keyfile is written from the canonical values only, so that no value can
    break a line of it or add one. Raises InvalidArgument naming the field.
    """
    if not isinstance(rail, dict):
        raise InvalidArgument('%s: expected a mapping (a rail of the plan), got %s' % (obj, show(rail)))
    for field in ('device', 'address', 'table', 'routes', 'rules'):
        required(obj, rail, field)
    device = check_ifname(obj, 'device', rail['device'])
    obj = 'rail %s' % device
    address = rail['address']
    try:
        if not isinstance(address, str) or '/' not in address:
            raise ValueError(address)
        interface = ipaddress.IPv4Interface(address.strip())
    except ValueError:
        raise InvalidArgument('%s: address %s is not an IPv4 address with its prefix length' % (obj, show(address)))
    table = check_table(obj, rail['table'])
    mtu = rail.get('mtu')
    if mtu not in (None, 0):
        check_u32(obj, 'mtu', mtu)
        if not 68 <= mtu <= 65535:
            raise InvalidArgument('%s: mtu %d is out of range 68-65535' % (obj, mtu))
    routes = []
    for _index, label, route in mappings('%s: routes' % obj, rail['routes']):
        dst = parse_prefix(label, 'dst', required(label, route, 'dst'), family=4)
        metric = check_u32(label, 'metric', required(label, route, 'metric'))
        gateway = src = None
        if route.get('gateway') not in (None, ''):
            gateway = parse_address(label, 'gateway', route['gateway'], family=4)
        if route.get('src') not in (None, ''):
            src = parse_address(label, 'src', route['src'], family=4)
        onlink = route.get('onlink')
        if onlink is not None and not isinstance(onlink, bool):
            raise InvalidArgument('%s: onlink %s is not a boolean' % (label, show(onlink)))
        routes.append({'dst': str(dst), 'gateway': str(gateway) if gateway else None,
                       'src': str(src) if src else None, 'metric': metric, 'onlink': bool(onlink)})
    rules = []
    for _index, label, rule in mappings('%s: rules' % obj, rail['rules']):
        priority = check_priority(label, required(label, rule, 'priority'))
        source = parse_prefix(label, 'from', required(label, rule, 'from'), family=4)
        if source.prefixlen == 0:
            raise InvalidArgument('%s: from %s would capture every source address' % (label, show(rule['from'])))
        rules.append({'priority': priority, 'table': check_table(label, required(label, rule, 'table')),
                      'from': str(source.network_address) if source.prefixlen == 32 else str(source)})
    return {'device': device, 'address': str(interface), 'table': table, 'mtu': mtu or None,
            'routes': routes, 'rules': rules}


def _route_lines(index, route):
    gateway = route.get('gateway') or '0.0.0.0'
    lines = ['route%d=%s,%s,%d' % (index, route['dst'], gateway, route['metric'])]
    options = ['table=%d' % route['table']]
    if route.get('src'):
        options.insert(0, 'src=%s' % route['src'])
    if route.get('onlink'):
        options.append('onlink=true')
    lines.append('route%d_options=%s' % (index, ','.join(options)))
    return lines


def render(rail, link_type):
    """The keyfile text of one planned rail (see plan.build_plan); InvalidArgument for a malformed one."""
    if link_type not in LINK_TYPES.values():
        raise InvalidArgument('link type %s is neither %s' % (show(link_type), ' nor '.join(LINK_TYPES.values())))
    rail = check_rail(rail)
    device = rail['device']
    lines = [HEADER.rstrip('\n'), '[connection]', 'id=' + connection_id(device),
             'uuid=' + connection_uuid(device), 'type=' + link_type, 'interface-name=' + device,
             'autoconnect=true', '']
    if rail.get('mtu'):
        lines += ['[%s]' % link_type, 'mtu=%d' % rail['mtu'], '']
    lines += ['[ipv4]', 'method=manual', 'address1=' + rail['address'], 'never-default=true',
              'may-fail=false']
    for index, route in enumerate(rail['routes'], start=1):
        lines += _route_lines(index, dict(route, table=rail['table']))
    for index, rule in enumerate(rail['rules'], start=1):
        lines.append('routing-rule%d=priority %d from %s table %d'
                     % (index, rule['priority'], rule['from'], rule['table']))
    lines += ['', '[ipv6]', 'method=ignore', '']
    return '\n'.join(lines)
