# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd-networkd: which .network file sets up a rail NIC, what it holds, and the drop-in
that gives it the rail's routes and rules.

networkd deletes routing-policy rules and routes it did not create (ManageForeignRoutingPolicyRules
and ManageForeignRoutes default to yes) at its start, reload and reconfigure: rules made live
survive it only when a .network file declares them. The image's file stays as it was; a drop-in
next to it, /etc/systemd/network/<file>.network.d/DROPIN, declares the rail's routes and rules
exactly as the live modules create them (proto static, same table, metric, source, scope).

Everything but the readers of files is pure.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from typing import NamedTuple, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.persist import (
    HEADER,
    FileState,
    Route,
    Rule,
    is_ours,
    read_file,
    source_form,
)

NETWORK_DIRS = ('/etc/systemd/network', '/run/systemd/network', '/usr/local/lib/systemd/network',
                '/usr/lib/systemd/network', '/lib/systemd/network')
CONF_DIRS = ('/etc/systemd', '/run/systemd', '/usr/local/lib/systemd', '/usr/lib/systemd', '/lib/systemd')
DROPIN = '90-roce-multirail.conf'
CREATED = '50-roce-multirail-%s.network'
NETPLAN_PREFIX = '10-netplan-'
LINK_STATE_DIR = '/run/systemd/netif/links'
BUS_NAME = 'org.freedesktop.network1'
# [Match] keys this module can judge from the link alone; a file using another one that could
# match the rail is reported, not guessed.
_SYSTEM_KEYS = ('Host', 'Virtualization', 'KernelCommandLine', 'KernelVersion', 'Architecture', 'Firmware',
                'Credential')
# networkd's Type= of a link, by the ARPHRD type in /sys/class/net/<dev>/type.
ARPHRD_TYPES = {1: 'ether', 32: 'infiniband'}


def parse(text):
    """[(section, [(key, value)])] of a unit-style file: sections may repeat, comments and continuations handled."""
    sections, current, pending = [], None, ''
    for raw in text.split('\n'):
        line = pending + raw.strip()
        pending = ''
        if line.endswith('\\'):
            pending = line[:-1] + ' '
            continue
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            current = (line[1:-1], [])
            sections.append(current)
        elif '=' in line and current is not None:
            key, value = line.split('=', 1)
            current[1].append((key.strip(), value.strip()))
    return sections


def _masked(path):
    return os.path.realpath(path) == '/dev/null' or (os.path.isfile(path) and os.path.getsize(path) == 0)


def _by_name(dirs, suffix):
    """{name: path} of the files ending in `suffix`, the first directory holding a name winning."""
    found = {}
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(suffix) and name not in found:
                found[name] = os.path.join(directory, name)
    return found


class NetworkFile(NamedTuple):
    path: str
    name: str
    sections: Tuple                 # parse() of the file and of its drop-ins, in the order networkd reads them
    dropins: Tuple[str, ...]


def dropin_paths(name, dirs=NETWORK_DIRS):
    """The drop-ins of a .network file, in the order networkd applies them (by name, /etc first)."""
    found = _by_name([os.path.join(d, name + '.d') for d in dirs], '.conf')
    return tuple(found[key] for key in sorted(found) if not _masked(found[key]))


def network_files(dirs=NETWORK_DIRS):
    """Every .network file networkd reads, in its order (by name; /etc hides /run hides /usr/lib)."""
    found = _by_name(dirs, '.network')
    files = []
    for name in sorted(found):
        path = found[name]
        if _masked(path):
            continue
        state = read_file(path)
        if state is None:
            continue
        dropins = dropin_paths(name, dirs)
        sections = list(parse(state.content))
        for dropin in dropins:
            dropped = read_file(dropin)
            sections += parse(dropped.content) if dropped else []
        files.append(NetworkFile(path, name, tuple(sections), dropins))
    return files


def _match_values(sections):
    """{key: [pattern]} of the [Match] sections; a list written with a leading '!' negates each of its words."""
    values = {}
    for section, items in sections:
        if section != 'Match':
            continue
        for key, value in items:
            if value == '':
                values.pop(key, None)
                continue
            words = value.split()
            if value.startswith('!'):
                words = ['!' + word.lstrip('!') for word in words]
            values.setdefault(key, []).extend(words)
    return values


