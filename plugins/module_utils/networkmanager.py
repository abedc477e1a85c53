# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkManager: which profiles can set up a rail NIC, what they hold, and how the rail's
routing gets into every one of them.

A NIC can have several profiles; at boot NetworkManager autoconnects one of them, and an
operator can bring up any of them. So the rail's routes and rules go into *every* profile that
can activate on the rail NIC (adopted: its own settings stay as they are), and a profile of
this collection is created only where none exists. What an adopted profile looked like before
is kept (ORIGINALS_DIR), so that removing the rail gives it back exactly.

Where NetworkManager runs, profiles are read and changed through nmcli (so keyfile and ifcfg-rh
profiles both work, and what NetworkManager holds in memory is what is compared); where it
does not (an image build, a chroot), keyfiles are read and edited directly.

Everything here but the functions taking a `run` callable is pure.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import uuid as uuid_module
from collections import namedtuple
from typing import NamedTuple, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import (
    PREFIX,
    SUFFIX,
    KeyfileProfile,
    connection_uuid,
    file_name,
    mac_form,
    parse_route,
    parse_rule,
    read_profile,
    render,
    route_value,
    rule_value,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import Route, Rule, digest, holds, is_ours, read_file

KEYFILE_DIRS = ('/etc/NetworkManager/system-connections', '/run/NetworkManager/system-connections',
                '/usr/lib/NetworkManager/system-connections')
NETPLAN_PROFILE_DIR = '/run/NetworkManager/system-connections'
IFCFG_DIR = '/etc/sysconfig/network-scripts'
ORIGINALS_DIR = '/etc/NetworkManager/roce-multirail'
KEYFILE_MODE = 0o600        # NetworkManager ignores keyfiles that others can read
BUS_NAME = 'org.freedesktop.NetworkManager'
# NetworkManager's namespace for the uuids it derives from strings (NM_UUID_NS1).
UUID_NS1 = uuid_module.UUID('b425e9fb-7598-44b4-9e3b-5a2e3aaa4905')
FIELDS = ('connection.id', 'connection.uuid', 'connection.type', 'connection.interface-name',
          'connection.autoconnect', 'connection.master', '802-3-ethernet.mac-address', 'infiniband.mac-address',
          'match.interface-name', 'ipv4.method', 'ipv4.addresses', 'ipv4.routes', 'ipv4.routing-rules')


class Profile(namedtuple('ProfileFields', KeyfileProfile._fields + ('path', 'active_on'), defaults=('',))):
    """A NetworkManager profile, as far as a rail is concerned: what keyfile.KeyfileProfile reads, the
    file it was read from ('' when NetworkManager holds it in memory only) and the device it is active
    on (NetworkManager running only)."""

    __slots__ = ()

    def describe(self):
        return "profile '%s' (%s)" % (self.id, self.path or 'in memory only')

    @property
    def ours(self):
        return self.uuid == connection_uuid(self.interface_name) if self.interface_name else False

    @property
    def from_netplan(self):
        return os.path.basename(self.path).startswith('netplan-') and self.path.startswith(NETPLAN_PROFILE_DIR)

    @property
    def keyfile(self):
        return self.path.endswith(SUFFIX) or (self.path and '/system-connections/' in self.path)


def _pattern_matches(patterns, name):
    """NetworkManager's match.interface-name.

    '&' makes a pattern mandatory, '|' (or nothing) optional, and a '!' after either negates it ('!x'
    alone is the mandatory '&!x'): every mandatory one must hold, and one optional one when there are any.
    """
    optional = []
    for pattern in patterns:
        mandatory = pattern.startswith(('&', '!'))
        if pattern[:1] in '&|':
            pattern = pattern[1:]
        negated = pattern.startswith('!')
        holds = fnmatch.fnmatchcase(name, pattern[1:] if negated else pattern) != negated
        if mandatory and not holds:
            return False
        if not mandatory:
            optional.append(holds)
    return not optional or any(optional)


def binds(profile):
    """Whether a profile is bound to particular NICs (by name, MAC or match) rather than any of its type."""
    return bool(profile.interface_name or profile.mac or profile.match)


def can_activate(profile, link):
    """Whether NetworkManager could activate `profile` on `link` (at boot or with `nmcli connection up`)."""
    if link.type is None or profile.type != link.type:
        return False
    if profile.interface_name and profile.interface_name != link.name:
        return False
    if profile.mac and profile.mac != link.mac:
        return False
    if profile.match and not _pattern_matches(profile.match, link.name):
        return False
    return True


# --- reading ----------------------------------------------------------------------------

def _insecure(state):
    return state is None or state.uid != 0 or state.mode & 0o077


def boot_source(path):
    """Whether NetworkManager reads a profile stored at path at boot.

    Not one it holds in memory only: no file, or one in /run (the profile it makes up for a NIC
    configured before it took it over, `nmcli connection add --temporary`): /run is empty at boot.
    netplan's profiles are in /run too, but netplan renders them again at every boot.
    """
    if not path:
        return False
    return not path.startswith('/run/') or os.path.basename(path).startswith('netplan-')


def keyfile_uuid(path):
    """The uuid NetworkManager gives a keyfile that names none (derived from its path, as its reader does)."""
    return str(uuid_module.uuid3(UUID_NS1, 'keyfile\0%s\0' % path))


def read_keyfiles(dirs=KEYFILE_DIRS):
    """Profiles NetworkManager would load from keyfiles (not running): {uuid: Profile}; the first dir first.

    Like NetworkManager: hidden and backup files are skipped, only *.nmconnection files count outside
    the first directory, files not owned by root or readable by others are ignored, and a keyfile
    without uuid or id gets them from its path.
    """
    found = {}
    for position, directory in enumerate(dirs):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.startswith('.') or name.endswith(('~', '.swp', '.bak', '.orig', '.tmp', '.rej')):
                continue
            if position and not name.endswith(SUFFIX):
                continue
            path = os.path.join(directory, name)
            if not os.path.isfile(path) or not boot_source(path):
                continue
            state = read_file(path)
            if _insecure(state):
                continue
            info = read_profile(state.content)
            info = info._replace(uuid=info.uuid or keyfile_uuid(path),
                                 id=info.id or (name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name))
            if info.uuid not in found:
                found[info.uuid] = Profile(*info, path=path)
    return found


def ifcfg_devices(directory=IFCFG_DIR):
    """{device: path} of ifcfg files (DEVICE=, else the name after ifcfg-)."""
    found = {}
    for path in sorted(glob_files(directory, 'ifcfg-')):
        state = read_file(path)
        if state is None:
            continue
        device = os.path.basename(path)[len('ifcfg-'):]
        for line in state.content.splitlines():
            if line.strip().startswith('DEVICE='):
                device = line.split('=', 1)[1].strip().strip('"\'')
        found.setdefault(device, path)
    return found


def glob_files(directory, prefix):
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)
                if name.startswith(prefix) and not name.endswith(('~', '.bak', '.orig'))]
    except OSError:
        return []


