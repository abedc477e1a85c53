"""rail_persist and the files around its own: what is not provably its own is never read, written or removed,
and what a stack holds in memory converges with the files, even after a run killed half way.

The file tests run the module in a throwaway namespace with every directory under tmp_path (see
test_rail_persist); each compares the whole tree and the kernel state before and after. The
activation tests boot a lab host with the real systemd-networkd or NetworkManager (tests/lab/system.py)
and kill a run after it wrote its files but while the daemon was being told to take them.
"""

import json
import os
import signal
import stat
import subprocess
import time

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.persist import HEADER, digest
from ansible_collections.roce.multirail.plugins.module_utils.plan import build_plan

from lab import roce_lab, system
from nslab import COLLECTIONS, PYTHON
from roleruns import lab_host  # noqa: F401 pylint: disable=unused-import
from stacks import booted  # noqa: F401 pylint: disable=unused-import
from test_rail_persist import (  # noqa: F401 pylint: disable=unused-import
    IMAGE_NETWORK_IB0,
    KEYFILES,
    NETWORKD,
    SYSCTL_D,
    etc,
    keyfile,
    persist,
    rails_on,
    snapshot,
    stale_text,
    warnings,
    write,
)

SECRET = 'password=not-for-any-log\n'


def tree(directory):
    """snapshot() that also lists symlinks as such (their target, never what it points to)."""
    found = {}
    for root, dirs, names in os.walk(str(directory)):
        for name in dirs + names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            relative = os.path.relpath(path, str(directory))
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ('symlink', os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative + '/'] = (stat.S_IMODE(st.st_mode), st.st_ino)
            else:
                with open(path) as handle:
                    found[relative] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_ino, st.st_mtime_ns, handle.read())
    return found


def temporaries(directory):
    return sorted(os.path.relpath(os.path.join(root, name), str(directory))
                  for root, dirs, names in os.walk(str(directory)) for name in dirs + names
                  if name.startswith('.roce-multirail-'))


# --- finding: a glob in a directory, and files named like ours ----------------------------------

def test_a_glob_character_in_the_keyfile_directory_and_files_named_like_ours_are_left_alone(ns, etc, tmp_path):
    """A keyfile directory named nm[1] must not reach nm1 (a glob of it would), and a purge removes only files
    starting with the header: not a hand-written roce-multirail-eth0.nmconnection, nor a temporary-looking file,
    symlink or directory it cannot prove it made."""
    rails = rails_on(ns, [{'device': 'ib0', 'address': '10.0.1.14/24'}])
    directory, sibling = etc / 'NetworkManager' / 'nm[1]', etc / 'NetworkManager' / 'nm1'
    directory.mkdir()
    write(sibling / 'roce-multirail-ib7.nmconnection', stale_text('ib7'))
    write(directory / 'roce-multirail-eth0.nmconnection', '[connection]\nid=roce-multirail-eth0\ntype=ethernet\n'
          'interface-name=eth0\n')
    outside = tmp_path / 'outside'
    write(outside, 'not ours\n', mode=0o644)
    write(directory / '.roce-multirail-notes', 'an operator\'s notes\n')
    os.symlink(str(outside), str(directory / '.roce-multirail-link'))
    (directory / '.roce-multirail-dir').mkdir()
    write(directory / '.roce-multirail-dir' / 'inside', 'inside\n')
    ours = directory / 'roce-multirail-ib0.nmconnection'
    # A leftover of a killed run of this collection: a whole file of ours.
    leftover = directory / ('.roce-multirail-%s-k2x9q1' % digest(stale_text('ib8'))[:32])
    write(leftover, stale_text('ib8'))
    kernel, before = ns.dump(), tree(etc)

    result = persist(ns, rails, etc, keyfile_dir=directory)

    assert result['changed'] is True
    assert sorted(f['path'] for f in result['files']) == sorted([str(ours), str(leftover)]), result['files']
    after = tree(etc)
    expected = dict(before)
    del expected[os.path.relpath(str(leftover), str(etc))]
    expected[os.path.relpath(str(ours), str(etc))] = after.get(os.path.relpath(str(ours), str(etc)))
    assert after == expected
    assert after[os.path.relpath(str(ours), str(etc))][-1].startswith(HEADER + '\n')
    assert open(str(outside)).read() == 'not ours\n' and ns.dump() == kernel
    assert any('.roce-multirail-notes' in w for w in warnings(result)), warnings(result)
    again = persist(ns, rails, etc, keyfile_dir=directory)
    assert again['changed'] is False and tree(etc) == after


