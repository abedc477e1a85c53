# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink I/O: one rtnetlink socket, one dump per object kind, then the changes.

This is the only file that imports pyroute2; the import is guarded so the
modules can report missing_required_lib('pyroute2') instead of a traceback.

The socket is our own (AF_NETLINK, NETLINK_ROUTE): a dump is one request and
the messages it returns; the changes of a call go to the kernel as batches of
messages, each acknowledged, and when one fails every change that succeeded is
undone in reverse order. Rule and route messages are read and written with the
names pyroute2's message classes give their attributes; attributes of plain
types (integers, addresses, names) are packed here with struct, anything else
(nested metrics, multipath, ranges) by pyroute2 itself.

A rule or route we create is built from its model; one that was on the host is
deleted and, when a rollback needs it, re-created from the very attributes the
dump returned, so nothing of a foreign object (a uid range, an mtu, a nexthop
id) is lost.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import struct
import sys
import traceback

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.rules import rule_from_dump


def _pyroute2_classes():
    """(fibmsg, rtmsg, nla_slot, NetlinkError) from pyroute2, without running pyroute2/__init__.py.

    That file imports every subsystem (ndb, ipdb, conntrack, asyncio...), some
    150 ms of every module run. A stand-in package whose path is the real one
    lets the message classes load alone; the first time anyone asks it for a
    name it lacks, it runs the real __init__.py into itself, so code importing
    pyroute2 later in the same process still sees the whole package. When the
    stand-in cannot serve, the package is imported the ordinary way.
    """
    if 'pyroute2' not in sys.modules:
        spec = importlib.util.find_spec('pyroute2')
        if spec is not None and spec.submodule_search_locations is not None:
            package = importlib.util.module_from_spec(spec)

            def complete(name):
                del package.__getattr__
                spec.loader.exec_module(package)
                return getattr(package, name)

            package.__getattr__ = complete
            sys.modules['pyroute2'] = package
            try:
                return _import_classes()
            except Exception:  # pylint: disable=broad-exception-caught
                for name in [name for name in sys.modules if name.split('.')[0] == 'pyroute2']:
                    del sys.modules[name]
    import pyroute2  # noqa: F401  pylint: disable=unused-import
    return _import_classes()


def _import_classes():
    from pyroute2.netlink import nla_slot
    from pyroute2.netlink.exceptions import NetlinkError as error_class
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    return fibmsg, rtmsg, nla_slot, error_class


try:
    fibmsg, rtmsg, nla_slot, NetlinkError = _pyroute2_classes()
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()

    class NetlinkError(Exception):
        def __init__(self, code, msg=None):
            super().__init__(code, msg)
            self.code = code
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

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
RTM_NEWRULE = 32
RTM_DELRULE = 33
RTM_GETRULE = 34
RTM_F_LOOKUP_TABLE = 0x1000
IFF_UP = 0x1
RTNH_F_ONLINK = 0x4
RT_TABLE_MAIN = 254
RT_TABLE_COMPAT = 252
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
# What identifies a route to the kernel's delete (fib_table_delete) besides its key.
_ROUTE_DELETE_ATTRS = ('RTA_TABLE', 'RTA_DST', 'RTA_PRIORITY', 'RTA_GATEWAY', 'RTA_OIF',
                       'RTA_MULTIPATH', 'RTA_NH_ID', 'RTA_PREFSRC')
# Read-only attributes a route dump carries that must not be sent back.
_ROUTE_DUMP_ONLY = ('RTA_CACHEINFO', 'RTA_UNSPEC', 'RTA_PAD')
# The socket buffers asked for (the kernel caps them at net.core.[rw]mem_max), and
# how many messages go in one write: the acks of a write wait in the receive
# buffer until it is read, and the kernel drops what does not fit (an ack takes
# some 800 bytes of it), so a write carries at most one per _ACK_ROOM bytes.
_BUFFER = 1 << 20
_BATCH = 128
_ACK_ROOM = 2048
_DUMP_ATTEMPTS = 5
_DATAGRAM = 65536           # the kernel's dump datagrams are 32 KiB at most

