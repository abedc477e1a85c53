"""roce.multirail.rail_keyfiles against real links, in throwaway namespaces.

The module runs inside its own namespace (the `ns` fixture), exactly as Ansible
would run it, and writes into a directory under tmp_path: nothing here touches
the machine's /etc. Rails are planned with plan.build_plan on the namespace's
veth NICs. A keyfile is checked by its bytes and its stat (owner, mode, inode,
mtime), so an unnecessary rewrite shows too.
"""

import os
import shutil
import stat

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import (
    connection_id,
    connection_uuid,
    file_name,
    render,
)
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

RAILS = [{'device': 'ib0', 'address': '10.0.1.14/24'},
         {'device': 'ib1', 'address': '10.0.2.14/24', 'sources': ['10.0.2.40']}]
IDS = ['roce-multirail-ib0', 'roce-multirail-ib1']
NM_STATES = ('running', 'not running', 'not installed')    # rail_keyfiles RETURN `networkmanager`
# Files a purge must never touch: not roce-multirail-*.nmconnection, or not directly in the directory.
BYSTANDERS = {
    'Wired connection 1.nmconnection': '[connection]\nid=Wired connection 1\n',
    'roce-multirail-ib1.nmconnection.bak': 'backup\n',
    'roce-multirail-ib1.nmconnection~': 'editor backup\n',
    'roce-multirail.nmconnection': 'no dash\n',
    'notes.txt': 'hands off\n',
    os.path.join('sub', 'roce-multirail-ib5.nmconnection'): 'one level down\n',
}


# --- helpers ---------------------------------------------------------------

def rails_on(ns, specs=None):
    """Give the namespace a veth NIC per rail spec (default RAILS); return the planned rails."""
    specs = RAILS if specs is None else specs
    for spec in specs:
        ns.add_nic(spec['device'], spec['address'])
    return build_plan(specs)['rails']


def keyfiles(ns, rails, directory, check_mode=False, diff=False, expect_failure=False, **options):
    args = dict(options, rails=rails, directory=str(directory))
    return ns.module('rail_keyfiles', args, check_mode=check_mode, diff=diff, expect_failure=expect_failure)


def snapshot(directory):
    """{relative path: (mode, uid, gid, inode, mtime_ns, content)} of every file under directory."""
    found = {}
    for root, _dirs, names in os.walk(str(directory)):
        for name in names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            with open(path) as handle:
                content = handle.read()
            found[os.path.relpath(path, str(directory))] = (
                stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_mtime_ns, content)
    return found


def write(path, content, mode=0o600):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w') as handle:
        handle.write(content)
    os.chmod(str(path), mode)


def read(path):
    with open(str(path)) as handle:
        return handle.read()


def expected_nm_state():
    """What the module can honestly report here: nmcli may be installed, but no NetworkManager runs
    on the bus a process inside a lab namespace reaches (the machine's)."""
    search = os.environ.get('PATH', '').split(os.pathsep) + ['/sbin', '/usr/sbin', '/usr/local/sbin']
    return 'not running' if any(os.access(os.path.join(d, 'nmcli'), os.X_OK) for d in search if d) \
        else 'not installed'


def stale_text(device):
    rail = build_plan([{'device': device, 'address': '10.0.7.14/24', 'table': 107, 'priority': 1007}])['rails'][0]
    return render(rail, 'ethernet')


# --- tests -------------------------------------------------------------------

def test_first_run_writes_one_private_keyfile_per_rail_second_run_nothing(ns, tmp_path):
    rails = rails_on(ns)
    directory = tmp_path / 'system-connections'
    directory.mkdir()

    result = keyfiles(ns, rails, directory)
    assert result['changed'] is True
    assert result['activate'] == IDS
    assert result['removed'] == []
    assert sorted(snapshot(directory)) == [file_name('ib0'), file_name('ib1')]
    for rail, entry in zip(rails, result['files']):
        path = directory / file_name(rail['device'])
        assert entry == {'path': str(path), 'id': connection_id(rail['device']),
                         'uuid': connection_uuid(rail['device']), 'device': rail['device'], 'type': 'ethernet',
                         'changed': True}
        st = os.stat(str(path))
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0), path
        assert read(path) == render(rail, 'ethernet')
    # What NetworkManager must see, literally: the live modules' table, metric and rules.
    ib1 = read(directory / file_name('ib1')).splitlines()
    for line in ('id=roce-multirail-ib1', 'type=ethernet', 'interface-name=ib1', 'address1=10.0.2.14/24',
                 'route1=10.0.2.0/24,0.0.0.0,100', 'route1_options=src=10.0.2.14,table=102',
                 'route2=0.0.0.0/0,10.0.2.1,100', 'route2_options=table=102',
                 'routing-rule1=priority 1002 from 10.0.2.14 table 102',
                 'routing-rule2=priority 1002 from 10.0.2.40 table 102'):
        assert line in ib1, '%r not in\n%s' % (line, '\n'.join(ib1))

    before = snapshot(directory)
    again = keyfiles(ns, rails, directory)
    assert again['changed'] is False
    assert again['activate'] == [] and again['removed'] == []
    assert [entry['changed'] for entry in again['files']] == [False, False]
    assert snapshot(directory) == before      # not even rewritten with the same bytes


