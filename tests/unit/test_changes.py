"""Unit tests for plugins/module_utils/changes.py: plan() turns a decision into the files to write
or remove, the profiles to edit or delete and the records to drop, on host views built by hand
over files in tmp_path.

The files are owned by root, as NetworkManager wants its keyfiles: the tests that read them run
as root only.
"""

import os

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.boot import decide
from ansible_collections.roce.multirail.plugins.module_utils.changes import Changes, FileChange, plan
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import connection_uuid, edit, render
from ansible_collections.roce.multirail.plugins.module_utils.netplan import Definition, Rendered
from ansible_collections.roce.multirail.plugins.module_utils.netplan import render as render_netplan
from ansible_collections.roce.multirail.plugins.module_utils.networkd import (
    network_files,
    render_dropin,
    render_network,
)
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import (
    Edit,
    describe_profile,
    new_record,
    our_keyfiles,
    read_keyfiles,
    written,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import HEADER, FileState

from persist_cases import IB0, IB1, IMAGE, IMAGE_ADOPTED, host, rail

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='NetworkManager reads keyfiles owned by root only')

IB0_RAIL, IB1_RAIL = rail(IB0), rail(IB1)


def write(path, text, mode=0o600, gid=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    os.chown(path, 0, gid)
    return str(path)


def dirs(tmp_path):
    return dict(keyfile_dir=str(tmp_path / 'system-connections'), networkd_dir=str(tmp_path / 'network'),
                netplan_file=str(tmp_path / 'netplan' / '90-roce-multirail.yaml'),
                originals_dir=str(tmp_path / 'originals'))


def nm_view(tmp_path, **fields):
    """NetworkManager installed, not running: its profiles read from the keyfiles in tmp_path."""
    keyfiles = tmp_path / 'system-connections'
    keyfiles.mkdir(exist_ok=True)
    values = dict(dirs(tmp_path), nm_installed=True, nm_profiles=read_keyfiles([str(keyfiles)]),
                  nm_ours=our_keyfiles(str(keyfiles)))
    values.update(fields)
    return host(**values)


def networkd_view(tmp_path, **fields):
    network = tmp_path / 'network'
    network.mkdir(exist_ok=True)
    values = dict(dirs(tmp_path), networkd_installed=True, networkd_running=True,
                  networkd_files=tuple(network_files([str(network)])))
    values.update(fields)
    return host(**values)


def planned(view, rails, purge=True):
    decision = decide(view, rails)
    assert decision.errors == ()
    return plan(view, decision, rails, purge)


# --- NetworkManager ------------------------------------------------------------------------------

def test_a_rail_without_a_profile_gets_the_collections_keyfile(tmp_path):
    changes = planned(nm_view(tmp_path), [IB0_RAIL])
    path = str(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection')
    assert changes.files == [FileChange(path, None, render(IB0_RAIL, 'infiniband'), 0o600, 0, 0)]
    assert (changes.loads, changes.activate, changes.edits, changes.deletes) == (
        [path], [('ib0', connection_uuid('ib0'))], [], [])
    assert changes


def test_the_collections_keyfile_as_it_should_be_is_no_change(tmp_path):
    write(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection', render(IB0_RAIL, 'infiniband'))
    changes = planned(nm_view(tmp_path), [IB0_RAIL])
    assert (changes.files, changes.loads, changes.activate, bool(changes)) == ([], [], [], False)


def test_the_collections_keyfile_with_another_mode_is_written_again(tmp_path):
    path = write(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection', render(IB0_RAIL, 'infiniband'),
                 mode=0o400)
    changes = planned(nm_view(tmp_path), [IB0_RAIL])
    assert changes.files == [FileChange(path, FileState(render(IB0_RAIL, 'infiniband'), 0o400, 0, 0),
                                        render(IB0_RAIL, 'infiniband'), 0o600, 0, 0)]


def test_an_adopted_profile_is_edited_in_its_file_keeping_its_mode_and_owner(tmp_path):
    path = write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE, mode=0o400, gid=4)
    view = nm_view(tmp_path)
    changes = planned(view, [IB0_RAIL])
    assert changes.files == [FileChange(path, FileState(IMAGE, 0o400, 0, 4), IMAGE_ADOPTED, 0o400, 0, 4)]
    ((change, record),) = changes.edits
    assert change == Edit(view.nm_profiles['2d7ee3a5-2b1a-4d39-a5f5-1e1a4b4a0c01'], 'ib0', IB0_RAIL.routes, (),
                          IB0_RAIL.rules, (), IB0_RAIL.routes, IB0_RAIL.rules)
    assert record['files'] == {path: {'content': IMAGE, 'mode': 0o400, 'uid': 0, 'gid': 4}}
    assert (changes.loads, changes.activate, changes.deletes) == ([], [], [])


def test_an_adopted_profile_that_carries_the_rail_is_no_change(tmp_path):
    write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path), [IB0_RAIL])
    assert (changes.files, changes.edits, bool(changes)) == ([], [], False)