def unescape(text):
    """A value of nmcli's terse output ('\\:' is ':', '\\\\' is '\\')."""
    return re.sub(r'\\(.)', r'\1', text)


def split_terse(line):
    """Fields of one line of nmcli -t output (':' separates, '\\:' does not, '\\\\:' does)."""
    parts = re.split(r'(?<!\\)((?:\\\\)*):', line)
    return [unescape(field + tail) for field, tail in zip(parts[0::2], parts[1::2] + [''])]


def nmcli_route(text):
    """A Route from one entry of nmcli's ipv4.routes ('10.0.1.0/24 100 src=10.0.1.14 table=101'), or None."""
    words = text.split()
    options = [word for word in words if '=' in word]
    return parse_route(' '.join(word for word in words if '=' not in word), ' '.join(options))


def read_nmcli(run):
    """Profiles NetworkManager holds ({uuid: Profile}) and the devices' active profiles ({device: uuid}).

    run(argv) -> (rc, stdout, stderr). Only profiles of a type a rail can have that a boot reads are
    read in full (see boot_source).
    """
    rc, out, err = run(['nmcli', '-t', '-f', 'UUID,TYPE,FILENAME', 'connection', 'show'])
    if rc != 0:
        raise NMError('nmcli connection show failed: %s' % (err or out).strip())
    files, wanted = {}, []
    for line in out.splitlines():
        fields = split_terse(line)
        if len(fields) >= 3:
            files[fields[0]] = fields[2]
            if fields[1] in ('802-3-ethernet', 'infiniband') and boot_source(fields[2]):
                wanted.append(fields[0])
    rc, out, err = run(['nmcli', '-t', '-f', 'DEVICE,CON-UUID', 'device', 'status'])
    if rc != 0:
        raise NMError('nmcli device status failed: %s' % (err or out).strip())
    active = {}
    for line in out.splitlines():
        fields = split_terse(line)
        if len(fields) >= 2 and fields[1]:
            active[fields[1]] = fields[0]
    profiles = {}
    if wanted:
        rc, out, err = run(['nmcli', '-t', '-f', ','.join(FIELDS), 'connection', 'show'] + wanted)
        if rc != 0:
            raise NMError('nmcli connection show failed: %s' % (err or out).strip())
        for block in re.split(r'\n\s*\n', out.strip()):
            values = {}
            for line in block.splitlines():
                key, _sep, value = line.partition(':')
                values[key] = unescape(value)
            uuid = values.get('connection.uuid')
            if uuid:
                profiles[uuid] = profile_from_nmcli(values, files.get(uuid, ''), active.get(uuid, ''))
    return profiles, dict((device, uuid) for uuid, device in active.items())


