# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rail as every network stack persists it: its address, routes and rules, stack-neutral.

rail_persist takes the planned rails from its arguments (see plan.build_plan), so anything may
arrive: check_rail() validates every value that reaches a file and returns a Rail of canonical
values, so no value can break a line of a file or add one. The Route and Rule here are what
NetworkManager profiles, systemd-networkd files and netplan YAML are read into and compared
with, whatever their own spelling.
"""

from __future__ import annotations

import binascii
import errno
import hashlib
import ipaddress
import os
import stat
from typing import NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import (
    InvalidArgument,
    check_ifname,
    check_priority,
    check_table,
    check_u32,
    host_form,
    mappings,
    parse_address,
    parse_prefix,
    required,
    show,
)

STACKS = ('networkmanager', 'networkd', 'netplan')
# ARPHRD_* of /sys/class/net/<dev>/type a rail can have, as NetworkManager names the profile type.
LINK_TYPES = {1: 'ethernet', 32: 'infiniband'}
STACK_NAMES = {'networkmanager': 'NetworkManager', 'networkd': 'systemd-networkd', 'netplan': 'netplan'}
# The first line of every file this collection writes whole; a file without it is not ours.
HEADER = '# Managed by roce.multirail (source_routing role); local changes are overwritten.'
TEMP_PREFIX = '.roce-multirail-'
TEMP_DIGEST = 32              # hex digits of the content's sha256 a temporary file's name carries


class Route(NamedTuple):
    """A route of a rail table as a stack describes it (the device is the rail's)."""

    dst: str                 # canonical prefix, 0.0.0.0/0 for default
    gateway: str             # '' without one
    src: str                 # preferred source, '' without one
    metric: int
    table: int
    onlink: bool = False

    def describe(self):
        words = [host_form(self.dst)]
        if self.gateway:
            words += ['via', self.gateway]
        if self.src:
            words += ['src', self.src]
        words += ['table', str(self.table), 'metric', str(self.metric)]
        if self.onlink:
            words.append('onlink')
        return ' '.join(words)


class Rule(NamedTuple):
    """A source rule of a rail."""

    priority: int
    src: str                 # an address ('10.0.1.14') or a prefix ('10.0.1.32/29')
    table: int

    def describe(self):
        return 'priority %d from %s table %d' % (self.priority, self.src, self.table)


class Link(NamedTuple):
    """A NIC as the network stacks match it."""

    name: str
    ifindex: int
    arphrd: int              # /sys/class/net/<dev>/type: 1 Ethernet, 32 InfiniBand
    mac: str                 # upper case, '' when unknown
    driver: str

    @property
    def type(self):
        """ethernet, infiniband, or None for a link no rail profile can have."""
        return LINK_TYPES.get(self.arphrd)


def read_link(name, sys_root='/sys/class/net'):
    """The Link of a NIC from sysfs, or None when there is no such NIC."""
    base = os.path.join(sys_root, name)
    values = {}
    for key in ('ifindex', 'type', 'address'):
        state = read_file(os.path.join(base, key))
        values[key] = state.content.strip() if state else ''
    if not values['ifindex'].isdigit() or not values['type'].isdigit():
        return None
    try:
        driver = os.path.basename(os.readlink(os.path.join(base, 'device', 'driver')))
    except OSError:
        driver = ''
    return Link(name, int(values['ifindex']), int(values['type']), values['address'].upper(), driver)


class Rail(NamedTuple):
    device: str
    address: str             # '10.0.1.14/24'
    table: int
    mtu: Optional[int]
    routes: Tuple[Route, ...]
    rules: Tuple[Rule, ...]

    @property
    def ip(self):
        return self.address.split('/')[0]


def source_form(prefix):
    """A rule source as every stack prints it: an address without /32, a prefix with its length."""
    net = ipaddress.ip_network(prefix, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def check_rail(rail, obj='rail'):
    """Validate one planned rail (see plan.build_plan) and return it as a Rail; InvalidArgument names the field."""
    if isinstance(rail, Rail):
        return rail
    if not isinstance(rail, dict):
        raise InvalidArgument('%s: expected a mapping (a rail of the plan), got %s' % (obj, show(rail)))
    for field in ('device', 'address', 'table', 'routes', 'rules'):
        required(obj, rail, field)
    device = check_ifname(obj, 'device', rail['device'])
    obj = 'rail %s' % device
    address = rail['address']
    try:
        if not isinstance(address, str) or '/' not in address:
            raise ValueError(address)
        interface = ipaddress.IPv4Interface(address.strip())
    except ValueError:
        raise InvalidArgument('%s: address %s is not an IPv4 address with its prefix length' % (obj, show(address)))
    table = check_table(obj, rail['table'])
    mtu = rail.get('mtu')
    if mtu not in (None, 0):
        check_u32(obj, 'mtu', mtu)
        if not 68 <= mtu <= 65535:
            raise InvalidArgument('%s: mtu %d is out of range 68-65535' % (obj, mtu))
    routes = []
    for _index, label, route in mappings('%s: routes' % obj, rail['routes']):
        dst = parse_prefix(label, 'dst', required(label, route, 'dst'), family=4)
        metric = check_u32(label, 'metric', required(label, route, 'metric'))
        gateway = src = ''
        if route.get('gateway') not in (None, ''):
            gateway = str(parse_address(label, 'gateway', route['gateway'], family=4))
        if route.get('src') not in (None, ''):
            src = str(parse_address(label, 'src', route['src'], family=4))
        onlink = route.get('onlink')
        if onlink is not None and not isinstance(onlink, bool):
            raise InvalidArgument('%s: onlink %s is not a boolean' % (label, show(onlink)))
        routes.append(Route(str(dst), gateway, src, metric, table, bool(onlink)))
    rules = []
    for _index, label, rule in mappings('%s: rules' % obj, rail['rules']):
        priority = check_priority(label, required(label, rule, 'priority'))
        source = parse_prefix(label, 'from', required(label, rule, 'from'), family=4)
        if source.prefixlen == 0:
            raise InvalidArgument('%s: from %s would capture every source address' % (label, show(rule['from'])))
        rules.append(Rule(priority, source_form(source), check_table(label, required(label, rule, 'table'))))
    return Rail(device, str(interface), table, mtu or None, tuple(routes), tuple(rules))


def holds(addresses, address):
    """Whether a list of 'a.b.c.d/len' addresses holds `address` (same address and prefix length)."""
    wanted = ipaddress.ip_interface(address)
    for text in addresses:
        try:
            if ipaddress.ip_interface(text.strip()) == wanted:
                return True
        except ValueError:
            continue
    return False


def lacking(rail, routes, rules):
    """(routes, rules) of the rail that a stack's description (routes, rules) lacks."""
    have_routes, have_rules = set(routes), set(rules)
    return [r for r in rail.routes if r not in have_routes], [r for r in rail.rules if r not in have_rules]


def missing(rail, routes, rules):
    """What of the rail's routes and rules a stack's description (routes, rules) lacks, described."""
    routes, rules = lacking(rail, routes, rules)
    return [r.describe() for r in routes + rules]


# --- files -------------------------------------------------------------------------------

class FileState(NamedTuple):
    content: str
    mode: int
    uid: int
    gid: int


def read_file(path):
    """FileState of a regular file, or None when there is none to read as text.

    A symlink is never followed (O_NOFOLLOW) and nothing but a regular file is read: what a link points
    to is not this collection's to show in a diff or to decide on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        with os.fdopen(os.dup(fd), 'rb') as handle:
            return FileState(handle.read().decode('utf-8'), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def what_is_at(path):
    """None when nothing is at path or a regular file is; else what is there, for a message
    ('a symlink to /x', 'a directory', ...). The target of a symlink is named, never read."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None                   # a file in place of a directory on the way: see blocked_parent()
    except OSError as exc:
        return 'something that cannot be examined (%s)' % exc.strerror
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            return 'a symlink to %s' % os.readlink(path)
        except OSError:
            return 'a symlink'
    if stat.S_ISDIR(st.st_mode):
        return 'a directory'
    return 'a %s' % ('fifo' if stat.S_ISFIFO(st.st_mode) else 'socket' if stat.S_ISSOCK(st.st_mode)
                     else 'device node' if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode) else 'special file')


def blocked_parent(path):
    """The first existing ancestor of path that is not a directory (creating path's directories would fail
    there), with what it is; ('', None) when every existing one is a directory."""
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            parent = os.path.dirname(parent)
            continue
        except OSError as exc:
            return parent, 'something that cannot be examined (%s)' % exc.strerror
        return ('', None) if stat.S_ISDIR(st.st_mode) else (parent, what_is_at(parent) or 'a file')
    return '', None


def digest(text):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def is_ours(text):
    """Whether a file's text was written whole by this collection (its first line is HEADER)."""
    return text is not None and text.split('\n', 1)[0] == HEADER


def temp_name(content):
    """The name of the temporary file holding `content` before it is moved into place: TEMP_PREFIX, the
    start of the content's digest, a random part. The digest is the proof that a leftover is ours."""
    return '%s%s-%s' % (TEMP_PREFIX, digest(content)[:TEMP_DIGEST], binascii.hexlify(os.urandom(4)).decode())


def is_our_temp(path):
    """Whether path is a temporary file this collection made (see temp_name) and a killed run left: a
    regular file (never a symlink nor a directory) owned by root whose content starts with HEADER or
    matches the digest its name carries."""
    name = os.path.basename(path)
    if not name.startswith(TEMP_PREFIX):
        return False
    state = read_file(path)
    if state is None or state.uid != 0:
        return False
    if is_ours(state.content):
        return True
    mark = name[len(TEMP_PREFIX):].split('-', 1)[0]
    return len(mark) == TEMP_DIGEST and digest(state.content)[:TEMP_DIGEST] == mark


def replace_file(path, content, mode, uid=0, gid=0, move=os.replace):
    """Replace the regular file at path (or create it) atomically: a temporary file of ours (0600 from its
    creation, see temp_name) in its directory, synced to disk, moved over it with move(temp, path).

    Refuses (OSError) a path that holds anything but a regular file; the temporary file is removed on
    every failure.
    """
    what = what_is_at(path)
    if what:
        raise OSError(errno.EEXIST, '%s is %s, not a regular file' % (path, what))
    temp = os.path.join(os.path.dirname(path), temp_name(content))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0), 0o600)
    try:
        with os.fdopen(fd, 'wb') as out:
            out.write(content.encode('utf-8'))
            out.flush()
            os.fchown(out.fileno(), uid, gid)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        move(temp, path)
    finally:
        # Also when move() exits the process (AnsibleModule.atomic_move fails the module with SystemExit);
        # O_EXCL above made this name ours.
        if os.path.lexists(temp):
            os.unlink(temp)
    # atomic_move gives a new file the default mode and a replacement the mode of the file it replaces.
    os.chmod(path, mode)
    os.chown(path, uid, gid)


def write_file(module, path, content, mode, uid=0, gid=0):
    """replace_file() through the module's atomic_move (which keeps the SELinux context of the file it replaces)."""
    replace_file(path, content, mode, uid, gid, move=module.atomic_move)
