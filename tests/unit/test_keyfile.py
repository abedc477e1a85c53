"""Unit tests for plugins/module_utils/keyfile.py: NetworkManager keyfiles of planned rails.

The keyfile must describe exactly what the live modules create (design.md, "Facts to respect"):
every route with its table, source and an explicit metric, every rule with its priority.
"""

import uuid

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import (
    connection_id,
    connection_uuid,
    file_name,
    render,
)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

TEXTBOOK = [{'device': 'ib%d' % index, 'address': '10.0.%d.14/24' % (index + 1)} for index in range(4)]

# The UUID of ib0's connection is part of every deployed host's keyfile: it must never change.
IB0_UUID = '9ccaeeb8-d729-5d09-8314-abf6d1394c26'

IB0_TEXTBOOK = """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
[connection]
id=roce-multirail-ib0
uuid=9ccaeeb8-d729-5d09-8314-abf6d1394c26
type=infiniband
interface-name=ib0
autoconnect=true

[ipv4]
method=manual
address1=10.0.1.14/24
never-default=true
may-fail=false
route1=10.0.1.0/24,0.0.0.0,100
route1_options=src=10.0.1.14,table=101
route2=0.0.0.0/0,10.0.1.1,100
route2_options=table=101
routing-rule1=priority 1001 from 10.0.1.14 table 101

[ipv6]
method=ignore
"""


def planned(rails, index=0, **kwargs):
    return build_plan(rails, **kwargs)['rails'][index]


def test_textbook_rail_full_text():
    assert render(planned(TEXTBOOK), 'infiniband') == IB0_TEXTBOOK


def test_shared_layout_rail_with_mtu_and_sources_full_text():
    rails = [{'device': 'ens1f0', 'address': '10.0.1.14/24', 'gateway': '10.0.1.1'},
             {'device': 'ens1f1', 'address': '10.0.1.16/24', 'gateway': '10.0.1.1', 'mtu': 9000,
              'sources': ['10.0.1.40', '10.0.1.48/29']}]
    rail = planned(rails, 1, destination='10.0.0.0/16', metric=5)
    assert render(rail, 'ethernet') == """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
[connection]
id=roce-multirail-ens1f1
uuid=%s
type=ethernet
interface-name=ens1f1
autoconnect=true

[ethernet]
mtu=9000

[ipv4]
method=manual
address1=10.0.1.16/24
never-default=true
may-fail=false
route1=10.0.1.0/24,0.0.0.0,5
route1_options=src=10.0.1.16,table=102
route2=10.0.0.0/16,10.0.1.1,5
route2_options=table=102
routing-rule1=priority 1002 from 10.0.1.16 table 102
routing-rule2=priority 1002 from 10.0.1.40 table 102
routing-rule3=priority 1002 from 10.0.1.48/29 table 102

[ipv6]
method=ignore
""" % connection_uuid('ens1f1')


@pytest.mark.parametrize('link_type', ['ethernet', 'infiniband'])
def test_mtu_section_only_when_mtu_is_set(link_type):
    without = render(planned(TEXTBOOK), link_type)
    assert '[%s]' % link_type not in without
    assert 'mtu=' not in without
    with_mtu = render(planned([dict(TEXTBOOK[0], mtu=4092)]), link_type)
    assert '\n[%s]\nmtu=4092\n\n[ipv4]\n' % link_type in with_mtu
    assert 'type=%s\n' % link_type in with_mtu
    other = 'ethernet' if link_type == 'infiniband' else 'infiniband'
    assert '[%s]' % other not in with_mtu


def test_every_route_has_table_and_metric_and_every_rule_its_priority():
    rail = planned([dict(TEXTBOOK[0], table=300000, priority=1500, sources=['10.9.0.0/24'])], metric=42)
    text = render(rail, 'infiniband')
    routes = [line for line in text.splitlines() if line.startswith('route') and '_options' not in line]
    options = [line for line in text.splitlines() if '_options=' in line]
    rules = [line for line in text.splitlines() if line.startswith('routing-rule')]
    assert routes == ['route1=10.0.1.0/24,0.0.0.0,42', 'route2=0.0.0.0/0,10.0.1.1,42']
    assert options == ['route1_options=src=10.0.1.14,table=300000', 'route2_options=table=300000']
    assert rules == ['routing-rule1=priority 1500 from 10.0.1.14 table 300000',
                     'routing-rule2=priority 1500 from 10.9.0.0/24 table 300000']


def test_destination_equal_to_subnet_gives_one_route():
    text = render(planned(TEXTBOOK[:1], destination='10.0.1.0/24'), 'infiniband')
    assert 'route1=10.0.1.0/24,0.0.0.0,100\nroute1_options=src=10.0.1.14,table=101\nrouting-rule1=' in text
    assert 'route2' not in text