def _globs(patterns, value):
    """networkd's test of a pattern list: no negated pattern may match, and one plain one must if there are any."""
    plain = [p for p in patterns if not p.startswith('!')]
    if any(fnmatch.fnmatchcase(value, p[1:]) for p in patterns if p.startswith('!')):
        return False
    return not plain or any(fnmatch.fnmatchcase(value, p) for p in plain)


def matches(nfile, link):
    """(True | False | None, why): whether networkd applies nfile to the link; None when it cannot be told here."""
    values = _match_values(nfile.sections)
    checks = {
        'Name': link.name, 'OriginalName': link.name, 'MACAddress': link.mac.lower(),
        'Type': ARPHRD_TYPES.get(link.arphrd, ''),
        'Driver': link.driver,
    }
    unknown = []
    for key, patterns in values.items():
        if key in checks:
            value = checks[key]
            if key == 'MACAddress':
                patterns = [p.lower() for p in patterns]
            if not value or not _globs(patterns, value):
                return False, ''
        elif key not in _SYSTEM_KEYS:
            unknown.append('%s=%s' % (key, ' '.join(patterns)))
    if unknown:
        return None, ', '.join(unknown)
    return True, ''


def settings(nfile):
    """(addresses, dhcp, routes, rules) a .network file and its drop-ins give a link (IPv4)."""
    addresses, dhcp, routes, rules = [], False, [], []
    for section, items in nfile.sections:
        values = dict(items)
        if section == 'Network':
            addresses += [value for key, value in items if key == 'Address' and value]
            dhcp = dhcp or values.get('DHCP', 'no').lower() in ('yes', 'ipv4', 'true', 'both')
        elif section == 'Address' and values.get('Address'):
            addresses.append(values['Address'])
        elif section == 'Route':
            route = route_of(values)
            if route:
                routes.append(route)
        elif section == 'RoutingPolicyRule':
            rule = rule_of(values)
            if rule:
                rules.append(rule)
    return tuple(addresses), dhcp, tuple(routes), tuple(rules)


def route_of(values):
    """A Route from a [Route] section, or None for what a rail table never holds."""
    known = {'Destination', 'Gateway', 'PreferredSource', 'Table', 'Metric', 'Scope', 'GatewayOnLink', 'Protocol'}
    if set(values) - known or not values.get('Table', '').isdigit():
        return None
    gateway = values.get('Gateway', '')
    try:
        dst = ipaddress.ip_network(values.get('Destination') or '0.0.0.0/0', strict=False)
        if gateway:
            ipaddress.IPv4Address(gateway)
        metric = int(values.get('Metric', '0'))
    except ValueError:
        return None
    if dst.version != 4 or values.get('Protocol', 'static') != 'static':
        return None
    return Route(str(dst), gateway, values.get('PreferredSource', ''), metric, int(values['Table']),
                 values.get('GatewayOnLink', 'no').lower() in ('yes', 'true', '1', 'on'))


def rule_of(values):
    """A Rule from a [RoutingPolicyRule] section holding only From, Table and Priority, or None."""
    if set(values) != {'From', 'Table', 'Priority'} or not values['Table'].isdigit() or \
            not values['Priority'].isdigit():
        return None
    try:
        source = ipaddress.ip_network(values['From'], strict=False)
    except ValueError:
        return None
    if source.version != 4:
        return None
    return Rule(int(values['Priority']), source_form(source), int(values['Table']))


def _route_lines(route):
    lines = ['[Route]', 'Destination=%s' % route.dst]
    if route.gateway:
        lines.append('Gateway=%s' % route.gateway)
    if route.src:
        lines.append('PreferredSource=%s' % route.src)
    lines += ['Table=%d' % route.table, 'Metric=%d' % route.metric, 'Scope=%s' % ('global' if route.gateway else 'link')]
    if route.onlink:
        lines.append('GatewayOnLink=yes')
    return lines + ['']


def _rule_lines(rule):
    return ['[RoutingPolicyRule]', 'From=%s' % rule.src, 'Table=%d' % rule.table, 'Priority=%d' % rule.priority, '']


