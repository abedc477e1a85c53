"""Unit tests for plugins/module_utils/netlink.py: messages packed and read without pyroute2's codec.

Rule and route messages whose attributes are all plain values (numbers,
addresses, names) are packed and read with struct; the others go through
pyroute2. Both ways must give the same bytes and the same (name, value) pairs,
which pyroute2 itself is the judge of here. The kernel side (dumps, batches,
rollback) is tested in tests/integration/test_netlink_socket.py.
"""

import os
import subprocess
import sys

import pytest

from ansible_collections.roce.multirail.plugins.module_utils import netlink
from ansible_collections.roce.multirail.plugins.module_utils.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    Raw,
    route_raw,
    rule_raw,
)
from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, Route
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule

RULE, ROUTE = netlink._RULE, netlink._ROUTE
FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
LINKS = {'ib0': Link('ib0', 3, True, ('10.0.1.14/24',)), 'ib1': Link('ib1', 4, True, ('10.0.2.14/24',))}

OUR_RULES = [
    Rule(family=4, priority=1001, src='10.0.1.14/32', table=101),
    Rule(family=4, priority=1001, src='10.0.1.32/29', dst='10.9.0.0/16', table=300000),
    Rule(family=4, priority=1200, fwmark=0x10, fwmask=0xff, iif='ib0', oif='eth0.100', table=300),
    Rule(family=6, priority=1101, src='2001:db8:1::14/128', table=101, proto=0),
    Rule(family=6, priority=1102, dst='2001:db8::/32', table=4294967295),
]
OUR_ROUTES = [
    Route(table=101, dst='10.0.1.0/24', metric=100, dev='ib0', src='10.0.1.14', scope=253),
    Route(table=101, dst='0.0.0.0/0', metric=100, gateway='10.0.1.1', dev='ib0'),
    Route(table=300000, dst='10.0.0.0/16', gateway='10.9.9.9', dev='ib1', onlink=True, tos=0x10),
]
# Rules and routes as a dump returns them, with the attributes pyroute2 packs itself.
DUMPED_RULES = [
    Raw({'family': 2, 'dst_len': 0, 'src_len': 32, 'tos': 0, 'table': 104, 'action': 1, 'flags': 0},
        [('FRA_TABLE', 104), ('FRA_SUPPRESS_PREFIXLEN', 0xFFFFFFFF), ('FRA_PROTOCOL', 0), ('FRA_IIFNAME', 'ib0'),
         ('FRA_PRIORITY', 1006), ('FRA_UID_RANGE', '100:200'), ('FRA_SRC', '10.0.1.14')]),
    Raw({'family': 2, 'dst_len': 0, 'src_len': 0, 'tos': 0, 'table': 106, 'action': 1, 'flags': 0},
        [('FRA_TABLE', 106), ('FRA_PRIORITY', 1007), ('FRA_IP_PROTO', 6), ('FRA_SPORT_RANGE', '1000:2000'),
         ('FRA_DPORT_RANGE', '80:80'), ('FRA_DPORT_MASK', 0xffff)]),
    Raw({'family': 2, 'dst_len': 0, 'src_len': 24, 'tos': 16, 'table': 103, 'action': 1, 'flags': 2},
        [('FRA_TABLE', 103), ('FRA_SUPPRESS_PREFIXLEN', 0), ('FRA_PRIORITY', 1004), ('FRA_SRC', '10.0.9.0'),
         ('FRA_FWMARK', 7), ('FRA_FWMASK', 0xffffffff), ('FRA_OIFNAME', 'ib1'), ('FRA_L3MDEV', 0)]),
]
DUMPED_ROUTES = [
    Raw({'family': 2, 'dst_len': 0, 'src_len': 0, 'tos': 0, 'table': 252, 'proto': 3, 'scope': 0, 'type': 1,
         'flags': 0},
        [('RTA_TABLE', 300000), ('RTA_PRIORITY', 5), ('RTA_GATEWAY', '10.0.2.1'), ('RTA_OIF', 4),
         ('RTA_METRICS', {'attrs': [('RTAX_MTU', 1400)]})]),
    Raw({'family': 2, 'dst_len': 24, 'src_len': 0, 'tos': 0, 'table': 102, 'proto': 3, 'scope': 0, 'type': 1,
         'flags': 0},
        [('RTA_TABLE', 102), ('RTA_DST', '198.51.100.0'),
         ('RTA_MULTIPATH', [{'oif': 3, 'attrs': [('RTA_GATEWAY', '10.0.1.1')]},
                            {'oif': 4, 'attrs': [('RTA_GATEWAY', '10.0.2.1')]}])]),
    Raw({'family': 2, 'dst_len': 16, 'src_len': 0, 'tos': 0, 'table': 103, 'proto': 3, 'scope': 0, 'type': 1,
         'flags': 0},
        [('RTA_TABLE', 103), ('RTA_DST', '10.8.0.0'), ('RTA_NH_ID', 7)]),
    Raw({'family': 2, 'dst_len': 16, 'src_len': 0, 'tos': 0, 'table': 102, 'proto': 3, 'scope': 253, 'type': 6,
         'flags': 0},
        [('RTA_TABLE', 102), ('RTA_DST', '10.7.0.0')]),
]
RULE_MESSAGES = [rule_raw(rule) for rule in OUR_RULES] + DUMPED_RULES
ROUTE_MESSAGES = [route_raw(route, LINKS) for route in OUR_ROUTES] + DUMPED_ROUTES


