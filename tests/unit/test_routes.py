"""Unit tests for plugins/module_utils/routes.py: dump normalization, parsing, validation, decision.

The header/attrs pairs below are real IPv4 RTM_NEWROUTE dumps (pyroute2, kernel 6.x) of routes made
with `ip route add ...` on a veth whose peer was down (hence the linkdown bit 16 in flags); the
expected texts are what `ip route show table N` printed for them, minus the "linkdown" flag.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.routes import (
    Link,
    Route,
    TableSpec,
    add_order,
    decide_routes,
    desired_tables,
    render_tables,
    route_from_dump,
    validate_routes,
)

IFNAMES = {1: 'lo', 3: 'ib0', 4: 'ib1'}


def hdr(**kw):
    base = {'family': 2, 'dst_len': 0, 'tos': 0, 'table': 254, 'proto': 4, 'scope': 0, 'type': 1, 'flags': 0}
    base.update(kw)
    return base


# `ip route add default via 10.0.1.1 dev ib0 table 101 proto static metric 100 onlink`
DEFAULT_ONLINK = (hdr(table=101, flags=20),
                  {'RTA_TABLE': 101, 'RTA_PRIORITY': 100, 'RTA_GATEWAY': '10.0.1.1', 'RTA_OIF': 3})
# `ip route add 10.0.1.0/24 dev ib0 table 101 proto static scope link src 10.0.1.14 metric 100`
SUBNET = (hdr(dst_len=24, table=101, scope=253, flags=16),
          {'RTA_TABLE': 101, 'RTA_DST': '10.0.1.0', 'RTA_PRIORITY': 100, 'RTA_PREFSRC': '10.0.1.14', 'RTA_OIF': 3})
# `ip route add 10.0.5.0/24 dev ib0 table 101 proto static metric 7 mtu 1500`
WITH_MTU = (hdr(dst_len=24, table=101, scope=253, flags=16),
            {'RTA_TABLE': 101, 'RTA_DST': '10.0.5.0', 'RTA_PRIORITY': 7,
             'RTA_METRICS': {'attrs': [('RTAX_MTU', 1500)]}, 'RTA_OIF': 3})
# `ip route add 10.0.0.0/16 via 10.0.1.1 dev ib0 table 300000 proto static metric 100`
BIG_TABLE = (hdr(dst_len=16, table=252, flags=16),
             {'RTA_TABLE': 300000, 'RTA_DST': '10.0.0.0', 'RTA_PRIORITY': 100, 'RTA_GATEWAY': '10.0.1.1',
              'RTA_OIF': 3})


def r(table=101, dst='0.0.0.0/0', **kw):
    return Route(table=table, dst=dst, **kw)


SUBNET_ROUTE = r(dst='10.0.1.0/24', metric=100, dev='ib0', src='10.0.1.14', scope=253)
DEFAULT_ROUTE = r(metric=100, gateway='10.0.1.1', dev='ib0')


# --- route_from_dump ---------------------------------------------------------

def test_route_from_dump_subnet_route():
    assert route_from_dump(*SUBNET, IFNAMES) == SUBNET_ROUTE


def test_route_from_dump_onlink_from_flag_4_and_linkdown_ignored():
    assert route_from_dump(*DEFAULT_ONLINK, IFNAMES) == DEFAULT_ROUTE._replace(onlink=True)
    header, attrs = DEFAULT_ONLINK
    assert route_from_dump(dict(header, flags=16), attrs, IFNAMES) == DEFAULT_ROUTE
    assert route_from_dump(dict(header, flags=0), attrs, IFNAMES) == DEFAULT_ROUTE
    assert route_from_dump(dict(header, flags=4), attrs, IFNAMES).onlink is True


def test_route_from_dump_table_from_attribute_not_header():
    route = route_from_dump(*BIG_TABLE, IFNAMES)
    assert route.table == 300000
    assert route == Route(table=300000, dst='10.0.0.0/16', metric=100, gateway='10.0.1.1', dev='ib0')


def test_route_from_dump_table_from_header_without_attribute():
    header, attrs = SUBNET
    attrs = dict(attrs)
    del attrs['RTA_TABLE']
    assert route_from_dump(header, attrs, IFNAMES).table == 101


def test_route_from_dump_defaults():
    route = route_from_dump(hdr(table=101, proto=3, scope=253, type=1), {'RTA_TABLE': 101, 'RTA_OIF': 4}, IFNAMES)
    assert route == Route(table=101, dst='0.0.0.0/0', metric=0, dev='ib1', scope=253, proto=3)


def test_route_from_dump_unknown_ifindex():
    header, attrs = SUBNET
    assert route_from_dump(header, dict(attrs, RTA_OIF=42), IFNAMES).dev == 'if42'
    no_oif = dict(attrs)
    del no_oif['RTA_OIF']
    assert route_from_dump(header, no_oif, IFNAMES).dev == ''


def test_route_from_dump_extra_attributes():
    route = route_from_dump(*WITH_MTU, IFNAMES)
    assert route.extra == (('RTA_METRICS', 'RTAX_MTU=1500'),)
    plain_attrs = dict(WITH_MTU[1])
    del plain_attrs['RTA_METRICS']
    assert route != route_from_dump(WITH_MTU[0], plain_attrs, IFNAMES)


def test_route_from_dump_multipath_is_extra():
    attrs = {'RTA_TABLE': 101, 'RTA_PRIORITY': 100,
             'RTA_MULTIPATH': [{'oif': 3, 'hops': 0, 'attrs': [('RTA_GATEWAY', '10.0.1.1')]},
                               {'oif': 4, 'hops': 0, 'attrs': [('RTA_GATEWAY', '10.0.2.1')]}]}
    route = route_from_dump(hdr(table=101), attrs, IFNAMES)
    assert route.dev == '' and route.gateway == ''
    assert route.extra == (('RTA_MULTIPATH', '[via=10.0.1.1,dev=ib0;via=10.0.2.1,dev=ib1]'),)
    other = dict(attrs, RTA_MULTIPATH=[{'oif': 3, 'hops': 0, 'attrs': [('RTA_GATEWAY', '10.0.1.1')]}])
    assert route_from_dump(hdr(table=101), other, IFNAMES) != route


def test_route_from_dump_known_attributes_are_not_extra():
    header, attrs = SUBNET
    attrs = dict(attrs, RTA_CACHEINFO={'rta_clntref': 0}, RTA_PREF=0, RTA_UNSPEC=None)
    assert route_from_dump(header, attrs, IFNAMES).extra == ()


def test_route_from_dump_type_and_tos():
    route = route_from_dump(hdr(dst_len=24, table=101, type=7, tos=0x10),
                            {'RTA_TABLE': 101, 'RTA_DST': '10.0.9.0'}, IFNAMES)
    assert (route.type, route.tos) == (7, 0x10)
    assert route.key() == (101, '10.0.9.0/24', 0x10, 0)


# --- render ------------------------------------------------------------------

@pytest.mark.parametrize('dump, text', [
    (SUBNET, '10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100'),
    (DEFAULT_ONLINK, 'default via 10.0.1.1 dev ib0 proto static metric 100 onlink'),
    (BIG_TABLE, '10.0.0.0/16 via 10.0.1.1 dev ib0 proto static metric 100'),
])
def test_render_matches_ip_route(dump, text):
    assert route_from_dump(*dump, IFNAMES).render() == text


def test_render_forms():
    assert DEFAULT_ROUTE.render() == 'default via 10.0.1.1 dev ib0 proto static metric 100'
    assert SUBNET_ROUTE.render() == '10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100'
    assert r(dst='10.0.1.14/32', dev='ib0', proto=3, scope=253).render() == '10.0.1.14 dev ib0 scope link'
    assert r(dst='10.0.1.0/24', dev='ib0', proto=2, scope=253).render() == \
        '10.0.1.0/24 dev ib0 proto kernel scope link'
    assert r(dst='10.9.0.0/16', type=7, proto=3).render() == 'unreachable 10.9.0.0/16'
    assert r(dst='10.9.0.0/16', tos=0x10, dev='ib0').render() == '10.9.0.0/16 tos 0x10 dev ib0 proto static'


def test_as_dict():
    assert DEFAULT_ROUTE._replace(onlink=True).as_dict() == {
        'table': 101, 'dst': '0.0.0.0/0', 'metric': 100, 'dev': 'ib0', 'scope': 'global', 'proto': 'static',
        'type': 'unicast', 'gateway': '10.0.1.1', 'onlink': True,
        'text': 'default via 10.0.1.1 dev ib0 proto static metric 100 onlink'}
    assert 'gateway' not in SUBNET_ROUTE.as_dict()
    assert SUBNET_ROUTE.as_dict()['src'] == '10.0.1.14'


def test_render_tables():
    text = render_tables({102: (r(table=102, metric=100, gateway='10.0.2.1', dev='ib1'),),
                          101: (DEFAULT_ROUTE, SUBNET_ROUTE), 103: ()})
    assert text == ('table 101:\n'
                    '  default via 10.0.1.1 dev ib0 proto static metric 100\n'
                    '  10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100\n'
                    'table 102:\n'
                    '  default via 10.0.2.1 dev ib1 proto static metric 100\n'
                    'table 103:\n')
    assert render_tables({}) == ''


# --- desired_tables ----------------------------------------------------------

def test_desired_tables_textbook_rail():
    tables = desired_tables([{'table': 101, 'routes': [
        {'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 100},
        {'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib0', 'metric': 100},
    ]}])
    assert tables == [TableSpec(table=101, routes=(SUBNET_ROUTE, DEFAULT_ROUTE), matches=())]


def test_desired_tables_equal_kernel_dumps():
    """What the operator asks for compares equal to what the kernel reports once it is applied."""
    tables = desired_tables([
        {'table': 101, 'routes': [
            {'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 100},
            {'dst': '0.0.0.0/0', 'gateway': '10.0.1.1', 'dev': 'ib0', 'metric': 100, 'onlink': True}]},
        {'table': 300000, 'routes': [{'dst': '10.0.0.0/16', 'gateway': '10.0.1.1', 'dev': 'ib0', 'metric': 100}]},
    ])
    current = [route_from_dump(*d, IFNAMES) for d in (SUBNET, DEFAULT_ONLINK, BIG_TABLE)]
    changes = decide_routes(current, tables, purge=True)
    assert changes.add == () and changes.replace == () and changes.remove == ()


def test_desired_tables_scope():
    routes = desired_tables([{'table': 101, 'routes': [
        {'dst': '10.0.1.0/24', 'dev': 'ib0'},
        {'dst': '10.0.0.0/16', 'gateway': '10.0.1.1', 'dev': 'ib0'},
        {'dst': '10.0.2.0/24', 'dev': 'ib0', 'scope': 'global'},
        {'dst': '10.0.3.0/24', 'dev': 'ib0', 'scope': 'host'},
        {'dst': '10.0.4.0/24', 'dev': 'ib0', 'scope': '200'},
        {'dst': '10.0.5.0/24', 'dev': 'ib0', 'scope': ' Link '},
    ]}])[0].routes
    assert [route.scope for route in routes] == [253, 0, 0, 254, 200, 253]
    assert all(route.metric == 0 and route.proto == 4 and route.type == 1 for route in routes)


def test_desired_tables_onlink_and_empty():
    tables = desired_tables([{'table': 101, 'routes': [
        {'dst': 'default', 'gateway': '192.168.0.1', 'dev': 'ib0', 'onlink': True}]},
        {'table': 102}, {'table': 103, 'routes': None}])
    assert tables[0].routes[0].onlink is True
    assert tables[1] == TableSpec(table=102, routes=())
    assert tables[2] == TableSpec(table=103, routes=())


def test_desired_tables_absent_builds_matches():
    tables = desired_tables([{'table': 101, 'routes': [
        {'dst': 'default'},
        {'dst': '10.0.1.0/24', 'dev': 'ib0', 'metric': 100, 'gateway': '10.0.1.1'}]},
        {'table': 102}], state='absent')
    assert tables == [
        TableSpec(table=101, routes=(), matches=(('0.0.0.0/0', None, '', ''),
                                                 ('10.0.1.0/24', 100, '10.0.1.1', 'ib0'))),
        TableSpec(table=102, routes=(), matches=()),
    ]


@pytest.mark.parametrize('specs, message', [
    ([{'routes': []}], r'^tables\[0\]: table is required$'),
    ([{'table': 254}], r'^tables\[0\]: table 254 is reserved \(main\)'),
    ([{'table': 255}], r'^tables\[0\]: table 255 is reserved \(local\)'),
    ([{'table': 0}], r'^tables\[0\]: table 0 is reserved'),
    ([{'table': '101'}], r"^tables\[0\]: table '101' is not an integer$"),
    ([{'table': 101}, {'table': 102}, {'table': 101}], r'^tables\[2\]: table 101 is already listed as tables\[0\]$'),
    ([{'table': 101, 'routes': [{'dev': 'ib0'}]}], r'^table 101 route 0: dst is required$'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.14/24', 'dev': 'ib0'}]}],
     r'^table 101 route 0: dst 10.0.1.14/24 has host bits set; use 10.0.1.0/24 for the subnet'),
    ([{'table': 101, 'routes': [{'dst': '2001:db8::/32', 'dev': 'ib0'}]}],
     r'^table 101 route 0: dst 2001:db8::/32 is IPv6; rail_table manages IPv4 routes only$'),
    ([{'table': 101, 'routes': [{'dst': 'default', 'gateway': '10.0.1.1'}]}],
     r'^table 101 route default: dev is required'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'gateway': 'fe80::1'}]}],
     r'^table 101 route 10.0.1.0/24: gateway fe80::1 is not an IPv4 address$'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'gateway': '10.0.1.0/24'}]}],
     r"^table 101 route 10.0.1.0/24: gateway '10.0.1.0/24' is not an IP address$"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0:1'}]}],
     r"^table 101 route 10.0.1.0/24: dev 'ib0:1' is not a valid interface name"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14/24'}]}],
     r"^table 101 route 10.0.1.0/24: src '10.0.1.14/24' is not an IP address$"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'metric': -1}]}],
     r'^table 101 route 10.0.1.0/24: metric -1 is out of range'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'metric': '100'}]}],
     r"^table 101 route 10.0.1.0/24: metric '100' is not an integer$"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'scope': 'planet'}]}],
     r"^table 101 route 10.0.1.0/24: scope 'planet' is not an integer$"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'scope': '256'}]}],
     r"^table 101 route 10.0.1.0/24: scope '256' is out of range 0-255$"),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'scope': 256}]}],
     r'^table 101 route 10.0.1.0/24: scope 256 is out of range 0-255$'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'onlink': True}]}],
     r'^table 101 route 10.0.1.0/24: onlink needs a gateway$'),
    ([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0', 'metric': 100},
                                {'dst': '10.0.2.0/24', 'dev': 'ib0', 'metric': 100},
                                {'dst': '10.0.1.0/24', 'dev': 'ib1', 'metric': 100}]}],
     r'^table 101 route 10.0.1.0/24: route 2 has the same dst and metric as route 0'),
    ([{'table': 101, 'routes': [{'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib0'},
                                {'dst': '0.0.0.0/0', 'gateway': '10.0.2.1', 'dev': 'ib1', 'metric': 0}]}],
     r'^table 101 route default: route 1 has the same dst and metric as route 0'),
])
def test_desired_tables_errors(specs, message):
    with pytest.raises(InvalidArgument, match=message):
        desired_tables(specs)


def test_desired_tables_same_dst_different_metric_is_fine():
    tables = desired_tables([{'table': 101, 'routes': [{'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib0',
                                                        'metric': 100},
                                                       {'dst': 'default', 'gateway': '10.0.2.1', 'dev': 'ib1',
                                                        'metric': 200}]}])
    assert len(tables[0].routes) == 2


def test_desired_tables_absent_needs_no_dev():
    desired_tables([{'table': 101, 'routes': [{'dst': '10.0.1.0/24'}]}], state='absent')
    with pytest.raises(InvalidArgument, match='dst 2001:db8::/32 is IPv6'):
        desired_tables([{'table': 101, 'routes': [{'dst': '2001:db8::/32'}]}], state='absent')


_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_ROUTE_VALUES = {
    'dst': st.one_of(st.sampled_from(['default', '10.0.1.0/24', '10.0.1.14/24', '::/0', '10.0.0.0/16']), _ANY),
    'gateway': st.one_of(st.sampled_from(['10.0.1.1', 'fe80::1', '10.0.1.0/24']), _ANY),
    'dev': st.one_of(st.sampled_from(['ib0', 'ib1', 'x' * 16, 'a:b']), _ANY),
    'src': st.one_of(st.sampled_from(['10.0.1.14', '10.0.1.14/24']), _ANY),
    'scope': st.one_of(st.sampled_from(['link', 'global', '253', '300', 'x']), _ANY),
    'metric': st.one_of(st.sampled_from([0, 100, -1, 2 ** 32]), _ANY),
    'onlink': _ANY,
}


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(st.fixed_dictionaries({}, optional={
    'table': st.one_of(st.sampled_from([101, 102, 254, 300000]), _ANY),
    'routes': st.one_of(st.none(), st.lists(st.fixed_dictionaries({}, optional=_ROUTE_VALUES), max_size=3)),
}), max_size=3), state=st.sampled_from(['present', 'absent']))
def test_desired_tables_arbitrary_input_only_raises_invalid_argument(specs, state):
    try:
        tables = desired_tables(specs, state)
    except InvalidArgument:
        return
    for spec in tables:
        assert spec.table not in (0, 253, 254, 255)
        for route in spec.routes:
            assert route.dev and route.table == spec.table
            assert 0 <= route.scope <= 255
            assert not route.onlink or route.gateway


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(st.dictionaries(st.sampled_from(['table', 'routes', 'x']), _ANY), max_size=3))
def test_desired_tables_arbitrary_top_level_values_only_raise_invalid_argument(specs):
    try:
        desired_tables(specs)
    except InvalidArgument:
        pass


# --- validate_routes ---------------------------------------------------------

LINKS = {
    'lo': Link('lo', 1, True, ('127.0.0.1/8',)),
    'ib0': Link('ib0', 3, True, ('10.0.1.14/24',)),
    'ib1': Link('ib1', 4, True, ('10.0.2.14/24',)),
    'ib2': Link('ib2', 5, False, ('10.0.3.14/24',)),
    'ib3': Link('ib3', 6, True, ()),
}


def tables_of(*routes, table=101):
    return desired_tables([{'table': table, 'routes': list(routes)}])


def test_validate_routes_textbook_ok():
    validate_routes(tables_of({'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.14', 'metric': 100},
                              {'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib0', 'metric': 100}),
                    LINKS, [])


def test_validate_routes_missing_dev():
    with pytest.raises(InvalidArgument, match=r'^table 101 route default: dev ib9 does not exist on this host$'):
        validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib9'}), LINKS, [])


def test_validate_routes_down_dev():
    with pytest.raises(InvalidArgument, match=r'^table 101 route 10.0.3.0/24: dev ib2 is down; the kernel refuses'):
        validate_routes(tables_of({'dst': '10.0.3.0/24', 'dev': 'ib2'}), LINKS, [])


def test_validate_routes_gateway_outside_subnet():
    with pytest.raises(InvalidArgument) as err:
        validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [])
    assert str(err.value) == ('table 101 route default: gateway 10.0.9.1 is not reachable on dev ib0 '
                              '(its subnets: 10.0.1.0/24); fix the gateway or set onlink')


def test_validate_routes_gateway_on_another_nics_subnet():
    with pytest.raises(InvalidArgument, match=r'gateway 10.0.2.1 is not reachable on dev ib0'):
        validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.2.1', 'dev': 'ib0'}), LINKS, [])


def test_validate_routes_gateway_on_dev_without_address():
    with pytest.raises(InvalidArgument, match=r'on dev ib3 \(its subnets: none\)'):
        validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.1.1', 'dev': 'ib3'}), LINKS, [])


def test_validate_routes_gateway_reachable_via_direct_route_in_same_desired_table():
    validate_routes(tables_of({'dst': '10.0.0.0/16', 'dev': 'ib0'},
                              {'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [])


def test_validate_routes_direct_route_in_another_desired_table_does_not_count():
    tables = desired_tables([{'table': 102, 'routes': [{'dst': '10.0.0.0/16', 'dev': 'ib0'}]},
                             {'table': 101, 'routes': [{'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}]}])
    with pytest.raises(InvalidArgument, match='gateway 10.0.9.1 is not reachable'):
        validate_routes(tables, LINKS, [])


def test_validate_routes_direct_route_on_other_dev_does_not_count():
    with pytest.raises(InvalidArgument, match='gateway 10.0.9.1 is not reachable on dev ib0'):
        validate_routes(tables_of({'dst': '10.0.0.0/16', 'dev': 'ib1'},
                                  {'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [])


def test_validate_routes_gateway_reachable_via_existing_main_table_link_route():
    main = Route(table=254, dst='10.0.9.0/24', dev='ib0', scope=253, proto=3)
    validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [main])


def test_validate_routes_gateway_reachable_via_existing_route_in_same_table():
    same = Route(table=101, dst='10.0.9.0/24', dev='ib0', scope=253)
    validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [same])


@pytest.mark.parametrize('current', [
    Route(table=102, dst='10.0.9.0/24', dev='ib0', scope=253),                        # other table
    Route(table=254, dst='10.0.9.0/24', dev='ib1', scope=253),                        # other dev
    Route(table=254, dst='10.0.9.0/24', gateway='10.0.1.1', dev='ib0'),               # not direct
    Route(table=254, dst='10.0.9.0/24', dev='ib0', type=7),                           # unreachable
    Route(table=254, dst='10.0.8.0/24', dev='ib0', scope=253),                        # other subnet
], ids=['other-table', 'other-dev', 'via-gateway', 'unreachable-type', 'other-subnet'])
def test_validate_routes_existing_routes_that_do_not_make_the_gateway_reachable(current):
    with pytest.raises(InvalidArgument, match='gateway 10.0.9.1 is not reachable'):
        validate_routes(tables_of({'dst': 'default', 'gateway': '10.0.9.1', 'dev': 'ib0'}), LINKS, [current])


def test_validate_routes_onlink_skips_reachability():
    validate_routes(tables_of({'dst': 'default', 'gateway': '192.168.7.1', 'dev': 'ib0', 'onlink': True}),
                    LINKS, [])


def test_validate_routes_src_must_be_local():
    with pytest.raises(InvalidArgument, match=r'^table 101 route 10.0.1.0/24: src 10.0.1.99 is not an address '
                                              r'of this host$'):
        validate_routes(tables_of({'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.1.99'}), LINKS, [])
    # Any local address will do, even one on another NIC (the kernel accepts it).
    validate_routes(tables_of({'dst': '10.0.1.0/24', 'dev': 'ib0', 'src': '10.0.2.14'}), LINKS, [])


def test_validate_routes_absent_tables_are_not_checked():
    tables = desired_tables([{'table': 101, 'routes': [{'dst': 'default', 'dev': 'ib9'}]}], state='absent')
    validate_routes(tables, LINKS, [])


# --- decide_routes -----------------------------------------------------------

OTHER_TABLE = r(table=102, metric=100, gateway='10.0.2.1', dev='ib1')
MAIN = Route(table=254, dst='10.0.1.0/24', dev='ib0', scope=253, proto=2, src='10.0.1.14')


def test_decide_adds_missing_routes():
    tables = [TableSpec(101, (DEFAULT_ROUTE, SUBNET_ROUTE))]
    changes = decide_routes([MAIN, OTHER_TABLE], tables)
    assert changes.add == (DEFAULT_ROUTE, SUBNET_ROUTE)
    assert changes.replace == () and changes.remove == ()
    assert changes.before == {101: ()}
    assert changes.after == {101: (DEFAULT_ROUTE, SUBNET_ROUTE)}


def test_decide_no_op_when_equal():
    current = [MAIN, OTHER_TABLE, DEFAULT_ROUTE, SUBNET_ROUTE]
    changes = decide_routes(current, [TableSpec(101, (DEFAULT_ROUTE, SUBNET_ROUTE))], purge=True)
    assert changes.add == () and changes.replace == () and changes.remove == ()
    assert changes.before == changes.after == {101: (DEFAULT_ROUTE, SUBNET_ROUTE)}


@pytest.mark.parametrize('old', [
    DEFAULT_ROUTE._replace(gateway='10.0.1.254'),
    DEFAULT_ROUTE._replace(proto=3),
    DEFAULT_ROUTE._replace(dev='ib1'),
    DEFAULT_ROUTE._replace(onlink=True),
    DEFAULT_ROUTE._replace(extra=(('RTA_METRICS', 'RTAX_MTU=1500'),)),
], ids=['gateway', 'proto', 'dev', 'onlink', 'extra'])
def test_decide_replaces_same_key_with_other_attributes(old):
    changes = decide_routes([old, OTHER_TABLE], [TableSpec(101, (DEFAULT_ROUTE,))], purge=True)
    assert changes.replace == ((old, DEFAULT_ROUTE),)
    assert changes.add == () and changes.remove == ()
    assert changes.before == {101: (old,)}
    assert changes.after == {101: (DEFAULT_ROUTE,)}


def test_decide_other_metric_is_another_route():
    nm_route = DEFAULT_ROUTE._replace(metric=104)
    changes = decide_routes([nm_route], [TableSpec(101, (DEFAULT_ROUTE,))])
    assert changes.add == (DEFAULT_ROUTE,) and changes.replace == () and changes.remove == ()
    assert changes.after == {101: (DEFAULT_ROUTE, nm_route)}


def test_decide_purge_removes_unlisted_routes_of_listed_tables_only():
    extra = r(dst='10.0.9.0/24', dev='ib0', scope=253, proto=3)
    nm_route = DEFAULT_ROUTE._replace(metric=104)
    current = [MAIN, OTHER_TABLE, SUBNET_ROUTE, extra, nm_route]
    changes = decide_routes(current, [TableSpec(101, (DEFAULT_ROUTE, SUBNET_ROUTE))], purge=True)
    assert changes.add == (DEFAULT_ROUTE,)
    assert set(changes.remove) == {extra, nm_route}
    assert set(changes.before) == {101}
    assert changes.after == {101: (DEFAULT_ROUTE, SUBNET_ROUTE)}


def test_decide_without_purge_keeps_extras():
    extra = r(dst='10.0.9.0/24', dev='ib0', scope=253, proto=3)
    changes = decide_routes([extra, OTHER_TABLE], [TableSpec(101, (DEFAULT_ROUTE,))])
    assert changes.remove == ()
    assert changes.add == (DEFAULT_ROUTE,)
    assert changes.after == {101: (DEFAULT_ROUTE, extra)}


def test_decide_purge_with_empty_desired_table_empties_it():
    changes = decide_routes([SUBNET_ROUTE, DEFAULT_ROUTE, OTHER_TABLE], [TableSpec(101, ())], purge=True)
    assert set(changes.remove) == {SUBNET_ROUTE, DEFAULT_ROUTE}
    assert changes.after == {101: ()}


def test_decide_absent_with_matches():
    nm_route = DEFAULT_ROUTE._replace(metric=104)
    current = [MAIN, OTHER_TABLE, SUBNET_ROUTE, DEFAULT_ROUTE, nm_route]
    by_dst = desired_tables([{'table': 101, 'routes': [{'dst': 'default'}]}], state='absent')
    changes = decide_routes(current, by_dst, state='absent')
    assert set(changes.remove) == {DEFAULT_ROUTE, nm_route}
    assert changes.add == () and changes.replace == ()
    assert changes.after == {101: (SUBNET_ROUTE,)}

    by_metric = desired_tables([{'table': 101, 'routes': [{'dst': 'default', 'metric': 104}]}], state='absent')
    assert decide_routes(current, by_metric, state='absent').remove == (nm_route,)

    by_gateway = desired_tables([{'table': 101, 'routes': [{'dst': 'default', 'gateway': '10.0.1.2'}]}],
                                state='absent')
    assert decide_routes(current, by_gateway, state='absent').remove == ()

    by_dev = desired_tables([{'table': 101, 'routes': [{'dst': '10.0.1.0/24', 'dev': 'ib0'}]}], state='absent')
    assert decide_routes(current, by_dev, state='absent').remove == (SUBNET_ROUTE,)

    zero_metric = desired_tables([{'table': 101, 'routes': [{'dst': 'default', 'metric': 0}]}], state='absent')
    assert decide_routes(current, zero_metric, state='absent').remove == ()


def test_decide_absent_with_empty_table_removes_all_its_routes():
    current = [MAIN, OTHER_TABLE, SUBNET_ROUTE, DEFAULT_ROUTE]
    tables = desired_tables([{'table': 101}], state='absent')
    changes = decide_routes(current, tables, state='absent')
    assert set(changes.remove) == {SUBNET_ROUTE, DEFAULT_ROUTE}
    assert changes.before == {101: (DEFAULT_ROUTE, SUBNET_ROUTE)}
    assert changes.after == {101: ()}


def test_decide_absent_when_already_gone():
    changes = decide_routes([MAIN, OTHER_TABLE], desired_tables([{'table': 101}], state='absent'), state='absent')
    assert changes.remove == ()
    assert changes.before == changes.after == {101: ()}


def test_decide_other_tables_untouched():
    current = [MAIN, OTHER_TABLE, r(table=300000, dst='10.0.0.0/16', gateway='10.0.1.1', dev='ib0')]
    for state, purge in (('present', True), ('present', False), ('absent', False)):
        tables = desired_tables([{'table': 101, 'routes': []}], state=state)
        changes = decide_routes(current, tables, state=state, purge=purge)
        assert changes.remove == () and changes.add == () and changes.replace == ()
        assert set(changes.before) == set(changes.after) == {101}


def test_decide_after_is_sorted_like_ip_route_default_first():
    routes = (DEFAULT_ROUTE, r(dst='10.0.0.0/16', gateway='10.0.1.1', dev='ib0'), SUBNET_ROUTE)
    changes = decide_routes([], [TableSpec(101, routes)])
    assert [route.dst for route in changes.after[101]] == ['0.0.0.0/0', '10.0.0.0/16', '10.0.1.0/24']


# --- add_order ---------------------------------------------------------------

def test_add_order_puts_gateway_less_routes_first():
    gw_101 = DEFAULT_ROUTE
    gw_102 = OTHER_TABLE
    shared = r(table=101, dst='10.0.0.0/16', gateway='10.0.1.1', dev='ib0')
    direct_102 = r(table=102, dst='10.0.2.0/24', dev='ib1', scope=253)
    direct_101 = SUBNET_ROUTE
    ordered = add_order([gw_102, gw_101, direct_102, shared, direct_101])
    assert ordered == [direct_101, direct_102, gw_101, shared, gw_102]
    assert add_order([]) == []
