"""Rails, NICs, NetworkManager profiles and host views for the unit tests of the persist stage.

Shared by test_keyfile_edit.py, test_networkmanager.py, test_networkd.py, test_netplan.py,
test_boot.py and test_changes.py. Rails are made as rail_persist receives them: planned by
plan.build_plan, then validated into persist.Rail objects by persist.check_rail. Host views are
built directly (boot.HostView is a NamedTuple), with nothing installed unless a test says so.
"""

import os

from ansible_collections.roce.multirail.plugins.module_utils.boot import HostView
from ansible_collections.roce.multirail.plugins.module_utils.networkd import NetworkFile, parse
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import Profile
from ansible_collections.roce.multirail.plugins.module_utils.persist import Link, Route, Rule, check_rail
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

IB0 = {'device': 'ib0', 'address': '10.0.1.14/24'}
IB1 = {'device': 'ib1', 'address': '10.0.2.14/24'}
ETH0 = {'device': 'eth0', 'address': '10.0.5.14/24'}
# The routes and the rule of rail ib0 as planned with the defaults (table 101, priority 1001, metric 100).
CONNECTED = Route('10.0.1.0/24', '', '10.0.1.14', 100, 101)
DEFAULT = Route('0.0.0.0/0', '10.0.1.1', '', 100, 101)
RULE = Rule(1001, '10.0.1.14', 101)

# A profile as an image build leaves it: NetworkManager's own spelling, a comment, odd spacing,
# a route of its own and a [proxy] group after [ipv6].
IMAGE = """\
[connection]
id=Wired ib0
uuid=2d7ee3a5-2b1a-4d39-a5f5-1e1a4b4a0c01
type=infiniband
interface-name=ib0
# written by the image build

[infiniband]
transport-mode=datagram

[ipv4]
address1=10.0.1.14/24
method=manual
route1=192.168.7.0/24,10.0.1.254
  dns-search = example.com
dns=10.0.0.53;

[ipv6]
addr-gen-mode=default
method=auto

[proxy]
"""
# ... and as the collection adopts it for rail ib0: its entries at the end of [ipv4], numbered after the image's.
IMAGE_ADOPTED = IMAGE.replace('dns=10.0.0.53;\n', """dns=10.0.0.53;
route2=10.0.1.0/24,0.0.0.0,100
route2_options=src=10.0.1.14,table=101
route3=0.0.0.0/0,10.0.1.1,100
route3_options=table=101
routing-rule1=priority 1001 from 10.0.1.14 table 101
""")


def rails(*specs, **plan_args):
    """The rails of an inventory as rail_persist gets them: build_plan's rails through check_rail."""
    return [check_rail(rail) for rail in build_plan(list(specs), **plan_args)['rails']]


def rail(spec=None, **plan_args):
    return rails(IB0 if spec is None else spec, **plan_args)[0]


def ib_link(name, index=0):
    """An IPoIB NIC (ARPHRD 32) with a 20-byte hardware address, as sysfs shows it (upper-cased)."""
    return Link(name, 10 + index, 32, '80:00:00:48:FE:80:00:00:00:00:00:00:0C:42:A1:03:00:7D:4E:%02X' % index,
                'mlx5_core')


def eth_link(name, index=0):
    """An Ethernet NIC (ARPHRD 1)."""
    return Link(name, 20 + index, 1, '52:54:00:12:34:%02X' % index, 'mlx5_core')


LINKS = {'ib0': ib_link('ib0', 0), 'ib1': ib_link('ib1', 1), 'eth0': eth_link('eth0', 0)}


def profile(uuid, **fields):
    """A NetworkManager Profile; by default an InfiniBand DHCP profile bound to nothing, in /etc."""
    values = dict(id=uuid, type='infiniband', interface_name='', mac='', match=(), master='', autoconnect=True,
                  method='auto', addresses=(), routes=(), rules=(),
                  path='/etc/NetworkManager/system-connections/%s.nmconnection' % uuid)
    values.update(fields)
    return Profile(uuid=uuid, **values)


def network_file(path, text):
    """A .network file as networkd.network_files() returns it, without drop-ins."""
    return NetworkFile(path, os.path.basename(path), tuple(parse(text)), ())


def host(**fields):
    """A HostView: the given NICs and stacks, nothing else installed or running."""
    values = dict(
        links=dict(LINKS), nm_installed=False, nm_running=False, nm_profiles={}, nm_records={}, nm_ours={},
        networkd_installed=False, networkd_running=False, networkd_files=(), networkd_applied={},
        networkd_foreign_rules=True, netplan_installed=False, netplan_files=(), netplan_definitions={},
        netplan_rendered={}, netplan_ours=None, netplan_problems=(), ifupdown={}, ifcfg={},
        keyfile_dir='/etc/NetworkManager/system-connections', networkd_dir='/etc/systemd/network',
        netplan_file='/etc/netplan/90-roce-multirail.yaml', originals_dir='/etc/NetworkManager/roce-multirail')
    values.update(fields)
    return HostView(**values)