def _entries(text):
    return [part.strip() for part in text.split(', ') if part.strip()]


def profile_from_nmcli(values, path, active_on=''):
    kind = values.get('connection.type', '')
    kind = 'ethernet' if kind == '802-3-ethernet' else kind
    mac = values.get('802-3-ethernet.mac-address' if kind == 'ethernet' else 'infiniband.mac-address', '')
    return Profile(
        uuid=values.get('connection.uuid', ''), id=values.get('connection.id', ''), type=kind,
        interface_name=values.get('connection.interface-name', ''), mac=mac_form(mac),
        match=tuple(p.strip() for p in values.get('match.interface-name', '').split(',') if p.strip()),
        master=values.get('connection.master', ''),
        autoconnect=values.get('connection.autoconnect', 'yes') == 'yes',
        method=values.get('ipv4.method', 'auto'),
        addresses=tuple(_entries(values.get('ipv4.addresses', ''))),
        routes=tuple(r for r in (nmcli_route(e) for e in _entries(values.get('ipv4.routes', ''))) if r),
        rules=tuple(r for r in (parse_rule(e) for e in _entries(values.get('ipv4.routing-rules', ''))) if r),
        path=path, active_on=active_on)


class NMError(Exception):
    """nmcli failed or answered something unexpected."""


# --- originals of adopted profiles ----------------------------------------------------------------

def companions(path):
    """The files NetworkManager reads a profile from: a keyfile, or an ifcfg file with its route and rule files."""
    name = os.path.basename(path)
    if not name.startswith('ifcfg-'):
        return [path]
    base, directory = name[len('ifcfg-'):], os.path.dirname(path)
    return [path] + [os.path.join(directory, '%s-%s' % (kind, base)) for kind in ('route', 'route6', 'rule', 'rule6')]


def record_path(directory, uuid):
    return os.path.join(directory, '%s.json' % uuid)


def read_records(directory=ORIGINALS_DIR):
    """{uuid: record} of the profiles this collection adopted (see new_record)."""
    records = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return records
    for name in names:
        if not name.endswith('.json'):
            continue
        state = read_file(os.path.join(directory, name))
        try:
            record = json.loads(state.content) if state else None
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get('uuid') == name[:-len('.json')]:
            records[record['uuid']] = record
    return records


def new_record(profile, device):
    """What giving `profile` back needs: its files as they are now (None: absent), before the first change."""
    files = {}
    for path in companions(profile.path) if profile.path else []:
        state = read_file(path)
        files[path] = None if state is None else {'content': state.content, 'mode': state.mode,
                                                  'uid': state.uid, 'gid': state.gid}
    return {'uuid': profile.uuid, 'id': profile.id, 'device': device, 'files': files, 'written': {},
            'routes': [], 'rules': []}


def record_routes(record):
    return [Route(*r) for r in record.get('routes', [])]


def record_rules(record):
    return [Rule(*r) for r in record.get('rules', [])]


def written(record):
    """{path: digest or None} of the profile's files now."""
    out = {}
    for path in record['files']:
        state = read_file(path)
        out[path] = digest(state.content) if state else None
    return out


def untouched_since(record):
    """Whether nobody changed the profile's files since this collection last wrote them."""
    return bool(record.get('written')) and written(record) == record['written']


# --- deciding ------------------------------------------------------------------------------------

class Edit(NamedTuple):
    """Routes and rules to add to and remove from an adopted profile."""

    profile: Profile
    device: str
    add_routes: Tuple[Route, ...]
    remove_routes: Tuple[Route, ...]
    add_rules: Tuple[Rule, ...]
    remove_rules: Tuple[Rule, ...]
    routes: Tuple[Route, ...]       # what the record keeps as added by this collection
    rules: Tuple[Rule, ...]


class RailProfiles(NamedTuple):
    adopt: Tuple[Profile, ...]      # profiles of others that can activate on the rail NIC
    ours: Tuple[Profile, ...]       # this collection's own profile(s) for it
    netplan: Tuple[Profile, ...]    # profiles netplan generated
    problems: Tuple[str, ...]


