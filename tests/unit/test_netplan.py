"""Unit tests for plugins/module_utils/netplan.py: which YAML netplan reads, the definitions in it,
the file this collection writes, and what netplan's own generator renders from it.

The generator tests run netplan's real generator (netplan 0.106 here) in a scratch root under
tmp_path. generate() copies each of its `files` to the same absolute path under the scratch root,
so only files given as /lib, /etc or /run/netplan paths are read by netplan; to render an image's
YAML without touching /etc, these tests put it into the scratch root themselves and give
generate() this collection's file as `extra`.
"""

import os
import subprocess
import tempfile

import pytest
import yaml

from ansible_collections.roce.multirail.plugins.module_utils.netplan import (
    Definition,
    Rendered,
    definitions,
    generate,
    generator,
    render,
    rendered_in,
    yaml_files,
)

from persist_cases import ETH0, IB0, IB1, rail

needs_generator = pytest.mark.skipif(generator() is None, reason="netplan's generator is not installed "
                                     "(/usr/libexec/netplan/generate, /usr/lib/netplan/generate)")


def run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


# --- which files ------------------------------------------------------------------------------

def test_yaml_files_run_hides_etc_hides_lib_for_the_same_name(tmp_path):
    for directory in ('lib/netplan', 'etc/netplan', 'run/netplan'):
        write(tmp_path / directory / '50-cloud-init.yaml', 'network: {}\n')
    write(tmp_path / 'lib/netplan/10-lib.yaml', 'network: {}\n')
    write(tmp_path / 'etc/netplan/60-etc.yaml', 'network: {}\n')
    write(tmp_path / 'etc/netplan/60-etc.yaml.bak', 'network: {}\n')
    write(tmp_path / 'lib/netplan/90-lib.yaml', 'network: {}\n')
    write(tmp_path / 'etc/netplan/90-lib.yaml', 'network: {}\n')
    assert yaml_files(root=str(tmp_path)) == ['/lib/netplan/10-lib.yaml', '/run/netplan/50-cloud-init.yaml',
                                              '/etc/netplan/60-etc.yaml', '/etc/netplan/90-lib.yaml']


def test_yaml_files_without_netplan_directories_are_none(tmp_path):
    assert yaml_files(root=str(tmp_path)) == []


# --- definitions ------------------------------------------------------------------------------

IMAGE = """\
network:
  version: 2
  ethernets:
    ib0:
      addresses: [10.0.1.14/24]
    10:
      match: {name: ib1}
  bonds:
    bond0:
      interfaces: [eth0]
  vlans:
    vlan.10: {id: 10, link: bond0}
"""


def test_definitions_give_every_id_its_device_type():
    found, problems = definitions([('/etc/netplan/10-image.yaml', IMAGE)], yaml.safe_load)
    assert problems == []
    assert found == {
        'ib0': Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',)),
        '10': Definition('10', 'ethernets', ('/etc/netplan/10-image.yaml',)),
        'bond0': Definition('bond0', 'bonds', ('/etc/netplan/10-image.yaml',)),
        'vlan.10': Definition('vlan.10', 'vlans', ('/etc/netplan/10-image.yaml',)),
    }


def test_a_definition_lists_every_file_that_names_its_id_in_order():
    texts = [('/etc/netplan/10-image.yaml', IMAGE),
             ('/etc/netplan/20-mtu.yaml', 'network:\n  ethernets:\n    ib0: {mtu: 2044}\n')]
    found, _problems = definitions(texts, yaml.safe_load)
    assert found['ib0'].files == ('/etc/netplan/10-image.yaml', '/etc/netplan/20-mtu.yaml')


def test_an_id_used_with_two_device_types_is_a_problem_naming_both_files():
    texts = [('/etc/netplan/10-image.yaml', IMAGE), ('/etc/netplan/20-bond.yaml', 'network:\n  bonds:\n    ib0: {}\n')]
    found, problems = definitions(texts, yaml.safe_load)
    assert problems == ['/etc/netplan/20-bond.yaml: netplan id ib0 is a ethernets in /etc/netplan/10-image.yaml']
    assert found['ib0'] == Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',))


