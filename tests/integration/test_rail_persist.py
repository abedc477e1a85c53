"""roce.multirail.rail_persist against real links, in throwaway namespaces.

The module runs inside its own namespace (the `ns` fixture), exactly as Ansible
would run it. Every directory it writes into is under tmp_path (the `etc`
fixture: keyfile_dir, networkd_dir, netplan_file, originals_dir and a sysctl.d):
nothing here writes into the machine's /etc. It still reads the machine's own
/etc/NetworkManager/system-connections, /etc/systemd/network and /etc/netplan,
which hold nothing on the test machines. No NetworkManager or systemd-networkd
runs in these namespaces, so NetworkManager profiles are keyfiles the module
reads and edits itself, and nothing is reloaded.

Rails are planned with plan.build_plan on the namespace's veth NICs. Files are
checked by their bytes and their stat (owner, mode, inode, mtime), and whole
trees by snapshot(), so an unnecessary rewrite, a file created and a directory
left behind all show.
"""

import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import connection_uuid, file_name, render
from ansible_collections.roce.multirail.plugins.module_utils.networkd import parse, render_dropin
from ansible_collections.roce.multirail.plugins.module_utils.persist import HEADER, check_rail, digest
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

import roleruns

RAILS = [{'device': 'ib0', 'address': '10.0.1.14/24'},
         {'device': 'ib1', 'address': '10.0.2.14/24', 'sources': ['10.0.2.40']}]
KEYFILES = 'NetworkManager/system-connections'
ORIGINALS = 'NetworkManager/roce-multirail'
NETWORKD = 'systemd/network'
NETPLAN = 'netplan/90-roce-multirail.yaml'
SYSCTL_D = 'sysctl.d'
DROPIN = '90-roce-multirail.conf'

# Files a purge must never touch: not a roce-multirail-*.nmconnection, not directly in the directory,
# or named like ours but without the header line (persist.HEADER) every file of this collection starts with.
BYSTANDERS = {
    'Wired connection 1.nmconnection': '[connection]\nid=Wired connection 1\n',
    'roce-multirail-ib1.nmconnection.bak': 'backup\n',
    'roce-multirail-ib1.nmconnection~': 'editor backup\n',
    'roce-multirail.nmconnection': 'no dash\n',
    'notes.txt': 'hands off\n',
    os.path.join('sub', 'roce-multirail-ib5.nmconnection'): 'one level down\n',
    'roce-multirail-ib6.nmconnection': '# written by hand\n[connection]\nid=roce-multirail-ib6\n'
                                       'interface-name=ib6\n',
}

# Keyfiles as an installer or a cloud image leaves them: one per NIC, its address and nothing of the rails.
IMAGE_KEYFILES = {
    'ib0': """\
[connection]
id=ib0
uuid=3f2b7c1e-0d4a-4f5e-9a61-1c2d3e4f5a60
type=ethernet
interface-name=ib0

[ethernet]

[ipv4]
address1=10.0.1.14/24
method=manual

[ipv6]
addr-gen-mode=default
method=disabled

[proxy]
""",
    'ib1': """\
[connection]
id=ib1
uuid=3f2b7c1e-0d4a-4f5e-9a61-1c2d3e4f5a61
type=ethernet
interface-name=ib1

[ipv4]
address1=10.0.2.14/24
method=manual
""",
}
# What adopting ib0 adds to its keyfile: the rail's routes and rule, at the end of [ipv4].
IB0_ROUTING = """\
route1=10.0.1.0/24,0.0.0.0,100
route1_options=src=10.0.1.14,table=101
route2=0.0.0.0/0,10.0.1.1,100
route2_options=table=101
routing-rule1=priority 1001 from 10.0.1.14 table 101
"""
# A keyfile bound to no NIC: NetworkManager may activate it on any Ethernet NIC.
ANY_NIC_KEYFILE = """\
[connection]
id=Wired connection 1
uuid=0c5d3b7a-2f1e-4d6c-8b9a-7e6f5d4c3b2a
type=ethernet

[ipv4]
method=auto
"""
# .network files as an image leaves them.
IMAGE_NETWORK_IB0 = '[Match]\nName=ib0\n\n[Network]\nAddress=10.0.1.14/24\n'
IMAGE_NETWORK_IB1 = '[Match]\nName=ib1\n\n[Network]\nAddress=10.0.2.14/24\n'


# --- helpers ---------------------------------------------------------------

@pytest.fixture
def etc(tmp_path):
    """A private /etc for the module: the directories of each stack and sysctl.d exist, originals_dir not yet."""
    root = tmp_path / 'etc'
    for directory in (KEYFILES, NETWORKD, os.path.dirname(NETPLAN), SYSCTL_D):
        (root / directory).mkdir(parents=True)
    return root


def rails_on(ns, specs=None):
    """Give the namespace a veth NIC per rail spec (default RAILS); return the planned rails."""
    specs = RAILS if specs is None else specs
    for spec in specs:
        ns.add_nic(spec['device'], spec['address'])
    return build_plan(specs)['rails']


def persist(ns, rails, etc, check_mode=False, diff=False, expect_failure=False, **options):
    """Run rail_persist with every directory under `etc`; options override or add arguments."""
    args = dict(keyfile_dir=etc / KEYFILES, networkd_dir=etc / NETWORKD, netplan_file=etc / NETPLAN,
                originals_dir=etc / ORIGINALS)
    if 'directory' in options:
        del args['keyfile_dir']
    args.update(options, rails=rails)
    args = dict((key, str(value) if isinstance(value, os.PathLike) else value) for key, value in args.items())
    return ns.module('rail_persist', args, check_mode=check_mode, diff=diff, expect_failure=expect_failure)


def snapshot(directory):
    """{relative path: (mode, uid, gid, inode, mtime_ns, content)} of every file under directory, and
    {relative path + '/': None} of every directory under it."""
    found = {}
    for root, dirs, names in os.walk(str(directory)):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), str(directory)) + '/'] = None
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


def owner_mode(path):
    st = os.stat(str(path))
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def keyfile(etc, device):
    """The path of the keyfile of this collection for a rail."""
    return etc / KEYFILES / file_name(device)


def networkd_files(etc):
    """The .network files this collection creates for RAILS where no file sets a NIC up."""
    return [etc / NETWORKD / ('50-roce-multirail-%s.network' % device) for device in ('ib0', 'ib1')]


def image_keyfile(etc, device, text=None):
    """Put the image's keyfile of a NIC in keyfile_dir (root 0600, as NetworkManager wants it); return its path."""
    path = etc / KEYFILES / (device + '.nmconnection')
    write(path, IMAGE_KEYFILES[device] if text is None else text)
    return path


