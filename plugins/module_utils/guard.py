# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is checked before a plan changes a host, and what is kept to undo it.

Pure functions over normalized rules, routes and links (rules.py, routes.py):
whether a plan's rules would capture the host's management path, which rules
and tables a plan owns, and how to bring them back to a snapshot.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import RESERVED_TABLES
from ansible_collections.roce.multirail.plugins.module_utils.routes import Route, TableChanges
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import Setting, decide_sysctls

MAIN_TABLE = 254


class Protected(NamedTuple):
    """An address the host must stay reachable on, and why it matters."""

    address: str
    why: str


def _contains(prefix, address):
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False


def main_defaults(routes):
    """The main table's IPv4 default routes, best (lowest metric) first."""
    found = [r for r in routes if r.table == MAIN_TABLE and r.dst == '0.0.0.0/0' and r.type == 1]
    return sorted(found, key=lambda r: r.metric)


def default_source(route, links):
    """The source address the kernel gives traffic that leaves through `route`.

    Its preferred source when set, else the device's address whose subnet holds
    the gateway, else the device's first address; '' when the device has none.
    """
    if route.src:
        return route.src
    link = links.get(route.dev)
    if link is None or not link.addresses:
        return ''
    for address in link.addresses:
        interface = ipaddress.ip_interface(address)
        if route.gateway and ipaddress.ip_address(route.gateway) in interface.network:
            return str(interface.ip)
    return str(ipaddress.ip_interface(link.addresses[0]).ip)


def _describe(route):
    words = ['default']
    if route.gateway:
        words += ['via', route.gateway]
    if route.dev:
        words += ['dev', route.dev]
    return ' '.join(words)


def management_findings(rules, rails, protected, routes, links, tables=()):
    # type: (list, list, List[Protected], List[Route], Dict[str, object], tuple) -> Tuple[List[str], List[str]]
    """(errors, warnings) about the plan and the host's management path.

    rules: the plan's rules (Rule); rails: the plan's rails (device, table,
    ip, sources); protected: the addresses the host is managed on; routes: the
    host's routes (the main table is read); links: {name: Link}; tables: the
    planned tables (TableSpec).

    Errors: a rail rule whose source holds a protected address (replies to
    Ansible would be looked up in a rail table); a rail rule that captures the
    source of the main table's default route into a table that sends it out of
    another NIC (the host's own traffic would leave through the rail); a rail
    NIC holding a protected address that is not the rail's own (the rail's
    keyfile would take it off the NIC). Warning: the main table's default route
    leaving through a rail NIC.
    """
    rail_of = dict((rail['table'], rail['device']) for rail in rails)
    own = dict((rail['device'], rail.get('ip', '')) for rail in rails)
    planned = dict((spec.table, spec.routes) for spec in tables)
    errors, warnings = [], []

    def capturing(address):
        return [rule for rule in rules if rule.src and _contains(rule.src, address)]

    def capture(rule, address, what):
        rail = rail_of.get(rule.table, '?')
        errors.append('rule "%s" (rail %s) would capture %s, %s: its traffic would be looked up in table %d '
                      'and leave through the rail' % (rule.render(), rail, address, what, rule.table))

    for item in protected:
        for rule in capturing(item.address)[:1]:
            capture(rule, item.address, 'the address %s' % item.why)
        for device, ip in own.items():
            link = links.get(device)
            held = [a for a in (link.addresses if link else ()) if a.split('/')[0] == item.address]
            if held and item.address != ip:
                errors.append('rail %s holds %s, the address %s: activating the rail\'s keyfile would take '
                              'that address off the NIC' % (device, item.address, item.why))
    for route in main_defaults(routes):
        source = default_source(route, links)
        for rule in capturing(source) if source else []:
            elsewhere = [r for r in planned.get(rule.table, ()) if r.dev != route.dev]
            if elsewhere:
                capture(rule, source, 'the source of the host\'s default route (%s)' % _describe(route))
                break
        if route.dev in own:
            warnings.append('the main table\'s default route (%s) goes through rail %s: traffic from '
                            'addresses without a rail rule leaves through that one rail; route the host\'s '
                            'default through its management NIC' % (_describe(route), route.dev))
    return list(dict.fromkeys(errors)), list(dict.fromkeys(warnings))


def owned_tables(rules, priority_range, planned):
    """(tables, stale): every table the plan owns, and those of them no rail keeps.

    A table is owned when a planned rail uses it or a rule inside the managed
    priority range looks it up; it is stale when only such a rule does. The
    reserved tables and a table any rule outside the range also looks up are
    never stale: emptying them would break what is not ours.
    """
    low, high = priority_range
    inside = set()
    outside = set()
    for rule in rules:
        if rule.action != 'lookup':
            continue
        (inside if low <= rule.priority <= high else outside).add(rule.table)
    stale = sorted(t for t in inside - set(planned) - outside if t not in RESERVED_TABLES)
    return sorted(set(planned) | set(stale)), stale


def restore_routes(current, snapshot, tables):
    # type: (List[Route], List[Route], List[int]) -> TableChanges
    """The changes that bring `tables` back to exactly the snapshot's routes."""
    tables = set(tables)
    now = [r for r in current if r.table in tables]
    then = [r for r in snapshot if r.table in tables]
    then_keys = dict((r.key(), r) for r in then)
    now_keys = dict((r.key(), r) for r in now)
    add, replace, remove = [], [], []
    for route in then:
        old = now_keys.get(route.key())
        if old is None:
            add.append(route)
        elif old != route:
            replace.append((old, route))
    for route in now:
        if route.key() not in then_keys:
            remove.append(route)
    before, after = {}, {}
    for table in sorted(tables):
        before[table] = tuple(r for r in now if r.table == table)
        after[table] = tuple(r for r in then if r.table == table)
    return TableChanges(add=tuple(add), replace=tuple(replace), remove=tuple(remove), before=before, after=after)


def restore_sysctls(current, snapshot):
    # type: (Dict[Tuple[str, str], Optional[int]], Dict[Tuple[str, str], Optional[int]]) -> list
    """The SysctlChange of each kept sysctl whose value differs from the snapshot.

    A key whose interface is gone (None on either side) cannot be written back
    and is left out.
    """
    kept = [Setting(target, key, value) for (target, key), value in sorted(snapshot.items())
            if value is not None and current.get((target, key)) is not None]
    return list(decide_sysctls(current, kept))