def test_invalid_yaml_is_a_problem_naming_the_file_and_the_other_files_still_count():
    texts = [('/etc/netplan/05-broken.yaml', 'network:\n  ethernets: [\n'), ('/etc/netplan/10-image.yaml', IMAGE)]
    found, problems = definitions(texts, yaml.safe_load)
    assert len(problems) == 1 and problems[0].startswith('/etc/netplan/05-broken.yaml is not valid YAML: ')
    assert 'ib0' in found


def test_yaml_without_a_network_mapping_defines_nothing():
    texts = [('/etc/netplan/a.yaml', ''), ('/etc/netplan/b.yaml', '- a list\n'),
             ('/etc/netplan/c.yaml', 'network: 2\n')]
    assert definitions(texts, yaml.safe_load) == ({}, [])


# --- this collection's file ---------------------------------------------------------------------

def test_render_puts_a_rails_routes_and_rules_under_its_definitions_id():
    definition = Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',))
    assert render([(definition, rail(IB0))]) == """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
# The routes and rules of the rails, merged by netplan into the definitions that set them up.
network:
  version: 2
  ethernets:
    "ib0":
      routes:
        - to: "10.0.1.0/24"
          from: "10.0.1.14"
          scope: link
          table: 101
          metric: 100
        - to: "0.0.0.0/0"
          via: "10.0.1.1"
          scope: global
          table: 101
          metric: 100
      routing-policy:
        - from: "10.0.1.14"
          table: 101
          priority: 1001
"""


def test_render_a_rail_without_a_gateway_route_and_device_types_in_netplans_order():
    vlan = Definition('vlan.10', 'vlans', ('/etc/netplan/10-image.yaml',))
    ether = Definition('10', 'ethernets', ('/etc/netplan/10-image.yaml',))
    local = rail(dict(IB1, sources=['10.0.2.48/29']), destination='10.0.2.0/24')
    assert render([(vlan, local), (ether, rail(ETH0, destination='10.0.5.0/24'))]) == """\
# Managed by roce.multirail (source_routing role); local changes are overwritten.
# The routes and rules of the rails, merged by netplan into the definitions that set them up.
network:
  version: 2
  ethernets:
    "10":
      routes:
        - to: "10.0.5.0/24"
          from: "10.0.5.14"
          scope: link
          table: 101
          metric: 100
      routing-policy:
        - from: "10.0.5.14"
          table: 101
          priority: 1001
  vlans:
    "vlan.10":
      routes:
        - to: "10.0.2.0/24"
          from: "10.0.2.14"
          scope: link
          table: 101
          metric: 100
      routing-policy:
        - from: "10.0.2.14"
          table: 101
          priority: 1001
        - from: "10.0.2.48/29"
          table: 101
          priority: 1001
"""


def test_render_is_yaml_that_keeps_a_numeric_id_a_string():
    data = yaml.safe_load(render([(Definition('10', 'ethernets', ()), rail(IB0))]))
    assert list(data['network']['ethernets']) == ['10']


# --- netplan's generator ------------------------------------------------------------------------

IMAGE_NETWORKD = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    ib0:
      infiniband-mode: datagram
      addresses: [10.0.1.14/24]
