# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink I/O through pyroute2: one dump per object kind, then the changes.

This is the only file that imports pyroute2; the import is guarded so the
modules can report missing_required_lib('pyroute2') instead of a traceback.

Changes are sent as raw rtnetlink messages. A rule or route we create is
built from its model; one that was on the host is deleted and, when a
rollback needs it, re-created from the very attributes the dump returned, so
nothing of a foreign object (a uid range, an mtu, a nexthop id) is lost.
"""

from __future__ import annotations

import socket
import traceback

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, route_from_dump
from ansible_collections.roce.multirail.plugins.module_utils.rules import rule_from_dump

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, nla_slot
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_NEWROUTE, RTM_NEWRULE
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()

    class NetlinkError(Exception):
        pass
else:
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None

    class route_msg(rtmsg):
        """rtmsg that also knows RTA_NH_ID (30), which pyroute2 0.9 decodes as UNKNOWN.

        Without it a route using a nexthop object (`nhid 7`) could be neither
        deleted exactly nor restored. Its own attribute table is compiled on
        first use instead of inheriting rtmsg's.
        """

        _nlmsg_base__compiled_nla = False
        if len(rtmsg.nla_map) == 24:       # RTA_UNSPEC .. RTA_EXPIRES
            nla_map = rtmsg.nla_map + (('RTA_PAD', 'hex'), ('RTA_UID', 'uint32'),
                                       ('RTA_TTL_PROPAGATE', 'uint8'), ('RTA_IP_PROTO', 'uint8'),
                                       ('RTA_SPORT', 'be16'), ('RTA_DPORT', 'be16'),
                                       ('RTA_NH_ID', 'uint32'))

    class rule_msg(fibmsg):
        """fibmsg that also knows the attributes newer kernels report (25-30).

        A kernel >= 6.15 reports FRA_DPORT_MASK next to a port range; pyroute2
        0.9 would decode it as UNKNOWN and the rule could not be re-created.
        """

        _nlmsg_base__compiled_nla = False
        if fibmsg.nla_map[-1][0] == 24:    # numbered map ending at FRA_DPORT_RANGE
            nla_map = fibmsg.nla_map + ((25, 'FRA_DSCP', 'uint8'), (26, 'FRA_FLOWLABEL', 'be32'),
                                        (27, 'FRA_FLOWLABEL_MASK', 'be32'), (28, 'FRA_SPORT_MASK', 'uint16'),
                                        (29, 'FRA_DPORT_MASK', 'uint16'), (30, 'FRA_DSCP_MASK', 'uint8'))

IFF_UP = 0x1
RTNH_F_ONLINK = 0x4
RT_TABLE_COMPAT = 252
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_RULE_HEADER = ('family', 'dst_len', 'src_len', 'tos', 'table', 'action', 'flags')
_ROUTE_HEADER = ('family', 'dst_len', 'src_len', 'tos', 'table', 'proto', 'scope', 'type', 'flags')
# What identifies a route to the kernel's delete (fib_table_delete) besides its key.
_ROUTE_DELETE_ATTRS = ('RTA_TABLE', 'RTA_DST', 'RTA_PRIORITY', 'RTA_GATEWAY', 'RTA_OIF',
                       'RTA_MULTIPATH', 'RTA_NH_ID', 'RTA_PREFSRC')
# Read-only attributes a route dump carries that must not be sent back.
_ROUTE_DUMP_ONLY = ('RTA_CACHEINFO', 'RTA_UNSPEC', 'RTA_PAD')


def opaque(obj):
    """Whether a dumped rule or route carries an attribute pyroute2 could not decode (UNKNOWN)."""
    return any(name == 'UNKNOWN' for name, _value in obj.extra)


def check_exact(objects, what):
    """Refuse to remove or replace what could not be restored exactly."""
    for obj in objects:
        if opaque(obj):
            raise InvalidArgument(
                '%s "%s" carries a netlink attribute this module cannot decode, so it could not '
                'be restored if the run failed; remove it by hand first' % (what, obj.render()))


class ApplyError(Exception):
    """The kernel refused a change; what the call had already done was undone."""


class Raw:
    """A message as dumped: header fields and the attribute list, resendable."""

    def __init__(self, header, attrs):
        self.header = header
        self.attrs = attrs

    def to_data(self):
        """Plain JSON data (nested attributes too) that from_data() turns back into this message."""
        return {'header': dict(self.header), 'attrs': [[name, _plain(value)] for name, value in self.attrs]}

    @classmethod
    def from_data(cls, data):
        return cls(dict(data['header']), [tuple(pair) for pair in data['attrs']])


def _plain(value):
    if HAS_PYROUTE2 and isinstance(value, nla_slot):
        return [value[0], _plain(value[1])]
    if isinstance(value, dict):
        return dict((key, _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def connect():
    ipr = IPRoute()
    # The synchronous nlm_request() of pyroute2 0.9 reads this key without setting it.
    ipr.status['nlm_generator'] = False
    marshal = getattr(getattr(ipr, 'asyncore', None), 'marshal', None)
    if marshal is not None:
        marshal.msg_map[RTM_NEWROUTE] = route_msg
        marshal.msg_map[RTM_NEWRULE] = rule_msg
    return ipr


def _parts(msg, fields):
    header = dict((key, msg.get(key)) for key in fields if msg.get(key) is not None)
    attrs = [(nla[0], nla[1]) for nla in msg['attrs'] if nla[1] is not None]
    return header, attrs


def dump_links(ipr):
    """{name: Link} with each link's state and IPv4 addresses, from a link and an address dump."""
    addresses = {}
    for msg in ipr.get_addr(family=socket.AF_INET):
        local = msg.get_attr('IFA_LOCAL') or msg.get_attr('IFA_ADDRESS')
        addresses.setdefault(msg['index'], []).append('%s/%d' % (local, msg['prefixlen']))
    links = {}
    for msg in ipr.get_links():
        name = msg.get_attr('IFLA_IFNAME')
        links[name] = Link(name=name, index=msg['index'], up=bool(msg['flags'] & IFF_UP),
                           addresses=tuple(addresses.get(msg['index'], ())),
                           carrier=bool(msg.get_attr('IFLA_CARRIER')), mtu=msg.get_attr('IFLA_MTU') or 0)
    return links


