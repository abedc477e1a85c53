# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkManager keyfiles: the profile this collection creates for a rail, and the rail's
routes and rules read from, added to and removed from a profile someone else wrote.

A keyfile of someone else is edited line by line: every line that is not one of the rail's
route or rule entries stays byte for byte, so giving the rail back leaves the file as it was.
Routes carry their table, source and an explicit metric (NetworkManager would pick a metric
per device otherwise and replace the live routes); rules their priority. NetworkManager
creates all of them with proto static, as rail_table and rail_rule do.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import NamedTuple, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument, show
from ansible_collections.roce.multirail.plugins.module_utils.persist import (
    HEADER,
    LINK_TYPES,
    Route,
    Rule,
    check_rail,
    source_form,
)

PREFIX = 'roce-multirail-'
SUFFIX = '.nmconnection'
# A fixed namespace makes every rail's UUID stable across runs and hosts.
UUID_NAMESPACE = uuid.UUID('6f1d0c1e-8a53-5b7e-9b61-2f1c3b8f7a10')
# connection.type as keyfiles and nmcli spell it.
PROFILE_TYPES = {'ethernet': 'ethernet', '802-3-ethernet': 'ethernet', 'infiniband': 'infiniband'}
# NetworkManager reads route1, route2... and the older routes1 and unnumbered route, routes.
_NUMBERED = re.compile(r'^(routes?|routing-rule)(\d*)(_options)?$')


def connection_id(device):
    return PREFIX + device


def connection_uuid(device):
    return str(uuid.uuid5(UUID_NAMESPACE, connection_id(device)))


def file_name(device):
    return connection_id(device) + SUFFIX


def route_value(route):
    """(routeN value, routeN_options value) of a Route."""
    options = ['table=%d' % route.table]
    if route.src:
        options.insert(0, 'src=%s' % route.src)
    if route.onlink:
        options.append('onlink=true')
    return '%s,%s,%d' % (route.dst, route.gateway or '0.0.0.0', route.metric), ','.join(options)


def rule_value(rule):
    return 'priority %d from %s table %d' % (rule.priority, rule.src, rule.table)


def render(rail, link_type):
    """The keyfile text of the profile this collection creates for a rail; InvalidArgument for a malformed rail."""
    if link_type not in LINK_TYPES.values():
        raise InvalidArgument('link type %s is neither %s' % (show(link_type), ' nor '.join(LINK_TYPES.values())))
    rail = check_rail(rail)
    lines = [HEADER, '[connection]', 'id=' + connection_id(rail.device),
             'uuid=' + connection_uuid(rail.device), 'type=' + link_type, 'interface-name=' + rail.device,
             'autoconnect=true', '']
    if rail.mtu:
        lines += ['[%s]' % link_type, 'mtu=%d' % rail.mtu, '']
    lines += ['[ipv4]', 'method=manual', 'address1=' + rail.address, 'never-default=true', 'may-fail=false']
    for index, route in enumerate(rail.routes, start=1):
        value, options = route_value(route)
        lines += ['route%d=%s' % (index, value), 'route%d_options=%s' % (index, options)]
    for index, rule in enumerate(rail.rules, start=1):
        lines.append('routing-rule%d=%s' % (index, rule_value(rule)))
    lines += ['', '[ipv6]', 'method=ignore', '']
    return '\n'.join(lines)


# --- reading ------------------------------------------------------------------------------

class Line(NamedTuple):
    group: str          # '' before the first [group]
    key: str            # '' for a group header, a comment or a blank line
    value: str
    text: str           # the line as written, without its line break


def parse(text):
    """Every line of a keyfile, with the group it belongs to and its key and value."""
    lines, group = [], ''
    for raw in text.split('\n'):
        stripped = raw.strip()
        if stripped.startswith('[') and stripped.endswith(']'):
            group = stripped[1:-1]
            lines.append(Line(group, '', '', raw))
        elif stripped and not stripped.startswith('#') and '=' in stripped:
            key, value = stripped.split('=', 1)
            lines.append(Line(group, key.strip(), value.strip(), raw))
        else:
            lines.append(Line(group, '', '', raw))
    return lines