def packed(layout, msg_type, raw):
    """The message as pyroute2 packs it."""
    header = dict(raw.header)
    if header.get('table', 0) > 255:
        header['table'] = netlink.RT_TABLE_COMPAT
    return layout._encode_by_pyroute2(msg_type, FLAGS, 7, header, raw.attrs)


def ident(value):
    """A test id that is the same in every process (pytest-xdist compares them): what a message holds."""
    if isinstance(value, netlink.Raw):
        data = value.to_data()
        return '-'.join(['%s=%s' % item for item in sorted(data['header'].items()) if item[1]] +
                        ['%s=%s' % (name.split('_', 1)[-1].lower(), val) for name, val in data['attrs']])
    return type(value).__name__ if not isinstance(value, str) else value


@pytest.mark.parametrize('raw', RULE_MESSAGES[:len(OUR_RULES)] + DUMPED_RULES[2:], ids=ident)
def test_plain_rules_are_packed_as_pyroute2_packs_them(raw):
    assert all(name in RULE.writers for name, _value in raw.attrs)
    assert RULE.encode(RTM_NEWRULE, FLAGS, 7, raw) == packed(RULE, RTM_NEWRULE, raw)


@pytest.mark.parametrize('raw', ROUTE_MESSAGES[:len(OUR_ROUTES)] + DUMPED_ROUTES[3:], ids=ident)
def test_plain_routes_are_packed_as_pyroute2_packs_them(raw):
    assert all(name in ROUTE.writers for name, _value in raw.attrs)
    for msg_type in (RTM_NEWROUTE, RTM_DELROUTE):
        assert ROUTE.encode(msg_type, FLAGS, 7, raw) == packed(ROUTE, msg_type, raw)


@pytest.mark.parametrize('layout, raw', [(RULE, raw) for raw in RULE_MESSAGES] + [(ROUTE, raw) for raw in ROUTE_MESSAGES],
                         ids=ident)
def test_every_message_reads_back_as_pyroute2_reads_it(layout, raw):
    message = layout.encode(RTM_NEWROUTE if layout is ROUTE else RTM_NEWRULE, FLAGS, 7, raw)
    header, attrs = layout.decode(message)
    assert (header, attrs) == layout._decode_by_pyroute2(message)
    names = [name for name, _value in raw.attrs]
    assert [name for name, _value in attrs] == names
    plain = [(name, value) for name, value in raw.attrs if not isinstance(value, (dict, list))]
    assert [pair for pair in attrs if pair[0] in dict(plain)] == plain


@pytest.mark.parametrize('layout, raw', [(RULE, raw) for raw in DUMPED_RULES] + [(ROUTE, raw) for raw in DUMPED_ROUTES],
                         ids=ident)
def test_a_dumped_message_read_back_packs_into_the_same_bytes(layout, raw):
    """What a rollback sends to re-create a dumped rule or route is what the dump said."""
    msg_type = RTM_NEWROUTE if layout is ROUTE else RTM_NEWRULE
    message = layout.encode(msg_type, FLAGS, 7, raw)
    header, attrs = layout.decode(message)
    assert layout.encode(msg_type, FLAGS, 7, Raw(header, attrs)) == message
    assert layout.encode(msg_type, FLAGS, 7, Raw.from_data(Raw(header, attrs).to_data())) == message


def test_a_table_above_255_travels_as_attribute_with_the_compat_id_in_the_header():
    message = RULE.encode(RTM_NEWRULE, FLAGS, 7, rule_raw(OUR_RULES[1]))
    header, attrs = RULE.decode(message)
    assert header['table'] == netlink.RT_TABLE_COMPAT
    assert ('FRA_TABLE', 300000) in attrs


def test_attributes_pyroute2_does_not_know_are_read_as_unknown():
    raw = Raw(DUMPED_ROUTES[3].header, DUMPED_ROUTES[3].attrs)
    message = ROUTE.encode(RTM_NEWROUTE, FLAGS, 7, raw)
    unknown = netlink._ATTR.pack(8, 99) + b'\x01\x00\x00\x00'
    message = netlink._HEADER.pack(len(message) + len(unknown), RTM_NEWROUTE, FLAGS, 7, 0) + message[16:] + unknown
    _header, attrs = ROUTE.decode(message)
    assert attrs[:-1] == raw.attrs and attrs[-1][0] == 'UNKNOWN'


def test_importing_netlink_runs_only_the_message_classes_of_pyroute2_and_pyroute2_still_works_whole():
    """pyroute2/__init__.py (asyncio, ndb, ipdb...) is not run, until someone asks the package for a name."""
    code = '\n'.join([
        'import sys',
        'from ansible_collections.roce.multirail.plugins.module_utils import netlink',
        'assert netlink.HAS_PYROUTE2',
        'heavy = [m for m in ("asyncio", "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.iproute") if m in sys.modules]',
        'assert not heavy, heavy',
        'from pyroute2 import IPRoute, NDB',
        'import pyroute2.netlink.rtnl.fibmsg as fib',
        'assert fib.fibmsg is netlink.fibmsg and "pyroute2.ndb" in sys.modules',
    ])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