def dump_rules(ipr):
    """Every IPv4 and IPv6 policy rule in kernel order, from one dump.

    Returns (rules, raw): raw maps each rule to the message it came from.
    """
    rules = []
    raw = {}
    for msg in ipr.get_rules(family=socket.AF_UNSPEC):
        header, attrs = _parts(msg, _RULE_HEADER)
        rule = rule_from_dump(header, dict(attrs))
        if rule is not None:
            rules.append(rule)
            raw[rule] = Raw(header, attrs)
    return rules, raw


def dump_routes(ipr, links):
    """Every IPv4 route of every table, from one dump. Returns (routes, raw)."""
    ifnames = dict((link.index, link.name) for link in links.values())
    routes = []
    raw = {}
    for msg in ipr.route('dump', family=socket.AF_INET):
        header, attrs = _parts(msg, _ROUTE_HEADER)
        route = route_from_dump(header, dict(attrs), ifnames)
        routes.append(route)
        raw[route] = Raw(header, attrs)
    return routes, raw


def _send(ipr, msg_class, msg_type, flags, raw):
    msg = msg_class()
    for key, value in raw.header.items():
        msg[key] = value
    if msg.get('table', 0) > 255:
        # The header's table field is 8 bits; the real id travels as an attribute.
        msg['table'] = RT_TABLE_COMPAT
    msg['attrs'] = list(raw.attrs)
    ipr.nlm_request(msg, msg_type=msg_type, msg_flags=NLM_F_REQUEST | NLM_F_ACK | flags)


def _split(prefix):
    address, length = prefix.split('/')
    return address, int(length)


def rule_raw(rule):
    """The message that creates `rule` (one of ours: a lookup rule)."""
    header = {'family': _FAMILY[rule.family], 'src_len': 0, 'dst_len': 0, 'tos': 0,
              'table': rule.table, 'action': 1, 'flags': 0}
    attrs = [('FRA_TABLE', rule.table), ('FRA_PRIORITY', rule.priority)]
    for field, name, prefix in (('src', 'FRA_SRC', rule.src), ('dst', 'FRA_DST', rule.dst)):
        if prefix:
            address, length = _split(prefix)
            header[field + '_len'] = length
            attrs.append((name, address))
    if rule.iif:
        attrs.append(('FRA_IIFNAME', rule.iif))
    if rule.oif:
        attrs.append(('FRA_OIFNAME', rule.oif))
    if rule.fwmask:
        attrs += [('FRA_FWMARK', rule.fwmark), ('FRA_FWMASK', rule.fwmask)]
    attrs.append(('FRA_PROTOCOL', rule.proto))
    return Raw(header, attrs)