def test_wrong_mode_or_owner_is_fixed(ns, tmp_path):
    rails = rails_on(ns)
    keyfiles(ns, rails, tmp_path)
    ib0, ib1 = tmp_path / file_name('ib0'), tmp_path / file_name('ib1')
    os.chmod(str(ib1), 0o644)
    untouched = snapshot(tmp_path)[file_name('ib0')]

    result = keyfiles(ns, rails, tmp_path)
    assert result['changed'] is True
    assert result['activate'] == ['roce-multirail-ib1']
    assert [entry['changed'] for entry in result['files']] == [False, True]
    assert stat.S_IMODE(os.stat(str(ib1)).st_mode) == 0o600
    assert read(ib1) == render(rails[1], 'ethernet')
    assert snapshot(tmp_path)[file_name('ib0')] == untouched

    os.chown(str(ib0), 1000, 1000)
    result = keyfiles(ns, rails, tmp_path)
    assert result['changed'] is True and result['activate'] == ['roce-multirail-ib0']
    st = os.stat(str(ib0))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    assert keyfiles(ns, rails, tmp_path)['changed'] is False


def test_content_drift_is_fixed(ns, tmp_path):
    rails = rails_on(ns)
    keyfiles(ns, rails, tmp_path)
    ib1 = tmp_path / file_name('ib1')
    write(ib1, read(ib1).replace('table 102', 'table 202').replace('route2=', '#route2='))
    untouched = snapshot(tmp_path)[file_name('ib0')]

    result = keyfiles(ns, rails, tmp_path)
    assert result['changed'] is True
    assert result['activate'] == ['roce-multirail-ib1']
    assert read(ib1) == render(rails[1], 'ethernet')
    st = os.stat(str(ib1))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    assert snapshot(tmp_path)[file_name('ib0')] == untouched
    assert keyfiles(ns, rails, tmp_path)['changed'] is False


