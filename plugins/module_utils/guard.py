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
from ansible_collections.roce.multirail.plugins.module_utils.routes import Route, TableChanges, add_key, add_order
from ansible_collections.roce.multirail.plugins.module_utils.rules import made_like_ours
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import Setting, decide_sysctls, key_name

MAIN_TABLE = 254


class Protected(NamedTuple):
    """An address (or, for lo, a prefix) the host must stay reachable on, and why it matters."""

    address: str
    why: str


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


def host_addresses(links, rails):
    # type: (Dict[str, object], list) -> List[Protected]
    """The addresses the host owns outside its rails, each as a Protected.

    Every IPv4 address of every NIC that is not a planned rail, and on lo its
    whole prefix (the kernel answers every address of 127.0.0.0/8 locally). An
    address a rail names exactly as one of its sources (a VF netdev's own) is
    the rail's on purpose and left out; a prefix covering it is not.
    """
    rail_devices = set(rail['device'] for rail in rails)
    named = set()
    for rail in rails:
        for source in rail.get('sources') or ():
            net = _network(source)
            if net is not None and net.prefixlen == net.max_prefixlen:
                named.add(str(net.network_address))
    found = []
    for name in sorted(links):
        if name in rail_devices:
            continue
        for address in getattr(links[name], 'addresses', ()):
            interface = ipaddress.ip_interface(address)
            if name == 'lo':
                found.append(Protected(str(interface.network), 'of lo'))
            elif str(interface.ip) not in named:
                found.append(Protected(str(interface.ip), 'of %s, a NIC that is not a rail' % name))
    return found


def _network(text):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class _Sources:
    """The plan's rules by source prefix: which of them capture an address or a prefix, in plan order.

    Looks up each prefix length of the address (33 lookups) instead of
    parsing every rule for every protected address.
    """

    def __init__(self, rules):
        self.by_prefix = {}
        self.nets = []
        for index, rule in enumerate(rules):
            net = _network(rule.src) if rule.src else None
            if net is None or net.version != 4:
                continue
            self.by_prefix.setdefault((int(net.network_address), net.prefixlen), []).append((index, rule))
            self.nets.append((index, net, rule))

    def capturing(self, text):
        """The rules whose source holds the address `text`, or overlaps the prefix `text`."""
        net = _network(text)
        if net is None or net.version != 4:
            return []
        value = int(net.network_address)
        found = []
        for length in range(net.prefixlen + 1):
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
            found += self.by_prefix.get((value & mask, length), [])
        if net.prefixlen < 32:
            found += [(i, rule) for i, inner, rule in self.nets if inner.prefixlen > net.prefixlen
                      and inner.subnet_of(net)]
        return [rule for _index, rule in sorted(found, key=lambda item: item[0])]


def management_findings(rules, rails, protected, routes, links, tables=()):
    # type: (list, list, List[Protected], List[Route], Dict[str, object], tuple) -> Tuple[List[str], List[str]]
    """(errors, warnings) about the plan and the host's management path.

    rules: the plan's rules (Rule); rails: the plan's rails (device, table,
    ip, sources); protected: the addresses the host is managed on; routes: the
    host's routes (the main table is read); links: {name: Link}; tables: the
    planned tables (TableSpec).

    Errors: a rail rule whose source holds a protected address, or overlaps a
    protected prefix (replies to Ansible, or the traffic of another NIC, would
    be looked up in a rail table); a rail rule that captures the
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
    capturing = _Sources(rules).capturing

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

    Tables hold IPv4 routes here, so only IPv4 rules count. A table is owned
    when a planned rail uses it or a rule inside the managed priority range
    that was made like ours looks it up; it is stale when only such a rule
    does. The reserved tables and a table any other IPv4 rule also looks up
    are never stale: emptying them would break what is not ours.
    """
    low, high = priority_range
    inside = set()
    outside = set()
    for rule in rules:
        if rule.action != 'lookup' or rule.family != 4:
            continue
        ours = low <= rule.priority <= high and made_like_ours(rule)
        (inside if ours else outside).add(rule.table)
    stale = sorted(t for t in inside - set(planned) - outside if t not in RESERVED_TABLES)
    return sorted(set(planned) | set(stale)), stale


def restore_routes(current, snapshot, tables):
    # type: (List[Route], List[Route], List[int]) -> TableChanges
    """The changes that bring `tables` back to exactly the snapshot's routes, in the snapshot's order.

    current and snapshot are in dump order. Routes that share table,
    destination, tos and metric (`ip route append`) form a group the kernel
    keeps in insertion order; each is told apart by its whole identity
    (gateway, device, nexthops...). A group of one is added or replaced; in a
    larger group the routes not in the snapshot are removed, and when the ones
    left are a run of the snapshot's group the missing ones are put before
    (prepend) and after (append) it, else the group is laid again in order.

    `ops` are in the order to send: removals (gateway routes first), replaces,
    then additions, groups with a direct route before groups of gateway routes.
    """
    tables = set(tables)
    now = [r for r in current if r.table in tables]
    then = [r for r in snapshot if r.table in tables]
    now_groups = _groups(now)
    then_groups = _groups(then)
    removals, replaces, additions = [], [], []
    for key in list(then_groups) + [k for k in now_groups if k not in then_groups]:
        had = now_groups.get(key, [])
        want = then_groups.get(key, [])
        if had == want:
            continue
        if len(had) == 1 and len(want) == 1:
            replaces.append(('replace', want[0], had[0]))
            continue
        removals += [r for r in had if r not in want]
        kept = [r for r in had if r in want]
        start = want.index(kept[0]) if kept else 0
        if kept and want[start:start + len(kept)] == kept:
            ops = [('prepend', r, None) for r in reversed(want[:start])]
            ops += [('append', r, None) for r in want[start + len(kept):]]
        else:
            removals += kept
            ops = [('add' if index == 0 else 'append', r, None) for index, r in enumerate(want)]
        if ops:
            additions.append((want, ops))
    ops = [('remove', r, None) for r in reversed(add_order(removals))] + replaces
    for _want, group_ops in sorted(additions, key=lambda item: _group_order(item[0])):
        ops += group_ops
    before, after = {}, {}
    for table in sorted(tables):
        before[table] = tuple(r for r in now if r.table == table)
        after[table] = tuple(r for r in then if r.table == table)
    return TableChanges(add=tuple(r for op, r, _old in ops if op in ('add', 'prepend', 'append')),
                        replace=tuple((old, r) for op, r, old in ops if op == 'replace'),
                        remove=tuple(r for op, r, _old in ops if op == 'remove'),
                        before=before, after=after, ops=tuple(ops))


