# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What persisting the rails changes on each stack, and how it is applied.

plan() turns a boot.Decision into Changes: the files to write or remove (each with its text
before and after), the NetworkManager profiles to change through nmcli, the records of adopted
profiles, and which daemons must take the change. Every stack is planned each time: the one
that persists the rails gets their routing, the others lose whatever this collection put there
earlier (a rail removed, a host moved to another stack). apply() carries Changes out.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import NamedTuple, Optional

from ansible_collections.roce.multirail.plugins.module_utils import keyfile, netplan, networkd
from ansible_collections.roce.multirail.plugins.module_utils.boot import (
    boot_findings,
    decide,
    netplan_definition,
    networkd_file,
)
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import (
    KEYFILE_MODE,
    created_keyfile,
    describe_profile,
    edit_for,
    give_back,
    modify_args,
    new_record,
    rail_profiles,
    record_path,
    untouched_since,
    written,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import (
    HEADER,
    STACK_NAMES,
    STACKS,
    FileState,
    blocked_parent,
    is_ours,
    read_file,
    replace_file,
    what_is_at,
    write_file,
)

NETWORKD_FILE_MODE = 0o644
RECORD_MODE = 0o600
SETTLE_TIMEOUT = 30.0
# Activations a run owes a daemon, recorded before any file changes and cleared once the daemon took
# them: a run killed or failed in between leaves the record, and the next run activates again. /run is
# empty at boot, when every daemon reads its files afresh anyway.
OWED_DIR = '/run/roce-multirail'
OWED_MODE = 0o600


class FileChange(NamedTuple):
    path: str
    before: Optional[FileState]
    after: Optional[str]          # None: remove the file
    mode: int
    uid: int = 0
    gid: int = 0


class Changes:
    """Everything one run changes, in the order it is applied."""

    def __init__(self):
        self.files = []           # [FileChange]
        self.edits = []           # [(networkmanager.Edit, record)]: adopted profiles to change
        self.loads = []           # [path]: keyfiles NetworkManager must (re)load
        self.deletes = []         # [(Profile, Profile or None)]: our profiles to delete, what to bring up first
        self.removed_profiles = []  # ids of our profiles whose keyfile is removed (NetworkManager not running)
        self.records = {}         # {uuid: record, or None to remove it}
        self.activate = []        # [(device, uuid)]: our created profiles to bring up where nothing is active
        self.reapply = set()      # devices whose active profile changed
        self.networkd = set()     # devices whose networkd configuration changed
        self.netplan = False      # OUR_FILE changed: render again
        self.messages = []
        self.problems = []        # what refuses the run: files in the way that are not this collection's
        self.owed = []            # activations owed by an earlier run (or files a daemon never loaded), described

    def __bool__(self):
        return bool(self.files or self.edits or self.deletes or any(v is None for v in self.records.values())
                    or self.owed)

    def diffs(self):
        out = []
        for change in self.files:
            out.append(dict(before=change.before.content if change.before else '', after=change.after or '',
                            before_header=change.path, after_header=change.path if change.after is not None
                            else '%s (removed)' % change.path))
        for edit, _record in self.edits:
            after_routes = tuple(r for r in edit.profile.routes if r not in edit.remove_routes) + edit.add_routes
            after_rules = tuple(r for r in edit.profile.rules if r not in edit.remove_rules) + edit.add_rules
            out.append(dict(before=describe_profile(edit.profile), after=describe_profile(
                edit.profile, after_routes, after_rules), before_header=edit.profile.describe(),
                after_header=edit.profile.describe()))
        for profile, _first in self.deletes:
            out.append(dict(before=describe_profile(profile), after='', before_header=profile.describe(),
                            after_header='%s (deleted)' % profile.describe()))
        return out

    def paths(self):
        return [change.path for change in self.files]

    def file(self, path, content, mode, uid=0, gid=0, ours=is_ours):
        """Write path when its content, mode or owner differ (None: remove it); whether it will.

        Only a regular file is ever read, written or removed: anything else at path (a symlink, whose
        target is never read, a directory) refuses the run, and so does a file that ours(text) says
        this collection did not write (ours=None: a file of someone else's this collection edits).
        """
        if path in self.paths():
            return False
        what = what_is_at(path)
        if what:
            self.problems.append('%s is %s; this collection writes and removes only regular files it made: move it '
                                 'away, or point the option that names it elsewhere' % (path, what))
            return False
        before = read_file(path)
        if content is None:
            if not os.path.lexists(path):
                return False
        elif before == FileState(content, mode, uid, gid):
            return False
        if before is None and os.path.lexists(path):
            self.problems.append('%s cannot be read as text; it is not a file this collection wrote' % path)
            return False
        if before is not None and ours is not None and not ours(before.content):
            self.problems.append('%s exists without the header of this collection\'s files ("%s"): '
                                 'it is not this collection\'s to %s; move it away' % (
                                     path, HEADER, 'remove' if content is None else 'overwrite'))
            return False
        if content is not None:
            parent, what = blocked_parent(path)
            if parent:
                self.problems.append('%s cannot be written: %s is %s, not a directory' % (path, parent, what))
                return False
        self.files.append(FileChange(path, before, content, mode, uid, gid))
        return True


# --- planning ------------------------------------------------------------------------------------

def daemons(view):
    """What runs here, for a report."""
    return dict(
        networkmanager='running' if view.nm_running else 'not running' if view.nm_installed else 'not installed',
        networkd='running' if view.networkd_running else 'not running' if view.networkd_installed else 'not installed',
        netplan='installed' if view.netplan_installed else 'not installed')


def prepare(run, view, rails, stack='auto', purge=True):
    """(decision, changes, problems): the stack that persists the rails, what persisting them changes,
    and what refuses the host (when there is any, nothing may change).

    netplan counts only what it renders: the file of this collection as it would be is rendered with
    the host's netplan, and every rail's routes and rules must come out.
    """
    decision = decide(view, rails, stack)
    if decision.errors:
        return decision, None, list(decision.errors)
    changes = plan(view, decision, rails, purge)
    problems = list(changes.problems)
    if decision.stack == 'networkmanager' and changes.loads and not os.path.isdir(view.keyfile_dir):
        problems.append('%s does not exist; is NetworkManager installed?' % view.keyfile_dir)
    if decision.stack == 'netplan':
        text = netplan_text(changes, view)
        rendered, error = netplan.generate(run, view.netplan_files, (os.path.basename(view.netplan_file), text))
        found = [error] if error else [f.message for f in boot_findings(view, rails, rendered) if f.severity == 'error']
        problems += ['netplan would not render the rails\' routing from %s: %s' % (view.netplan_file, problem)
                     for problem in found]
    return decision, changes, problems


def plan(view, decision, rails, purge=True):
    """Changes that make `decision.stack` carry every rail and take this collection's work off the others."""
    changes = Changes()
    chosen = dict((choice.device, choice) for choice in decision.rails)
    mine = dict((stack, [rail for rail in rails if rail.device in chosen and chosen[rail.device].stack == stack])
                for stack in STACKS)
    _plan_networkmanager(changes, view, mine['networkmanager'], purge)
    _plan_networkd(changes, view, mine['networkd'], purge)
    _plan_netplan(changes, view, mine['netplan'], purge)
    return changes


def _plan_networkmanager(changes, view, rails, purge):
    wanted_records, wanted_files = set(), set()
    for rail in rails:
        link = view.links[rail.device]
        found = rail_profiles(rail, link, view.nm_profiles, view.nm_running)
        if found.adopt:
            for profile in found.adopt:
                wanted_records.add(profile.uuid)
                record = view.nm_records.get(profile.uuid)
                edit = edit_for(rail, profile, record)
                if edit is None:
                    continue
                if record is None:
                    record = new_record(profile, rail.device)
                if not view.nm_running:
                    text = read_file(profile.path)
                    new = keyfile.edit(text.content, edit.add_routes, edit.remove_routes, edit.add_rules,
                                       edit.remove_rules)
                    changes.file(profile.path, new, text.mode, text.uid, text.gid, ours=None)
                changes.edits.append((edit, record))
                if profile.active_on:
                    changes.reapply.add(profile.active_on)
            for profile in found.ours:
                if view.nm_running and profile.path and not is_ours((read_file(profile.path) or FileState(
                        '', 0, 0, 0)).content):
                    changes.messages.append('NetworkManager %s has the uuid of this collection\'s profile for %s but '
                                            'its file does not start with the header of this collection\'s files: '
                                            'left alone; delete it if it is no longer wanted'
                                            % (profile.describe(), rail.device))
                elif view.nm_running:
                    first = next((p for p in found.adopt if p.autoconnect), found.adopt[0])
                    changes.deletes.append((profile, first if profile.active_on else None))
                elif changes.file(profile.path, None, KEYFILE_MODE):
                    changes.removed_profiles.append(profile.id)
            continue
        path, content = created_keyfile(rail, link.type, view.keyfile_dir)
        wanted_files.add(path)
        if changes.file(path, content, KEYFILE_MODE):
            loaded = True
        elif view.nm_running and os.path.lexists(path) and not any(p.path == path for p in view.nm_profiles.values()):
            changes.owed.append('NetworkManager has not loaded %s for %s: loading it' % (path, rail.device))
            loaded = True
        else:
            loaded = False
        if loaded:
            changes.loads.append(path)
            active = [p for p in found.ours if p.active_on == rail.device]
            if active:
                changes.reapply.add(rail.device)
            else:
                changes.activate.append((rail.device, keyfile.connection_uuid(rail.device)))
    if not purge:
        return
    for path in sorted(view.nm_ours):
        if path not in wanted_files and path not in changes.paths() and \
                not any(path == profile.path for profile, _first in changes.deletes):
            known = [p for p in view.nm_profiles.values() if p.path == path]
            if view.nm_running and known:
                changes.deletes.append((known[0], None))
            else:
                changes.file(path, None, KEYFILE_MODE)
    for uuid, record in sorted(view.nm_records.items()):
        if uuid in wanted_records:
            continue
        changes.records[uuid] = None
        profile = view.nm_profiles.get(uuid)
        if profile is None:
            continue
        if untouched_since(record):
            for path, original in sorted(record['files'].items()):
                # The record's digests prove these files are as this collection left them.
                if original is None:
                    changes.file(path, None, KEYFILE_MODE, ours=None)
                else:
                    changes.file(path, original['content'], original['mode'], original['uid'], original['gid'],
                                 ours=None)
            if view.nm_running and profile.path:
                changes.loads.append(profile.path)
        else:
            edit = give_back(record, profile)
            if not view.nm_running and profile.path:
                text = read_file(profile.path)
                changes.file(profile.path, keyfile.edit(text.content, remove_routes=edit.remove_routes,
                                                        remove_rules=edit.remove_rules), text.mode, text.uid, text.gid,
                             ours=None)
            changes.edits.append((edit, None))
            changes.messages.append('%s was changed since this collection adopted it: only its routes and rules '
                                    'were taken out' % profile.describe())
        if profile.active_on:
            changes.reapply.add(profile.active_on)


def _our_networkd_files(directory):
    """{path: device or ''} of the drop-ins and .network files of this collection in `directory`."""
    found = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return found
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith('.network.d'):
            candidate = os.path.join(path, networkd.DROPIN)
            state = read_file(candidate)
            if state and is_ours(state.content):
                found[candidate] = ''
        elif name.startswith('50-roce-multirail-') and name.endswith('.network'):
            state = read_file(path)
            if state and is_ours(state.content):
                found[path] = name[len('50-roce-multirail-'):-len('.network')]
    return found


def _plan_networkd(changes, view, rails, purge):
    wanted = set()
    for rail in rails:
        link = view.links[rail.device]
        nfile = networkd_file(view, link)[0]
        if nfile is None or networkd.is_created(nfile):
            path, content = networkd.created_path(rail.device, view.networkd_dir), networkd.render_network(rail)
        else:
            path, content = networkd.dropin_path(nfile, view.networkd_dir), networkd.render_dropin(rail)
        wanted.add(path)
        if changes.file(path, content, NETWORKD_FILE_MODE):
            changes.networkd.add(rail.device)
        elif view.networkd_running and os.path.lexists(path):
            why = networkd_not_taken(link, path, path.endswith('.network'))
            if why:
                changes.networkd.add(rail.device)
                changes.owed.append('systemd-networkd has not loaded %s for %s (%s): reloading it' % (
                    path, rail.device, why))
    if purge:
        for path in sorted(_our_networkd_files(view.networkd_dir)):
            if path not in wanted and changes.file(path, None, NETWORKD_FILE_MODE):
                changes.networkd.add('')


def networkd_not_taken(link, path, created, directory=networkd.LINK_STATE_DIR):
    """Why networkd has not loaded the file at path for link, from its link state file, or ''."""
    state_path = os.path.join(directory, str(link.ifindex))
    why = networkd.not_taken(networkd.link_state(link.ifindex, directory), path, created)
    if why:
        return why
    try:
        if os.lstat(path).st_mtime_ns > os.stat(state_path).st_mtime_ns:
            return 'it was changed after networkd last configured %s' % link.name
    except OSError:
        pass
    return ''


def _plan_netplan(changes, view, rails, purge):
    if not rails:
        if purge and view.netplan_ours is not None and is_ours(view.netplan_ours):
            changes.file(view.netplan_file, None, netplan.FILE_MODE)
            changes.netplan = True
        return
    entries = []
    for rail in rails:
        definition, _rendered, _why = netplan_definition(view, view.links[rail.device])
        entries.append((definition, rail))
    if changes.file(view.netplan_file, netplan.render(entries), netplan.FILE_MODE):
        changes.netplan = True


def netplan_text(changes, view):
    """The text OUR_FILE will hold after the changes (None: no file)."""
    for change in changes.files:
        if change.path == view.netplan_file:
            return change.after
    return view.netplan_ours


# --- activations owed ------------------------------------------------------------------------------

def owed_path(stack, directory=OWED_DIR):
    return os.path.join(directory, 'activate-%s' % stack)


def read_owed(directory=OWED_DIR):
    """{stack: what} of the activations an earlier run recorded and did not see through (see owe())."""
    found = {}
    for stack in STACKS:
        path = owed_path(stack, directory)
        if not os.path.lexists(path):
            continue
        state = read_file(path)
        try:
            what = json.loads(state.content) if state else {}
        except ValueError:
            what = {}
        # A record that cannot be read still owes: everything of its stack is activated again.
        found[stack] = what if isinstance(what, dict) else {}
    return found


def settle_owed(view, changes, owed, rails, directory=OWED_DIR):
    """Add the activations an earlier run owes (owed: read_owed()) to changes, described in changes.owed. A
    daemon that does not run now reads every file when it starts: nothing is owed to it any more."""
    devices = [rail.device for rail in rails if rail.device in view.links]
    for stack, what in sorted(owed.items()):
        where = owed_path(stack, directory)
        if stack == 'networkd' and view.networkd_running:
            changes.networkd.update(set(_strings(what.get('devices'))) | {''})
        elif stack == 'networkmanager' and view.nm_running:
            changes.reapply.update(d for d in _strings(what.get('reapply')) if d in view.links)
            changes.loads += [p for p in _strings(what.get('loads')) if p not in changes.loads and os.path.exists(p)]
            for pair in what.get('activate') or []:
                if isinstance(pair, list) and len(pair) == 2 and tuple(pair) not in changes.activate \
                        and pair[0] in view.links:
                    changes.activate.append(tuple(pair))
        elif stack == 'netplan' and (view.networkd_running or view.nm_running):
            changes.netplan = True
            if view.networkd_running:
                changes.networkd.update(set(devices) | {''})
            if view.nm_running:
                changes.reapply.update(devices)
        else:
            continue
        changes.owed.append('%s: activation owed by an earlier run that did not finish (%s): done again'
                            % (STACK_NAMES[stack], where))


def _strings(values):
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def owe(view, changes):
    """{stack: what} of the activations these changes make the running daemons owe until they took them."""
    out = {}
    if view.networkd_running and changes.networkd:
        out['networkd'] = {'devices': sorted(changes.networkd)}
    if view.nm_running and (changes.reapply or changes.loads or changes.activate or changes.edits or changes.deletes):
        out['networkmanager'] = {'reapply': sorted(changes.reapply), 'loads': list(changes.loads),
                                 'activate': [list(pair) for pair in changes.activate]}
    if changes.netplan and (view.networkd_running or view.nm_running):
        out['netplan'] = {'render': True}
    return out


def record_owed(owed, directory=OWED_DIR):
    """Record the activations owed (owe()) before the first change: root, 0600, in /run."""
    if not owed:
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for stack, what in sorted(owed.items()):
        replace_file(owed_path(stack, directory), json.dumps(what, sort_keys=True) + '\n', OWED_MODE)


def clear_owed(stacks, directory=OWED_DIR):
    """Forget the owed activations of stacks, once their daemons took every change."""
    for stack in sorted(stacks):
        path = owed_path(stack, directory)
        if os.path.lexists(path) and not what_is_at(path):
            os.unlink(path)


# --- applying --------------------------------------------------------------------------------------

class ApplyError(Exception):
    """A change could not be made; the message says which and why."""


def _nmcli(run, *args):
    rc, out, err = run(['nmcli'] + list(args))
    if rc != 0:
        raise ApplyError('nmcli %s failed: %s' % (' '.join(args), (err or out).strip()))
    return out


def _write_record(directory, record):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    replace_file(record_path(directory, record['uuid']), json.dumps(record, indent=1, sort_keys=True), RECORD_MODE)


def apply(module, run, view, changes):
    """Carry out the changes: files, NetworkManager, records, then the daemons. Raises ApplyError."""
    for edit, record in changes.edits:
        if record is not None:
            # The originals are on disk before the profile changes: a run killed in between can still give it back.
            record = dict(record, routes=[list(r) for r in edit.routes], rules=[list(r) for r in edit.rules])
            _write_record(view.originals_dir, record)
    for profile, first in changes.deletes:
        if view.nm_running:
            if first is not None:
                _nmcli(run, '--wait', '60', 'connection', 'up', 'uuid', first.uuid)
            _nmcli(run, 'connection', 'delete', 'uuid', profile.uuid)
        elif profile.path and os.path.lexists(profile.path) and not what_is_at(profile.path):
            os.unlink(profile.path)
    for change in changes.files:
        try:
            if change.after is None:
                what = what_is_at(change.path)
                if what:
                    raise OSError('%s is %s now' % (change.path, what))
                if os.path.lexists(change.path):
                    os.unlink(change.path)
                _remove_empty_parent(change.path)
            else:
                os.makedirs(os.path.dirname(change.path), exist_ok=True)
                write_file(module, change.path, change.after, change.mode, change.uid, change.gid)
        except OSError as exc:
            raise ApplyError('%s %s failed: %s' % ('removing' if change.after is None else 'writing', change.path, exc))
    if view.nm_running:
        for edit, _record in changes.edits:
            args = modify_args(edit)
            if args:
                _nmcli(run, 'connection', 'modify', 'uuid', edit.profile.uuid, *args)
        for path in changes.loads:
            _nmcli(run, 'connection', 'load', path)
    for edit, record in changes.edits:
        if record is not None:
            record = dict(record, routes=[list(r) for r in edit.routes], rules=[list(r) for r in edit.rules])
            record['written'] = written(record) if record['files'] else {}
            _write_record(view.originals_dir, record)
    for uuid, record in changes.records.items():
        if record is None:
            try:
                os.unlink(record_path(view.originals_dir, uuid))
            except FileNotFoundError:
                pass
    if view.nm_running:
        for device in sorted(changes.reapply):
            _nmcli(run, 'device', 'reapply', device)
        for device, uuid in changes.activate:
            _nmcli(run, '--wait', '60', 'connection', 'up', 'uuid', uuid)


def _remove_empty_parent(path):
    parent = os.path.dirname(path)
    if parent.endswith('.network.d'):
        try:
            os.rmdir(parent)
        except OSError:
            pass


def _state_stamp(view, device):
    link = view.links.get(device)
    if link is None:
        return None
    try:
        st = os.stat(os.path.join(networkd.LINK_STATE_DIR, str(link.ifindex)))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _settle_networkd(view, devices, before, timeout=SETTLE_TIMEOUT):
    """Wait until networkd has configured every device again after a reload (its state file rewritten)."""
    deadline = time.monotonic() + timeout
    waiting = set(devices)
    failed = []
    while waiting and time.monotonic() < deadline:
        for device in sorted(waiting):
            stamp = _state_stamp(view, device)
            state = networkd.link_state(view.links[device].ifindex).get('ADMIN_STATE', '')
            if stamp != before.get(device) and state in ('configured', 'failed', 'unmanaged', 'linger'):
                waiting.discard(device)
                if state == 'failed':
                    failed.append(device)
        if waiting:
            time.sleep(0.02)
    if failed:
        raise ApplyError('systemd-networkd failed to configure %s after the reload; see networkctl status %s and '
                         'its journal' % (', '.join(failed), failed[0]))
    if waiting:
        raise ApplyError('systemd-networkd did not configure %s again within %d s of the reload'
                         % (', '.join(sorted(waiting)), timeout))


def render_netplan(run, view, rails):
    """Bring netplan's rendered files in /run up to date with its YAML, touching only those that change.

    What `netplan generate` does, but a rendered file whose text does not change is left alone: a
    rewritten file is a changed file to networkd, which re-applies the addresses of every link whose
    file changed on its next reload; regenerating everything would do that to every netplan link of
    the host, the management NIC included, not only to the rails. Returns the rendered files written
    or removed, as {renderer: [path]}. Raises ApplyError.
    """
    scratch = tempfile.mkdtemp(prefix='roce-multirail-netplan-')
    try:
        extra = (os.path.basename(view.netplan_file), read_file(view.netplan_file).content) \
            if os.path.exists(view.netplan_file) else None
        _rendered, error = netplan.generate(run, view.netplan_files, extra, scratch=scratch)
        if error:
            raise ApplyError('netplan cannot render %s: %s' % (view.netplan_file, error))
        touched = {}
        for renderer, directory, prefix in (('networkd', netplan.NETWORKD_OUT, '10-netplan-'),
                                            ('NetworkManager', netplan.NM_OUT, 'netplan-')):
            new_dir, live_dir = os.path.join(scratch, directory), '/' + directory
            new = set(n for n in _listdir(new_dir) if n.startswith(prefix))
            live = set(n for n in _listdir(live_dir) if n.startswith(prefix))
            for name in sorted(new | live):
                path = os.path.join(live_dir, name)
                fresh = read_file(os.path.join(new_dir, name)) if name in new else None
                current = read_file(path) if name in live else None
                if fresh is not None and current is not None and fresh.content == current.content:
                    continue
                if fresh is None:
                    os.unlink(path)
                else:
                    os.makedirs(live_dir, exist_ok=True)
                    replace_file(path, fresh.content, fresh.mode, fresh.uid, fresh.gid)
                touched.setdefault(renderer, []).append(path)
        return touched
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def take(run, view, changes, rails):
    """Let the daemons take the changed files: netplan's rendered files follow its YAML, networkd
    reloads (and is waited for), NetworkManager loads what netplan rendered for it. Raises ApplyError."""
    devices = set(d for d in changes.networkd if d)
    touched = {}
    if changes.netplan:
        touched = render_netplan(run, view, rails)
        devices.update(_devices_of(view, touched.get('networkd', []), rails))
    if view.networkd_running and (changes.networkd or touched.get('networkd')):
        watched = [d for d in devices if d in view.links and networkd.link_state(view.links[d].ifindex)]
        before = dict((device, _state_stamp(view, device)) for device in watched)
        rc, out, err = run(['networkctl', 'reload'])
        if rc != 0:
            raise ApplyError('networkctl reload failed: %s' % (err or out).strip())
        _settle_networkd(view, watched, before)
    if view.nm_running and touched.get('NetworkManager'):
        for path in touched['NetworkManager']:
            if os.path.exists(path):
                _nmcli(run, 'connection', 'load', path)
        for rail in rails:
            if rail.device in view.links:
                run(['nmcli', 'device', 'reapply', rail.device])


def _devices_of(view, paths, rails):
    """The rails whose rendered .network file is among paths."""
    found = set()
    for path in paths:
        state = read_file(path)
        if state is None:
            continue
        nfile = networkd.NetworkFile(path, os.path.basename(path), tuple(networkd.parse(state.content)), ())
        for rail in rails:
            link = view.links.get(rail.device)
            if link is not None and networkd.matches(nfile, link)[0]:
                found.add(rail.device)
    return found