def test_a_file_named_like_ours_without_the_header_is_refused_not_overwritten(ns, etc):
    """roce-multirail-ib0.nmconnection written by someone else (NetworkManager ignores it: mode 0644) is not ours
    to overwrite: the run is refused naming it, and nothing changes."""
    rails = rails_on(ns, [{'device': 'ib0', 'address': '10.0.1.14/24'}])
    foreign = keyfile(etc, 'ib0')
    write(foreign, '[connection]\nid=kept by hand\ntype=ethernet\ninterface-name=ib0\n', mode=0o644)
    kernel, before = ns.dump(), tree(etc)
    result = persist(ns, rails, etc, expect_failure=True)
    assert str(foreign) in result['msg'] and 'header' in result['msg'], result['msg']
    assert tree(etc) == before and ns.dump() == kernel


# --- finding: a symlink where a file of ours goes --------------------------------------------------

@pytest.mark.parametrize('where', ['keyfile', 'sysctl_file'])
def test_a_symlink_in_place_of_a_file_is_refused_and_its_target_never_read(ns, etc, tmp_path, where):
    """--diff (in check mode and not) would print, as root, the file the symlink points to."""
    rails = rails_on(ns, [{'device': 'ib0', 'address': '10.0.1.14/24'}])
    secret = tmp_path / 'shadow'
    write(secret, SECRET, mode=0o600)
    options = {}
    if where == 'keyfile':
        link = keyfile(etc, 'ib0')
    else:
        link = etc / SYSCTL_D / '99-roce-multirail.conf'
        options = dict(sysctl_file=link, sysctl_lines=['net.ipv4.conf.all.rp_filter = 2'])
    os.symlink(str(secret), str(link))
    kernel, before, secret_stat = ns.dump(), tree(etc), os.stat(str(secret))
    for check_mode in (True, False):
        result = persist(ns, rails, etc, check_mode=check_mode, diff=True, expect_failure=True, **options)
        assert 'not-for-any-log' not in json.dumps(result), result
        assert '%s is a symlink to %s' % (link, secret) in result['msg'], result['msg']
        assert tree(etc) == before and ns.dump() == kernel
        # Its access time first: relatime moves it on the first read after the file was written.
        assert os.stat(str(secret)) == secret_stat and open(str(secret)).read() == SECRET
        secret_stat = os.stat(str(secret))


# --- finding: a directory where a file of ours goes ---------------------------------------------------

@pytest.mark.parametrize('where', ['keyfile', 'dropin', 'sysctl_file'])
def test_a_directory_in_place_of_a_file_is_refused_before_anything_is_written(ns, etc, where):
    rails = rails_on(ns, [{'device': 'ib0', 'address': '10.0.1.14/24'}])
    options = {}
    if where == 'keyfile':
        path = keyfile(etc, 'ib0')
    elif where == 'dropin':
        write(etc / NETWORKD / '10-ib0.network', IMAGE_NETWORK_IB0, mode=0o644)
        path = etc / NETWORKD / '10-ib0.network.d' / '90-roce-multirail.conf'
        options = dict(stack='networkd')
    else:
        path = etc / SYSCTL_D / '99-roce-multirail.conf'
        options = dict(sysctl_file=path, sysctl_lines=['net.ipv4.conf.all.rp_filter = 2'])
    os.makedirs(str(path))
    write(path / 'inside', 'inside\n')
    kernel, before = ns.dump(), tree(etc)
    result = persist(ns, rails, etc, expect_failure=True, **options)
    assert '%s is a directory' % path in result['msg'], result['msg']
    assert temporaries(etc) == [] and tree(etc) == before and ns.dump() == kernel


# --- finding: what the stack holds in memory converges after a killed run -------------------------------

def module_command(host, env=None):
    """argv and environment running rail_persist inside a booted lab host (its mount and network namespaces)."""
    environment = dict(os.environ, PYTHONPATH=COLLECTIONS, **(env or {}))
    environment.pop('SSH_CONNECTION', None)
    argv = ['nsenter', '-t', str(system.holder(host.host)), '-m', '-n', '--', PYTHON, '-m',
            'ansible_collections.roce.multirail.plugins.modules.rail_persist']
    return argv, environment