def record(etc, device):
    """Where the original of an adopted image keyfile is kept."""
    uuid = [line for line in IMAGE_KEYFILES[device].splitlines() if line.startswith('uuid=')][0][len('uuid='):]
    return etc / ORIGINALS / ('%s.json' % uuid)


def written(*paths):
    return [{'path': str(path), 'state': 'written'} for path in paths]


def removed(*paths):
    return [{'path': str(path), 'state': 'removed'} for path in paths]


def warnings(result):
    """The module's warnings as text (ansible-core 2.19 returns each as a WarningSummary mapping)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


def expected_daemons():
    """What the module can honestly report here: the tools may be installed, but neither daemon runs on
    the bus a process inside a lab namespace reaches."""
    search = os.environ.get('PATH', '').split(os.pathsep) + ['/usr/sbin', '/sbin']

    def installed(*names):
        return any(os.access(os.path.join(d, n), os.X_OK) for d in search if d for n in names)

    networkd = any(os.path.exists(p) for p in ('/lib/systemd/systemd-networkd', '/usr/lib/systemd/systemd-networkd'))
    return {'networkmanager': 'not running' if installed('nmcli', 'NetworkManager') else 'not installed',
            'networkd': 'not running' if networkd else 'not installed',
            'netplan': 'installed' if installed('netplan') else 'not installed'}


def stale_text(device):
    """The keyfile this collection (or rail_keyfiles before it) wrote for a rail no longer listed."""
    rail = build_plan([{'device': device, 'address': '10.0.7.14/24', 'table': 107, 'priority': 1007}])['rails'][0]
    return render(rail, 'ethernet')


# --- NetworkManager: the profiles of this collection -------------------------------

def test_first_run_writes_one_private_keyfile_per_rail_second_run_nothing(ns, etc):
    rails = rails_on(ns)

    result = persist(ns, rails, etc)
    assert result['changed'] is True
    assert result['stack'] == 'networkmanager'
    assert result['rails'] == [
        {'device': rail['device'], 'stack': 'networkmanager', 'how': 'create',
         'where': "profile 'roce-multirail-%s' of this collection" % rail['device']} for rail in rails]
    assert result['report'] == ["ib0: NetworkManager, profile 'roce-multirail-ib0' of this collection",
                                "ib1: NetworkManager, profile 'roce-multirail-ib1' of this collection"]
    assert result['files'] == written(keyfile(etc, 'ib0'), keyfile(etc, 'ib1'))
    assert result['profiles'] == [] and result['boot'] == []
    assert sorted(snapshot(etc / KEYFILES)) == [file_name('ib0'), file_name('ib1')]
    for rail in rails:
        path = keyfile(etc, rail['device'])
        assert owner_mode(path) == (0o600, 0, 0), path
        assert read(path) == render(rail, 'ethernet')
    # What NetworkManager must see, literally: the live modules' table, metric and rules.
    ib1 = read(keyfile(etc, 'ib1')).splitlines()
    for line in (HEADER, 'id=roce-multirail-ib1', 'uuid=' + connection_uuid('ib1'), 'type=ethernet',
                 'interface-name=ib1', 'address1=10.0.2.14/24',
                 'route1=10.0.2.0/24,0.0.0.0,100', 'route1_options=src=10.0.2.14,table=102',
                 'route2=0.0.0.0/0,10.0.2.1,100', 'route2_options=table=102',
                 'routing-rule1=priority 1002 from 10.0.2.14 table 102',
                 'routing-rule2=priority 1002 from 10.0.2.40 table 102'):
        assert line in ib1, '%r not in\n%s' % (line, '\n'.join(ib1))
    # Nothing of the other stacks, no originals.
    assert sorted(snapshot(etc)) == sorted(['NetworkManager/', KEYFILES + '/', 'systemd/', NETWORKD + '/',
                                            'netplan/', SYSCTL_D + '/', KEYFILES + '/' + file_name('ib0'),
                                            KEYFILES + '/' + file_name('ib1')])

    before = snapshot(etc)
    again = persist(ns, rails, etc)
    assert again['changed'] is False
    assert again['files'] == [] and again['profiles'] == []
    assert snapshot(etc) == before      # not even rewritten with the same bytes


def test_wrong_mode_or_owner_is_fixed(ns, etc):
    rails = rails_on(ns)
    persist(ns, rails, etc)
    ib0, ib1 = keyfile(etc, 'ib0'), keyfile(etc, 'ib1')
    os.chmod(str(ib1), 0o644)
    untouched = snapshot(etc / KEYFILES)[file_name('ib0')]

    result = persist(ns, rails, etc)
    assert result['changed'] is True
    assert result['files'] == written(ib1)
    assert owner_mode(ib1) == (0o600, 0, 0)
    assert read(ib1) == render(rails[1], 'ethernet')
    assert snapshot(etc / KEYFILES)[file_name('ib0')] == untouched

    os.chown(str(ib0), 1000, 1000)
    result = persist(ns, rails, etc)
    assert result['changed'] is True and result['files'] == written(ib0)
    assert owner_mode(ib0) == (0o600, 0, 0)
    assert persist(ns, rails, etc)['changed'] is False


def test_content_drift_is_fixed(ns, etc):
    rails = rails_on(ns)
    persist(ns, rails, etc)
    ib1 = keyfile(etc, 'ib1')
    write(ib1, read(ib1).replace('table 102', 'table 202').replace('route2=', '#route2='))
    untouched = snapshot(etc / KEYFILES)[file_name('ib0')]

    result = persist(ns, rails, etc)
    assert result['changed'] is True
    assert result['files'] == written(ib1)
    assert read(ib1) == render(rails[1], 'ethernet')
    assert owner_mode(ib1) == (0o600, 0, 0)
    assert snapshot(etc / KEYFILES)[file_name('ib0')] == untouched
    assert persist(ns, rails, etc)['changed'] is False


def test_check_mode_reports_and_writes_nothing(ns, etc):
    rails = rails_on(ns)
    before = snapshot(etc)
    result = persist(ns, rails, etc, check_mode=True)
    assert result['changed'] is True
    assert result['files'] == written(keyfile(etc, 'ib0'), keyfile(etc, 'ib1'))
    assert 'boot' not in result            # nothing was changed, so nothing was checked
    assert snapshot(etc) == before

    # A drifted directory: wrong mode, wrong content, a stale rail; check mode leaves all of it.
    persist(ns, rails, etc)
    os.chmod(str(keyfile(etc, 'ib0')), 0o644)
    write(keyfile(etc, 'ib1'), HEADER + '\ndrifted\n')
    write(keyfile(etc, 'ib7'), stale_text('ib7'))
    before = snapshot(etc)
    result = persist(ns, rails, etc, check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['files'] == written(keyfile(etc, 'ib0'), keyfile(etc, 'ib1')) + removed(keyfile(etc, 'ib7'))
    assert len(result['diff']) == 3
    assert snapshot(etc) == before


def test_diff_shows_before_and_after_content(ns, etc):
    rails = rails_on(ns)
    result = persist(ns, rails, etc, diff=True)
    assert result['diff'] == [
        {'before': '', 'after': render(rail, 'ethernet'), 'before_header': str(keyfile(etc, rail['device'])),
         'after_header': str(keyfile(etc, rail['device']))}
        for rail in rails]

    ib1, stale = keyfile(etc, 'ib1'), keyfile(etc, 'ib7')
    drifted = read(ib1).replace('may-fail=false', 'may-fail=true')
    write(ib1, drifted)
    write(stale, stale_text('ib7'))
    result = persist(ns, rails, etc, diff=True)
    # ib0 did not change, so it has no diff entry.
    assert result['diff'] == [
        {'before': drifted, 'after': render(rails[1], 'ethernet'), 'before_header': str(ib1),
         'after_header': str(ib1)},
        {'before': stale_text('ib7'), 'after': '', 'before_header': str(stale),
         'after_header': '%s (removed)' % stale},
    ]
    assert persist(ns, rails, etc, diff=True)['diff'] == []


def test_purge_removes_only_keyfiles_of_this_collection_for_rails_no_longer_listed(ns, etc):
    rails = rails_on(ns)
    persist(ns, rails, etc)
    for relative, content in BYSTANDERS.items():
        write(etc / KEYFILES / relative, content, mode=0o644)
    os.chmod(str(etc / KEYFILES / 'roce-multirail-ib6.nmconnection'), 0o600)
    write(keyfile(etc, 'ib7'), stale_text('ib7'))
    before = snapshot(etc)

    # purge=false keeps every file, also the keyfiles of rails not listed.
    result = persist(ns, rails[:1], etc, purge=False)
    assert result['changed'] is False and result['files'] == []
    assert snapshot(etc) == before

    result = persist(ns, rails[:1], etc)
    assert result['changed'] is True
    assert result['files'] == removed(keyfile(etc, 'ib1'), keyfile(etc, 'ib7'))
    expected = dict(before)
    del expected[KEYFILES + '/' + file_name('ib1')], expected[KEYFILES + '/' + file_name('ib7')]
    assert snapshot(etc) == expected    # the bystanders and ib0's keyfile: same bytes, same inode, same mtime

    result = persist(ns, rails[:1], etc)
    assert result['changed'] is False and result['files'] == []


def test_missing_device_fails_naming_it_and_writes_nothing(ns, etc):
    rails_on(ns, RAILS[:1])
    rails = build_plan(RAILS[:1] + [{'device': 'ib9', 'address': '10.0.9.14/24'}])['rails']
    write(keyfile(etc, 'ib7'), stale_text('ib7'))
    before = snapshot(etc)

    result = persist(ns, rails, etc, expect_failure=True)
    assert result['msg'] == 'nothing was changed: rail ib9: the host has no NIC ib9', result['msg']
    assert result['problems'] == ['rail ib9: the host has no NIC ib9']
    assert result['daemons'] == expected_daemons()
    assert snapshot(etc) == before          # ib0's keyfile not written, the stale one not purged

    # eth0 exists on the machine but not in the namespace: the module must look at the namespace's links.
    if os.path.exists('/sys/class/net/eth0'):
        rails = build_plan([{'device': 'eth0', 'address': '10.0.9.14/24'}])['rails']
        result = persist(ns, rails, etc, expect_failure=True)
        assert result['msg'] == 'nothing was changed: rail eth0: the host has no NIC eth0', result['msg']
        assert snapshot(etc) == before


def test_link_type_is_read_inside_the_namespace(ns, etc):
    rails = rails_on(ns)
    assert [ns.run('cat', '/sys/class/net/%s/type' % rail['device']).strip() for rail in rails] == ['1', '1']
    assert not os.path.exists('/sys/class/net/ib0'), 'the machine has an ib0; the test needs one it lacks'

    persist(ns, rails, etc)
    for rail in rails:
        assert 'type=ethernet' in read(keyfile(etc, rail['device'])).splitlines()


def test_a_rail_on_a_link_neither_ethernet_nor_infiniband_is_refused_naming_it(ns, etc):
    """Loopback (ARPHRD_LOOPBACK, 772) is neither Ethernet nor InfiniBand: refused, nothing written."""
    rails = rails_on(ns)
    lo = build_plan([{'device': 'lo', 'address': '10.0.9.14/24'}])['rails']
    before = snapshot(etc)
    result = persist(ns, rails + lo, etc, expect_failure=True)
    assert 'rail lo' in result['msg'] and '772' in result['msg'], result['msg']
    assert snapshot(etc) == before


def test_missing_keyfile_directory_fails_and_creates_nothing(ns, etc):
    rails = rails_on(ns)
    shutil.rmtree(str(etc / 'NetworkManager'))
    before = snapshot(etc)
    result = persist(ns, rails, etc, expect_failure=True)
    assert str(etc / KEYFILES) in result['msg'], result['msg']
    assert snapshot(etc) == before


def test_daemons_tell_what_is_installed_and_that_nothing_runs_here(ns, etc):
    rails = rails_on(ns)
    result = persist(ns, rails, etc, check_mode=True)
    assert result['daemons'] == expected_daemons(), (result['daemons'], shutil.which('nmcli'))


def test_a_temporary_file_left_by_a_killed_run_is_removed(ns, etc):
    """A run killed between writing its temporary file and moving it into place leaves it behind (its name
    carries the digest of its content: persist.temp_name)."""
    rails = rails_on(ns)
    persist(ns, rails, etc)
    text = '[connection]\nid=half-written\n'
    leftover = etc / KEYFILES / ('.roce-multirail-%s-k2x9q1' % digest(text)[:32])
    leftover.write_text(text)
    result = persist(ns, rails, etc)
    assert result['changed'] is True and result['files'] == removed(leftover) and not leftover.exists()
    assert persist(ns, rails, etc)['changed'] is False


def test_the_old_name_with_its_directory_option_still_works(ns, etc, tmp_path):
    """meta/runtime.yml redirects roce.multirail.rail_keyfiles to rail_persist. The redirect is
    Ansible's: ns.module() imports a module file by name, so this runs a one-task playbook in the
    namespace, with the option name rail_keyfiles had (directory, now an alias of keyfile_dir)."""
    rails = rails_on(ns, RAILS[:1])
    path = image_keyfile(etc, 'ib0')
    saved = tmp_path / 'result.json'
    args = {'rails': rails, 'directory': str(etc / KEYFILES), 'networkd_dir': str(etc / NETWORKD),
            'netplan_file': str(etc / NETPLAN), 'originals_dir': str(etc / ORIGINALS)}
    play = {'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
            'vars': {'ansible_python_interpreter': os.path.join(roleruns.BIN, 'python')},
            'tasks': [{'name': 'persist', 'roce.multirail.rail_keyfiles': args, 'register': 'persisted'},
                      {'name': 'save', 'ansible.builtin.copy': {'content': '{{ persisted | to_json }}',
                                                                'dest': str(saved)}}]}
    playbook = tmp_path / 'playbook.yml'
    playbook.write_text(json.dumps([play]))
    proc = subprocess.run(['ip', 'netns', 'exec', ns.name, os.path.join(roleruns.BIN, 'ansible-playbook'),
                           '-i', 'localhost,', str(playbook)], capture_output=True, text=True,
                          env=roleruns.ansible_env(tmp_path), cwd=str(tmp_path), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    result = json.loads(saved.read_text())
    assert result['changed'] is True
    assert result['stack'] == 'networkmanager' and result['files'] == written(path)
    assert read(path) == IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\n' + IB0_ROUTING)


# --- NetworkManager: profiles of the image, adopted ---------------------------------

def test_an_image_keyfile_is_adopted_its_other_lines_unchanged_and_no_profile_created(ns, etc):
    rails = rails_on(ns)
    paths = [image_keyfile(etc, 'ib0'), image_keyfile(etc, 'ib1')]

    result = persist(ns, rails, etc)
    assert result['changed'] is True and result['stack'] == 'networkmanager'
    assert result['rails'] == [
        {'device': device, 'stack': 'networkmanager', 'how': 'adopt', 'where': "profile '%s' (%s)" % (device, path)}
        for device, path in zip(('ib0', 'ib1'), paths)]
    assert result['report'] == ["ib0: NetworkManager, profile 'ib0' (%s)" % paths[0],
                                "ib1: NetworkManager, profile 'ib1' (%s)" % paths[1]]
    assert result['files'] == written(*paths)
    assert result['boot'] == []
    assert read(paths[0]) == IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\n' + IB0_ROUTING)
    assert read(paths[1]) == IMAGE_KEYFILES['ib1'] + (
        'route1=10.0.2.0/24,0.0.0.0,100\nroute1_options=src=10.0.2.14,table=102\n'
        'route2=0.0.0.0/0,10.0.2.1,100\nroute2_options=table=102\n'
        'routing-rule1=priority 1002 from 10.0.2.14 table 102\nrouting-rule2=priority 1002 from 10.0.2.40 table 102\n')
    for path in paths:
        assert owner_mode(path) == (0o600, 0, 0), path
    assert not keyfile(etc, 'ib0').exists() and not keyfile(etc, 'ib1').exists()
    # The originals are kept where only root reads them.
    assert sorted(os.listdir(str(etc / ORIGINALS))) == sorted([record(etc, 'ib0').name, record(etc, 'ib1').name])
    assert owner_mode(record(etc, 'ib0')) == (0o600, 0, 0)

    before = snapshot(etc)
    again = persist(ns, rails, etc)
    assert again['changed'] is False and again['files'] == [] and again['profiles'] == []
    assert snapshot(etc) == before


def test_check_mode_on_an_image_keyfile_tells_the_adoption_and_writes_nothing(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    path = image_keyfile(etc, 'ib0')
    before = snapshot(etc)
    result = persist(ns, rails, etc, check_mode=True, diff=True)
    assert result['changed'] is True and result['files'] == written(path)
    assert result['rails'][0]['how'] == 'adopt'
    assert {'before': IMAGE_KEYFILES['ib0'], 'before_header': str(path), 'after_header': str(path),
            'after': IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\n' + IB0_ROUTING)} \
        in result['diff']
    assert snapshot(etc) == before          # no originals_dir either


def test_a_rail_no_longer_listed_gives_its_image_keyfile_back_byte_for_byte(ns, etc):
    rails = rails_on(ns)
    ib0, ib1 = image_keyfile(etc, 'ib0'), image_keyfile(etc, 'ib1')
    original = snapshot(etc / KEYFILES)[ib0.name]
    persist(ns, rails, etc)
    kept = read(ib1)

    before = snapshot(etc)
    result = persist(ns, rails[1:], etc, check_mode=True)
    assert result['changed'] is True and result['files'] == written(ib0)
    assert snapshot(etc) == before          # the adopted keyfile and its record stay in check mode

    result = persist(ns, rails[1:], etc)
    assert result['changed'] is True
    assert result['files'] == written(ib0)
    assert warnings(result) == []
    mode, uid, gid, _ino, _mtime, content = snapshot(etc / KEYFILES)[ib0.name]
    assert (mode, uid, gid, content) == original[:3] + original[5:]
    assert not record(etc, 'ib0').exists() and record(etc, 'ib1').exists()
    assert read(ib1) == kept
    assert persist(ns, rails[1:], etc)['changed'] is False


def test_an_adopted_keyfile_changed_since_loses_only_the_routes_and_rules_with_a_warning(ns, etc):
    rails = rails_on(ns)
    ib0 = image_keyfile(etc, 'ib0')
    image_keyfile(etc, 'ib1')
    persist(ns, rails, etc)
    # Someone adds a DNS server to the profile after the adoption.
    write(ib0, read(ib0).replace('method=manual\n', 'method=manual\ndns=10.0.0.53;\n'))

    result = persist(ns, rails[1:], etc)
    assert result['changed'] is True and result['files'] == written(ib0)
    assert read(ib0) == IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\ndns=10.0.0.53;\n')
    assert owner_mode(ib0) == (0o600, 0, 0)
    assert warnings(result) == [
        "profile 'ib0' (%s) was changed since this collection adopted it: only its routes and rules were taken out"
        % ib0]
    assert not record(etc, 'ib0').exists()
    assert persist(ns, rails[1:], etc)['changed'] is False


def test_an_adopted_keyfile_that_lost_a_route_gets_it_back(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    ib0 = image_keyfile(etc, 'ib0')
    persist(ns, rails, etc)
    adopted = read(ib0)
    write(ib0, adopted.replace('route2=0.0.0.0/0,10.0.1.1,100\nroute2_options=table=101\n', ''))

    result = persist(ns, rails, etc)
    assert result['changed'] is True and result['files'] == written(ib0)
    lines = read(ib0).splitlines()
    for line in IB0_ROUTING.splitlines():
        assert line in lines, '%r not in\n%s' % (line, read(ib0))
    assert persist(ns, rails, etc)['changed'] is False


def test_an_adopted_keyfile_healed_since_is_still_given_back_byte_for_byte(ns, etc):
    rails = rails_on(ns)
    ib0 = image_keyfile(etc, 'ib0')
    image_keyfile(etc, 'ib1')
    persist(ns, rails, etc)
    write(ib0, read(ib0).replace('routing-rule1=priority 1001 from 10.0.1.14 table 101\n', ''))
    persist(ns, rails, etc)                 # puts the rule back: the profile is as this collection wrote it

    result = persist(ns, rails[1:], etc)
    assert warnings(result) == []
    assert read(ib0) == IMAGE_KEYFILES['ib0']
    assert not record(etc, 'ib0').exists()


def test_a_rule_the_image_keyfile_held_before_the_adoption_stays_when_the_rail_goes(ns, etc):
    """An operator persisted the rail rule by hand before using this collection; the profile changes after
    the adoption, so giving it back edits it: only what the adoption added may be taken out."""
    rails = rails_on(ns)
    own_rule = 'routing-rule1=priority 1001 from 10.0.1.14 table 101\n'
    ib0 = image_keyfile(etc, 'ib0', IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\n' + own_rule))
    image_keyfile(etc, 'ib1')
    persist(ns, rails, etc)
    write(ib0, read(ib0).replace('method=manual\n', 'method=manual\ndns=10.0.0.53;\n'))

    persist(ns, rails[1:], etc)
    assert read(ib0) == IMAGE_KEYFILES['ib0'].replace('method=manual\n',
                                                      'method=manual\ndns=10.0.0.53;\n' + own_rule)


def test_an_image_keyfile_without_uuid_is_adopted_and_no_second_profile_made(ns, etc):
    """NetworkManager loads a keyfile that names no uuid (it derives one from the file name)."""
    rails = rails_on(ns, RAILS[:1])
    image_keyfile(etc, 'ib0', '\n'.join(line for line in IMAGE_KEYFILES['ib0'].split('\n')
                                        if not line.startswith('uuid=')))
    result = persist(ns, rails, etc)
    assert result['rails'][0]['how'] == 'adopt', result['rails']
    assert not keyfile(etc, 'ib0').exists()


def test_upgrading_from_rail_keyfiles_onto_an_image_profile_deletes_our_keyfile_and_adopts_the_image_one(ns, etc):
    """rail_keyfiles created roce-multirail-ib0 beside the image's own profile: two profiles for one NIC."""
    rails = rails_on(ns, RAILS[:1])
    ours = keyfile(etc, 'ib0')
    write(ours, render(rails[0], 'ethernet'))
    ib0 = image_keyfile(etc, 'ib0')

    result = persist(ns, rails, etc)
    assert result['changed'] is True
    assert result['rails'][0]['how'] == 'adopt'
    assert 'roce-multirail-ib0' in result['profiles']
    assert not ours.exists()
    assert read(ib0) == IMAGE_KEYFILES['ib0'].replace('method=manual\n', 'method=manual\n' + IB0_ROUTING)
    assert persist(ns, rails, etc)['changed'] is False


