"""Unit tests for plugins/module_utils/networkmanager.py: which NetworkManager profiles can set up
a rail NIC, who owns each, and the edits that give them the rail's routes and rules and take
them out again.
"""

import os

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import connection_uuid, render
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import (
    Edit,
    _pattern_matches,
    binds,
    can_activate,
    describe_profile,
    edit_for,
    give_back,
    keyfile_uuid,
    modify_args,
    new_record,
    nmcli_route,
    nmcli_route_text,
    our_keyfiles,
    profile_from_nmcli,
    rail_profiles,
    read_keyfiles,
    split_terse,
    unescape,
    untouched_since,
    written,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import Link, Route

from persist_cases import CONNECTED, DEFAULT, IB0, LINKS, RULE, eth_link, profile, rail

IB0_LINK = LINKS['ib0']
FOREIGN = Route('192.168.7.0/24', '10.0.1.254', '', 5, 101)


def adopted(**fields):
    """The image's profile of ib0: bound by name, the rail address, manual."""
    values = dict(id='Wired ib0', interface_name='ib0', method='manual', addresses=('10.0.1.14/24',))
    values.update(fields)
    return profile('2d7ee3a5-0000-4000-8000-000000000001', **values)


def record_of(routes=(), rules=(), device='ib0'):
    """A record as apply() keeps it: what this collection put into an adopted profile."""
    return {'uuid': 'u', 'id': 'Wired ib0', 'device': device, 'files': {}, 'written': {},
            'routes': [list(r) for r in routes], 'rules': [list(r) for r in rules]}


# --- which profiles can activate on a NIC --------------------------------------------------------

def test_a_profile_activates_only_on_a_nic_of_its_type():
    assert can_activate(profile('p', type='infiniband'), IB0_LINK)
    assert not can_activate(profile('p', type='ethernet'), IB0_LINK)
    assert can_activate(profile('p', type='ethernet'), eth_link('eth0'))
    assert not can_activate(profile('p', type='infiniband'), eth_link('eth0'))


def test_no_profile_activates_on_a_nic_of_another_link_type():
    loopback = Link('lo', 1, 772, '00:00:00:00:00:00', '')
    assert not can_activate(profile('p', type='loopback'), loopback)


def test_a_profile_bound_to_another_interface_name_does_not_activate():
    assert can_activate(profile('p', interface_name='ib0'), IB0_LINK)
    assert not can_activate(profile('p', interface_name='ib1'), IB0_LINK)


def test_a_profile_bound_to_a_mac_activates_only_on_that_mac():
    assert can_activate(profile('p', mac=IB0_LINK.mac), IB0_LINK)
    assert not can_activate(profile('p', mac=LINKS['ib1'].mac), IB0_LINK)


def test_a_profile_activates_where_its_match_interface_name_allows():
    assert can_activate(profile('p', match=('ib*', '!ib1')), IB0_LINK)
    assert not can_activate(profile('p', match=('ib*', '!ib0')), IB0_LINK)


@pytest.mark.parametrize('patterns, name, expected', [
    (('ib*',), 'ib0', True),
    (('eth*', 'ib0'), 'ib0', True),
    (('eth*',), 'ib0', False),
    (('!ib1',), 'ib0', True),
    (('!ib*',), 'ib0', False),
    (('ib*', '!ib0'), 'ib0', False),
    (('&ib*',), 'ib0', True),
    (('&ib*', 'eth0'), 'ib0', False),
    (('&eth*', 'ib0'), 'ib0', False),
])
def test_match_interface_name_ors_optional_ands_mandatory_and_excludes_negated(patterns, name, expected):
    assert _pattern_matches(patterns, name) is expected


@pytest.mark.parametrize('patterns, name, expected', [
    (('|ib0',), 'ib0', True),
    (('&!ib1',), 'ib0', True),
    (('|!ib1', '|eth0'), 'ib0', True),
])
def test_match_interface_name_reads_the_pipe_and_the_mandatory_negation(patterns, name, expected):
    assert _pattern_matches(patterns, name) is expected


@pytest.mark.parametrize('fields, bound', [
    ({'interface_name': 'ib0'}, True),
    ({'mac': IB0_LINK.mac}, True),
    ({'match': ('ib*',)}, True),
    ({}, False),
])
def test_a_profile_binds_by_name_mac_or_match_and_otherwise_takes_any_nic(fields, bound):
    assert binds(profile('p', **fields)) is bound


# --- nmcli output ---------------------------------------------------------------------------

def test_split_terse_splits_on_colons_and_keeps_escaped_ones():
    line = r'2d7ee3a5-0001:802-3-ethernet:/etc/NetworkManager/system-connections/a\:b.nmconnection'
    assert split_terse(line) == ['2d7ee3a5-0001', '802-3-ethernet',
                                 '/etc/NetworkManager/system-connections/a:b.nmconnection']


def test_split_terse_keeps_empty_fields():
    assert split_terse('ib0:') == ['ib0', '']


def test_unescape_turns_escaped_colons_and_backslashes_into_themselves():
    assert unescape(r'a\:b\\c') == 'a:b\\c'


def test_split_terse_splits_after_a_field_ending_in_a_backslash():
    assert split_terse('odd\\\\:ethernet') == ['odd\\', 'ethernet']


@pytest.mark.parametrize('text, route', [
    ('10.0.1.0/24 100 src=10.0.1.14 table=101', CONNECTED),
    ('0.0.0.0/0 10.0.1.1 100 table=101', DEFAULT),
    ('0.0.0.0/0 10.0.1.1 100 onlink=true table=101', DEFAULT._replace(onlink=True)),
    ('10.0.1.0/24 100 mtu=9000 table=101', None),
    ('192.168.7.0/24 10.0.1.254', None),
])
def test_nmcli_route_reads_one_entry_of_ipv4_routes(text, route):
    assert nmcli_route(text) == route


NMCLI_FIELDS = {
    'connection.id': 'Wired ib0', 'connection.uuid': 'u-1', 'connection.type': 'infiniband',
    'connection.interface-name': 'ib0', 'connection.autoconnect': 'yes', 'connection.master': '',
    '802-3-ethernet.mac-address': '', 'infiniband.mac-address': IB0_LINK.mac,
    'match.interface-name': '', 'ipv4.method': 'manual', 'ipv4.addresses': '10.0.1.14/24',
    'ipv4.routes': '10.0.1.0/24 100 src=10.0.1.14 table=101, 0.0.0.0/0 10.0.1.1 100 table=101, '
                   '192.168.7.0/24 10.0.1.254',
    'ipv4.routing-rules': 'priority 1001 from 10.0.1.14 table 101, priority 5 from 0.0.0.0/0 iif ib0 table 7',
}


def test_profile_from_nmcli_keeps_only_the_rail_routes_and_rules_of_a_profile():
    assert profile_from_nmcli(NMCLI_FIELDS, '/etc/NetworkManager/system-connections/ib0.nmconnection', 'ib0') == \
        profile('u-1', id='Wired ib0', interface_name='ib0', mac=IB0_LINK.mac, method='manual',
                addresses=('10.0.1.14/24',), routes=(CONNECTED, DEFAULT), rules=(RULE,),
                path='/etc/NetworkManager/system-connections/ib0.nmconnection', active_on='ib0')


def test_profile_from_nmcli_reads_an_ethernet_profiles_mac_match_and_autoconnect():
    fields = dict(NMCLI_FIELDS, **{'connection.type': '802-3-ethernet', 'connection.interface-name': '',
                                   'connection.autoconnect': 'no', '802-3-ethernet.mac-address': '52:54:00:12:34:00',
                                   'match.interface-name': 'eth*, !eth1', 'connection.master': 'bond0'})
    found = profile_from_nmcli(fields, '')
    assert (found.type, found.mac, found.match, found.autoconnect, found.master, found.path) == (
        'ethernet', '52:54:00:12:34:00', ('eth*', '!eth1'), False, 'bond0', '')


# --- whose profiles, and what stops adopting them ------------------------------------------------

def test_the_images_profile_of_the_rail_nic_is_adopted():
    image = adopted()
    assert rail_profiles(rail(IB0), IB0_LINK, {image.uuid: image}, running=True) == ((image,), (), (), ())


def test_profiles_that_cannot_activate_on_the_rail_nic_are_left_out():
    others = [profile('a', interface_name='ib1'), profile('b', type='ethernet', interface_name='ib0')]
    assert rail_profiles(rail(IB0), IB0_LINK, dict((p.uuid, p) for p in others), running=True) == ((), (), (), ())


def test_a_generic_profile_is_a_problem_that_names_it():
    generic = profile('g', id='Wired connection 1')
    found = rail_profiles(rail(IB0), IB0_LINK, {'g': generic}, running=True)
    assert found.adopt == (generic,)
    assert found.problems == (
        "rail ib0: NetworkManager profile 'Wired connection 1' (/etc/NetworkManager/system-connections/g.nmconnection) "
        "can activate on any infiniband NIC, not only ib0: the rail's routes and rules cannot go into it; bind it "
        "to ib0 (connection.interface-name)",)


def test_a_port_profile_is_a_problem():
    port = adopted(master='bond0', method='disabled', addresses=())
    problems = rail_profiles(rail(IB0), IB0_LINK, {port.uuid: port}, running=True).problems
    assert len(problems) == 1 and 'makes ib0 a port of bond0' in problems[0]


def test_a_manual_profile_with_another_address_is_a_problem_naming_both_addresses():
    other = adopted(addresses=('10.0.9.14/24',))
    problems = rail_profiles(rail(IB0), IB0_LINK, {other.uuid: other}, running=True).problems
    assert len(problems) == 1
    assert "gives ib0 10.0.9.14/24, not the rail address 10.0.1.14/24" in problems[0]


def test_a_profile_disabling_ipv4_is_a_problem():
    off = adopted(method='disabled', addresses=())
    problems = rail_profiles(rail(IB0), IB0_LINK, {off.uuid: off}, running=True).problems
    assert len(problems) == 1 and 'disables IPv4 on ib0' in problems[0]


def test_an_ifcfg_profile_is_a_problem_only_while_networkmanager_is_not_running():
    ifcfg = adopted(path='/etc/sysconfig/network-scripts/ifcfg-ib0')
    stopped = rail_profiles(rail(IB0), IB0_LINK, {ifcfg.uuid: ifcfg}, running=False).problems
    assert len(stopped) == 1 and 'is not a keyfile' in stopped[0] and 'nmcli connection migrate' in stopped[0]
    assert rail_profiles(rail(IB0), IB0_LINK, {ifcfg.uuid: ifcfg}, running=True).problems == ()


def test_the_collections_own_profile_is_ours_not_adopted():
    ours = profile(connection_uuid('ib0'), id='roce-multirail-ib0', interface_name='ib0', method='manual',
                   addresses=('10.0.1.14/24',))
    assert rail_profiles(rail(IB0), IB0_LINK, {ours.uuid: ours}, running=True) == ((), (ours,), (), ())


def test_a_profile_netplan_generated_is_netplans_not_adopted():
    generated = adopted(id='netplan-ib0', path='/run/NetworkManager/system-connections/netplan-ib0.nmconnection')
    assert rail_profiles(rail(IB0), IB0_LINK, {generated.uuid: generated}, running=True) == ((), (), (generated,), ())


def test_a_profile_named_like_netplans_elsewhere_is_adopted():
    lookalike = adopted(path='/etc/NetworkManager/system-connections/netplan-ib0.nmconnection')
    assert rail_profiles(rail(IB0), IB0_LINK, {lookalike.uuid: lookalike}, running=True).adopt == (lookalike,)


# --- edits ------------------------------------------------------------------------------------

def test_edit_for_adds_what_the_profile_lacks():
    image = adopted(routes=(CONNECTED,))
    edit = edit_for(rail(IB0), image, None)
    assert (edit.profile, edit.device, edit.add_routes, edit.remove_routes, edit.add_rules, edit.remove_rules) == (
        image, 'ib0', (DEFAULT,), (), (RULE,), ())


def test_edit_for_a_profile_that_carries_the_rail_is_none():
    assert edit_for(rail(IB0), adopted(routes=(DEFAULT, FOREIGN, CONNECTED), rules=(RULE,)), None) is None


def test_edit_for_removes_only_what_the_collection_added_and_the_rail_no_longer_wants():
    old_default = DEFAULT._replace(metric=50)
    old_rule = RULE._replace(priority=1000)
    image = adopted(routes=(CONNECTED, old_default, FOREIGN), rules=(old_rule, RULE))
    record = record_of(routes=(CONNECTED, old_default, Route('10.9.0.0/16', '10.0.1.1', '', 1, 101)),
                       rules=(old_rule,))
    edit = edit_for(rail(IB0), image, record)
    assert (edit.add_routes, edit.remove_routes, edit.add_rules, edit.remove_rules) == (
        (DEFAULT,), (old_default,), (), (old_rule,))


def test_edit_for_without_a_record_removes_nothing_the_profile_holds():
    image = adopted(routes=(CONNECTED, DEFAULT._replace(metric=50)), rules=(RULE,))
    assert edit_for(rail(IB0), image, None).remove_routes == ()


def test_give_back_leaves_a_route_the_profile_held_before_it_was_adopted():
    before = adopted(routes=(CONNECTED,))
    edit = edit_for(rail(IB0), before, None)
    record = record_of(edit.routes, edit.rules)          # as apply() writes it
    after = before._replace(routes=(CONNECTED, DEFAULT), rules=(RULE,))
    assert give_back(record, after).remove_routes == (DEFAULT,)


def test_give_back_removes_what_the_record_holds_and_the_profile_still_has():
    image = adopted(routes=(CONNECTED, FOREIGN), rules=(RULE,))
    back = give_back(record_of(routes=(CONNECTED, DEFAULT), rules=(RULE,), device='ib0'), image)
    assert back == Edit(image, 'ib0', (), (CONNECTED,), (), (RULE,), (), ())


def test_modify_args_remove_before_they_add_in_nmclis_own_syntax():
    edit = Edit(adopted(), 'ib0', add_routes=(DEFAULT._replace(onlink=True),), remove_routes=(CONNECTED,),
                add_rules=(RULE,), remove_rules=(RULE._replace(priority=1000),), routes=(), rules=())
    assert modify_args(edit) == [
        '-ipv4.routes', '10.0.1.0/24 0.0.0.0 100 src=10.0.1.14 table=101',
        '-ipv4.routing-rules', 'priority 1000 from 10.0.1.14 table 101',
        '+ipv4.routes', '0.0.0.0/0 10.0.1.1 100 table=101 onlink=true',
        '+ipv4.routing-rules', 'priority 1001 from 10.0.1.14 table 101',
    ]


def test_nmcli_route_text_reads_back_as_the_same_route():
    for route in (CONNECTED, DEFAULT, DEFAULT._replace(onlink=True)):
        assert nmcli_route(nmcli_route_text(route)) == route


def test_describe_profile_lists_the_routing_as_nmcli_spells_it():
    image = adopted(routes=(CONNECTED,), rules=(RULE,))
    assert describe_profile(image) == (
        "# NetworkManager profile 'Wired ib0' (/etc/NetworkManager/system-connections/"
        "2d7ee3a5-0000-4000-8000-000000000001.nmconnection), uuid 2d7ee3a5-0000-4000-8000-000000000001\n"
        "ipv4.routes: 10.0.1.0/24 0.0.0.0 100 src=10.0.1.14 table=101\n"
        "ipv4.routing-rules: priority 1001 from 10.0.1.14 table 101\n")


# --- keyfiles on disk, records, our own files -------------------------------------------------

def write(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def keyfile_text(uuid, name):
    return '[connection]\nid=%s\nuuid=%s\ntype=infiniband\ninterface-name=ib0\n' % (name, uuid)


@pytest.mark.skipif(os.geteuid() != 0, reason='NetworkManager, and read_keyfiles, skip keyfiles not owned by root')
def test_read_keyfiles_reads_like_networkmanager_first_directory_first(tmp_path):
    etc, run = tmp_path / 'etc', tmp_path / 'run'
    kept = write(etc / 'ib0.nmconnection', keyfile_text('u-1', 'from etc'))
    write(run / 'ib0.nmconnection', keyfile_text('u-1', 'from run'))
    other = write(run / 'other.nmconnection', keyfile_text('u-2', 'only in run'))
    write(etc / '.hidden.nmconnection', keyfile_text('u-3', 'hidden'))
    write(etc / 'ib0.nmconnection~', keyfile_text('u-4', 'backup'))
    write(etc / 'open.nmconnection', keyfile_text('u-5', 'readable by others'), mode=0o644)
    found = read_keyfiles([str(etc), str(run), str(tmp_path / 'missing')])
    assert sorted((p.uuid, p.id, p.path) for p in found.values()) == [
        ('u-1', 'from etc', kept), ('u-2', 'only in run', other)]


def test_a_new_record_keeps_the_profiles_files_as_they_are(tmp_path):
    path = write(tmp_path / 'ib0.nmconnection', keyfile_text('u-1', 'Wired ib0'))
    record = new_record(adopted(path=path), 'ib0')
    st = os.stat(path)
    assert record['files'] == {path: {'content': keyfile_text('u-1', 'Wired ib0'), 'mode': 0o600,
                                      'uid': st.st_uid, 'gid': st.st_gid}}
    assert (record['device'], record['routes'], record['rules'], record['written']) == ('ib0', [], [], {})


def test_a_new_record_of_an_ifcfg_profile_keeps_its_route_and_rule_files_absent_or_not(tmp_path):
    path = write(tmp_path / 'ifcfg-ib0', 'DEVICE=ib0\n', mode=0o644)
    write(tmp_path / 'rule-ib0', 'from 10.0.1.14 table 101\n', mode=0o644)
    files = new_record(adopted(path=path), 'ib0')['files']
    assert dict((os.path.basename(p), v and v['content']) for p, v in files.items()) == {
        'ifcfg-ib0': 'DEVICE=ib0\n', 'route-ib0': None, 'route6-ib0': None, 'rule-ib0': 'from 10.0.1.14 table 101\n',
        'rule6-ib0': None}


def test_a_record_is_untouched_until_someone_changes_the_files_written(tmp_path):
    path = write(tmp_path / 'ib0.nmconnection', keyfile_text('u-1', 'Wired ib0'))
    record = new_record(adopted(path=path), 'ib0')
    assert not untouched_since(record)
    record['written'] = written(record)
    assert untouched_since(record)
    write(tmp_path / 'ib0.nmconnection', keyfile_text('u-1', 'renamed by hand'))
    assert not untouched_since(record)


def test_our_keyfiles_are_those_named_like_ours_that_start_with_the_header(tmp_path):
    ours = write(tmp_path / 'roce-multirail-ib0.nmconnection', render(rail(IB0), 'infiniband'))
    write(tmp_path / 'roce-multirail-ib9.nmconnection', keyfile_text('u-9', 'hand-made, our name'))
    write(tmp_path / 'ib0.nmconnection', render(rail(IB0), 'infiniband'))
    assert our_keyfiles(str(tmp_path)) == {ours: 'ib0'}


def test_a_keyfile_without_uuid_gets_the_uuid_networkmanager_derives_from_its_path():
    # What NetworkManager 1.42 showed (nmcli -f UUID connection show) for a keyfile without uuid= at this path.
    assert keyfile_uuid('/etc/NetworkManager/system-connections/ib0.nmconnection') == \
        '9a91c4f7-ecd9-3c89-919d-aafe8502319f'
