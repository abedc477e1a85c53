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

import uuid

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
    """The keyfile text of one planned rail (see plan.build_plan)."""
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