def run_module(host, args):
    argv, environment = module_command(host)
    proc = subprocess.run(argv, input=json.dumps({'ANSIBLE_MODULE_ARGS': args}), capture_output=True, text=True,
                          env=environment, timeout=120, check=False)
    result = json.loads(proc.stdout)
    assert not result.get('failed'), result.get('msg')
    return result


def kill_while_activating(host, args, tmp_path, command, verbs):
    """Run rail_persist with `command` (networkctl, nmcli) hanging on the verbs that make the daemon take the
    files, and kill the run there: what a run killed between its files and the daemon leaves."""
    shims, flag = tmp_path / 'shims', tmp_path / 'activating'
    shims.mkdir(exist_ok=True)
    real = subprocess.run(['which', command], capture_output=True, text=True, check=True).stdout.strip()
    shim = shims / command
    shim.write_text('#!/bin/sh\nfor word in "$@"; do case "$word" in %s) touch %s; exec sleep 600;; esac; done\n'
                    'exec %s "$@"\n' % ('|'.join(verbs), flag, real))
    shim.chmod(0o755)
    argv, environment = module_command(host, env={'PATH': '%s:%s' % (shims, os.environ['PATH'])})
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, start_new_session=True)
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    proc.stdin.close()
    deadline = time.monotonic() + 90
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert flag.exists(), 'the run never reached %s %s: %s' % (command, verbs, proc.stdout.read()
                                                                   if proc.poll() is not None else 'timeout')
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def planned(description):
    return build_plan(roce_lab.inventory_vars(description)['source_routing_rails'],
                      destination=description['destination'])['rails']


def assert_routing(host, rails, when):
    """Every planned rule and route is what the kernel holds, metric included."""
    rules = roce_lab.ip(host.host, '-4', 'rule').splitlines()
    for rail in rails:
        for rule in rail['rules']:
            line = '%d:\tfrom %s lookup %d proto static' % (rule['priority'], rule['from'], rule['table'])
            assert line in rules, 'after %s: no rule %r in\n%s' % (when, line, '\n'.join(rules))
        table = roce_lab.ip(host.host, '-4', 'route', 'show', 'table', str(rail['table']))
        for route in rail['routes']:
            dst = 'default' if route['dst'] == '0.0.0.0/0' else route['dst']
            found = [line for line in table.splitlines() if line.startswith(dst + ' ') and
                     'dev %s ' % rail['device'] in line + ' ' and 'metric %d' % route['metric'] in line]
            assert found, 'after %s: table %d lacks %s metric %d:\n%s' % (
                when, rail['table'], dst, route['metric'], table)


# Per stack: the command and verb that make the daemon take the files (where the run is killed), and what an
# operator does next that must keep the routing.
KILLED_AT = {
    'networkd': ('networkctl', 'reload', ('networkctl', 'reconfigure', 'ib0', 'ib1')),
    'networkmanager': ('nmcli', 'reapply', ('nmcli', '--wait', '30', 'connection', 'up', 'ib0')),
}


@pytest.mark.parametrize('stack', sorted(KILLED_AT))
def test_a_run_killed_before_the_daemon_took_its_files_is_activated_by_the_next_run(booted, tmp_path, stack):
    """The files are written (a networkd drop-in; NetworkManager profiles changed with nmcli), the run dies before
    `networkctl reload` / `nmcli device reapply`: the daemon holds the old state. The next run finds the files as
    planned and must still make the daemon take them, so that a reconfigure or `nmcli connection up` keeps the
    routing, metric included; then a run has nothing to do."""
    command, verb, operator = KILLED_AT[stack]
    host = booted(stack)
    host.boot()
    rails = planned(host.description)
    args = dict(rails=rails)
    kill_while_activating(host, args, tmp_path, command, [verb])
    files = host.files()

    result = run_module(host, args)

    assert result['changed'] is True, 'the run after the killed one changed nothing: %s' % result
    assert any('activation owed' in line for line in result.get('activated', [])), result
    owed = [name for name in host.run('ls', '-A', '/run/roce-multirail').split() if name.startswith('activate-')]
    assert host.files() == files and owed == []
    host.settle()
    assert_routing(host, rails, 'the run after the killed one')
    host.run(*operator)
    host.settle()
    live = host.state()
    assert_routing(host, rails, ' '.join(operator))
    assert run_module(host, args)['changed'] is False
    host.assert_same_state(live, 'a run with nothing to do')
