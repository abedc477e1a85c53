# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv4 routes of policy tables: model, desired-state parsing, validation, decision.

Pure Python, no netlink. A route's identity in an IPv4 table is
(table, dst, tos, metric): two routes with the same identity cannot coexist
(the kernel answers "File exists"), a route with the same identity but other
attributes is *replaced*. The protocol is not part of the identity.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    InvalidArgument,
    check_ifname,
    check_table,
    check_u32,
    host_form,
    mappings,
    parse_address,
    parse_int,
    parse_prefix,
    required,
)
from ansible_collections.roce.multirail.plugins.module_utils.rules import PROTO_NAMES, PROTO_STATIC, canonical_prefix, ipv4_host

SCOPES = {'global': 0, 'universe': 0, 'site': 200, 'link': 253, 'host': 254, 'nowhere': 255}
SCOPE_NAMES = {0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere'}
TYPE_NAMES = {1: 'unicast', 2: 'local', 3: 'broadcast', 4: 'anycast', 5: 'multicast',
              6: 'blackhole', 7: 'unreachable', 8: 'prohibit', 9: 'throw', 10: 'nat'}
RTNH_F_ONLINK = 0x4
# The nexthop flags a request may carry. The others a dump shows (dead,
# linkdown, offload, trap...) are the kernel's report of a nexthop's state:
# not part of a route's identity, and refused (EINVAL) in a request.
RTNH_REQUEST_FLAGS = RTNH_F_ONLINK

# Attributes the model reads; anything else a foreign route carries (multipath,
# metrics such as mtu, encapsulation, nexthop objects) goes to `extra`.
_KNOWN_ATTRS = {'RTA_TABLE', 'RTA_DST', 'RTA_PRIORITY', 'RTA_GATEWAY', 'RTA_OIF',
                'RTA_PREFSRC', 'RTA_UNSPEC', 'RTA_CACHEINFO', 'RTA_PREF'}


_EXTRA_WORDS = {'RTA_NH_ID': 'nhid'}


class Route(NamedTuple):
    """One IPv4 route of a table, with canonical field values."""

    table: int
    dst: str                    # canonical prefix, '0.0.0.0/0' for default
    metric: int = 0
    tos: int = 0
    gateway: str = ''
    dev: str = ''
    src: str = ''
    scope: int = 0
    onlink: bool = False
    proto: int = PROTO_STATIC
    type: int = 1
    extra: Tuple[Tuple[str, str], ...] = ()

    def key(self):
        return (self.table, self.dst, self.tos, self.metric)

    def render(self):
        """The route as `ip route show table N` prints it."""
        words = []
        if self.type != 1:
            words.append(TYPE_NAMES.get(self.type, str(self.type)))
        words.append(host_form(self.dst))
        if self.tos:
            words += ['tos', '%#x' % self.tos]
        if self.gateway:
            words += ['via', self.gateway]
        if self.dev:
            words += ['dev', self.dev]
        if self.proto not in (0, 3):
            words += ['proto', PROTO_NAMES.get(self.proto, str(self.proto))]
        if self.scope:
            words += ['scope', SCOPE_NAMES.get(self.scope, str(self.scope))]
        if self.src:
            words += ['src', self.src]
        if self.metric:
            words += ['metric', str(self.metric)]
        if self.onlink:
            words.append('onlink')
        for name, value in self.extra:
            words += [_EXTRA_WORDS.get(name, name.replace('RTA_', '').lower()), value]
        return ' '.join(words)

    def as_dict(self):
        out = {'table': self.table, 'dst': self.dst, 'metric': self.metric,
               'dev': self.dev, 'scope': SCOPE_NAMES.get(self.scope, str(self.scope)),
               'proto': PROTO_NAMES.get(self.proto, str(self.proto)),
               'type': TYPE_NAMES.get(self.type, str(self.type)), 'text': self.render()}
        if self.gateway:
            out['gateway'] = self.gateway
        if self.src:
            out['src'] = self.src
        if self.onlink:
            out['onlink'] = True
        return out


def main_gateway_routes(routes):
    """The main table's routes through a gateway, as text without the protocol.

    What the host needs to reach beyond its own subnets; a network stack that
    activates a rail removes those of them it does not hold, and re-adding one
    under another protocol keeps it.
    """
    return sorted(set(route._replace(proto=0).render() for route in routes
                      if route.table == 254 and route.type == 1
                      and (route.gateway or any(name == 'RTA_MULTIPATH' for name, _v in route.extra))))


def route_from_dump(header, attrs, ifnames):
    """Normalize one IPv4 RTM_NEWROUTE message.

    header: rtmsg fields (family, dst_len, tos, table, proto, scope, type,
    flags); attrs: {RTA_* name: value}; ifnames: {ifindex: name}. The table
    comes from RTA_TABLE, not the 8-bit header field (252 for ids > 255).
    """
    dst = '%s/%d' % (attrs.get('RTA_DST', '0.0.0.0'), header.get('dst_len', 0))
    extra = []
    for name in sorted(attrs.keys() - _KNOWN_ATTRS):
        if name == 'RTA_MULTIPATH' and isinstance(attrs[name], (list, tuple)):
            extra.append((name, _nexthops(attrs[name], ifnames)))
        else:
            extra.append((name, _flat(attrs[name])))
    oif = attrs.get('RTA_OIF')
    return Route(
        table=attrs.get('RTA_TABLE', header.get('table', 0)),
        dst=canonical_prefix(dst),
        metric=attrs.get('RTA_PRIORITY', 0) or 0,
        tos=header.get('tos', 0) or 0,
        gateway=attrs.get('RTA_GATEWAY', '') or '',
        dev=ifnames.get(oif, 'if%s' % oif) if oif else '',
        src=attrs.get('RTA_PREFSRC', '') or '',
        scope=header.get('scope', 0) or 0,
        onlink=bool(header.get('flags', 0) & RTNH_F_ONLINK),
        proto=header.get('proto', 0) or 0,
        type=header.get('type', 1),
        extra=tuple(extra),
    )


def _nexthops(hops, ifnames):
    """A multipath route's nexthops as text: gateway, device, weight, onlink, other attributes.

    `[via=10.0.1.1,dev=ib0,weight=2;via=10.0.2.1,dev=ib1]`: what the route
    is, in order; the state flags the kernel sets (linkdown, dead) are left out.
    """
    texts = []
    for hop in hops:
        hop = hop if isinstance(hop, dict) else {}
        attrs = [tuple(pair) for pair in hop.get('attrs') or ()]
        words = ['via=%s' % value for name, value in attrs if name == 'RTA_GATEWAY']
        oif = hop.get('oif')
        if oif:
            words.append('dev=%s' % ifnames.get(oif, 'if%s' % oif))
        weight = (hop.get('hops') or 0) + 1
        if weight != 1:
            words.append('weight=%d' % weight)
        if (hop.get('flags') or 0) & RTNH_F_ONLINK:
            words.append('onlink')
        words += ['%s=%s' % (name, _flat(value)) for name, value in attrs if name != 'RTA_GATEWAY']
        texts.append(','.join(words))
    return '[' + ';'.join(texts) + ']'


def _flat(value):
    """A stable text form of a nested netlink attribute (metrics, multipath)."""
    if isinstance(value, dict):
        inner = value.get('attrs')
        if inner is not None:
            return ','.join('%s=%s' % (pair[0], _flat(pair[1])) for pair in inner)
        return ','.join('%s=%s' % (k, _flat(v)) for k, v in sorted(value.items()) if k != 'header')
    if isinstance(value, (list, tuple)):
        return '[' + ';'.join(_flat(v) for v in value) + ']'
    return str(value)


def _parse_scope(obj, value):
    if isinstance(value, str) and value.strip().lower() in SCOPES:
        return SCOPES[value.strip().lower()]
    number = parse_int(obj, 'scope', value)
    if not 0 <= number <= 255:
        raise InvalidArgument('%s: scope %r is out of range 0-255' % (obj, value))
    return number


class TableSpec(NamedTuple):
    table: int
    routes: Tuple[Route, ...]
    # Only for state=absent: (dst, metric or None, gateway or '', dev or '') per listed route.
    matches: Tuple[Tuple[str, Optional[int], str, str], ...] = ()


def desired_tables(specs, state='present'):
    """Parse the module's `tables` list; raises InvalidArgument on bad input."""
    tables = []
    seen_tables = {}
    devices = set()                # names check_ifname accepted
    for t_index, obj, spec in mappings('tables', specs):
        table = check_table(obj, required(obj, spec, 'table'))
        if table in seen_tables:
            raise InvalidArgument('%s: table %d is already listed as tables[%d]'
                                  % (obj, table, seen_tables[table]))
        seen_tables[table] = t_index
        routes = []
        matches = []
        keys = {}
        for r_index, _label, rspec in mappings('table %d routes' % table, spec.get('routes') or []):
            robj = 'table %d route %d' % (table, r_index)
            if rspec.get('dst') == '':
                raise InvalidArgument('%s: dst is required' % robj)
            dst = ipv4_host(rspec.get('dst'))
            if not dst:
                net = parse_prefix(robj, 'dst', required(robj, rspec, 'dst'))
                if net.version != 4:
                    raise InvalidArgument('%s: dst %s is IPv6; rail_table manages IPv4 routes only'
                                          % (robj, rspec['dst'].strip()))
                dst = str(net)
            robj = 'table %d route %s' % (table, host_form(dst))
            gateway = ''
            if rspec.get('gateway') not in (None, ''):
                gateway = str(parse_address(robj, 'gateway', rspec['gateway'], family=4))
            dev = rspec.get('dev') or ''
            if dev and (not isinstance(dev, str) or dev not in devices):
                devices.add(check_ifname(robj, 'dev', dev))
            metric = rspec.get('metric')
            if metric is not None:
                check_u32(robj, 'metric', metric)
            if state == 'absent':
                matches.append((dst, metric, gateway, dev))
                continue
            if not dev:
                raise InvalidArgument('%s: dev is required, so the route can only ever leave through that NIC'
                                      % robj)
            src = ''
            if rspec.get('src') not in (None, ''):
                src = str(parse_address(robj, 'src', rspec['src'], family=4))
            if rspec.get('scope') not in (None, ''):
                scope = _parse_scope(robj, rspec['scope'])
            else:
                # As iproute2 and NetworkManager do: link scope without a gateway.
                scope = 0 if gateway else SCOPES['link']
            onlink = bool(rspec.get('onlink'))
            if onlink and not gateway:
                raise InvalidArgument('%s: onlink needs a gateway' % robj)
            route = Route(table=table, dst=dst, metric=metric or 0, gateway=gateway,
                          dev=dev, src=src, scope=scope, onlink=onlink)
            if route.key() in keys:
                raise InvalidArgument(
                    '%s: route %d has the same dst and metric as route %d; a table holds one route per dst and metric'
                    % (robj, r_index, keys[route.key()]))
            keys[route.key()] = r_index
            routes.append(route)
        tables.append(TableSpec(table=table, routes=tuple(routes), matches=tuple(matches)))
    return tables


class Link(NamedTuple):
    name: str
    index: int
    up: bool                       # administratively up
    addresses: Tuple[str, ...]     # IPv4 interface addresses, '10.0.1.14/24'
    carrier: bool = True
    mtu: int = 0


def validate_routes(tables, links, current, purge=False):
    # type: (List[TableSpec], Dict[str, Link], List[Route], bool) -> None
    """Check desired routes against the host before any change.

    The device must exist and be up (the kernel refuses routes through a down
    device), the gateway must be reachable on that device (inside one of its
    subnets, behind a link-scope route on it in the same table or in main, or
    flagged onlink), and src must be an address of this host. With purge, the
    routes of a listed table that the call removes do not count.
    """
    listed = {spec.table for spec in tables}
    if purge:
        current = [r for r in current if r.table not in listed]
    local = set()
    for link in links.values():
        for addr in link.addresses:
            local.add(str(ipaddress.ip_interface(addr).ip))
    for spec in tables:
        for route in spec.routes:
            link = links.get(route.dev)
            if link is None:
                problem = 'dev %s does not exist on this host' % route.dev
            elif not link.up:
                problem = 'dev %s is down; the kernel refuses routes through a down device' % route.dev
            elif route.src and route.src not in local:
                problem = 'src %s is not an address of this host' % route.src
            elif route.gateway and not route.onlink and not _reachable(route, link, spec.routes, current):
                subnets = ', '.join(str(ipaddress.ip_interface(a).network) for a in link.addresses) or 'none'
                problem = ('gateway %s is not reachable on dev %s (its subnets: %s); fix the gateway or set onlink'
                           % (route.gateway, route.dev, subnets))
            else:
                continue
            raise InvalidArgument('table %d route %s: %s' % (route.table, host_form(route.dst), problem))


def _reachable(route, link, table_routes, current):
    gateway = ipaddress.ip_address(route.gateway)
    for addr in link.addresses:
        if gateway in ipaddress.ip_interface(addr).network:
            return True
    candidates = list(table_routes) + [r for r in current if r.table in (route.table, 254)]
    for other in candidates:
        if (other.dev == route.dev and not other.gateway and other.type == 1
                and other is not route and gateway in ipaddress.ip_network(other.dst)):
            return True
    return False


class TableChanges(NamedTuple):
    add: Tuple[Route, ...]
    replace: Tuple[Tuple[Route, Route], ...]     # (old, new)
    remove: Tuple[Route, ...]
    before: Dict[int, Tuple[Route, ...]]
    after: Dict[int, Tuple[Route, ...]]
    # When the order of the requests matters (a restore): ('remove' | 'replace' | 'add' | 'prepend' |
    # 'append', route, the route replaced or None), in the order to send.
    ops: Tuple[Tuple[str, Route, Optional[Route]], ...] = ()


def decide_routes(current, tables, state='present', purge=False):
    """Current routes (all tables) + desired tables -> add / replace / remove.

    present: a missing route is added, a route with the same identity but other
    attributes is replaced; with purge, every other route of a listed table is
    removed. Tables not listed are never touched. absent: every route of the
    listed table that matches a listed (dst, metric, gateway, dev) is removed;
    unset fields match anything, and a table listed with no routes is emptied.
    """
    by_table = {}
    for route in current:
        by_table.setdefault(route.table, []).append(route)
    add, replace, remove = [], [], []
    before, after = {}, {}
    for spec in tables:
        existing = by_table.get(spec.table, [])
        before[spec.table] = tuple(sorted(existing, key=_order))
        gone = []
        if state == 'absent':
            for route in existing:
                if not spec.matches or any(_matches(route, m) for m in spec.matches):
                    gone.append(route)
            remove.extend(gone)
            removed = set(gone)
            after[spec.table] = tuple(sorted((r for r in existing if r not in removed), key=_order))
            continue
        by_key = {}
        for route in existing:
            by_key.setdefault(route.key(), []).append(route)
        kept = set()
        result = []
        for wanted in spec.routes:
            same_key = by_key.get(wanted.key(), [])
            if wanted in same_key:
                kept.add(wanted)
            elif same_key:
                old = same_key[0]
                replace.append((old, wanted))
                kept.add(old)
            else:
                add.append(wanted)
            result.append(wanted)
        for route in existing:
            if route in kept:
                continue
            if purge:
                gone.append(route)
            else:
                result.append(route)
        remove.extend(gone)
        after[spec.table] = tuple(sorted(result, key=_order))
    return TableChanges(add=tuple(add), replace=tuple(replace), remove=tuple(remove),
                        before=before, after=after)


def _matches(route, match):
    dst, metric, gateway, dev = match
    return (route.dst == dst and (metric is None or route.metric == metric)
            and (not gateway or route.gateway == gateway) and (not dev or route.dev == dev))


def _order(route):
    address, _slash, length = route.dst.partition('/')
    bits = int(length)
    return (bits != 0, int.from_bytes(socket.inet_pton(socket.AF_INET, address), 'big'), -bits, route.metric)


def add_key(route):
    """Where a route goes among additions: direct (gateway-less) routes first."""
    through_gateway = bool(route.gateway) or any(name == 'RTA_MULTIPATH' for name, _value in route.extra)
    return (through_gateway, route.table, _order(route))


def add_order(routes):
    """Direct (gateway-less) routes first, so gateways they make reachable exist."""
    return sorted(routes, key=add_key)


def render_tables(tables):
    """{table: routes} as `ip route show table N` blocks."""
    lines = []
    for table in sorted(tables):
        lines.append('table %d:' % table)
        lines.extend('  ' + route.render() for route in tables[table])
    return ''.join(line + '\n' for line in lines)