def test_uuid_is_stable_and_differs_per_device():
    assert connection_uuid('ib0') == IB0_UUID
    assert connection_uuid('ib0') == connection_uuid('ib0')
    assert uuid.UUID(connection_uuid('ib1')).version == 5
    uuids = {connection_uuid('ib%d' % index) for index in range(8)}
    assert len(uuids) == 8
    assert connection_uuid('eth0.100') != connection_uuid('eth0.101')


def test_render_is_deterministic_and_uses_the_devices_uuid():
    first = render(planned(TEXTBOOK, 1), 'infiniband')
    assert first == render(planned(TEXTBOOK, 1), 'infiniband')
    assert 'uuid=%s\n' % connection_uuid('ib1') in first
    assert IB0_UUID not in first


def test_names():
    assert connection_id('ib0') == 'roce-multirail-ib0'
    assert file_name('ib0') == 'roce-multirail-ib0.nmconnection'
    assert file_name('eth0.100') == 'roce-multirail-eth0.100.nmconnection'
    text = render(planned([{'device': 'eth0.100', 'address': '10.0.1.14/24'}]), 'ethernet')
    assert 'id=roce-multirail-eth0.100\n' in text and 'interface-name=eth0.100\n' in text


def test_slash_31_rail():
    text = render(planned([{'device': 'ib0', 'address': '10.0.1.1/31'}]), 'infiniband')
    assert 'address1=10.0.1.1/31\n' in text
    assert 'route1=10.0.1.0/31,0.0.0.0,100\nroute1_options=src=10.0.1.1,table=101\n' in text
    assert 'route2=0.0.0.0/0,10.0.1.0,100\nroute2_options=table=101\n' in text


# --- malformed rails: refused with the field, never a traceback nor an injected line ------------

@pytest.mark.parametrize('change, message', [
    ({'device': 'ib0\n[ipv4]\nmethod=auto'}, "rail: device 'ib0\\n[ipv4]\\nmethod=auto' is not a valid interface name"),
    ({'address': '10.0.1.14/24\nmethod=auto'}, "rail ib0: address '10.0.1.14/24\\nmethod=auto' is not an IPv4 address"),
    ({'address': 'fd00::14/64'}, "rail ib0: address 'fd00::14/64' is not an IPv4 address with its prefix length"),
    ({'table': 254}, 'rail ib0: table 254 is reserved (main)'),
    ({'table': '101'}, "rail ib0: table '101' is not an integer"),
    ({'mtu': 70000}, 'rail ib0: mtu 70000 is out of range 68-65535'),
    ({'routes': 'default'}, "rail ib0: routes: expected a list, got 'default'"),
    ({'routes': [None]}, 'rail ib0: routes[0]: expected a mapping, got None'),
    ({'routes': [{'dst': '10.0.1.0/24'}]}, 'rail ib0: routes[0]: metric is required'),
    ({'routes': [{'dst': '10.0.1.0/24\n[x]', 'metric': 100}]}, 'rail ib0: routes[0]: dst'),
    ({'routes': [{'dst': 'fd00::/64', 'metric': 100}]}, 'rail ib0: routes[0]: dst fd00::/64 is not an IPv4 address'),
    ({'routes': [{'dst': '0.0.0.0/0', 'metric': 100, 'gateway': 'fd00::1'}]}, 'rail ib0: routes[0]: gateway fd00::1'),
    ({'routes': [{'dst': '0.0.0.0/0', 'metric': 100, 'onlink': 'yes'}]}, "rail ib0: routes[0]: onlink 'yes' is not a"),
    ({'rules': [{'priority': 32766, 'from': '10.0.1.14', 'table': 101}]}, 'rail ib0: rules[0]: priority 32766 is reserved'),
    ({'rules': [{'priority': 1001, 'from': '0.0.0.0/0', 'table': 101}]}, 'rail ib0: rules[0]: from '),
    ({'rules': [{'priority': 1001, 'table': 101}]}, 'rail ib0: rules[0]: from is required'),
])
def test_malformed_rail_is_refused_naming_the_field(change, message):
    rail = dict(planned(TEXTBOOK), **change)
    with pytest.raises(InvalidArgument) as caught:
        render(rail, 'infiniband')
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize('missing', ['device', 'address', 'table', 'routes', 'rules'])
def test_rail_without_a_required_field_is_refused(missing):
    rail = planned(TEXTBOOK)
    del rail[missing]
    with pytest.raises(InvalidArgument, match='^rail: %s is required$' % missing):
        render(rail, 'infiniband')


def test_unknown_link_type_is_refused():
    with pytest.raises(InvalidArgument, match="^link type 'wifi' is neither ethernet nor infiniband$"):
        render(planned(TEXTBOOK), 'wifi')


def test_keyfile_holds_canonical_values_only():
    rail = dict(planned(TEXTBOOK), address=' 10.0.1.14/255.255.255.0 ')
    rail['rules'] = [dict(rail['rules'][0], **{'from': '10.0.1.14/32'})]
    text = render(rail, 'infiniband')
    assert 'address1=10.0.1.14/24\n' in text
    assert 'routing-rule1=priority 1001 from 10.0.1.14 table 101\n' in text