def _groups(routes):
    """{key: [routes with that key, in order]} in order of first appearance."""
    found = {}
    for route in routes:
        group = found.setdefault(route.key(), [])
        if route not in group:
            group.append(route)
    return found


def _group_order(group):
    """A group's place among additions: direct routes first, as add_order() puts them."""
    return min(add_key(route) for route in group)


def restore_sysctls(current, snapshot):
    # type: (Dict[Tuple[str, str], Optional[int]], Dict[Tuple[str, str], Optional[int]]) -> list
    """The SysctlChange of each kept sysctl whose value differs from the snapshot.

    A key whose interface is gone (None on either side) cannot be written back
    and is left out.
    """
    kept = [Setting(target, key, value) for (target, key), value in sorted(snapshot.items())
            if value is not None and current.get((target, key)) is not None]
    return list(decide_sysctls(current, kept))


def unrestorable_sysctls(current, snapshot):
    # type: (Dict[Tuple[str, str], Optional[int]], Dict[Tuple[str, str], Optional[int]]) -> List[Tuple[str, str, int]]
    """(target, key, value) of each kept sysctl that cannot be written back: its interface is gone."""
    return [(target, key, value) for (target, key), value in sorted(snapshot.items())
            if value is not None and current.get((target, key)) is None]


def not_restored(rules=None, routes=None, sysctls=(), gone=(), errors=None):
    """One line per object a restore left otherwise than in the snapshot, saying what it is now.

    rules (RuleChanges), routes (TableChanges), sysctls (SysctlChange list)
    and gone (unrestorable_sysctls) are what still differs after the restore;
    errors: {('rule' | 'route' | 'sysctl', object): why it was refused}.
    """
    errors = errors or {}

    def why(kind, obj):
        reason = errors.get((kind, obj))
        return ' (%s)' % reason if reason else ''

    lines = []
    for rule in rules.add if rules else ():
        lines.append('rule "%s": not restored%s; now absent' % (rule.render(), why('rule', rule)))
    for rule in rules.remove if rules else ():
        lines.append('rule "%s": not removed%s; still present' % (rule.render(), why('rule', rule)))
    for table in sorted(routes.after) if routes else ():
        now, then = list(routes.before.get(table, ())), list(routes.after[table])
        extra = [r for r in now if r not in then]
        if not extra and set(then) <= set(now) and now != then:
            lines.append('table %d: its routes are all there, in another order than in the snapshot' % table)
        for route in then:
            if route in now:
                continue
            # One route in place of one, as a replace leaves it; in a group of appended routes each is its own.
            same_key = [r for r in extra if r.key() == route.key()]
            alone = len(same_key) == 1 and [r.key() for r in then].count(route.key()) == 1
            where = 'now "%s"' % same_key[0].render() if alone else 'now absent'
            if alone:
                extra.remove(same_key[0])
            lines.append('route "%s" (table %d): not restored%s; %s' % (
                route.render(), table, why('route', route), where))
        for route in extra:
            lines.append('route "%s" (table %d): not removed%s; still present' % (
                route.render(), table, why('route', route)))
    for change in sysctls:
        lines.append('sysctl %s: not restored to %d%s; now %d' % (
            key_name(change.target, change.key), change.after, why('sysctl', (change.target, change.key)),
            change.before))
    for target, key, value in gone:
        lines.append('sysctl %s: not restored to %d (%s is gone); now absent' % (key_name(target, key), value, target))
    return lines


def local_gateways(rails, tables, links):
    # type: (list, list, Dict[str, object]) -> List[str]
    """An error per planned route whose gateway is an address the host owns, on any NIC.

    rails: the plan's rails (device, table); tables: the planned tables (TableSpec);
    links: {name: Link}. The host would answer ARP and pings for such a gateway itself,
    and the rail would reach nothing.
    """
    owner = {}
    for name, link in sorted(links.items(), key=lambda item: item[1].index):
        for address in link.addresses:
            owner.setdefault(address.split('/')[0], name)
    rail_of = dict((rail['table'], rail['device']) for rail in rails)
    errors = []
    for spec in tables:
        for route in spec.routes:
            nic = owner.get(route.gateway) if route.gateway else None
            if nic is not None:
                errors.append('rail %s: gateway %s of table %d is an address of this host (on %s): the host would '
                              'answer for it and the rail would reach nothing; use the leaf switch\'s address'
                              % (rail_of.get(spec.table, route.dev or '?'), route.gateway, spec.table, nic))
    return list(dict.fromkeys(errors))