def rail_profiles(rail, link, profiles, running):
    """Every profile that can activate on the rail's NIC, sorted by who owns it, and what stops adopting one."""
    adopt, ours, netplan, problems = [], [], [], []
    for profile in sorted(profiles.values(), key=lambda p: (p.id, p.uuid)):
        if not can_activate(profile, link):
            continue
        if profile.ours or profile.uuid == connection_uuid(rail.device):
            ours.append(profile)
            continue
        if profile.from_netplan:
            netplan.append(profile)
            continue
        adopt.append(profile)
        where = profile.describe()
        if not binds(profile):
            problems.append('rail %s: NetworkManager %s can activate on any %s NIC, not only %s: the rail\'s '
                            'routes and rules cannot go into it; bind it to %s (connection.interface-name)'
                            % (rail.device, where, link.type, rail.device, rail.device))
        elif profile.master:
            problems.append('rail %s: NetworkManager %s makes %s a port of %s, which cannot carry the rail '
                            'address' % (rail.device, where, rail.device, profile.master))
        elif profile.method == 'manual' and not holds(profile.addresses, rail.address):
            problems.append('rail %s: NetworkManager %s gives %s %s, not the rail address %s: activating it '
                            'would leave the rail rule without its address; fix the inventory or the profile'
                            % (rail.device, where, rail.device, ', '.join(profile.addresses) or 'no address',
                               rail.address))
        elif profile.method == 'disabled':
            problems.append('rail %s: NetworkManager %s disables IPv4 on %s' % (rail.device, where, rail.device))
        elif not running and not profile.keyfile:
            problems.append('rail %s: NetworkManager %s is not a keyfile, and NetworkManager is not running to '
                            'change it; start NetworkManager, or migrate the profile to a keyfile '
                            '(nmcli connection migrate)' % (rail.device, where))
    return RailProfiles(tuple(adopt), tuple(ours), tuple(netplan), tuple(problems))


def edit_for(rail, profile, record):
    """The Edit that makes an adopted profile carry the rail's routes and rules, or None when it does."""
    before_routes = record_routes(record) if record else []
    before_rules = record_rules(record) if record else []
    add_routes = tuple(r for r in rail.routes if r not in profile.routes)
    add_rules = tuple(r for r in rail.rules if r not in profile.rules)
    remove_routes = tuple(r for r in before_routes if r not in rail.routes and r in profile.routes)
    remove_rules = tuple(r for r in before_rules if r not in rail.rules and r in profile.rules)
    if not (add_routes or add_rules or remove_routes or remove_rules):
        return None
    # What this collection added: never what the profile held before it was adopted.
    routes = tuple(r for r in rail.routes if r in before_routes or r in add_routes)
    rules = tuple(r for r in rail.rules if r in before_rules or r in add_rules)
    return Edit(profile, rail.device, add_routes, remove_routes, add_rules, remove_rules, routes, rules)


def give_back(record, profile):
    """The Edit that takes this collection's routes and rules out of an adopted profile again."""
    routes = tuple(r for r in record_routes(record) if r in profile.routes)
    rules = tuple(r for r in record_rules(record) if r in profile.rules)
    return Edit(profile, record.get('device', ''), (), routes, (), rules, (), ())


def describe_profile(profile, routes=None, rules=None):
    """A profile's routing as diff text: its routes and rules as nmcli spells them."""
    routes = profile.routes if routes is None else routes
    rules = profile.rules if rules is None else rules
    lines = ['# NetworkManager %s, uuid %s' % (profile.describe(), profile.uuid)]
    lines += ['ipv4.routes: %s' % nmcli_route_text(r) for r in routes]
    lines += ['ipv4.routing-rules: %s' % rule_value(r) for r in rules]
    return '\n'.join(lines) + '\n'


def nmcli_route_text(route):
    """A Route as `nmcli connection modify ... ipv4.routes` takes it."""
    value, options = route_value(route)
    dst, gateway, metric = value.split(',')
    return ' '.join([dst, gateway, metric] + options.split(','))


def modify_args(edit):
    """nmcli connection modify arguments of an Edit: removals first, then additions."""
    args = []
    for route in edit.remove_routes:
        args += ['-ipv4.routes', nmcli_route_text(route)]
    for rule in edit.remove_rules:
        args += ['-ipv4.routing-rules', rule_value(rule)]
    for route in edit.add_routes:
        args += ['+ipv4.routes', nmcli_route_text(route)]
    for rule in edit.add_rules:
        args += ['+ipv4.routing-rules', rule_value(rule)]
    return args


def our_keyfiles(directory):
    """{path: device} of this collection's keyfiles in `directory` (named like ours and starting with its header)."""
    found = {}
    for path in glob_files(directory, PREFIX):
        if path.endswith(SUFFIX):
            state = read_file(path)
            if state and is_ours(state.content):
                found[path] = os.path.basename(path)[len(PREFIX):-len(SUFFIX)]
    return found


def created_keyfile(rail, link_type, directory):
    """(path, content) of the profile this collection creates for a rail with no profile of its own."""
    return os.path.join(directory, file_name(rail.device)), render(rail, link_type)
