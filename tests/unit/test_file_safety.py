"""Unit tests for what rail_persist may read, write and remove: only regular files, a symlink's target never,
only files of this collection where the name alone would say so; and for the activations a run owes a daemon
(changes.owe / record_owed / read_owed / settle_owed, networkd.not_taken).
"""

import json
import os
import stat

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.changes import (
    Changes,
    clear_owed,
    owe,
    read_owed,
    record_owed,
    settle_owed,
)
from ansible_collections.roce.multirail.plugins.module_utils.networkd import not_taken, state_paths
from ansible_collections.roce.multirail.plugins.module_utils.persist import (
    HEADER,
    TEMP_PREFIX,
    blocked_parent,
    digest,
    is_our_temp,
    read_file,
    replace_file,
    temp_name,
    what_is_at,
)
from ansible_collections.roce.multirail.plugins.modules.rail_persist import leftovers, sysctl_file_is_ours

from persist_cases import IB0, host, rail

root_only = pytest.mark.skipif(os.geteuid() != 0, reason='files of root')
OURS = HEADER + '\n[connection]\n'


def make(path, text, mode=0o600):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w') as handle:
        handle.write(text)
    os.chmod(str(path), mode)
    return str(path)


def listing(directory):
    return sorted(os.listdir(str(directory)))


# --- reading ----------------------------------------------------------------------------------

def test_read_file_never_follows_a_symlink_nor_reads_a_directory_or_fifo(tmp_path):
    secret = make(tmp_path / 'secret', 'password=x\n')
    os.symlink(secret, str(tmp_path / 'link'))
    os.mkfifo(str(tmp_path / 'fifo'))
    (tmp_path / 'dir').mkdir()
    assert read_file(secret).content == 'password=x\n'
    assert read_file(str(tmp_path / 'link')) is None
    assert read_file(str(tmp_path / 'fifo')) is None          # and does not block
    assert read_file(str(tmp_path / 'dir')) is None


def test_what_is_at_names_what_is_not_a_regular_file(tmp_path):
    make(tmp_path / 'file', 'x')
    os.symlink('/etc/shadow', str(tmp_path / 'link'))
    (tmp_path / 'dir').mkdir()
    os.mkfifo(str(tmp_path / 'fifo'))
    assert what_is_at(str(tmp_path / 'file')) is None and what_is_at(str(tmp_path / 'none')) is None
    assert what_is_at(str(tmp_path / 'link')) == 'a symlink to /etc/shadow'
    assert what_is_at(str(tmp_path / 'dir')) == 'a directory'
    assert what_is_at(str(tmp_path / 'fifo')) == 'a fifo'


def test_blocked_parent_finds_a_file_where_a_directory_must_be(tmp_path):
    make(tmp_path / 'a.network.d', 'x')
    assert blocked_parent(str(tmp_path / 'a.network.d' / 'x.conf')) == (str(tmp_path / 'a.network.d'), 'a file')
    assert blocked_parent(str(tmp_path / 'b.network.d' / 'x.conf')) == ('', None)


# --- writing -------------------------------------------------------------------------------------

@root_only
def test_replace_file_makes_its_temporary_file_0600_and_removes_it_when_the_move_fails(tmp_path):
    seen = []

    def failing_move(temp, path):
        seen.append((os.path.basename(temp), stat.S_IMODE(os.lstat(temp).st_mode)))
        raise SystemExit(1)          # AnsibleModule.atomic_move fails the module this way

    with pytest.raises(SystemExit):
        replace_file(str(tmp_path / 'target'), 'text\n', 0o644, move=failing_move)
    assert seen and seen[0][0].startswith(TEMP_PREFIX) and listing(tmp_path) == []
    # Created 0600; the final mode is given just before the move, to a file nobody else could open.
    assert seen[0][1] == 0o644