"""


def render_image(tmp_path, image, rails):
    """What netplan renders from the image's YAML (in the scratch root) and this collection's file."""
    scratch = tmp_path / 'root'
    write(scratch / 'etc/netplan/10-image.yaml', image)
    ours = render([(Definition(r.device, 'ethernets', ('/etc/netplan/10-image.yaml',)), r) for r in rails])
    return generate(run, [], ('90-roce-multirail.yaml', ours), scratch=str(scratch))


@needs_generator
def test_netplan_renders_the_rails_routes_and_rules_for_networkd(tmp_path):
    ib0 = rail(IB0)
    rendered, error = render_image(tmp_path, IMAGE_NETWORKD, [ib0])
    assert (error, list(rendered)) == ('', ['ib0'])
    assert (rendered['ib0'].renderer, rendered['ib0'].name) == ('networkd', '10-netplan-ib0.network')
    assert rendered['ib0'].routing() == (('10.0.1.14/24',), ib0.routes, ib0.rules)


@needs_generator
def test_netplan_0_106_renders_the_routes_but_not_the_rules_for_networkmanager(tmp_path):
    ib0 = rail(IB0)
    rendered, error = render_image(tmp_path, IMAGE_NETWORKD.replace('networkd', 'NetworkManager'), [ib0])
    assert (error, rendered['ib0'].renderer, rendered['ib0'].name) == ('', 'NetworkManager', 'netplan-ib0.nmconnection')
    text = rendered['ib0'].text
    assert ('route1=10.0.1.0/24,,100\nroute1_options=table=101,src=10.0.1.14\n'
            'route2=0.0.0.0/0,10.0.1.1,100\nroute2_options=table=101\n') in text
    assert 'routing-rule' not in text
    assert rendered['ib0'].routing() == (('10.0.1.14/24',), ib0.routes, ())


@needs_generator
def test_generate_reports_netplans_error_for_invalid_yaml(tmp_path):
    rendered, error = generate(run, [], ('90-roce-multirail.yaml', 'network:\n  ethernets: [\n'),
                               scratch=str(tmp_path))
    assert rendered == {}
    assert '/etc/netplan/90-roce-multirail.yaml' in error and 'Invalid YAML' in error


@needs_generator
def test_generate_places_each_file_at_its_own_path_under_the_scratch_root(tmp_path):
    source = write(tmp_path / 'image' / '10-image.yaml', IMAGE_NETWORKD)
    scratch = tmp_path / 'root'
    generate(run, [source], scratch=str(scratch))
    copy = scratch / source.lstrip('/')
    assert copy.read_text() == IMAGE_NETWORKD and (os.stat(copy).st_mode & 0o777) == 0o600


@needs_generator
def test_generate_takes_extra_in_place_of_the_file_of_the_same_name(tmp_path):
    ours = render([(Definition('ib0', 'ethernets', ()), rail(IB0))])
    rendered, error = generate(run, ['/etc/netplan/90-roce-multirail.yaml'], ('90-roce-multirail.yaml', ours),
                               scratch=str(tmp_path))
    assert error == ''
    assert (tmp_path / 'etc/netplan/90-roce-multirail.yaml').read_text() == ours


@needs_generator
def test_generate_without_a_scratch_directory_leaves_none_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    rendered, error = generate(run, [], ('90-roce-multirail.yaml', IMAGE_NETWORKD))
    assert (error, list(rendered)) == ('', ['ib0'])
    assert os.listdir(str(tmp_path)) == []


def test_rendered_in_reads_netplans_files_for_both_renderers_by_id(tmp_path):
    network = write(tmp_path / 'run/systemd/network/10-netplan-ib0.network', '[Match]\nName=ib0\n')
    write(tmp_path / 'run/systemd/network/10-netplan-ib0.link', '[Match]\nOriginalName=ib0\n')
    write(tmp_path / 'run/systemd/network/20-other.network', '[Match]\nName=ib1\n')
    profile = write(tmp_path / 'run/NetworkManager/system-connections/netplan-eth0.nmconnection',
                    '[connection]\nid=netplan-eth0\n')
    assert rendered_in(str(tmp_path)) == {
        'ib0': Rendered('ib0', 'networkd', '10-netplan-ib0.network', open(network).read()),
        'eth0': Rendered('eth0', 'NetworkManager', 'netplan-eth0.nmconnection', open(profile).read()),
    }


def test_a_rendered_network_file_is_read_as_netplans_file_in_run():
    nfile = Rendered('ib0', 'networkd', '10-netplan-ib0.network', '[Match]\nName=ib0\n').as_network_file()
    assert (nfile.path, nfile.name, nfile.sections) == (
        '/run/systemd/network/10-netplan-ib0.network', '10-netplan-ib0.network', (('Match', [('Name', 'ib0')]),))
