"""roce.multirail.rail_keyfiles against real links, in throwaway namespaces.

The module runs inside its own namespace (the `ns` fixture), exactly as Ansible
would run it, and writes into directories under tmp_path: nothing here touches
the machine's /etc. Rails are planned with plan.build_plan on the namespace's
veth NICs. A keyfile or the sysctl.d file is checked by its bytes and its stat
(owner, mode, inode, mtime), so an unnecessary rewrite shows too.
"""

import os
import shutil
import stat

import pytest

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
    if 'sysctl_file' in args:
        args['sysctl_file'] = str(args['sysctl_file'])
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


# --- the sysctl.d file ---------------------------------------------------------

# What the file must hold for RAILS with the default sysctls, literally: a header, then the plan's
# lines, one setting each.
SYSCTL_TEXT = """\
# Written by roce.multirail.rail_keyfiles (source_routing role); local changes are overwritten.
# Per-rail ARP and reverse-path settings, applied at boot by systemd-sysctl.
# A later file in /etc/sysctl.d setting the same key wins over this one.
net.ipv4.conf.all.accept_local = 1
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.ib0.arp_announce = 2
net.ipv4.conf.ib0.arp_ignore = 1
net.ipv4.conf.ib0.rp_filter = 2
net.ipv4.conf.ib1.arp_announce = 2
net.ipv4.conf.ib1.arp_ignore = 1
net.ipv4.conf.ib1.rp_filter = 2
"""
SYSCTL_NAME = '99-roce-multirail.conf'


def persist_dirs(tmp_path):
    """(keyfile directory, sysctl.d directory, sysctl file), the directories made."""
    keyfile_dir, sysctl_dir = tmp_path / 'system-connections', tmp_path / 'sysctl.d'
    keyfile_dir.mkdir()
    sysctl_dir.mkdir()
    return keyfile_dir, sysctl_dir, sysctl_dir / SYSCTL_NAME


def persist(ns, rails, keyfile_dir, sysctl_file, lines=None, **options):
    lines = build_plan(RAILS)['sysctl_lines'] if lines is None else lines
    return keyfiles(ns, rails, keyfile_dir, sysctl_file=sysctl_file, sysctl_lines=lines, **options)