def test_check_mode_reports_and_writes_nothing(ns, tmp_path):
    rails = rails_on(ns)
    empty = tmp_path / 'empty'
    empty.mkdir()
    result = keyfiles(ns, rails, empty, check_mode=True)
    assert result['changed'] is True
    assert result['activate'] == IDS
    assert [(entry['path'], entry['changed']) for entry in result['files']] == [
        (str(empty / file_name('ib0')), True), (str(empty / file_name('ib1')), True)]
    assert os.listdir(str(empty)) == []

    # A drifted directory: wrong mode, wrong content, a stale rail; check mode leaves all of it.
    drifted = tmp_path / 'drifted'
    drifted.mkdir()
    keyfiles(ns, rails, drifted)
    os.chmod(str(drifted / file_name('ib0')), 0o644)
    write(drifted / file_name('ib1'), 'drifted\n')
    write(drifted / file_name('ib7'), stale_text('ib7'))
    before = snapshot(drifted)
    result = keyfiles(ns, rails, drifted, check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['activate'] == IDS
    assert result['removed'] == [str(drifted / file_name('ib7'))]
    assert len(result['diff']) == 3
    assert snapshot(drifted) == before


def test_diff_shows_before_and_after_content(ns, tmp_path):
    rails = rails_on(ns)
    result = keyfiles(ns, rails, tmp_path, diff=True)
    assert result['diff'] == [
        {'before': '', 'after': render(rail, 'ethernet'), 'before_header': str(tmp_path / file_name(rail['device'])),
         'after_header': str(tmp_path / file_name(rail['device']))}
        for rail in rails]

    ib1, stale = tmp_path / file_name('ib1'), tmp_path / file_name('ib7')
    drifted = read(ib1).replace('may-fail=false', 'may-fail=true')
    write(ib1, drifted)
    write(stale, stale_text('ib7'))
    result = keyfiles(ns, rails, tmp_path, diff=True)
    # ib0 did not change, so it has no diff entry.
    assert result['diff'] == [
        {'before': drifted, 'after': render(rails[1], 'ethernet'), 'before_header': str(ib1),
         'after_header': str(ib1)},
        {'before': stale_text('ib7'), 'after': '', 'before_header': str(stale), 'after_header': '(removed)'},
    ]
    assert keyfiles(ns, rails, tmp_path, diff=True)['diff'] == []


def test_purge_removes_only_keyfiles_of_rails_no_longer_listed(ns, tmp_path):
    rails = rails_on(ns)
    keyfiles(ns, rails, tmp_path)
    for relative, content in BYSTANDERS.items():
        write(tmp_path / relative, content, mode=0o644)
    write(tmp_path / file_name('ib7'), stale_text('ib7'))
    before = snapshot(tmp_path)

    # purge=false keeps every file, also the keyfiles of rails not listed.
    result = keyfiles(ns, rails[:1], tmp_path, purge=False)
    assert result['changed'] is False and result['removed'] == []
    assert snapshot(tmp_path) == before

    result = keyfiles(ns, rails[:1], tmp_path)
    assert result['changed'] is True
    assert result['activate'] == []
    assert result['removed'] == [str(tmp_path / file_name('ib1')), str(tmp_path / file_name('ib7'))]
    after = snapshot(tmp_path)
    expected = dict(before)
    del expected[file_name('ib1')], expected[file_name('ib7')]
    assert after == expected        # the bystanders and ib0's keyfile: same bytes, same inode, same mtime

    result = keyfiles(ns, rails[:1], tmp_path)
    assert result['changed'] is False and result['removed'] == []


def test_missing_device_fails_naming_it_and_writes_nothing(ns, tmp_path):
    rails_on(ns, RAILS[:1])
    rails = build_plan(RAILS[:1] + [{'device': 'ib9', 'address': '10.0.9.14/24'}])['rails']
    write(tmp_path / file_name('ib7'), stale_text('ib7'))
    before = snapshot(tmp_path)

    result = keyfiles(ns, rails, tmp_path, expect_failure=True)
    assert 'ib9' in result['msg'], result['msg']
    assert 'ib0' not in result['msg'], result['msg']
    assert snapshot(tmp_path) == before          # ib0's keyfile not written, the stale one not purged

    # eth0 exists on the machine but not in the namespace: the module must look at the namespace's links.
    if os.path.exists('/sys/class/net/eth0'):
        rails = build_plan([{'device': 'eth0', 'address': '10.0.9.14/24'}])['rails']
        result = keyfiles(ns, rails, tmp_path, expect_failure=True)
        assert 'eth0' in result['msg'], result['msg']
        assert snapshot(tmp_path) == before


def test_link_type_read_inside_the_namespace(ns, tmp_path):
    rails = rails_on(ns)
    assert [ns.run('cat', '/sys/class/net/%s/type' % rail['device']).strip() for rail in rails] == ['1', '1']
    assert not os.path.exists('/sys/class/net/ib0'), 'the machine has an ib0; the test needs one it lacks'

    result = keyfiles(ns, rails, tmp_path)
    assert [entry['type'] for entry in result['files']] == ['ethernet', 'ethernet']
    for rail in rails:
        assert 'type=ethernet' in read(tmp_path / file_name(rail['device'])).splitlines()

    # Loopback (ARPHRD_LOOPBACK, 772) is neither Ethernet nor InfiniBand: refused, nothing written.
    other = tmp_path / 'other'
    other.mkdir()
    lo = build_plan([{'device': 'lo', 'address': '10.0.9.14/24'}])['rails']
    result = keyfiles(ns, rails + lo, other, expect_failure=True)
    assert 'lo' in result['msg'] and '772' in result['msg'], result['msg']
    assert os.listdir(str(other)) == []


def test_missing_directory_fails_and_creates_nothing(ns, tmp_path):
    rails = rails_on(ns)
    directory = tmp_path / 'NetworkManager' / 'system-connections'
    result = keyfiles(ns, rails, directory, expect_failure=True)
    assert str(directory) in result['msg'], result['msg']
    assert not os.path.exists(str(tmp_path / 'NetworkManager'))


def test_networkmanager_state_is_a_documented_value(ns, tmp_path):
    rails = rails_on(ns)
    result = keyfiles(ns, rails, tmp_path, check_mode=True)
    assert result['networkmanager'] in NM_STATES
    # Nothing runs NetworkManager on the bus this namespace reaches; nmcli may or may not be installed.
    assert result['networkmanager'] == expected_nm_state(), (result['networkmanager'], shutil.which('nmcli'))


def test_a_temporary_file_left_by_a_killed_run_is_removed(ns, tmp_path):
    """A run killed between writing its temporary file and moving it into place leaves it behind."""
    rails = rails_on(ns)
    directory = tmp_path / 'system-connections'
    directory.mkdir()
    keyfiles(ns, rails, directory)
    leftover = directory / '.roce-multirail-k2x9q1'
    leftover.write_text('[connection]\nid=half-written\n')
    result = keyfiles(ns, rails, directory)
    assert result['changed'] is True and result['removed'] == [str(leftover)] and not leftover.exists()
    assert keyfiles(ns, rails, directory)['changed'] is False