def values(lines, group):
    """{key: value} of one group (the last value of a key repeated)."""
    return dict((line.key, line.value) for line in lines if line.group == group and line.key)


def parse_route(value, options=''):
    """A Route from NetworkManager's route value and options (keyfile or nmcli form), or None.

    None for what a rail never holds: IPv6, no table, options other than table, src and onlink.
    The metric of a route that names none is -1 (NetworkManager picks one per device).
    """
    if ',' in value:                      # keyfile: dst[/len][,gateway][,metric]
        parts = [part.strip() for part in value.split(',')]
    else:                                 # nmcli: dst[/len] [gateway] [metric]
        parts = value.split()
        if len(parts) == 2 and parts[1].isdigit():
            parts = [parts[0], '', parts[1]]
    try:
        dst = ipaddress.ip_network(parts[0], strict=False)
        gateway = parts[1] if len(parts) > 1 and parts[1] not in ('', '0.0.0.0') else ''
        if gateway:
            ipaddress.IPv4Address(gateway)
        metric = int(parts[2]) if len(parts) > 2 and parts[2] != '' else -1
    except (ValueError, IndexError):
        return None
    if dst.version != 4 or len(parts) > 3:
        return None
    found = {}
    for item in re.split(r'[,\s]+', options.strip()):
        if item:
            key, _eq, val = item.partition('=')
            found[key] = val
    if set(found) - {'table', 'src', 'onlink'} or not found.get('table', '').isdigit():
        return None
    return Route(str(dst), gateway, found.get('src', ''), metric, int(found['table']),
                 found.get('onlink', '').lower() in ('true', 'yes', '1'))


def parse_rule(value):
    """A Rule from a routing-rule value ('priority 1001 from 10.0.1.14 table 101'), or None for another kind."""
    words = value.split()
    if len(words) != 6 or words[0::2] != ['priority', 'from', 'table']:
        return None
    try:
        source = ipaddress.ip_network(words[3], strict=False)
        priority, table = int(words[1]), int(words[5])
    except ValueError:
        return None
    if source.version != 4:
        return None
    return Rule(priority, source_form(source), table)


def entries(lines):
    """(routes, rules) of a keyfile's [ipv4] group: {key: (Route or None, value)}, {key: (Rule or None, value)}."""
    ipv4 = [line for line in lines if line.group == 'ipv4' and line.key]
    options = {}
    for line in ipv4:
        match = _NUMBERED.match(line.key)
        if match and match.group(3):
            options[line.key[:-len('_options')]] = line.value
    routes, rules = {}, {}
    for line in ipv4:
        match = _NUMBERED.match(line.key)
        if not match or match.group(3):
            continue
        if match.group(1).startswith('route'):
            routes[line.key] = (parse_route(line.value, options.get(line.key, '')), line.value)
        else:
            rules[line.key] = (parse_rule(line.value), line.value)
    return routes, rules


def _number(key):
    digits = _NUMBERED.match(key).group(2)
    return int(digits) if digits else 0


class KeyfileProfile(NamedTuple):
    """What of a keyfile decides whether it sets up a rail, and with what."""

    uuid: str
    id: str
    type: str                  # ethernet, infiniband, or another connection.type
    interface_name: str
    mac: str                   # upper-case aa:bb form, '' when unset
    match: Tuple[str, ...]     # match.interface-name patterns
    master: str
    autoconnect: bool
    method: str
    addresses: Tuple[str, ...]
    routes: Tuple[Route, ...]
    rules: Tuple[Rule, ...]


def mac_form(value):
    """'aa:bb:cc:dd:ee:ff', or the old byte list '170;187;204;221;238;255;', upper-cased; '' when not a MAC."""
    value = value.strip()
    if ';' in value:
        try:
            octets = [int(part) for part in value.strip(';').split(';')]
            value = ':'.join('%02x' % octet for octet in octets)
        except ValueError:
            return ''
    return value.upper() if re.fullmatch(r'([0-9A-Fa-f]{2}:)+[0-9A-Fa-f]{2}', value) else ''