def test_a_running_networkmanager_gets_the_edit_and_reapplies_the_active_profile(tmp_path):
    path = write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE)
    profiles = read_keyfiles([str(tmp_path / 'system-connections')])
    running = dict((uuid, p._replace(active_on='ib0')) for uuid, p in profiles.items())
    changes = planned(nm_view(tmp_path, nm_running=True, nm_profiles=running), [IB0_RAIL])
    assert changes.files == []
    assert [(e.profile.path, e.add_routes, e.add_rules) for e, _record in changes.edits] == [
        (path, IB0_RAIL.routes, IB0_RAIL.rules)]
    assert changes.reapply == {'ib0'}


def test_the_collections_keyfile_is_deleted_once_the_image_has_a_profile(tmp_path):
    write(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection', render(IB0_RAIL, 'infiniband'))
    image = write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE)
    view = nm_view(tmp_path)
    changes = planned(view, [IB0_RAIL])
    # NetworkManager does not run: the keyfile is removed as a file, and reported as a profile removed.
    ours = str(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection')
    assert changes.deletes == []
    assert [(c.path, c.after is None) for c in changes.files] == [(image, False), (ours, True)]
    assert changes.removed_profiles == ['roce-multirail-ib0']


# --- systemd-networkd ---------------------------------------------------------------------------

def test_a_rail_a_network_file_sets_up_gets_the_drop_in_next_to_it(tmp_path):
    write(tmp_path / 'network' / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n', 0o644)
    changes = planned(networkd_view(tmp_path), [IB0_RAIL])
    assert changes.files == [FileChange(str(tmp_path / 'network' / '10-ib0.network.d' / '90-roce-multirail.conf'),
                                        None, render_dropin(IB0_RAIL), 0o644)]
    assert changes.networkd == {'ib0'}


def test_the_drop_in_as_it_should_be_is_no_change(tmp_path):
    write(tmp_path / 'network' / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n', 0o644)
    write(tmp_path / 'network' / '10-ib0.network.d' / '90-roce-multirail.conf', render_dropin(IB0_RAIL), 0o644)
    changes = planned(networkd_view(tmp_path), [IB0_RAIL])
    assert (changes.files, changes.networkd, bool(changes)) == ([], set(), False)


def test_a_rail_no_network_file_sets_up_gets_a_network_file_of_its_own(tmp_path):
    changes = planned(networkd_view(tmp_path), [IB0_RAIL])
    assert changes.files == [FileChange(str(tmp_path / 'network' / '50-roce-multirail-ib0.network'), None,
                                        render_network(IB0_RAIL), 0o644)]


def test_the_collections_network_file_stays_the_rails_file(tmp_path):
    write(tmp_path / 'network' / '50-roce-multirail-ib0.network', render_network(IB0_RAIL), 0o644)
    assert planned(networkd_view(tmp_path), [IB0_RAIL]).files == []


def test_purge_removes_the_collections_networkd_files_of_rails_no_longer_listed(tmp_path):
    network = tmp_path / 'network'
    write(network / '10-ib0.network', '[Match]\nName=ib0\n[Network]\nAddress=10.0.1.14/24\n', 0o644)
    gone = write(network / '50-roce-multirail-ib1.network', render_network(IB1_RAIL), 0o644)
    dropin = write(network / '10-eth0.network.d' / '90-roce-multirail.conf', render_dropin(rail(IB1)), 0o644)
    write(network / '50-roce-multirail-ib9.network', '[Match]\nName=ib9\n', 0o644)
    write(network / '10-ib9.network.d' / '90-roce-multirail.conf', '[Network]\nDHCP=yes\n', 0o644)
    changes = planned(networkd_view(tmp_path), [IB0_RAIL])
    assert [(c.path, c.after is None) for c in changes.files] == [
        (str(network / '10-ib0.network.d' / '90-roce-multirail.conf'), False), (dropin, True), (gone, True)]
    assert changes.networkd == {'ib0', ''}
    assert [c.path for c in planned(networkd_view(tmp_path), [IB0_RAIL], purge=False).files] == [
        str(network / '10-ib0.network.d' / '90-roce-multirail.conf')]


# --- netplan ---------------------------------------------------------------------------------

def netplan_view(tmp_path, **fields):
    rendered = Rendered('ib0', 'networkd', '10-netplan-ib0.network',
                        '[Match]\nName=ib0\n\n[Network]\nAddress=10.0.1.14/24\n')
    values = dict(dirs(tmp_path), netplan_installed=True, netplan_files=('/etc/netplan/10-image.yaml',),
                  netplan_definitions={'ib0': Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',))},
                  netplan_rendered={'ib0': rendered})
    values.update(fields)
    return host(**values)


def test_a_netplan_rail_gets_its_routing_in_the_collections_yaml(tmp_path):
    changes = planned(netplan_view(tmp_path), [IB0_RAIL])
    definition = Definition('ib0', 'ethernets', ('/etc/netplan/10-image.yaml',))
    assert changes.files == [FileChange(str(tmp_path / 'netplan' / '90-roce-multirail.yaml'), None,
                                        render_netplan([(definition, IB0_RAIL)]), 0o600)]
    assert changes.netplan is True


def test_purge_removes_the_collections_yaml_once_no_rail_is_on_netplan(tmp_path):
    text = render_netplan([(Definition('ib0', 'ethernets', ()), IB0_RAIL)])
    path = write(tmp_path / 'netplan' / '90-roce-multirail.yaml', text)
    write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path, netplan_ours=text), [IB0_RAIL])
    assert [(c.path, c.before.content, c.after) for c in changes.files] == [(path, text, None)]
    assert changes.netplan is True


def test_a_yaml_file_without_the_header_at_our_path_is_never_removed(tmp_path):
    text = 'network:\n  version: 2\n'
    write(tmp_path / 'netplan' / '90-roce-multirail.yaml', text)
    write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path, netplan_ours=text), [IB0_RAIL])
    assert (changes.files, changes.netplan) == ([], False)