def test_the_keyfile_of_this_collection_deleted_on_an_upgrade_is_listed_as_removed(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    ours = keyfile(etc, 'ib0')
    write(ours, render(rails[0], 'ethernet'))
    image_keyfile(etc, 'ib0')
    result = persist(ns, rails, etc, check_mode=True)
    assert removed(ours)[0] in result['files'], result['files']


def test_every_image_keyfile_that_can_activate_on_the_nic_gets_the_routing(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    ib0 = image_keyfile(etc, 'ib0')
    backup = etc / KEYFILES / 'ib0-backup.nmconnection'
    write(backup, IMAGE_KEYFILES['ib0'].replace('id=ib0', 'id=ib0-backup').replace('5a60', '5a6f'))

    result = persist(ns, rails, etc)
    assert result['rails'] == [{'device': 'ib0', 'stack': 'networkmanager', 'how': 'adopt', 'where':
                                "profile 'ib0' (%s), profile 'ib0-backup' (%s)" % (ib0, backup)}]
    assert result['files'] == written(ib0, backup)
    for path in (ib0, backup):
        lines = read(path).splitlines()
        assert all(line in lines for line in IB0_ROUTING.splitlines()), read(path)


def test_an_image_keyfile_bound_by_mac_address_is_adopted(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    mac = ns.run('cat', '/sys/class/net/ib0/address').strip()
    text = IMAGE_KEYFILES['ib0'].replace('interface-name=ib0\n', '')
    text = text.replace('[ethernet]\n', '[ethernet]\nmac-address=%s\n' % mac)
    path = image_keyfile(etc, 'ib0', text)
    result = persist(ns, rails, etc)
    assert result['rails'][0]['how'] == 'adopt' and result['files'] == written(path)
    assert read(path) == text.replace('method=manual\n', 'method=manual\n' + IB0_ROUTING)


def test_an_image_keyfile_giving_the_nic_another_address_is_refused_naming_both(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    path = image_keyfile(etc, 'ib0', IMAGE_KEYFILES['ib0'].replace('10.0.1.14/24', '10.0.1.15/24'))
    before = snapshot(etc)
    result = persist(ns, rails, etc, expect_failure=True)
    assert result['problems'] == [
        "rail ib0: NetworkManager profile 'ib0' (%s) gives ib0 10.0.1.15/24, not the rail address 10.0.1.14/24: "
        "activating it would leave the rail rule without its address; fix the inventory or the profile" % path]
    assert snapshot(etc) == before


def test_an_image_keyfile_that_can_activate_on_any_nic_is_refused_naming_it(ns, etc):
    rails = rails_on(ns)
    path = etc / KEYFILES / 'Wired connection 1.nmconnection'
    write(path, ANY_NIC_KEYFILE)
    before = snapshot(etc)

    result = persist(ns, rails, etc, expect_failure=True)
    for rail in rails:
        problem = ("rail %s: NetworkManager profile 'Wired connection 1' (%s) can activate on any ethernet NIC, "
                   "not only %s" % (rail['device'], path, rail['device']))
        assert any(p.startswith(problem) for p in result['problems']), (problem, result['problems'])
    assert result['msg'].startswith('nothing was changed: '), result['msg']
    assert snapshot(etc) == before


# --- systemd-networkd ---------------------------------------------------------------

def test_networkd_gets_a_drop_in_with_exactly_the_routes_and_rules_second_run_nothing(ns, etc):
    rails = rails_on(ns)
    image = etc / NETWORKD / '10-ib0.network'
    write(image, IMAGE_NETWORK_IB0, mode=0o644)
    untouched = snapshot(etc / NETWORKD)['10-ib0.network']
    dropin = etc / NETWORKD / '10-ib0.network.d' / DROPIN
    created = etc / NETWORKD / '50-roce-multirail-ib1.network'

    result = persist(ns, rails, etc, stack='networkd')
    assert result['changed'] is True and result['stack'] == 'networkd'
    assert result['rails'] == [{'device': 'ib0', 'stack': 'networkd', 'how': 'dropin', 'where': str(image)},
                               {'device': 'ib1', 'stack': 'networkd', 'how': 'create', 'where': str(created)}]
    assert result['files'] == written(dropin, created)
    assert result['boot'] == []
    # Exactly the rail's routes and rule (their text is pinned in tests/unit/test_networkd.py), nothing else.
    assert read(dropin) == render_dropin(check_rail(rails[0]))
    assert [section for section, _items in parse(read(dropin))] == ['Route', 'Route', 'RoutingPolicyRule']
    assert owner_mode(dropin) == (0o644, 0, 0)
    assert snapshot(etc / NETWORKD)['10-ib0.network'] == untouched
    ib1 = read(created)
    assert ib1.startswith(HEADER + '\n[Match]\nName=ib1\n'), ib1
    for line in ('Address=10.0.2.14/24', 'From=10.0.2.40', 'Gateway=10.0.2.1'):
        assert line in ib1.splitlines(), '%r not in\n%s' % (line, ib1)
    assert os.listdir(str(etc / KEYFILES)) == []

    before = snapshot(etc)
    again = persist(ns, rails, etc, stack='networkd')
    assert again['changed'] is False and again['files'] == []
    assert snapshot(etc) == before


def test_networkd_drop_in_and_its_directory_go_with_the_rail(ns, etc):
    rails = rails_on(ns)
    image = etc / NETWORKD / '10-ib0.network'
    write(image, IMAGE_NETWORK_IB0, mode=0o644)
    before = snapshot(etc / NETWORKD)
    persist(ns, rails, etc, stack='networkd')

    result = persist(ns, rails[1:], etc, stack='networkd')
    assert result['changed'] is True
    assert result['files'] == removed(etc / NETWORKD / '10-ib0.network.d' / DROPIN)
    after = snapshot(etc / NETWORKD)
    del after['50-roce-multirail-ib1.network']
    assert after == before                  # the image file as it was, no 10-ib0.network.d left
    assert persist(ns, rails[1:], etc, stack='networkd')['changed'] is False


def test_networkd_purge_removes_only_files_of_this_collection(ns, etc):
    rails = rails_on(ns)
    stale_rule = '[RoutingPolicyRule]\nFrom=10.0.7.14\nTable=107\nPriority=1007\n'
    stale = {'50-roce-multirail-ib7.network': HEADER + '\n[Match]\nName=ib7\n',
             '21-gone.network.d/' + DROPIN: HEADER + '\n' + stale_rule}
    others = {'50-roce-multirail-ib8.network': '[Match]\nName=ib8\n',       # named like ours, no header
              '20-other.network.d/' + DROPIN: '[Route]\nGateway=10.0.8.1\nTable=108\n',
              '20-other.network.d/10-mtu.conf': HEADER + '\n[Link]\nMTUBytes=9000\n'}
    for relative, content in dict(stale, **others).items():
        write(etc / NETWORKD / relative, content, mode=0o644)
    before = snapshot(etc / NETWORKD)

    result = persist(ns, rails, etc, stack='networkd')
    assert result['files'] == written(*networkd_files(etc)) + removed(
        etc / NETWORKD / '21-gone.network.d' / DROPIN, etc / NETWORKD / '50-roce-multirail-ib7.network')
    after = snapshot(etc / NETWORKD)
    for path in networkd_files(etc):
        del after[path.name]
    expected = dict(before)
    del expected['50-roce-multirail-ib7.network'], expected['21-gone.network.d/' + DROPIN]
    del expected['21-gone.network.d/']
    assert after == expected


def test_a_temporary_file_left_in_a_drop_in_directory_is_removed(ns, etc):
    rails = rails_on(ns)
    write(etc / NETWORKD / '10-ib0.network', IMAGE_NETWORK_IB0, mode=0o644)
    persist(ns, rails, etc, stack='networkd')
    leftover = etc / NETWORKD / '10-ib0.network.d' / ('.roce-multirail-%s-k2x9q1' % digest('[Route]\n')[:32])
    write(leftover, '[Route]\n')
    result = persist(ns, rails, etc, stack='networkd')
    assert result['files'] == removed(leftover) and not leftover.exists()


def test_moving_a_rail_from_networkd_to_networkmanager_removes_the_networkd_file_of_this_collection(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    persist(ns, rails, etc, stack='networkd')
    created = networkd_files(etc)[0]
    assert created.exists()
    ib0 = image_keyfile(etc, 'ib0')

    result = persist(ns, rails, etc, stack='networkmanager')
    assert result['files'] == written(ib0) + removed(created)
    assert warnings(result) == ['rail ib0: systemd-networkd also describes it (%s); it is persisted with '
                                'NetworkManager, as asked' % created]
    assert os.listdir(str(etc / NETWORKD)) == []
    again = persist(ns, rails, etc)
    assert again['changed'] is False and again['stack'] == 'networkmanager'


def test_a_network_file_matching_another_nic_too_is_refused_naming_it(ns, etc):
    for spec in RAILS:      # veth peers not named ib*, so that Name=ib* matches ib0 and ib1 alone
        ns.add_nic(spec['device'], spec['address'], peer='peer-' + spec['device'])
    rails = build_plan(RAILS)['rails']
    image = etc / NETWORKD / '10-rails.network'
    write(image, '[Match]\nName=ib*\n\n[Network]\nDHCP=yes\n', mode=0o644)
    before = snapshot(etc)

    result = persist(ns, rails[:1], etc, stack='networkd', expect_failure=True)
    assert result['problems'] == [
        "rail ib0: %s also sets up ib1, and a drop-in would give them this rail's routes; give ib0 a .network file "
        "of its own" % image]
    assert snapshot(etc) == before


def test_a_network_file_whose_match_cannot_be_judged_here_is_refused_naming_the_key(ns, etc):
    rails = rails_on(ns, RAILS[:1])
    image = etc / NETWORKD / '10-ib0.network'
    write(image, '[Match]\nName=ib0\nProperty=ID_BUS=pci\n\n[Network]\nAddress=10.0.1.14/24\n', mode=0o644)
    before = snapshot(etc)
    result = persist(ns, rails, etc, expect_failure=True)
    assert result['problems'] == ['rail ib0: cannot tell whether %s sets it up (Property=ID_BUS=pci); say which '
                                  'stack does with source_routing_persist' % image], result['problems']
    assert snapshot(etc) == before


# --- rails split across stacks ------------------------------------------------------

def test_rails_split_across_stacks_are_refused_naming_both(ns, etc):
    rails = rails_on(ns)
    ib0 = image_keyfile(etc, 'ib0')
    ib1 = etc / NETWORKD / '10-ib1.network'
    write(ib1, IMAGE_NETWORK_IB1, mode=0o644)
    before = snapshot(etc)

    result = persist(ns, rails, etc, expect_failure=True)
    assert len(result['problems']) == 1, result['problems']
    problem = result['problems'][0]
    assert problem.startswith('rails split across stacks'), problem
    assert "ib0 on NetworkManager (profile 'ib0' (%s))" % ib0 in problem, problem
    assert 'ib1 on systemd-networkd (%s)' % ib1 in problem, problem
    assert snapshot(etc) == before


# --- netplan ----------------------------------------------------------------------------
# netplan reads its definitions only from the machine's /lib/netplan, /etc/netplan and /run/netplan, which
# these tests must not write: only the refusal of a host whose rails no netplan definition sets up is tested.

def test_stack_netplan_without_a_definition_of_the_rails_is_refused_naming_each(ns, etc):
    rails = rails_on(ns)
    before = snapshot(etc)
    result = persist(ns, rails, etc, stack='netplan', expect_failure=True)
    if expected_daemons()['netplan'] == 'installed':
        assert result['problems'] == ['rail %s: no netplan definition sets it up; add one to /etc/netplan with its '
                                      'address' % device for device in ('ib0', 'ib1')]
    else:
        assert result['problems'] == ['rail %s: netplan is not installed' % device for device in ('ib0', 'ib1')]
    assert snapshot(etc) == before


# --- the RETURN value on refusals --------------------------------------------------------

def test_daemons_are_returned_also_when_the_host_is_refused(ns, etc):
    rails = rails_on(ns)
    write(etc / KEYFILES / 'Wired connection 1.nmconnection', ANY_NIC_KEYFILE)
    result = persist(ns, rails, etc, expect_failure=True)
    assert result['msg'].startswith('nothing was changed: ')
    assert result['daemons'] == expected_daemons()


# --- the sysctl.d file ----------------------------------------------------------------
# The sysctl.d file is written whatever the stack; these tests persist the rails with systemd-networkd
# (a .network file of this collection per rail), so the files of the stack stay in view too.

# What the file must hold for RAILS with the default sysctls, literally: a header, then the plan's
# lines, one setting each.
SYSCTL_TEXT = """\
# Written by roce.multirail.rail_persist (source_routing role); local changes are overwritten.
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


def sysctl_file(etc):
    return etc / SYSCTL_D / SYSCTL_NAME


def persist_sysctl(ns, rails, etc, lines=None, **options):
    """rail_persist with the sysctl.d file (default: the plan's lines for RAILS), through systemd-networkd."""
    lines = build_plan(RAILS)['sysctl_lines'] if lines is None else lines
    options = dict(dict(stack='networkd', sysctl_file=sysctl_file(etc)), **options)
    return persist(ns, rails, etc, sysctl_lines=lines, **options)


def test_sysctl_file_written_root_0644_in_the_same_call_second_run_nothing(ns, etc):
    rails = rails_on(ns)
    (etc / SYSCTL_D / '10-other.conf').write_text('net.ipv4.ip_forward = 1\n')
    other = snapshot(etc / SYSCTL_D)['10-other.conf']

    result = persist_sysctl(ns, rails, etc)
    assert result['changed'] is True
    assert result['files'] == written(*networkd_files(etc)) + written(sysctl_file(etc))
    assert result['sysctl_file'] == {'path': str(sysctl_file(etc)), 'changed': True}
    assert sorted(snapshot(etc / SYSCTL_D)) == ['10-other.conf', SYSCTL_NAME]
    mode, uid, gid, _ino, _mtime, content = snapshot(etc / SYSCTL_D)[SYSCTL_NAME]
    assert (mode, uid, gid) == (0o644, 0, 0)
    assert content == SYSCTL_TEXT
    assert snapshot(etc / SYSCTL_D)['10-other.conf'] == other
    # sysctl(8) itself reads it, in the namespace: every key is known to the kernel, every value taken.
    ns.run('sysctl', '-q', '-p', str(sysctl_file(etc)))
    assert ns.run('sysctl', '-n', 'net.ipv4.conf.ib1.arp_announce').strip() == '2'

    before = snapshot(etc)
    again = persist_sysctl(ns, rails, etc)
    assert again['changed'] is False and again['files'] == []
    assert again['sysctl_file'] == {'path': str(sysctl_file(etc)), 'changed': False}
    assert snapshot(etc) == before          # same bytes, inodes and mtimes


def test_without_sysctl_file_no_sysctl_file_is_touched(ns, etc):
    rails = rails_on(ns)
    (etc / SYSCTL_D / '.roce-multirail-k2x9q1').write_text('half-written\n')
    before = snapshot(etc / SYSCTL_D)
    result = persist(ns, rails, etc, stack='networkd')
    assert 'sysctl_file' not in result and result['files'] == written(*networkd_files(etc))
    assert snapshot(etc / SYSCTL_D) == before


def test_only_the_sysctl_file_changed_nothing_else_written(ns, etc):
    rails = rails_on(ns)
    persist_sysctl(ns, rails, etc)
    stack_before = snapshot(etc / NETWORKD)
    sysctl_file(etc).write_text(SYSCTL_TEXT.replace('ib1.rp_filter = 2', 'ib1.rp_filter = 1'))

    result = persist_sysctl(ns, rails, etc)
    assert result['changed'] is True
    assert result['files'] == written(sysctl_file(etc)) and result['profiles'] == []
    assert result['sysctl_file']['changed'] is True
    assert read(sysctl_file(etc)) == SYSCTL_TEXT
    assert snapshot(etc / NETWORKD) == stack_before

    # Other lines (another rail_sysctls): the file follows them, the stack's files stay.
    lines = build_plan(RAILS, rail_sysctls={'arp_ignore': 2})['sysctl_lines']
    result = persist_sysctl(ns, rails, etc, lines=lines)
    assert result['files'] == written(sysctl_file(etc))
    assert read(sysctl_file(etc)).splitlines()[3:] == lines
    assert snapshot(etc / NETWORKD) == stack_before


def test_sysctl_file_wrong_mode_or_owner_is_fixed(ns, etc):
    rails = rails_on(ns)
    persist_sysctl(ns, rails, etc)
    stack_before = snapshot(etc / NETWORKD)
    path = sysctl_file(etc)

    for breaks in (lambda: os.chmod(str(path), 0o600), lambda: os.chmod(str(path), 0o666),
                   lambda: os.chown(str(path), 1000, 1000)):
        breaks()
        result = persist_sysctl(ns, rails, etc)
        assert result['sysctl_file']['changed'] is True and result['files'] == written(path)
        mode, uid, gid, _ino, _mtime, content = snapshot(etc / SYSCTL_D)[SYSCTL_NAME]
        assert (mode, uid, gid, content) == (0o644, 0, 0, SYSCTL_TEXT)
        assert persist_sysctl(ns, rails, etc)['changed'] is False
    assert snapshot(etc / NETWORKD) == stack_before


def test_sysctl_file_check_mode_reports_and_writes_nothing_diff_tells_the_content(ns, etc):
    rails = rails_on(ns)
    path = sysctl_file(etc)
    before = snapshot(etc)

    result = persist_sysctl(ns, rails, etc, check_mode=True, diff=True)
    assert result['changed'] is True and result['sysctl_file'] == {'path': str(path), 'changed': True}
    assert result['diff'][-1] == {'before': '', 'after': SYSCTL_TEXT, 'before_header': str(path),
                                  'after_header': str(path)}
    assert snapshot(etc) == before

    persist_sysctl(ns, rails, etc)
    drifted = SYSCTL_TEXT.replace('all.rp_filter = 2', 'all.rp_filter = 1')
    write(path, drifted, mode=0o600)
    before = snapshot(etc)
    result = persist_sysctl(ns, rails, etc, check_mode=True, diff=True)
    assert result['changed'] is True and result['files'] == written(path)
    # Only the sysctl.d file differs: the diff holds it alone, before and after.
    assert result['diff'] == [{'before': drifted, 'after': SYSCTL_TEXT, 'before_header': str(path),
                               'after_header': str(path)}]
    assert snapshot(etc) == before

    result = persist_sysctl(ns, rails, etc, diff=True)
    assert result['diff'] == [{'before': drifted, 'after': SYSCTL_TEXT, 'before_header': str(path),
                               'after_header': str(path)}]
    assert persist_sysctl(ns, rails, etc, diff=True)['diff'] == []


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
def test_a_bad_sysctl_line_is_refused_naming_it_and_nothing_is_written(ns, etc, case):
    rails = rails_on(ns)
    bad, words = BAD_LINES[case]
    lines = build_plan(RAILS)['sysctl_lines']
    lines.insert(3, bad)
    write(keyfile(etc, 'ib7'), stale_text('ib7'))
    before = snapshot(etc)

    result = persist_sysctl(ns, rails, etc, lines=lines, stack='auto', expect_failure=True)
    assert result['msg'].startswith('sysctl_lines[3]: %r' % bad), result['msg']
    for word in words:
        assert word in result['msg'], '%r not in %r' % (word, result['msg'])
    # No file of any stack written, the stale keyfile not purged, no sysctl.d file.
    assert snapshot(etc) == before


def test_sysctl_file_in_a_missing_directory_is_refused_and_nothing_is_written(ns, etc):
    rails = rails_on(ns)
    before = snapshot(etc)
    missing = etc / 'sysctl.d.missing' / SYSCTL_NAME
    result = persist_sysctl(ns, rails, etc, sysctl_file=missing, expect_failure=True)
    assert result['msg'] == 'sysctl_file %s: directory %s does not exist' % (missing, missing.parent), result['msg']
    assert snapshot(etc) == before

    # A directory where the file should be: refused too.
    (etc / SYSCTL_D / SYSCTL_NAME).mkdir()
    before = snapshot(etc)
    result = persist_sysctl(ns, rails, etc, expect_failure=True)
    assert '%s is a directory' % (etc / SYSCTL_D / SYSCTL_NAME) in result['msg'], result['msg']
    assert snapshot(etc) == before


def test_sysctl_lines_go_with_sysctl_file(ns, etc):
    rails = rails_on(ns)
    before = snapshot(etc)
    result = persist(ns, rails, etc, stack='networkd', sysctl_lines=build_plan(RAILS)['sysctl_lines'],
                     expect_failure=True)
    assert 'sysctl_file' in result['msg'] and 'sysctl_lines' in result['msg'], result['msg']
    result = persist(ns, rails, etc, stack='networkd', sysctl_file=sysctl_file(etc), expect_failure=True)
    assert 'sysctl_file' in result['msg'] and 'sysctl_lines' in result['msg'], result['msg']
    assert snapshot(etc) == before

    # Empty lines (a plan with no sysctls): the header alone.
    result = persist_sysctl(ns, rails, etc, lines=[])
    assert result['sysctl_file']['changed'] is True
    assert read(sysctl_file(etc)) == ''.join(SYSCTL_TEXT.splitlines(True)[:3])


def test_a_temporary_file_left_in_the_sysctl_directory_is_removed(ns, etc):
    rails = rails_on(ns)
    persist_sysctl(ns, rails, etc)
    leftover = etc / SYSCTL_D / ('.roce-multirail-%s-k2x9q1' % digest('net.ipv4.conf.all.rp_filter = 2\n')[:32])
    leftover.write_text('net.ipv4.conf.all.rp_filter = 2\n')
    result = persist_sysctl(ns, rails, etc, check_mode=True)
    assert result['changed'] is True and result['files'] == removed(leftover) and leftover.exists()
    result = persist_sysctl(ns, rails, etc)
    assert result['changed'] is True and result['files'] == removed(leftover) and not leftover.exists()
    assert result['sysctl_file']['changed'] is False
    assert persist_sysctl(ns, rails, etc)['changed'] is False

    # The stack's files and the sysctl.d file in one directory: a leftover there is removed once.
    persist_sysctl(ns, rails, etc, networkd_dir=etc / SYSCTL_D)
    leftover.write_text('net.ipv4.conf.all.rp_filter = 2\n')
    result = persist_sysctl(ns, rails, etc, networkd_dir=etc / SYSCTL_D)
    assert result['files'] == removed(leftover) and not leftover.exists()