def render_routing(rail):
    """The [Route] and [RoutingPolicyRule] sections of a rail."""
    lines = []
    for route in rail.routes:
        lines += _route_lines(route)
    for rule in rail.rules:
        lines += _rule_lines(rule)
    return lines


def render_dropin(rail):
    """The drop-in that gives a rail's .network file the rail's routes and rules."""
    return '\n'.join([HEADER, '# The routes and rules of rail %s, so that systemd-networkd keeps them.' % rail.device,
                      ''] + render_routing(rail))


def render_network(rail):
    """The .network file this collection creates for a rail that no file sets up."""
    lines = [HEADER, '[Match]', 'Name=%s' % rail.device, '']
    if rail.mtu:
        lines += ['[Link]', 'MTUBytes=%d' % rail.mtu, '']
    lines += ['[Network]', 'Address=%s' % rail.address, 'LinkLocalAddressing=no', 'IPv6AcceptRA=no', '']
    return '\n'.join(lines + render_routing(rail))


def link_state(ifindex, directory=LINK_STATE_DIR):
    """{key: value} of networkd's state file of a link ({} when it has none)."""
    state = read_file(os.path.join(directory, str(ifindex)))
    out = {}
    for line in (state.content if state else '').splitlines():
        key, sep, value = line.partition('=')
        if sep:
            out[key] = value
    return out


def manages_foreign_rules(dirs=CONF_DIRS):
    """Whether networkd deletes routing-policy rules it did not create: the first networkd.conf found (/etc
    first), then the drop-ins of every directory by name."""
    main = next((path for path in (os.path.join(d, 'networkd.conf') for d in dirs) if os.path.exists(path)), None)
    dropins = _by_name([os.path.join(d, 'networkd.conf.d') for d in dirs], '.conf')
    manage = True
    for path in ([main] if main else []) + [dropins[name] for name in sorted(dropins)]:
        state = read_file(path)
        for section, items in parse(state.content) if state else []:
            for key, value in items:
                if section == 'Network' and key == 'ManageForeignRoutingPolicyRules':
                    manage = value.lower() not in ('no', 'false', '0', 'off')
    return manage


def file_for(files, link):
    """(the NetworkFile networkd applies to the link, or None; why it cannot be told, or '')."""
    for nfile in files:
        matched, why = matches(nfile, link)
        if matched is None:
            return nfile, why
        if matched:
            return nfile, ''
    return None, ''


def dropin_path(nfile, directory=NETWORK_DIRS[0]):
    return os.path.join(directory, nfile.name + '.d', DROPIN)


def created_path(device, directory=NETWORK_DIRS[0]):
    return os.path.join(directory, CREATED % device)


def is_created(nfile):
    """Whether a .network file is one this collection created for a rail no file set up."""
    return nfile.name.startswith('50-roce-multirail-') and nfile.name.endswith('.network') and \
        is_ours((read_file(nfile.path) or FileState('', 0, 0, 0)).content)


def from_netplan(nfile):
    return nfile.name.startswith(NETPLAN_PREFIX) and nfile.path.startswith('/run/')


def matched_links(nfile, links):
    """Names of the links (persist.Link) a .network file applies to."""
    return [link.name for link in links if matches(nfile, link)[0]]


def state_paths(state, key):
    """The paths a link state file lists under key (NETWORK_FILE_DROPINS is a quoted, space-separated list)."""
    return tuple(word for word in state.get(key, '').strip().strip('"').split() if word)


def not_taken(state, path, created):
    """Why networkd, by its link state file (link_state()), has not loaded the file of this collection at path
    (a created .network when `created`, else a drop-in), or '' when it has. Pure."""
    if not state:
        return ''
    if created:
        current = state.get('NETWORK_FILE', '')
        return '' if current == path else 'it applies %s, not %s' % (current or 'no file', path)
    # networkd lists the drop-ins it loaded from version 254 on; without the list this cannot be told.
    if 'NETWORK_FILE_DROPINS' not in state or path in state_paths(state, 'NETWORK_FILE_DROPINS'):
        return ''
    loaded = ', '.join(state_paths(state, 'NETWORK_FILE_DROPINS')) or 'none'
    return 'its drop-ins of %s are %s, without %s' % (state.get('NETWORK_FILE', '') or 'the link', loaded, path)