def read_profile(text):
    """KeyfileProfile of a keyfile's text (missing keys take NetworkManager's defaults)."""
    lines = parse(text)
    connection = values(lines, 'connection')
    kind = connection.get('type', '')
    kind = PROFILE_TYPES.get(kind, kind)
    hardware = values(lines, kind)
    if kind == 'ethernet':
        hardware.update(values(lines, '802-3-ethernet'))
    ipv4 = values(lines, 'ipv4')
    addresses = tuple(value.split(',')[0].strip() for key, value in sorted(ipv4.items())
                      if re.fullmatch(r'address(es)?\d*', key))
    routes, rules = entries(lines)
    return KeyfileProfile(
        uuid=connection.get('uuid', ''), id=connection.get('id', ''), type=kind,
        interface_name=connection.get('interface-name', ''), mac=mac_form(hardware.get('mac-address', '')),
        match=tuple(p for p in values(lines, 'match').get('interface-name', '').split(';') if p),
        master=connection.get('master', '') or connection.get('controller', ''),
        autoconnect=connection.get('autoconnect', 'true').lower() not in ('false', '0', 'no'),
        method=ipv4.get('method', 'auto'), addresses=addresses,
        routes=tuple(route for route, _value in routes.values() if route),
        rules=tuple(rule for rule, _value in rules.values() if rule))


# --- editing --------------------------------------------------------------------------------

def _without_empty_group(lines, group):
    """The lines without a [group] that holds no key any more (and the blank line before it)."""
    header = next(i for i, line in enumerate(lines) if line.group == group and line.text.strip() == '[%s]' % group)
    end = header + 1
    while end < len(lines) and lines[end].group == group:
        end += 1
    if any(line.text.strip() for line in lines[header + 1:end]):
        return lines
    start = header - 1 if header and not lines[header - 1].text.strip() else header
    return lines[:start] + lines[end:] if end < len(lines) else lines[:start] + [Line(group, '', '', '')]


def edit(text, add_routes=(), remove_routes=(), add_rules=(), remove_rules=()):
    """The keyfile text with the given routes and rules added and removed; every other line unchanged.

    Removed entries take their routeN_options line with them (and an [ipv4] group left empty goes
    too); added ones get the next free numbers and go at the end of the [ipv4] group (a group is
    appended when there is none).
    """
    lines = parse(text)
    routes, rules = entries(lines)
    drop = set()
    for key, (route, _value) in routes.items():
        if route in remove_routes:
            drop.update((key, key + '_options'))
    for key, (rule, _value) in rules.items():
        if rule in remove_rules:
            drop.add(key)
    kept = [line for line in lines if not (line.group == 'ipv4' and line.key in drop)]
    if drop and not any(line.group == 'ipv4' and line.key for line in kept):
        kept = _without_empty_group(kept, 'ipv4')
    new = []
    number = max((_number(key) for key in routes if key.startswith('route') and not key.startswith('routes')),
                 default=0)
    for route in add_routes:
        number += 1
        value, options = route_value(route)
        new += ['route%d=%s' % (number, value), 'route%d_options=%s' % (number, options)]
    number = max((_number(key) for key in rules), default=0)
    for rule in add_rules:
        number += 1
        new.append('routing-rule%d=%s' % (number, rule_value(rule)))
    out = [line.text for line in kept]
    if new:
        groups = [i for i, line in enumerate(kept) if line.group == 'ipv4' and not line.key and
                  line.text.strip() == '[ipv4]']
        if groups:
            end = groups[-1] + 1
            while end < len(kept) and kept[end].group == 'ipv4':
                end += 1
            while end > groups[-1] + 1 and not kept[end - 1].text.strip():
                end -= 1
            out[end:end] = new
        else:
            while out and not out[-1].strip():
                out.pop()
            out += ['', '[ipv4]'] + new + ['']
    return '\n'.join(out)