# --- purging NetworkManager --------------------------------------------------------------------

def test_purge_removes_the_collections_keyfiles_of_rails_no_longer_listed_and_no_others(tmp_path):
    keyfiles = tmp_path / 'system-connections'
    gone = write(keyfiles / 'roce-multirail-ib1.nmconnection', render(IB1_RAIL, 'infiniband'))
    hand = write(keyfiles / 'roce-multirail-ib9.nmconnection', '[connection]\nid=hand-made\nuuid=u-9\n'
                                                               'type=infiniband\ninterface-name=ib9\n')
    write(keyfiles / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path), [IB0_RAIL])
    assert [(c.path, c.after) for c in changes.files] == [(gone, None)]
    assert hand not in [c.path for c in changes.files]
    assert planned(nm_view(tmp_path), [IB0_RAIL], purge=False).files == []


def adopt_ib1(tmp_path, text):
    """An ib1 profile as the collection left it: its record, then its file as edited and written."""
    original = text.replace('ib0', 'ib1').replace('10.0.1.', '10.0.2.').replace('2d7ee3a5', '3e8ff4b6')
    path = write(tmp_path / 'system-connections' / 'ib1.nmconnection', original)
    before = list(read_keyfiles([str(tmp_path / 'system-connections')]).values())[0]
    record = new_record(before, 'ib1')
    adopted = edit(original, IB1_RAIL.routes, (), IB1_RAIL.rules, ())
    write(tmp_path / 'system-connections' / 'ib1.nmconnection', adopted)
    record.update(routes=[list(r) for r in IB1_RAIL.routes], rules=[list(r) for r in IB1_RAIL.rules])
    record['written'] = written(record)
    return path, original, adopted, record