def test_sysctl_file_written_root_0644_in_the_same_call_second_run_nothing(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    (sysctl_dir / '10-other.conf').write_text('net.ipv4.ip_forward = 1\n')
    other = snapshot(sysctl_dir)['10-other.conf']

    result = persist(ns, rails, keyfile_dir, sysctl_file)
    assert result['changed'] is True and result['keyfiles_changed'] is True
    assert result['activate'] == IDS
    assert result['sysctl_file'] == {'path': str(sysctl_file), 'changed': True}
    assert sorted(snapshot(sysctl_dir)) == ['10-other.conf', SYSCTL_NAME]
    mode, uid, gid, _ino, _mtime, content = snapshot(sysctl_dir)[SYSCTL_NAME]
    assert (mode, uid, gid) == (0o644, 0, 0)
    assert content == SYSCTL_TEXT
    assert snapshot(sysctl_dir)['10-other.conf'] == other
    # sysctl(8) itself reads it, in the namespace: every key is known to the kernel, every value taken.
    ns.run('sysctl', '-q', '-p', str(sysctl_file))
    assert ns.run('sysctl', '-n', 'net.ipv4.conf.ib1.arp_announce').strip() == '2'

    before = (snapshot(keyfile_dir), snapshot(sysctl_dir))
    again = persist(ns, rails, keyfile_dir, sysctl_file)
    assert again['changed'] is False and again['keyfiles_changed'] is False
    assert again['sysctl_file'] == {'path': str(sysctl_file), 'changed': False}
    assert (snapshot(keyfile_dir), snapshot(sysctl_dir)) == before     # same bytes, inodes and mtimes


def test_without_sysctl_file_no_sysctl_file_is_touched(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, _sysctl_file = persist_dirs(tmp_path)
    (sysctl_dir / '.roce-multirail-k2x9q1').write_text('half-written\n')
    before = snapshot(sysctl_dir)
    result = keyfiles(ns, rails, keyfile_dir)
    assert 'sysctl_file' not in result and result['keyfiles_changed'] is True
    assert snapshot(sysctl_dir) == before


def test_only_the_sysctl_file_changed_no_keyfile_to_activate(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    persist(ns, rails, keyfile_dir, sysctl_file)
    keyfiles_before = snapshot(keyfile_dir)
    sysctl_file.write_text(SYSCTL_TEXT.replace('ib1.rp_filter = 2', 'ib1.rp_filter = 1'))

    result = persist(ns, rails, keyfile_dir, sysctl_file)
    assert result['changed'] is True
    assert result['keyfiles_changed'] is False and result['activate'] == [] and result['removed'] == []
    assert result['sysctl_file']['changed'] is True
    assert [entry['changed'] for entry in result['files']] == [False, False]
    assert read(sysctl_file) == SYSCTL_TEXT
    assert snapshot(keyfile_dir) == keyfiles_before

    # Other lines (another rail_sysctls): the file follows them, the keyfiles stay.
    lines = build_plan(RAILS, rail_sysctls={'arp_ignore': 2})['sysctl_lines']
    result = persist(ns, rails, keyfile_dir, sysctl_file, lines=lines)
    assert result['sysctl_file']['changed'] is True and result['keyfiles_changed'] is False
    assert read(sysctl_file).splitlines()[3:] == lines
    assert snapshot(keyfile_dir) == keyfiles_before


def test_sysctl_file_wrong_mode_or_owner_is_fixed(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    persist(ns, rails, keyfile_dir, sysctl_file)
    keyfiles_before = snapshot(keyfile_dir)

    for breaks in (lambda: os.chmod(str(sysctl_file), 0o600), lambda: os.chmod(str(sysctl_file), 0o666),
                   lambda: os.chown(str(sysctl_file), 1000, 1000)):
        breaks()
        result = persist(ns, rails, keyfile_dir, sysctl_file)
        assert result['sysctl_file']['changed'] is True and result['keyfiles_changed'] is False
        mode, uid, gid, _ino, _mtime, content = snapshot(sysctl_dir)[SYSCTL_NAME]
        assert (mode, uid, gid, content) == (0o644, 0, 0, SYSCTL_TEXT)
        assert persist(ns, rails, keyfile_dir, sysctl_file)['changed'] is False
    assert snapshot(keyfile_dir) == keyfiles_before


def test_sysctl_file_check_mode_reports_and_writes_nothing_diff_tells_the_content(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)

    result = persist(ns, rails, keyfile_dir, sysctl_file, check_mode=True, diff=True)
    assert result['changed'] is True and result['sysctl_file'] == {'path': str(sysctl_file), 'changed': True}
    assert result['diff'][-1] == {'before': '', 'after': SYSCTL_TEXT, 'before_header': str(sysctl_file),
                                  'after_header': str(sysctl_file)}
    assert os.listdir(str(sysctl_dir)) == [] and os.listdir(str(keyfile_dir)) == []

    persist(ns, rails, keyfile_dir, sysctl_file)
    drifted = SYSCTL_TEXT.replace('all.rp_filter = 2', 'all.rp_filter = 1')
    write(sysctl_file, drifted, mode=0o600)
    before = (snapshot(keyfile_dir), snapshot(sysctl_dir))
    result = persist(ns, rails, keyfile_dir, sysctl_file, check_mode=True, diff=True)
    assert result['changed'] is True and result['sysctl_file']['changed'] is True
    assert result['keyfiles_changed'] is False
    # Only the sysctl.d file differs: the diff holds it alone, before and after.
    assert result['diff'] == [{'before': drifted, 'after': SYSCTL_TEXT, 'before_header': str(sysctl_file),
                               'after_header': str(sysctl_file)}]
    assert (snapshot(keyfile_dir), snapshot(sysctl_dir)) == before

    result = persist(ns, rails, keyfile_dir, sysctl_file, diff=True)
    assert result['diff'] == [{'before': drifted, 'after': SYSCTL_TEXT, 'before_header': str(sysctl_file),
                               'after_header': str(sysctl_file)}]
    assert persist(ns, rails, keyfile_dir, sysctl_file, diff=True)['diff'] == []


BAD_LINES = {
    # case: (the bad line, words the message must hold besides its index and the value)
    'newline': ('net.ipv4.conf.ib0.arp_ignore = 1\nnet.ipv4.ip_forward = 1', ['line break']),
    'no_equals': ('net.ipv4.conf.ib0.arp_ignore 1', ['is not a "net.ipv4.conf.']),
    'not_a_number': ('net.ipv4.conf.ib0.arp_ignore = one', ['is not a "net.ipv4.conf.']),
    'not_net_ipv4_conf': ('kernel.panic = 10', ['is not a "net.ipv4.conf.']),
    'dotted_interface': ('net.ipv4.conf.eth0.100.rp_filter = 2', ['is not a "net.ipv4.conf.']),
    'key_twice': ('net.ipv4.conf.all.rp_filter = 1', ['sets net.ipv4.conf.all.rp_filter again, after sysctl_lines[1]']),
}


@pytest.mark.parametrize('case', sorted(BAD_LINES))
def test_a_bad_sysctl_line_is_refused_naming_it_and_nothing_is_written(ns, tmp_path, case):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    bad, words = BAD_LINES[case]
    lines = build_plan(RAILS)['sysctl_lines']
    lines.insert(3, bad)
    write(keyfile_dir / file_name('ib7'), stale_text('ib7'))
    before = (snapshot(keyfile_dir), snapshot(sysctl_dir))

    result = persist(ns, rails, keyfile_dir, sysctl_file, lines=lines, expect_failure=True)
    assert result['msg'].startswith('sysctl_lines[3]: %r' % bad), result['msg']
    for word in words:
        assert word in result['msg'], '%r not in %r' % (word, result['msg'])
    # No keyfile written, the stale one not purged, no sysctl.d file.
    assert (snapshot(keyfile_dir), snapshot(sysctl_dir)) == before


def test_sysctl_file_in_a_missing_directory_is_refused_and_nothing_is_written(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, _sysctl_dir, _sysctl_file = persist_dirs(tmp_path)
    missing = tmp_path / 'etc' / 'sysctl.d' / SYSCTL_NAME
    result = persist(ns, rails, keyfile_dir, missing, expect_failure=True)
    assert result['msg'] == 'sysctl_file %s: directory %s does not exist' % (missing, missing.parent), result['msg']
    assert os.listdir(str(keyfile_dir)) == [] and not os.path.exists(str(tmp_path / 'etc'))

    # A directory where the file should be: refused too.
    (tmp_path / 'sysctl.d' / SYSCTL_NAME).mkdir()
    result = persist(ns, rails, keyfile_dir, tmp_path / 'sysctl.d' / SYSCTL_NAME, expect_failure=True)
    assert 'is not a regular file' in result['msg'], result['msg']
    assert os.listdir(str(keyfile_dir)) == []


def test_sysctl_lines_go_with_sysctl_file(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    result = keyfiles(ns, rails, keyfile_dir, sysctl_lines=build_plan(RAILS)['sysctl_lines'], expect_failure=True)
    assert 'sysctl_file' in result['msg'] and 'sysctl_lines' in result['msg'], result['msg']
    result = keyfiles(ns, rails, keyfile_dir, sysctl_file=sysctl_file, expect_failure=True)
    assert 'sysctl_file' in result['msg'] and 'sysctl_lines' in result['msg'], result['msg']
    assert os.listdir(str(keyfile_dir)) == [] and os.listdir(str(sysctl_dir)) == []

    # Empty lines (a plan with no sysctls): the header alone.
    result = persist(ns, rails, keyfile_dir, sysctl_file, lines=[])
    assert result['sysctl_file']['changed'] is True
    assert read(sysctl_file) == ''.join(SYSCTL_TEXT.splitlines(True)[:3])


def test_a_temporary_file_left_in_the_sysctl_directory_is_removed(ns, tmp_path):
    rails = rails_on(ns)
    keyfile_dir, sysctl_dir, sysctl_file = persist_dirs(tmp_path)
    persist(ns, rails, keyfile_dir, sysctl_file)
    leftover = sysctl_dir / '.roce-multirail-k2x9q1'
    leftover.write_text('net.ipv4.conf.all.rp_filter = 2\n')
    result = persist(ns, rails, keyfile_dir, sysctl_file, check_mode=True)
    assert result['changed'] is True and result['removed'] == [str(leftover)] and leftover.exists()
    result = persist(ns, rails, keyfile_dir, sysctl_file)
    assert result['changed'] is True and result['removed'] == [str(leftover)] and not leftover.exists()
    assert result['keyfiles_changed'] is False and result['sysctl_file']['changed'] is False
    assert persist(ns, rails, keyfile_dir, sysctl_file)['changed'] is False

    # Both files in one directory: a leftover there is removed once.
    result = persist(ns, rails, sysctl_dir, sysctl_file)
    leftover.write_text('half\n')
    result = persist(ns, rails, sysctl_dir, sysctl_file)
    assert result['removed'] == [str(leftover)] and not leftover.exists()