def route_raw(route, links):
    """The message that creates `route` (one of ours)."""
    address, length = _split(route.dst)
    header = {'family': socket.AF_INET, 'dst_len': length, 'src_len': 0, 'tos': route.tos,
              'table': route.table,
              'proto': route.proto, 'scope': route.scope, 'type': route.type,
              'flags': RTNH_F_ONLINK if route.onlink else 0}
    attrs = [('RTA_TABLE', route.table), ('RTA_PRIORITY', route.metric)]
    if length:
        attrs.append(('RTA_DST', address))
    if route.gateway:
        attrs.append(('RTA_GATEWAY', route.gateway))
    if route.dev in links:
        attrs.append(('RTA_OIF', links[route.dev].index))
    if route.src:
        attrs.append(('RTA_PREFSRC', route.src))
    return Raw(header, attrs)


def _route_for_create(raw):
    """A dumped route made fit to send back: no dump-only attributes or flags."""
    attrs = [(k, v) for k, v in raw.attrs if k not in _ROUTE_DUMP_ONLY]
    if any(k == 'RTA_NH_ID' for k, _v in attrs):
        # A route using a nexthop object must not also name its gateway or device.
        attrs = [(k, v) for k, v in attrs if k not in ('RTA_GATEWAY', 'RTA_OIF', 'RTA_MULTIPATH', 'RTA_FLOW')]
    header = dict(raw.header)
    header['flags'] = header.get('flags', 0) & RTNH_F_ONLINK
    return Raw(header, attrs)


def _route_for_delete(raw):
    """The attributes that make a delete hit this route and no other."""
    attrs = [(k, v) for k, v in _route_for_create(raw).attrs if k in _ROUTE_DELETE_ATTRS]
    return Raw(dict(raw.header, flags=0), attrs)


def _run(steps):
    """Run (do, undo, text) steps in order; on a kernel error undo what was done."""
    done = []
    for do, undo, text in steps:
        try:
            do()
        except NetlinkError as exc:
            failed = []
            for undo_done, done_text in reversed(done):
                try:
                    undo_done()
                except NetlinkError:
                    failed.append(done_text)
            note = ('; rolled back %d earlier change(s)' % len(done)) if done else ''
            if failed:
                note += '; could not roll back: %s' % ', '.join(failed)
            raise ApplyError('%s failed: %s%s' % (text, exc, note))
        done.append((undo, text))


def apply_rules(ipr, changes, raw):
    """Send the planned rule operations; dumped rules travel as they were dumped."""
    def message(rule):
        return raw.get(rule) or rule_raw(rule)

    def add(rule):
        return lambda: _send(ipr, rule_msg, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, message(rule))

    def delete(rule):
        return lambda: _send(ipr, rule_msg, RTM_DELRULE, 0, message(rule))

    steps = []
    for op, rule in changes.ops:
        if op == 'add':
            steps.append((add(rule), delete(rule), 'adding rule "%s"' % rule.render()))
        else:
            steps.append((delete(rule), add(rule), 'removing rule "%s"' % rule.render()))
    _run(steps)


def apply_routes(ipr, changes, links, raw, order):
    """Replace, add (direct routes before gateway routes), then remove."""
    def create(route):
        return _route_for_create(raw[route]) if route in raw else route_raw(route, links)

    def remove(route):
        return _route_for_delete(raw[route]) if route in raw else route_raw(route, links)

    def send(msg_type, flags, message):
        return lambda: _send(ipr, route_msg, msg_type, flags, message)

    replace = NLM_F_CREATE | NLM_F_REPLACE
    steps = []
    for old, new in changes.replace:
        steps.append((send(RTM_NEWROUTE, replace, create(new)), send(RTM_NEWROUTE, replace, create(old)),
                      'replacing "%s" in table %d' % (old.render(), old.table)))
    for route in order(changes.add):
        steps.append((send(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, create(route)),
                      send(RTM_DELROUTE, 0, remove(route)),
                      'adding "%s" to table %d' % (route.render(), route.table)))
    for route in reversed(order(changes.remove)):
        steps.append((send(RTM_DELROUTE, 0, remove(route)),
                      send(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, create(route)),
                      'removing "%s" from table %d' % (route.render(), route.table)))
    _run(steps)