@pytest.mark.parametrize('kind', ['dir', 'symlink'])
def test_replace_file_refuses_anything_but_a_regular_file_and_leaves_no_temporary_file(tmp_path, kind):
    target = tmp_path / 'target'
    elsewhere = make(tmp_path / 'elsewhere', 'keep\n')
    if kind == 'dir':
        target.mkdir()
    else:
        os.symlink(elsewhere, str(target))
    with pytest.raises(OSError) as raised:
        replace_file(str(target), 'text\n', 0o600)
    assert str(target) in str(raised.value)
    assert sorted(listing(tmp_path)) == ['elsewhere', 'target'] and open(elsewhere).read() == 'keep\n'


@root_only
def test_replace_file_writes_mode_and_owner(tmp_path):
    replace_file(str(tmp_path / 'target'), 'text\n', 0o640)
    st = os.lstat(str(tmp_path / 'target'))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and listing(tmp_path) == ['target']


# --- leftovers ----------------------------------------------------------------------------------

@root_only
def test_a_leftover_is_ours_only_when_it_carries_the_header_or_its_digest(tmp_path):
    text = '[connection]\nid=edited\n'
    digest_named = make(tmp_path / temp_name(text), text)
    headed = make(tmp_path / (TEMP_PREFIX + 'abc'), OURS)
    foreign = make(tmp_path / (TEMP_PREFIX + 'notes'), 'an operator\'s notes\n')
    wrong = make(tmp_path / ('%s%s-x' % (TEMP_PREFIX, digest('other')[:32])), text)
    os.symlink(headed, str(tmp_path / (TEMP_PREFIX + 'link')))
    (tmp_path / (TEMP_PREFIX + 'dir')).mkdir()
    assert is_our_temp(digest_named) and is_our_temp(headed)
    assert not is_our_temp(foreign) and not is_our_temp(wrong)
    assert not is_our_temp(str(tmp_path / (TEMP_PREFIX + 'link')))
    assert not is_our_temp(str(tmp_path / (TEMP_PREFIX + 'dir')))
    ours, others = leftovers(set([str(tmp_path)]))
    assert sorted(ours) == sorted([digest_named, headed])
    assert sorted(others) == sorted([foreign, wrong, str(tmp_path / (TEMP_PREFIX + 'link')),
                                     str(tmp_path / (TEMP_PREFIX + 'dir'))])


@root_only
def test_leftovers_lists_names_and_never_globs_the_directory(tmp_path):
    glob_dir, sibling = tmp_path / 'nm[1]', tmp_path / 'nm1'
    glob_dir.mkdir()
    make(sibling / (TEMP_PREFIX + 'x'), OURS)
    assert leftovers(set([str(glob_dir)])) == ([], [])