_HEADER = struct.Struct('=IHHII')       # struct nlmsghdr
_ATTR = struct.Struct('=HH')            # struct nlattr
_ERROR = struct.Struct('=i')            # struct nlmsgerr, its error field
_LINK = struct.Struct('=BxHiII')        # struct ifinfomsg
_ADDR = struct.Struct('=BBBBI')         # struct ifaddrmsg
_NEIGH = struct.Struct('=BxxxiHBB')     # struct ndmsg
IFLA_IFNAME, IFLA_MTU, IFLA_CARRIER = 3, 4, 33
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST = 1


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


# --- attribute values of plain types ------------------------------------------

def _number(fmt):
    packer = struct.Struct(fmt)
    return (lambda payload: packer.unpack(payload)[0]), packer.pack


_ADDRESS_FAMILY = {4: socket.AF_INET, 16: socket.AF_INET6}


def _decode_address(payload):
    return socket.inet_ntop(_ADDRESS_FAMILY[len(payload)], payload)


def _encode_address(value):
    return socket.inet_pton(socket.AF_INET6 if ':' in value else socket.AF_INET, value)


def _decode_name(payload):
    return payload.strip(b'\0').decode('utf-8')


def _encode_name(value):
    return value.encode('utf-8') + b'\0'


# pyroute2's attribute types that hold one plain value: (decode, encode).
# A payload they cannot read raises one of _UNREADABLE.
_PLAIN = {'uint8': _number('=B'), 'uint16': _number('=H'), 'uint32': _number('=I'),
          'be16': _number('>H'), 'be32': _number('>I'),
          'ipaddr': (_decode_address, _encode_address), 'target': (_decode_address, _encode_address),
          'asciiz': (_decode_name, _encode_name)}
_UNREADABLE = (KeyError, ValueError, struct.error)


class _Layout:
    """How rule or route messages are laid out: header fields, attribute numbers and types.

    The names and types come from pyroute2's message class, so a message
    packed here and one packed by pyroute2 are the same bytes (the unit tests
    check it), and a message read here carries the same names and values as
    the one pyroute2 would have decoded.
    """

    def __init__(self, msg_class, header, fields):
        self.msg_class = msg_class
        self.header = struct.Struct(header)     # reserved bytes are pad bytes ('x')
        self.fields = fields
        self.readers = {}       # number: (name, decode)
        self.writers = {}       # name: (number, encode)
        for number, entry in enumerate(msg_class.nla_map):
            if len(entry) == 3:
                number, name, kind = entry
            else:
                name, kind = entry
            if kind in _PLAIN:
                decode, encode = _PLAIN[kind]
                self.readers[number] = (name, decode)
                self.writers[name] = (number, encode)

    def decode(self, message):
        """(header, attrs) of one message (nlmsghdr included); pyroute2 reads what is not plain."""
        header = dict(zip(self.fields, self.header.unpack_from(message, _HEADER.size)))
        attrs = []
        offset = _HEADER.size + self.header.size
        end = len(message)
        while offset + 4 <= end:
            length, number = _ATTR.unpack_from(message, offset)
            reader = self.readers.get(number)
            if reader is None or length < 4 or offset + length > end:
                return self._decode_by_pyroute2(message)
            try:
                attrs.append((reader[0], reader[1](message[offset + 4:offset + length])))
            except _UNREADABLE:
                return self._decode_by_pyroute2(message)
            offset += (length + 3) & ~3
        return header, attrs

    def _decode_by_pyroute2(self, message):
        # Nested values are decoded on first use, through a weak reference to
        # the message: they are made plain data (what Raw.to_data gives) while
        # the message is still there.
        msg = self.msg_class(message)
        msg.decode()
        header = dict((key, dict.get(msg, key)) for key in self.fields if dict.get(msg, key) is not None)
        return header, [(nla[0], _plain(nla[1])) for nla in msg['attrs'] if nla[1] is not None]

    def encode(self, msg_type, flags, seq, raw):
        """The bytes of `raw` as a request (nlmsghdr included)."""
        header = dict(raw.header)
        if header.get('table', 0) > 255:
            # The header's table field is 8 bits; the real id travels as an attribute.
            header['table'] = RT_TABLE_COMPAT
        if not all(name in self.writers for name, _value in raw.attrs):
            return self._encode_by_pyroute2(msg_type, flags, seq, header, raw.attrs)
        parts = [b'', self.header.pack(*[header.get(name, 0) for name in self.fields])]
        for name, value in raw.attrs:
            number, encode = self.writers[name]
            payload = encode(value)
            parts.append(_ATTR.pack(4 + len(payload), number) + payload + b'\0' * (-len(payload) % 4))
        length = _HEADER.size + sum(len(part) for part in parts)
        parts[0] = _HEADER.pack(length, msg_type, flags, seq, 0)
        return b''.join(parts)

    def _encode_by_pyroute2(self, msg_type, flags, seq, header, attrs):
        msg = self.msg_class()
        for key, value in header.items():
            msg[key] = value
        msg['attrs'] = list(attrs)
        msg['header'] = {'type': msg_type, 'flags': flags, 'sequence_number': seq, 'pid': 0}
        msg.encode()
        return bytes(msg.data)