def test_purge_gives_an_untouched_adopted_profile_back_as_it_was(tmp_path):
    path, original, adopted, record = adopt_ib1(tmp_path, IMAGE)
    write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path, nm_records={record['uuid']: record}), [IB0_RAIL])
    assert changes.records == {record['uuid']: None}
    assert changes.files == [FileChange(path, FileState(adopted, 0o600, 0, 0), original, 0o600, 0, 0)]
    assert changes.messages == []


def test_purge_takes_only_the_rails_entries_out_of_an_adopted_profile_changed_since(tmp_path):
    path, original, adopted, record = adopt_ib1(tmp_path, IMAGE)
    touched = adopted.replace('dns=10.0.0.53;', 'dns=10.0.0.54;')
    write(tmp_path / 'system-connections' / 'ib1.nmconnection', touched)
    write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE_ADOPTED)
    changes = planned(nm_view(tmp_path, nm_records={record['uuid']: record}), [IB0_RAIL])
    assert changes.files == [FileChange(path, FileState(touched, 0o600, 0, 0),
                                        original.replace('dns=10.0.0.53;', 'dns=10.0.0.54;'), 0o600, 0, 0)]
    assert changes.records == {record['uuid']: None}
    assert changes.messages == ["profile 'Wired ib1' (%s) was changed since this collection adopted it: only its "
                                "routes and rules were taken out" % path]


# --- diffs ------------------------------------------------------------------------------------

def test_diffs_show_files_written_and_removed_and_profiles_edited_and_deleted(tmp_path):
    write(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection', render(IB0_RAIL, 'infiniband'))
    image = write(tmp_path / 'system-connections' / 'ib0.nmconnection', IMAGE)
    gone = write(tmp_path / 'system-connections' / 'roce-multirail-ib1.nmconnection', render(IB1_RAIL, 'infiniband'))
    view = nm_view(tmp_path)
    changes = planned(view, [IB0_RAIL])
    adopted = view.nm_profiles['2d7ee3a5-2b1a-4d39-a5f5-1e1a4b4a0c01']
    ours = str(tmp_path / 'system-connections' / 'roce-multirail-ib0.nmconnection')
    assert changes.diffs() == [
        dict(before=IMAGE, after=IMAGE_ADOPTED, before_header=image, after_header=image),
        dict(before=render(IB0_RAIL, 'infiniband'), after='', before_header=ours, after_header=ours + ' (removed)'),
        dict(before=render(IB1_RAIL, 'infiniband'), after='', before_header=gone, after_header=gone + ' (removed)'),
        dict(before=describe_profile(adopted), after=describe_profile(adopted, IB0_RAIL.routes, IB0_RAIL.rules),
             before_header=adopted.describe(), after_header=adopted.describe()),
    ]


def test_no_changes_are_false_and_have_no_diffs():
    changes = Changes()
    assert (bool(changes), changes.diffs()) == (False, [])


def test_the_header_is_the_first_line_of_every_file_the_collection_writes_whole():
    for text in (render(IB0_RAIL, 'infiniband'), render_network(IB0_RAIL), render_dropin(IB0_RAIL),
                 render_netplan([(Definition('ib0', 'ethernets', ()), IB0_RAIL)])):
        assert text.split('\n', 1)[0] == HEADER