def test_leftovers_does_not_follow_a_symlinked_drop_in_directory(tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    make(elsewhere / (TEMP_PREFIX + 'x'), OURS)
    (tmp_path / 'net').mkdir()
    os.symlink(str(elsewhere), str(tmp_path / 'net' / '10-a.network.d'))
    assert leftovers(set([str(tmp_path / 'net')])) == ([], [])


# --- Changes.file: whose file it is ----------------------------------------------------------------

@root_only
def test_changes_refuse_a_symlink_directory_or_foreign_file_and_read_none_of_them(tmp_path):
    secret = make(tmp_path / 'secret', 'password=x\n')
    os.symlink(secret, str(tmp_path / 'link'))
    (tmp_path / 'dir').mkdir()
    foreign = make(tmp_path / 'foreign', '[connection]\n')
    make(tmp_path / 'blocker.network.d', 'x')
    changes = Changes()
    for name in ('link', 'dir', 'foreign', 'blocker.network.d/90-roce-multirail.conf'):
        assert changes.file(str(tmp_path / name), OURS, 0o600) is False
    assert changes.file(str(tmp_path / 'link'), None, 0o600) is False
    assert changes.files == [] and 'password' not in ' '.join(changes.problems)
    assert len(changes.problems) == 5
    starts = [
        '%s is a symlink to %s' % (tmp_path / 'link', secret), '%s is a directory' % (tmp_path / 'dir'),
        '%s exists without the header of this collection\'s files ("%s")' % (foreign, HEADER),
        '%s cannot be written' % (tmp_path / 'blocker.network.d' / '90-roce-multirail.conf'),
        '%s is a symlink to %s' % (tmp_path / 'link', secret)]
    for problem, start in zip(changes.problems, starts):
        assert problem.startswith(start), (problem, start)
    # A file of someone else's this collection edits (ours=None), and one of ours, are changed.
    assert changes.file(foreign, '[connection]\nid=x\n', 0o600, ours=None) is True
    make(tmp_path / 'mine', OURS)
    assert changes.file(str(tmp_path / 'mine'), OURS + 'x=1\n', 0o600) is True


def test_the_sysctl_file_is_ours_with_its_header_or_the_older_template():
    assert sysctl_file_is_ours('# Written by roce.multirail.rail_persist (source_routing role); local changes are '
                               'overwritten.\nnet.ipv4.conf.all.rp_filter = 2\n')
    assert sysctl_file_is_ours('# Ansible managed\n# Per-rail ARP and reverse-path settings, applied at boot by '
                               'systemd-sysctl.\n# A later file in /etc/sysctl.d setting the same key wins over this '
                               'one.\n')
    assert not sysctl_file_is_ours('net.ipv4.ip_forward = 1\n')


# --- activations owed --------------------------------------------------------------------------------

def test_not_taken_reads_the_link_state_of_networkd():
    dropin = '/etc/systemd/network/10-ib0.network.d/90-roce-multirail.conf'
    state = {'NETWORK_FILE': '/etc/systemd/network/10-ib0.network',
             'NETWORK_FILE_DROPINS': '"/etc/systemd/network/10-ib0.network.d/50-x.conf"'}
    assert state_paths(state, 'NETWORK_FILE_DROPINS') == ('/etc/systemd/network/10-ib0.network.d/50-x.conf',)
    assert dropin in not_taken(state, dropin, False)
    assert not_taken(dict(state, NETWORK_FILE_DROPINS='"%s"' % dropin), dropin, False) == ''
    # networkd before 254 lists no drop-ins: nothing can be told from the state file.
    assert not_taken({'NETWORK_FILE': state['NETWORK_FILE']}, dropin, False) == ''
    created = '/etc/systemd/network/50-roce-multirail-ib0.network'
    assert 'not %s' % created in not_taken(state, created, True)
    assert not_taken({'NETWORK_FILE': created}, created, True) == ''
    assert not_taken({}, created, True) == ''


def test_owed_activations_are_recorded_read_back_and_settled(tmp_path):
    view = host(networkd_installed=True, networkd_running=True)
    changes = Changes()
    changes.networkd.add('ib0')
    owing = owe(view, changes)
    assert owing == {'networkd': {'devices': ['ib0']}}
    assert owe(host(), changes) == {}              # no daemon runs: a start reads the files anyway
    directory = str(tmp_path / 'run')
    record_owed(owing, directory)
    assert stat.S_IMODE(os.stat(os.path.join(directory, 'activate-networkd')).st_mode) == 0o600
    assert read_owed(directory) == owing
    again = Changes()
    settle_owed(view, again, read_owed(directory), [rail(IB0)], directory)
    assert again.networkd == {'ib0', ''} and bool(again)
    assert again.owed == ['systemd-networkd: activation owed by an earlier run that did not finish (%s): done '
                          'again' % os.path.join(directory, 'activate-networkd')]
    # The daemon is not running now: nothing is owed to it any more.
    stopped = Changes()
    settle_owed(host(networkd_installed=True), stopped, read_owed(directory), [rail(IB0)], directory)
    assert not stopped and stopped.owed == []
    clear_owed(['networkd'], directory)
    assert read_owed(directory) == {}


def test_an_unreadable_owed_record_still_owes_everything(tmp_path):
    directory = tmp_path / 'run'
    make(directory / 'activate-networkmanager', 'garbage')
    assert read_owed(str(directory)) == {'networkmanager': {}}
    changes = Changes()
    settle_owed(host(nm_installed=True, nm_running=True), changes, read_owed(str(directory)), [rail(IB0)],
                str(directory))
    assert changes.owed and bool(changes)
    make(directory / 'activate-networkd', json.dumps({'devices': 'not a list'}))
    assert read_owed(str(directory))['networkd'] == {'devices': 'not a list'}