if HAS_PYROUTE2:
    _RULE = _Layout(rule_msg, '=BBBBBxxBI', ('family', 'dst_len', 'src_len', 'tos', 'table', 'action', 'flags'))
    _ROUTE = _Layout(route_msg, '=BBBBBBBBI',
                     ('family', 'dst_len', 'src_len', 'tos', 'table', 'proto', 'scope', 'type', 'flags'))


def _attributes(message, offset):
    """(type, payload) of each attribute from `offset` to the end of the message."""
    end = len(message)
    while offset + _ATTR.size <= end:
        length, number = _ATTR.unpack_from(message, offset)
        if length < _ATTR.size or offset + length > end:
            break
        yield number, message[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3


def _read(message, offset, wanted):
    """{type: payload} of the attributes in `wanted`; the others are skipped."""
    return dict((number, payload) for number, payload in _attributes(message, offset) if number in wanted)


# --- the socket ------------------------------------------------------------------

class Netlink:
    """A NETLINK_ROUTE socket: dumps, a route lookup, and batches of acknowledged changes."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.seq = 0
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
            try:
                # Acks of failed requests without a copy of the request: they stay small.
                self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            except OSError:
                pass
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.batch = max(1, min(_BATCH, self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // _ACK_ROOM))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _next_seq(self):
        self.seq += 1
        return self.seq

    def _receive(self):
        """The messages of the next datagram, as (type, flags, seq, message)."""
        data, _ancillary, flags, _address = self.sock.recvmsg(_DATAGRAM)
        if flags & socket.MSG_TRUNC:
            raise NetlinkError(errno.EMSGSIZE, 'a netlink answer was longer than %d bytes' % _DATAGRAM)
        found = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, msg_type, msg_flags, seq, _pid = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            found.append((msg_type, msg_flags, seq, data[offset:offset + length]))
            offset += (length + 3) & ~3
        return found

    def _request(self, msg_type, flags, body):
        seq = self._next_seq()
        self.sock.send(_HEADER.pack(_HEADER.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0) + body)
        return seq

    def dump(self, msg_type, body):
        """Every message a dump request answers, read again when the kernel says it was interrupted."""
        for _attempt in range(_DUMP_ATTEMPTS):
            seq = self._request(msg_type, NLM_F_DUMP, body)
            messages = []
            interrupted = done = False
            while not done:
                for reply_type, flags, reply_seq, message in self._receive():
                    if reply_seq != seq or done:
                        continue
                    interrupted = interrupted or bool(flags & NLM_F_DUMP_INTR)
                    if reply_type == NLMSG_ERROR and _error(message):
                        raise NetlinkError(_error(message))
                    done = reply_type in (NLMSG_DONE, NLMSG_ERROR)
                    if not done:
                        messages.append(message)
            if not interrupted:
                return messages
        raise NetlinkError(errno.EINTR, 'the dump was interrupted %d times by concurrent changes' % _DUMP_ATTEMPTS)

    def ask(self, msg_type, body):
        """The one message the kernel answers a request with; NetlinkError when it refuses."""
        seq = self._request(msg_type, 0, body)
        while True:
            for reply_type, _flags, reply_seq, message in self._receive():
                if reply_seq != seq:
                    continue
                if reply_type == NLMSG_ERROR:
                    raise NetlinkError(_error(message))
                return message

    def acknowledged(self, msg_type, body):
        """Send one request with NLM_F_ACK; the errno the kernel answers (0: done)."""
        seq = self._request(msg_type, NLM_F_ACK, body)
        while True:
            for reply_type, _flags, reply_seq, message in self._receive():
                if reply_seq == seq and reply_type == NLMSG_ERROR:
                    return _error(message)

    def send_batch(self, messages, stop_on_error):
        """Send requests ((layout, type, flags, Raw)) with NLM_F_ACK, self.batch to a write.

        Returns one error code per request: 0 done, an errno when refused,
        None when never sent (stop_on_error: no write goes out after one that
        had a refusal). The kernel carries out every request of a write in
        order, even those after a refused one.
        """
        codes = [None] * len(messages)
        for start in range(0, len(messages), self.batch):
            waiting = {}
            chunk = []
            for index in range(start, min(start + self.batch, len(messages))):
                layout, msg_type, flags, raw = messages[index]
                seq = self._next_seq()
                waiting[seq] = index
                chunk.append(layout.encode(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, raw))
            self.sock.send(b''.join(chunk))
            while waiting:
                for reply_type, _flags, seq, message in self._receive():
                    if reply_type == NLMSG_ERROR and seq in waiting:
                        codes[waiting.pop(seq)] = _error(message)
            if stop_on_error and any(codes[start:start + self.batch]):
                break
        return codes


def _error(message):
    """The errno an NLMSG_ERROR message carries; 0 for an ack."""
    return -_ERROR.unpack_from(message, _HEADER.size)[0]


def connect():
    return Netlink()


# --- dumps --------------------------------------------------------------------------

def _routes():
    """routes.py, imported when a link or route dump needs it: rail_rule never does."""
    from ansible_collections.roce.multirail.plugins.module_utils import routes
    return routes


def dump_links(nl):
    """{name: Link} with each link's state and IPv4 addresses, from a link and an address dump."""
    link = _routes().Link
    addresses = {}
    for message in nl.dump(RTM_GETADDR, _ADDR.pack(socket.AF_INET, 0, 0, 0, 0)):
        _family, prefixlen, _flags, _scope, index = _ADDR.unpack_from(message, _HEADER.size)
        found = _read(message, _HEADER.size + _ADDR.size, (IFA_ADDRESS, IFA_LOCAL))
        local = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
        if local is not None:
            addresses.setdefault(index, []).append('%s/%d' % (_decode_address(local), prefixlen))
    links = {}
    for message in nl.dump(RTM_GETLINK, _LINK.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        _family, _type, index, flags, _change = _LINK.unpack_from(message, _HEADER.size)
        found = _read(message, _HEADER.size + _LINK.size, (IFLA_IFNAME, IFLA_MTU, IFLA_CARRIER))
        name = _decode_name(found.get(IFLA_IFNAME, b''))
        links[name] = link(name=name, index=index, up=bool(flags & IFF_UP),
                           addresses=tuple(addresses.get(index, ())),
                           carrier=any(found.get(IFLA_CARRIER, b'')),
                           mtu=_PLAIN['uint32'][0](found[IFLA_MTU]) if IFLA_MTU in found else 0)
    return links


def dump_rules(nl):
    """Every IPv4 and IPv6 policy rule in kernel order, from one dump.

    Returns (rules, raw): raw maps each rule to the message it came from.
    """
    rules = []
    raw = {}
    for message in nl.dump(RTM_GETRULE, _RULE.header.pack(*[0] * len(_RULE.fields))):
        header, attrs = _RULE.decode(message)
        rule = rule_from_dump(header, dict(attrs))
        if rule is not None:
            rules.append(rule)
            raw[rule] = Raw(header, attrs)
    return rules, raw


def dump_routes(nl, links):
    """Every IPv4 route of every table, from one dump. Returns (routes, raw)."""
    route_from_dump = _routes().route_from_dump
    ifnames = dict((link.index, link.name) for link in links.values())
    routes = []
    raw = {}
    for message in nl.dump(RTM_GETROUTE, _ROUTE.header.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
        header, attrs = _ROUTE.decode(message)
        route = route_from_dump(header, dict(attrs), ifnames)
        routes.append(route)
        raw[route] = Raw(header, attrs)
    return routes, raw


def dump_neighbours(nl):
    """[(ifindex, IPv4 address, NUD state)] of the neighbour table."""
    found = []
    for message in nl.dump(RTM_GETNEIGH, _NEIGH.pack(socket.AF_INET, 0, 0, 0, 0)):
        _family, index, state, _flags, _type = _NEIGH.unpack_from(message, _HEADER.size)
        dst = _read(message, _HEADER.size + _NEIGH.size, (NDA_DST,)).get(NDA_DST)
        found.append((index, _decode_address(dst) if dst else None, state))
    return found


NUD_NOARP = 0x40
NUD_PERMANENT = 0x80


def forget_neighbour(nl, ifindex, address, state):
    """Drop the cached IPv4 neighbour entry of `address` on link `ifindex`, so the next packet resolves it anew.

    state: the entry's NUD state as dump_neighbours() gave it (0: no entry). A PERMANENT or NOARP
    entry is configuration, not a cache: it is left alone. Returns whether an entry was dropped;
    raises NetlinkError when the kernel refuses.
    """
    if not state or state & (NUD_NOARP | NUD_PERMANENT):
        return False
    payload = _encode_address(address)
    body = _NEIGH.pack(socket.AF_INET, ifindex, 0, 0, 0) + _ATTR.pack(4 + len(payload), NDA_DST) + payload
    code = nl.acknowledged(RTM_DELNEIGH, body)
    if code and code != errno.ENOENT:     # ENOENT: gone meanwhile, as good
        raise NetlinkError(code)
    return True


def route_get(nl, source, target):
    """{'oif', 'table', 'gateway'} of the kernel's answer to `ip route get TARGET from SOURCE`.

    RTM_F_LOOKUP_TABLE, as `ip route get` sets it: the answer names the table
    that matched, not main. Raises NetlinkError when there is no route.
    """
    raw = Raw({'family': socket.AF_INET, 'dst_len': 32, 'src_len': 32, 'table': RT_TABLE_MAIN,
               'flags': RTM_F_LOOKUP_TABLE}, [('RTA_DST', target), ('RTA_SRC', source)])
    message = nl.ask(RTM_GETROUTE, _ROUTE.encode(RTM_GETROUTE, 0, 0, raw)[_HEADER.size:])
    wanted = dict((_ROUTE.writers[name][0], name) for name in ('RTA_OIF', 'RTA_TABLE', 'RTA_GATEWAY'))
    found = _read(message, _HEADER.size + _ROUTE.header.size, wanted)
    return dict((wanted[number], _ROUTE.readers[number][1](payload)) for number, payload in found.items())


# --- changes --------------------------------------------------------------------------

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
    """A dumped route made fit to send back: no dump-only attributes or flags.

    The flags a dump shows on the route and on each of its nexthops
    (linkdown, dead, offload, trap...) are the kernel's own report, refused in
    a request; only onlink, which a request asks for, is kept.
    """
    attrs = [(k, v) for k, v in raw.attrs if k not in _ROUTE_DUMP_ONLY]
    if any(k == 'RTA_NH_ID' for k, _v in attrs):
        # A route using a nexthop object must not also name its gateway or device.
        attrs = [(k, v) for k, v in attrs if k not in ('RTA_GATEWAY', 'RTA_OIF', 'RTA_MULTIPATH', 'RTA_FLOW')]
    attrs = [(k, _requested_hops(v) if k == 'RTA_MULTIPATH' else v) for k, v in attrs]
    header = dict(raw.header)
    header['flags'] = header.get('flags', 0) & RTNH_F_ONLINK
    return Raw(header, attrs)


def _requested_hops(hops):
    if not isinstance(hops, (list, tuple)):
        return hops
    return [dict(hop, flags=(hop.get('flags') or 0) & RTNH_F_ONLINK) if isinstance(hop, dict) else hop
            for hop in hops]


class DeviceGone(Exception):
    """A route of a snapshot goes through a NIC the host no longer has."""


def reindexed(raw, names, links):
    """A snapshot's route with its interface indexes made those of the same NICs now.

    names: {index: name} when the snapshot was taken (None: keep the indexes);
    links: {name: Link} now. Raises DeviceGone naming a NIC that is gone, so
    that a stale index never sends the route through another NIC.
    """
    if names is None:
        return raw

    def index(old):
        name = names.get(old)
        if name is None or name not in links:
            raise DeviceGone('dev %s is gone' % (name or 'with index %s' % old))
        return links[name].index

    attrs = []
    for name, value in raw.attrs:
        if name == 'RTA_OIF':
            value = index(value)
        elif name == 'RTA_MULTIPATH' and isinstance(value, (list, tuple)):
            value = [dict(hop, oif=index(hop['oif'])) if isinstance(hop, dict) and hop.get('oif') else hop
                     for hop in value]
        attrs.append((name, value))
    return Raw(dict(raw.header), attrs)


def _route_for_delete(raw):
    """The attributes that make a delete hit this route and no other."""
    attrs = [(k, v) for k, v in _route_for_create(raw).attrs if k in _ROUTE_DELETE_ATTRS]
    return Raw(dict(raw.header, flags=0), attrs)


def _says(template, obj, *more):
    """A step's text, made only when a message needs it."""
    return lambda: template % ((obj.render(),) + more)


def _run(nl, steps):
    """Send (do, undo, text) steps, each a (layout, type, flags, Raw) request, as batches.

    All or nothing: when the kernel refuses a step, every step it carried out
    (earlier ones, and later ones of the same batch) is undone in reverse
    order, and ApplyError names the first refused step.
    """
    codes = nl.send_batch([do for do, _undo, _text in steps], stop_on_error=True)
    refused = [index for index, code in enumerate(codes) if code]
    if not refused:
        return
    done = [index for index, code in enumerate(codes) if code == 0]
    undo_codes = nl.send_batch([steps[index][1] for index in reversed(done)], stop_on_error=False)
    failed = [steps[index][2]() for index, code in zip(reversed(done), undo_codes) if code]
    note = ('; rolled back the %d change(s) it had made' % len(done)) if done else ''
    if failed:
        note += '; could not roll back: %s' % ', '.join(failed)
    first = refused[0]
    raise ApplyError('%s failed: %s%s' % (steps[first][2](), NetlinkError(codes[first]), note))


def apply_rules(nl, changes, raw):
    """Send the planned rule operations; dumped rules travel as they were dumped."""
    def add(rule):
        return (_RULE, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, raw.get(rule) or rule_raw(rule))

    def delete(rule):
        return (_RULE, RTM_DELRULE, 0, raw.get(rule) or rule_raw(rule))

    steps = []
    for op, rule in changes.ops:
        if op == 'add':
            steps.append((add(rule), delete(rule), _says('adding rule "%s"', rule)))
        else:
            steps.append((delete(rule), add(rule), _says('removing rule "%s"', rule)))
    _run(nl, steps)


def apply_routes(nl, changes, links, raw, order):
    """Replace, add (direct routes before gateway routes), then remove."""
    def create(route):
        return _route_for_create(raw[route]) if route in raw else route_raw(route, links)

    def remove(route):
        return _route_for_delete(raw[route]) if route in raw else route_raw(route, links)

    replace = NLM_F_CREATE | NLM_F_REPLACE
    add = NLM_F_CREATE | NLM_F_EXCL
    steps = []
    for old, new in changes.replace:
        steps.append(((_ROUTE, RTM_NEWROUTE, replace, create(new)), (_ROUTE, RTM_NEWROUTE, replace, create(old)),
                      _says('replacing "%s" in table %d', old, old.table)))
    for route in order(changes.add):
        steps.append(((_ROUTE, RTM_NEWROUTE, add, create(route)), (_ROUTE, RTM_DELROUTE, 0, remove(route)),
                      _says('adding "%s" to table %d', route, route.table)))
    for route in reversed(order(changes.remove)):
        steps.append(((_ROUTE, RTM_DELROUTE, 0, remove(route)), (_ROUTE, RTM_NEWROUTE, add, create(route)),
                      _says('removing "%s" from table %d', route, route.table)))
    _run(nl, steps)


_ROUTE_FLAGS = {'add': NLM_F_CREATE | NLM_F_EXCL, 'prepend': NLM_F_CREATE, 'append': NLM_F_CREATE | NLM_F_APPEND,
                'replace': NLM_F_CREATE | NLM_F_REPLACE}


def restore_each(nl, route_ops, rule_ops, snapshot_raw, current_raw, links, names):
    """Send a restore's route operations, then its rule operations, each on its own.

    A refusal stops nothing: every other object is still restored (tables
    before the rules that look them up). route_ops: TableChanges.ops;
    rule_ops: RuleChanges.ops; snapshot_raw / current_raw: {Route or Rule:
    Raw} as the snapshot and the dump now hold them (re-created objects come
    from the snapshot, removed ones from the dump); names: the snapshot's
    {index: name}. Returns {('route' | 'rule', object): why it was refused}.
    """
    requests, objects, errors = [], [], {}
    for op, route, _old in route_ops:
        try:
            if op == 'remove':
                request = (_ROUTE, RTM_DELROUTE, 0, _route_for_delete(current_raw[route]))
            else:
                raw = snapshot_raw.get(route)
                raw = reindexed(raw, names, links) if raw is not None else route_raw(route, links)
                request = (_ROUTE, RTM_NEWROUTE, _ROUTE_FLAGS[op], _route_for_create(raw))
        except DeviceGone as exc:
            errors[('route', route)] = str(exc)
            continue
        requests.append(request)
        objects.append(('route', route))
    for op, rule in rule_ops:
        raw = current_raw.get(rule) if op == 'del' else snapshot_raw.get(rule)
        raw = raw or snapshot_raw.get(rule) or current_raw.get(rule) or rule_raw(rule)
        if op == 'add':
            requests.append((_RULE, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, raw))
        else:
            requests.append((_RULE, RTM_DELRULE, 0, raw))
        objects.append(('rule', rule))
    for obj, code in zip(objects, nl.send_batch(requests, stop_on_error=False)):
        if code:
            errors.setdefault(obj, os.strerror(code))
    return errors
