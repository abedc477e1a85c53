# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-interface IPv4 sysctls (net.ipv4.conf.*): read, decide, write, explain; their sysctl.d file.

/proc/sys/net is per network namespace: what this reads and writes belongs to
the namespace the module runs in. An interface named eth0.100 is the directory
eth0.100 under /proc/sys/net/ipv4/conf but the key net.ipv4.conf.eth0/100.x,
because '.' separates the parts of a sysctl key.
"""

from __future__ import annotations

import os
import re
from typing import Dict, NamedTuple, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument, check_ifname, parse_int

CONF_ROOT = '/proc/sys/net/ipv4/conf'
TARGETS_NOT_DEVICES = ('all', 'default')

# include/linux/inetdevice.h: how the kernel combines conf/all with conf/<dev>.
MAX_KEYS = frozenset(('rp_filter', 'arp_ignore', 'arp_announce', 'arp_accept', 'arp_notify'))
OR_KEYS = frozenset(('accept_local', 'arp_filter', 'src_valid_mark', 'log_martians', 'proxy_arp',
                     'proxy_arp_pvlan', 'shared_media', 'send_redirects', 'secure_redirects',
                     'promote_secondaries', 'route_localnet', 'ignore_routes_with_linkdown'))
AND_KEYS = frozenset(('mc_forwarding', 'bc_forwarding', 'accept_source_route', 'bootp_relay',
                      'arp_evict_nocarrier'))

# Values the kernel gives a meaning to, for the keys multi-rail hosts depend on.
ALLOWED = {
    'rp_filter': (0, 1, 2),
    'arp_ignore': (0, 1, 2, 3, 8),
    'arp_announce': (0, 1, 2),
    'accept_local': (0, 1),
    'arp_filter': (0, 1),
}

# Writes the kernel carries beyond the one key written (net/ipv4/devinet.c). A diff, a snapshot
# and a rollback of that one key would miss the rest, so these writes are refused.
# - all.forwarding: inet_forward_change() sets forwarding on every interface and on default to
#   the value written, and all.accept_redirects to its opposite.
# - default.<key>: devinet_conf_proc() copies the value into every interface whose own key was
#   never written (lo and every NIC the host has), except for the keys with handlers of their own:
DEFAULT_NOT_COPIED = frozenset((
    'forwarding',                    # devinet_sysctl_forward(): default only
    'mc_forwarding',                 # read-only
    'disable_policy', 'disable_xfrm', 'promote_secondaries', 'route_localnet',
    'drop_unicast_in_l2_multicast',  # ipv4_doint_and_flush(): default only
))


def side_effects(target, key):
    """What else the kernel changes when net.ipv4.conf.<target>.<key> is written ('' when nothing).

    target is 'all', 'default' or an interface name; a write to an interface's
    own key changes that key only.
    """
    if target == 'all' and key == 'forwarding':
        return ('it also sets forwarding on every interface and on default to the same value, and '
                'all.accept_redirects to the opposite one; set forwarding per interface '
                '(net.ipv4.conf.<nic>.forwarding), or host-wide in a sysctl.d file of your own')
    if target == 'default' and key not in DEFAULT_NOT_COPIED:
        return ('the kernel also copies it into every interface whose own %s was never written (lo and '
                'every NIC present now); set it per interface (net.ipv4.conf.<nic>.%s) or on all' % (key, key))
    return ''


def check_side_effects(obj, target, key):
    """Refuse a write with side effects: InvalidArgument names the key, what else it changes and the way out."""
    effects = side_effects(target, key)
    if effects:
        raise InvalidArgument('%s: %s is refused: %s' % (obj, key_name(target, key), effects))


def device_dir(name):
    """'eth0/100' or 'eth0.100' -> 'eth0.100' (the interface's real name)."""
    return name.replace('/', '.')


def key_name(target, key):
    """The sysctl key as sysctl(8) and sysctl.d spell it."""
    return 'net.ipv4.conf.%s.%s' % (target.replace('.', '/'), key)


def conf_path(target, key, root=CONF_ROOT):
    return os.path.join(root, device_dir(target), key)


class Setting(NamedTuple):
    target: str      # 'all', 'default' or a real interface name (eth0.100)
    key: str
    value: int


def desired_settings(conf, root=CONF_ROOT):
    """Validate the module's `conf` mapping against the host; returns [Setting].

    Every interface must exist (have a conf directory), every key must exist
    and be writable, every value must be an integer, and the keys multi-rail
    routing depends on must hold a value the kernel gives a meaning to.
    """
    if not isinstance(conf, dict) or not conf:
        raise InvalidArgument('conf: expected a mapping of interface (or all/default) to {key: value}, got %r'
                              % (conf,))

    def name(text):
        """A name as typed, quoted when it is empty or holds spaces or control characters."""
        text = str(text)
        return text if text and text.isprintable() and ' ' not in text else repr(text)

    settings = []
    seen = {}
    for target_text, keys in conf.items():
        target = device_dir(str(target_text))
        if target in seen:
            raise InvalidArgument('conf: %s and %s name the same interface' % (name(seen[target]), name(target_text)))
        seen[target] = target_text
        obj = 'conf.%s' % name(target_text)
        if target not in TARGETS_NOT_DEVICES:
            check_ifname('conf', 'interface', target)
        if not os.path.isdir(os.path.join(root, target)):
            raise InvalidArgument('%s: no interface %s in this network namespace (%s/%s does not exist)'
                                  % (obj, target_text, root, target))
        if not isinstance(keys, dict) or not keys:
            raise InvalidArgument('%s: expected a mapping of key to value, got %r' % (obj, keys))
        for key, raw in keys.items():
            path = os.path.join(root, target, str(key))
            if '/' in str(key) or not os.path.isfile(path):
                raise InvalidArgument('%s: %s is not a key of net.ipv4.conf (no %s)' % (obj, name(key), name(path)))
            if not os.access(path, os.W_OK):
                raise InvalidArgument('%s: %s is read-only' % (obj, key_name(target, key)))
            check_side_effects(obj, target, str(key))
            value = parse_int(obj, key, raw)
            if key in ALLOWED and value not in ALLOWED[key]:
                raise InvalidArgument('%s: %s %r is not one of %s'
                                      % (obj, key, raw, ', '.join(str(v) for v in ALLOWED[key])))
            if not -2 ** 31 <= value <= 2 ** 31 - 1:
                # net.ipv4.conf values are C ints: the kernel would refuse the write, after earlier keys were written.
                raise InvalidArgument('%s: %s %r is out of range %d-%d' % (obj, key, raw, -2 ** 31, 2 ** 31 - 1))
            settings.append(Setting(target, str(key), value))
    return settings


def read_value(target, key, root=CONF_ROOT):
    path = conf_path(target, key, root)
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise InvalidArgument('cannot read %s (%s): %s' % (key_name(target, key), path, exc))


def write_value(target, key, value, root=CONF_ROOT):
    with open(conf_path(target, key, root), 'w') as handle:
        handle.write('%d\n' % value)


class SysctlChange(NamedTuple):
    target: str
    key: str
    before: int
    after: int


def apply_sysctls(changes, root=CONF_ROOT):
    """Write every change; when the kernel refuses one, put back the keys already written."""
    written = []
    for change in changes:
        try:
            write_value(change.target, change.key, change.after, root)
        except OSError as exc:
            for done in reversed(written):
                write_value(done.target, done.key, done.before, root)
            raise InvalidArgument('writing %s = %d failed: %s; %d earlier key(s) restored'
                                  % (key_name(change.target, change.key), change.after,
                                     exc.strerror or exc, len(written)))
        written.append(change)


def decide_sysctls(current, settings):
    # type: (Dict[Tuple[str, str], int], list) -> Tuple[SysctlChange, ...]
    """current {(target, key): value} + desired settings -> the writes needed."""
    return tuple(SysctlChange(s.target, s.key, current[(s.target, s.key)], s.value)
                 for s in settings if current[(s.target, s.key)] != s.value)


def _combine_max(all_value, dev_value):
    side = 'both' if all_value == dev_value else ('all' if all_value > dev_value else 'dev')
    return max(all_value, dev_value), 'max', side


def _combine_or(all_value, dev_value):
    value = int(bool(all_value) or bool(dev_value))
    if bool(all_value) == bool(dev_value):
        return value, 'or', 'both'
    return value, 'or', 'all' if all_value else 'dev'


def _combine_and(all_value, dev_value):
    value = int(bool(all_value) and bool(dev_value))
    if bool(all_value) == bool(dev_value):
        return value, 'and', 'both'
    return value, 'and', 'dev' if all_value else 'all'


def effective(key, all_value, dev_value, forwarding=0):
    """(value, rule, decided_by) as the kernel computes it for one interface.

    decided_by is 'all', 'dev' or 'both' (the two sides agree, so either one
    alone would give the result). Keys the kernel reads from the interface
    only report rule 'dev'.
    """
    if key in MAX_KEYS:
        return _combine_max(all_value, dev_value)
    if key in OR_KEYS:
        return _combine_or(all_value, dev_value)
    if key in AND_KEYS:
        return _combine_and(all_value, dev_value)
    if key == 'accept_redirects':
        # IN_DEV_RX_REDIRECTS: a forwarding interface needs both sides, a host either.
        return (_combine_and if forwarding else _combine_or)(all_value, dev_value)
    return dev_value, 'dev', 'dev'


def explain(settings, values):
    """Effective value per interface for every key set on it or on `all`.

    values: {(target, key): value} holding at least every (target, key) and
    (all, key) pair needed. Returns {device: {key: {...}}}.
    """
    devices = sorted({s.target for s in settings if s.target not in TARGETS_NOT_DEVICES})
    keys_on = {}
    for s in settings:
        keys_on.setdefault(s.target, set()).add(s.key)
    result = {}
    for device in devices:
        keys = keys_on.get(device, set()) | keys_on.get('all', set())
        entry = {}
        for key in sorted(keys):
            all_value = values[('all', key)]
            dev_value = values[(device, key)]
            value, rule, side = effective(key, all_value, dev_value,
                                          values.get((device, 'forwarding'), 0))
            entry[key] = {'value': value, 'all': all_value, 'dev': dev_value,
                          'rule': rule, 'decided_by': side}
        result[device] = entry
    return result


def needed_pairs(settings):
    """Every (target, key) whose value the module must read."""
    pairs = set((s.target, s.key) for s in settings)
    devices = {s.target for s in settings if s.target not in TARGETS_NOT_DEVICES}
    keys = {s.key for s in settings}
    for device in devices:
        for key in keys:
            pairs.add((device, key))
            pairs.add(('all', key))
        if 'accept_redirects' in keys:
            pairs.add((device, 'forwarding'))
    return sorted(pairs)


# --- the sysctl.d file that persists them ----------------------------------

SYSCTL_D_HEADER = (
    '# Written by roce.multirail.rail_persist (source_routing role); local changes are overwritten.\n'
    '# Per-rail ARP and reverse-path settings, applied at boot by systemd-sysctl.\n'
    '# A later file in /etc/sysctl.d setting the same key wins over this one.\n')
SYSCTL_D_FORM = 'net.ipv4.conf.<interface, all or default>.<key> = <integer>'
_SYSCTL_D_LINE = re.compile(r'net\.ipv4\.conf\.([^.\s=]+)\.([a-z0-9_]+)[ \t]*=[ \t]*(-?[0-9]+)')


def check_sysctl_lines(lines, field='sysctl_lines'):
    """Validate sysctl.d lines as plan.sysctl_lines() writes them; return them in canonical form.

    Each line sets one key: net.ipv4.conf.<target>.<key> = <integer>, the target
    all, default or an interface name with '/' for '.' (eth0/100). A line break
    or anything else that could add a setting is refused, and so is a key set
    twice (the later line would silently win). InvalidArgument names the index
    and the value.
    """
    if not isinstance(lines, list):
        raise InvalidArgument('%s: expected a list of "%s" lines, got %r' % (field, SYSCTL_D_FORM, lines))
    canonical, seen = [], {}
    for index, line in enumerate(lines):
        obj = '%s[%d]' % (field, index)
        if not isinstance(line, str):
            raise InvalidArgument('%s: %r is not a string' % (obj, line))
        if '\n' in line or '\r' in line:
            raise InvalidArgument('%s: %r holds a line break; give one setting per line' % (obj, line))
        match = _SYSCTL_D_LINE.fullmatch(line)
        if not match:
            raise InvalidArgument('%s: %r is not a "%s" line' % (obj, line, SYSCTL_D_FORM))
        target, key, value = match.group(1), match.group(2), int(match.group(3))
        if target not in TARGETS_NOT_DEVICES:
            try:
                check_ifname(obj, 'interface', device_dir(target))
            except InvalidArgument as exc:
                raise InvalidArgument('%s (in %r)' % (exc, line))
        if not -2 ** 31 <= value <= 2 ** 31 - 1:
            raise InvalidArgument('%s: %r: %d is out of range %d-%d' % (obj, line, value, -2 ** 31, 2 ** 31 - 1))
        check_side_effects('%s: %r' % (obj, line), target, key)
        name = key_name(target, key)
        if name in seen:
            raise InvalidArgument('%s: %r sets %s again, after %s[%d]' % (obj, line, name, field, seen[name]))
        seen[name] = index
        canonical.append('%s = %d' % (name, value))
    return canonical


def render_sysctl_file(lines):
    """The sysctl.d file holding these (checked) lines, under its header."""
    return SYSCTL_D_HEADER + ''.join(line + '\n' for line in lines)
