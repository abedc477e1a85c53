# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What sets up each rail at boot, and whether it will bring back the rail's routing.

read_host() reads what every network stack of the host holds about the rail NICs (which
daemons run here, NetworkManager profiles, systemd-networkd files, netplan definitions as
netplan renders them, ifupdown and ifcfg files). decide() picks, per rail, the stack that sets
it up at boot and refuses a host it cannot persist on. boot_findings() says, per rail, whether
what will set it up at boot carries its rules and table: rail_persist checks its own work with
it, rail_audit reports it. decide() and boot_findings() are pure.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils import netplan, networkd
from ansible_collections.roce.multirail.plugins.module_utils.audit import Finding
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import read_profile, rule_value
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import (
    KEYFILE_DIRS,
    ORIGINALS_DIR,
    Profile,
    can_activate,
    ifcfg_devices,
    nmcli_route_text,
    our_keyfiles,
    rail_profiles,
    read_keyfiles,
    read_nmcli,
    read_records,
)
from ansible_collections.roce.multirail.plugins.module_utils.persist import (
    STACK_NAMES,
    holds,
    lacking,
    missing,
    read_file,
    read_link,
)

IFUPDOWN_FILE = '/etc/network/interfaces'
NETWORKD_BINARIES = ('/lib/systemd/systemd-networkd', '/usr/lib/systemd/systemd-networkd')


class HostView(NamedTuple):
    """Everything read about the rails' network stacks (see read_host)."""

    links: Dict[str, object]                 # {device: persist.Link}, every NIC of the host
    nm_installed: bool
    nm_running: bool
    nm_profiles: Dict[str, object]           # {uuid: networkmanager.Profile}
    nm_records: Dict[str, dict]              # {uuid: record of an adopted profile}
    nm_ours: Dict[str, str]                  # {path: device} of this collection's keyfiles
    networkd_installed: bool
    networkd_running: bool
    networkd_files: Tuple                    # networkd.NetworkFile, in networkd's order
    networkd_applied: Dict[str, str]         # {device: .network path} networkd reports applying (running)
    networkd_foreign_rules: bool             # ManageForeignRoutingPolicyRules
    netplan_installed: bool
    netplan_files: Tuple[str, ...]           # YAML files, OUR_FILE left out
    netplan_definitions: Dict[str, object]   # {id: netplan.Definition}
    netplan_rendered: Dict[str, object]      # {id: netplan.Rendered} of those files
    netplan_ours: Optional[str]              # OUR_FILE's text, None without one
    netplan_problems: Tuple[str, ...]
    ifupdown: Dict[str, str]                 # {device: file}
    ifcfg: Dict[str, str]                    # {device: file}
    keyfile_dir: str
    networkd_dir: str
    netplan_file: str
    originals_dir: str


def daemon_here(run, bus_name):
    """Whether the D-Bus name is owned by a process in this network namespace (the daemon runs *here*)."""
    rc, out, _err = run(['busctl', '--system', 'call', 'org.freedesktop.DBus', '/org/freedesktop/DBus',
                         'org.freedesktop.DBus', 'GetConnectionUnixProcessID', 's', bus_name])
    match = re.match(r'^u (\d+)$', out.strip()) if rc == 0 else None
    if not match:
        return False
    try:
        return os.stat('/proc/%s/ns/net' % match.group(1)).st_ino == os.stat('/proc/self/ns/net').st_ino
    except OSError:
        return False


def ifupdown_devices(path=IFUPDOWN_FILE):
    """{device: file} of the `iface DEV inet ...` stanzas of ifupdown's files (source lines followed)."""
    found, pending, seen = {}, [path], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        state = read_file(current)
        for line in (state.content if state else '').splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == 'iface' and words[2] == 'inet' and words[1] != 'lo':
                found.setdefault(words[1], current)
            elif len(words) >= 2 and words[0] in ('source', 'source-directory'):
                where = os.path.join(os.path.dirname(current), words[1])
                if words[0] == 'source-directory':
                    where = os.path.join(where, '*')
                pending += sorted(glob.glob(where))
    return found


def host_links(sys_root='/sys/class/net'):
    """{name: Link} of every NIC of this network namespace."""
    links = {}
    for name in sorted(os.listdir(sys_root)) if os.path.isdir(sys_root) else []:
        link = read_link(name, sys_root)
        if link is not None:
            links[name] = link
    return links


def read_host(run, keyfile_dir=KEYFILE_DIRS[0], networkd_dir=networkd.NETWORK_DIRS[0],
              netplan_file=netplan.OUR_FILE, originals_dir=ORIGINALS_DIR, load_yaml=None, which=None):
    """A HostView of this host. run(argv) -> (rc, out, err); which(name) -> path or None.

    load_yaml: yaml.safe_load, needed only where netplan YAML exists (netplan_problems says so
    when it is missing).
    """
    which = which or (lambda name: None)
    links = host_links()
    nm_installed = bool(which('nmcli') or which('NetworkManager'))
    nm_running = nm_installed and daemon_here(run, 'org.freedesktop.NetworkManager')
    if nm_running:
        profiles, _active = read_nmcli(run)
    else:
        dirs = (keyfile_dir,) + tuple(d for d in KEYFILE_DIRS if d != keyfile_dir)
        profiles = read_keyfiles(dirs) if nm_installed else {}
    nd_installed = any(os.path.exists(path) for path in NETWORKD_BINARIES)
    nd_running = nd_installed and daemon_here(run, networkd.BUS_NAME)
    dirs = (networkd_dir,) + tuple(d for d in networkd.NETWORK_DIRS if d != networkd_dir)
    files = tuple(networkd.network_files(dirs))
    applied = {}
    if nd_running:
        for name, link in links.items():
            path = networkd.link_state(link.ifindex).get('NETWORK_FILE', '')
            if path:
                applied[name] = path
    np_installed = bool(which('netplan'))
    yaml_files = tuple(path for path in netplan.yaml_files() if path != netplan_file)
    definitions, rendered, problems = {}, {}, []
    ours = read_file(netplan_file)
    if np_installed and yaml_files:
        if load_yaml is None:
            problems.append('reading netplan YAML needs PyYAML in the Python that runs the modules (python3-yaml)')
        else:
            texts = [(path, read_file(path)) for path in yaml_files]
            definitions, problems = netplan.definitions([(p, t.content) for p, t in texts if t], load_yaml)
            rendered, error = netplan.generate(run, yaml_files)
            if error:
                problems.append('netplan cannot render %s: %s' % (', '.join(yaml_files), error))
    return HostView(
        links=links, nm_installed=nm_installed, nm_running=nm_running, nm_profiles=profiles,
        nm_records=read_records(originals_dir), nm_ours=our_keyfiles(keyfile_dir),
        networkd_installed=nd_installed, networkd_running=nd_running, networkd_files=files,
        networkd_applied=applied, networkd_foreign_rules=networkd.manages_foreign_rules(),
        netplan_installed=np_installed, netplan_files=yaml_files, netplan_definitions=definitions,
        netplan_rendered=rendered, netplan_ours=ours.content if ours else None, netplan_problems=tuple(problems),
        ifupdown=ifupdown_devices(), ifcfg={} if nm_running else ifcfg_devices(),
        keyfile_dir=keyfile_dir, networkd_dir=networkd_dir, netplan_file=netplan_file,
        originals_dir=originals_dir)


def module_runner(module):
    """run(argv) -> (rc, out, err) through an AnsibleModule; a command that is not installed gives rc 127."""
    def run(argv):
        binary = argv[0] if os.path.isabs(argv[0]) else module.get_bin_path(argv[0], opt_dirs=['/usr/sbin', '/sbin'])
        if not binary:
            return 127, '', '%s: command not found' % argv[0]
        return module.run_command([binary] + list(argv[1:]), environ_update={'LC_ALL': 'C'})
    return run


def read_module_host(module, run, load_yaml, **dirs):
    """read_host() for a module: its commands, and its search path for the stacks' tools."""
    return read_host(run, load_yaml=load_yaml, which=lambda name: module.get_bin_path(name, opt_dirs=['/usr/sbin', '/sbin']),
                     **dirs)


def booted_netplan(run, view):
    """{id: Rendered} of what netplan renders at boot, this collection's file included (None without netplan)."""
    if not view.netplan_files:
        return None
    extra = (os.path.basename(view.netplan_file), view.netplan_ours) if view.netplan_ours is not None else None
    rendered, _error = netplan.generate(run, view.netplan_files, extra)
    return rendered


# --- what describes each rail --------------------------------------------------------------------

class Sources(NamedTuple):
    """What each stack holds about one rail NIC."""

    nm: Tuple                      # networkmanager.RailProfiles, or None when NetworkManager is not installed
    networkd: Optional[object]     # the networkd.NetworkFile that sets the NIC up (netplan's left out)
    networkd_unsure: str           # why it cannot be told which file applies, or ''
    netplan: Optional[object]      # the netplan.Definition that sets it up
    netplan_rendered: Optional[object]
    netplan_unsure: str
    ifupdown: str
    ifcfg: str

    def stacks(self):
        found = []
        if self.netplan is not None:
            found.append('netplan')
        if self.nm is not None and (self.nm.adopt or self.nm.ours):
            found.append('networkmanager')
        if self.networkd is not None and not networkd.from_netplan(self.networkd):
            found.append('networkd')
        if self.ifupdown:
            found.append('ifupdown')
        if self.ifcfg:
            found.append('ifcfg')
        return found


def networkd_file(view, link):
    """(NetworkFile or None, why unsure): the .network networkd applies to the link."""
    path = view.networkd_applied.get(link.name)
    if path:
        known = [nfile for nfile in view.networkd_files if nfile.path == path or nfile.name == os.path.basename(path)]
        if known:
            return known[0], ''
    return networkd.file_for(view.networkd_files, link)


def netplan_definition(view, link):
    """(Definition, Rendered, why unsure) of the netplan definition whose rendered file applies to the link."""
    hits = []
    for ident, rendered in sorted(view.netplan_rendered.items()):
        if rendered.renderer == 'networkd':
            matched, _why = networkd.matches(rendered.as_network_file(), link)
        else:
            matched = can_activate(Profile(*read_profile(rendered.text), path=''), link)
        if matched:
            hits.append(rendered)
    if not hits:
        return None, None, ''
    rendered = hits[0]
    definition = view.netplan_definitions.get(rendered.id)
    if definition is None:
        return None, rendered, 'netplan renders %s from id %s, which no YAML file names' % (link.name, rendered.id)
    return definition, rendered, ''


def sources(view, rail):
    link = view.links.get(rail.device)
    if link is None:
        return Sources(None, None, '', None, None, '', '', '')
    nm = rail_profiles(rail, link, view.nm_profiles, view.nm_running) if view.nm_installed else None
    nfile, unsure = networkd_file(view, link) if view.networkd_installed else (None, '')
    definition, rendered, np_unsure = netplan_definition(view, link) if view.netplan_rendered else (None, None, '')
    return Sources(nm, nfile, unsure, definition, rendered, np_unsure, view.ifupdown.get(rail.device, ''),
                   view.ifcfg.get(rail.device, ''))


def where(src, stack):
    """Where a stack describes a rail, for a message."""
    if stack == 'networkmanager':
        profiles = (src.nm.adopt + src.nm.ours) if src.nm else ()
        return ', '.join(p.describe() for p in profiles)
    if stack == 'networkd':
        return src.networkd.path if src.networkd else ''
    if stack == 'netplan':
        return 'netplan id %s in %s (rendered for %s)' % (src.netplan.id, ', '.join(src.netplan.files),
                                                          src.netplan_rendered.renderer)
    return src.ifupdown if stack == 'ifupdown' else src.ifcfg


class RailChoice(NamedTuple):
    device: str
    stack: str                     # networkmanager, networkd or netplan
    how: str                       # adopt, create, dropin, netplan
    where: str                     # what sets it up at boot, for the report


class Decision(NamedTuple):
    stack: Optional[str]
    rails: Tuple[RailChoice, ...]
    errors: Tuple[str, ...]
    warnings: Tuple[str, ...]

    def report(self):
        """One line per rail: which stack persists it, through what."""
        return ['%s: %s, %s' % (c.device, STACK_NAMES[c.stack], c.where) for c in self.rails]


UNSUPPORTED = {
    'ifupdown': 'ifupdown (/etc/network/interfaces) cannot hold policy rules this collection persists; move the '
                'rail to NetworkManager, systemd-networkd or netplan, or set source_routing_persist: none',
    'ifcfg': 'ifcfg files can be changed only through a running NetworkManager (network-scripts are not '
             'supported); start NetworkManager, migrate the profile to a keyfile (nmcli connection migrate), '
             'or set source_routing_persist: none',
}


def decide(view, rails, requested='auto'):
    """Decision: the stack that persists every rail, or the errors that refuse the host."""
    # netplan YAML that cannot be read or rendered may set up any rail: nothing can be decided then.
    errors, warnings, choices = list(view.netplan_problems), [], []
    renderers = set()                 # what netplan renders the rails it persists for
    for rail in rails:
        link = view.links.get(rail.device)
        if link is None:
            errors.append('rail %s: the host has no NIC %s' % (rail.device, rail.device))
            continue
        if link.type is None:
            errors.append('rail %s: link type %d is neither Ethernet (1) nor InfiniBand (32)'
                          % (rail.device, link.arphrd))
            continue
        src = sources(view, rail)
        found = src.stacks()
        if requested == 'auto' and (src.networkd_unsure or src.netplan_unsure):
            errors.append('rail %s: cannot tell whether %s sets it up (%s); say which stack does with '
                          'source_routing_persist' % (rail.device, src.networkd.path if src.networkd_unsure
                                                      else 'netplan', src.networkd_unsure or src.netplan_unsure))
            continue
        if requested != 'auto':
            stack = requested
            others = [s for s in found if s != stack and not (s == 'networkd' and stack == 'netplan')]
            if others:
                warnings.append('rail %s: %s also describes it (%s); it is persisted with %s, as asked'
                                % (rail.device, ' and '.join(STACK_NAMES.get(s, s) for s in others),
                                   '; '.join(where(src, s) for s in others), STACK_NAMES[stack]))
        else:
            stack, problem = _auto(view, rail, src, found)
            if problem:
                errors.append(problem)
                continue
        choice, problem = _choice(view, rail, src, stack)
        if problem:
            errors.append(problem)
        else:
            choices.append(choice)
            if stack == 'netplan':
                renderers.add(src.netplan_rendered.renderer)
    stacks = sorted(set(c.stack for c in choices))
    if len(stacks) > 1:
        errors.append('rails split across stacks, which this collection cannot persist in one run: %s; set up '
                      'every rail with one stack, or run the role per stack with source_routing_persist'
                      % '; '.join('%s on %s (%s)' % (c.device, STACK_NAMES[c.stack], c.where) for c in choices))
    stack = stacks[0] if len(stacks) == 1 else None
    if stack and stack != 'networkd' and not (stack == 'netplan' and renderers == {'networkd'}) \
            and view.networkd_running and view.networkd_foreign_rules:
        errors.append('systemd-networkd runs on this host and, whenever it reconfigures a link it manages '
                      '(networkctl reconfigure, a reload with a changed .network file), deletes every routing rule no '
                      '.network file declares (ManageForeignRoutingPolicyRules=yes): the rails\' rules, persisted '
                      'with %s, would go with them; set ManageForeignRoutingPolicyRules=no in '
                      '/etc/systemd/networkd.conf' % STACK_NAMES[stack])
    return Decision(stack if not errors else None, tuple(choices), tuple(errors), tuple(warnings))


def _auto(view, rail, src, found):
    """(stack, None) chosen from what describes the rail and what runs here, or (None, why not)."""
    if len(found) > 1:
        running = [s for s in found if (s == 'networkmanager' and view.nm_running) or
                   (s == 'networkd' and view.networkd_running)]
        if len(running) == 1 and not set(found) & {'netplan', 'ifupdown', 'ifcfg'}:
            return running[0], None
        return None, ('rail %s is described by %s: which one sets it up at boot cannot be told; remove the '
                      'other, or say which with source_routing_persist'
                      % (rail.device, ' and '.join('%s (%s)' % (STACK_NAMES.get(s, s), where(src, s)) for s in found)))
    if found:
        stack = found[0]
        if stack in UNSUPPORTED:
            return None, 'rail %s is set up by %s: %s' % (rail.device, where(src, stack), UNSUPPORTED[stack])
        return stack, None
    if view.nm_running:
        return 'networkmanager', None
    if view.networkd_running:
        return 'networkd', None
    if view.nm_installed:
        return 'networkmanager', None
    return None, ('rail %s: nothing sets it up at boot (no NetworkManager, systemd-networkd or netplan holds it, '
                  'and none of their daemons runs here); set source_routing_persist, or none to apply live only'
                  % rail.device)


def _choice(view, rail, src, stack):
    """(RailChoice, None), or (None, why the stack cannot persist the rail)."""
    if stack == 'networkmanager':
        if not view.nm_installed:
            return None, 'rail %s: NetworkManager is not installed' % rail.device
        if src.nm.netplan:
            return None, ('rail %s: its NetworkManager %s is generated by netplan; persist it with netplan'
                          % (rail.device, src.nm.netplan[0].describe()))
        if src.nm.problems:
            return None, '; '.join(src.nm.problems)
        if src.nm.adopt:
            return RailChoice(rail.device, stack, 'adopt', ', '.join(p.describe() for p in src.nm.adopt)), None
        return RailChoice(rail.device, stack, 'create', "profile '%s' of this collection"
                          % ('roce-multirail-' + rail.device)), None
    if stack == 'networkd':
        if not view.networkd_installed:
            return None, 'rail %s: systemd-networkd is not installed' % rail.device
        nfile = src.networkd
        if nfile is None or networkd.is_created(nfile):
            return RailChoice(rail.device, stack, 'create', networkd.created_path(rail.device, view.networkd_dir)), None
        if networkd.from_netplan(nfile):
            return None, ('rail %s: %s is rendered by netplan (regenerated at every boot); persist it with netplan'
                          % (rail.device, nfile.path))
        others = [name for name in networkd.matched_links(nfile, view.links.values()) if name != rail.device]
        if others:
            return None, ('rail %s: %s also sets up %s, and a drop-in would give them this rail\'s routes; give %s '
                          'a .network file of its own' % (rail.device, nfile.path, ', '.join(others), rail.device))
        addresses, dhcp, _routes, _rules = networkd.settings(nfile)
        if not dhcp and not holds(addresses, rail.address):
            return None, ('rail %s: %s gives %s %s, not the rail address %s' % (
                rail.device, nfile.path, rail.device, ', '.join(addresses) or 'no address', rail.address))
        return RailChoice(rail.device, stack, 'dropin', nfile.path), None
    if stack == 'netplan':
        if not view.netplan_installed:
            return None, 'rail %s: netplan is not installed' % rail.device
        if src.netplan is None:
            return None, ('rail %s: no netplan definition sets it up; add one to /etc/netplan with its address'
                          % rail.device)
        others = [name for name, link in view.links.items() if name != rail.device and
                  netplan_definition(view, link)[0] == src.netplan]
        if others:
            return None, ('rail %s: netplan id %s (%s) also sets up %s; give %s a definition of its own'
                          % (rail.device, src.netplan.id, ', '.join(src.netplan.files), ', '.join(others), rail.device))
        return RailChoice(rail.device, stack, 'netplan', where(src, 'netplan')), None
    return None, 'rail %s: source_routing_persist %r is not a stack this collection persists to' % (rail.device, stack)


# --- what a boot will bring back -------------------------------------------------------------------

def _nm_hint(profile, routes, rules):
    """The nmcli command that adds what a profile lacks."""
    words = ["+ipv4.routes '%s'" % nmcli_route_text(route) for route in routes]
    words += ["+ipv4.routing-rules '%s'" % rule_value(rule) for rule in rules]
    return 'run the source_routing role; or by hand: nmcli connection modify %s %s' % (profile.uuid, ' '.join(words))


def boot_findings(view, rails, rendered_with_ours=None):
    """[Finding] per rail: what sets it up at boot, and whether that carries its routes and rules.

    rendered_with_ours: {id: Rendered} of netplan with OUR_FILE as it is (default: the view's,
    which leaves it out).
    """
    findings = []
    rendered_all = rendered_with_ours if rendered_with_ours is not None else view.netplan_rendered
    for rail in rails:
        src = sources(view, rail)
        stacks = src.stacks()
        if rail.device not in view.links:
            continue
        if not stacks:
            findings.append(Finding(
                'boot', rail.device, 'warning', 'nothing known sets up %s at boot (no NetworkManager profile, '
                'systemd-networkd file or netplan definition): whatever gives it %s must also add its rules and '
                'table' % (rail.device, rail.address),
                'persist the rail with the source_routing role (source_routing_persist: auto)'))
        for profile in (src.nm.adopt + src.nm.ours) if src.nm else ():
            routes, rules = lacking(rail, profile.routes, profile.rules)
            if routes or rules:
                findings.append(Finding(
                    'boot', rail.device, 'error', 'NetworkManager %s can activate on %s (autoconnect %s) but lacks %s: '
                    'a boot that picks it, or nmcli connection up %s, drops the rail\'s routing'
                    % (profile.describe(), rail.device, 'yes' if profile.autoconnect else 'no',
                       '; '.join(r.describe() for r in routes + rules), profile.id), _nm_hint(profile, routes, rules)))
        if src.networkd is not None and not networkd.from_netplan(src.networkd):
            _addresses, _dhcp, routes, rules = networkd.settings(src.networkd)
            absent = missing(rail, routes, rules)
            if absent:
                findings.append(Finding(
                    'boot', rail.device, 'error', 'systemd-networkd sets up %s from %s, which declares no %s: networkd '
                    'deletes them at its next start, reload or reconfigure' % (rail.device, src.networkd.path,
                                                                               '; '.join(absent)),
                    'add them to a drop-in %s (the source_routing role writes it)'
                    % networkd.dropin_path(src.networkd, view.networkd_dir)))
        if src.netplan is not None:
            rendered = rendered_all.get(src.netplan.id)
            _addresses, routes, rules = rendered.routing() if rendered else ((), (), ())
            absent = missing(rail, routes, rules)
            if absent:
                renderer = rendered.renderer if rendered else '?'
                why = (' (netplan\'s NetworkManager renderer writes routing rules from netplan 1.1.2 on)'
                       if renderer == 'NetworkManager' and any(r.startswith('priority') for r in absent) else '')
                findings.append(Finding(
                    'boot', rail.device, 'error', 'netplan sets up %s from id %s (%s), rendered for %s without %s%s: '
                    'every boot renders it again without them'
                    % (rail.device, src.netplan.id, ', '.join(src.netplan.files), renderer, '; '.join(absent), why),
                    'add them as routes and routing-policy of id %s in %s (the source_routing role writes it)'
                    % (src.netplan.id, view.netplan_file)))
        if view.networkd_running and view.networkd_foreign_rules and 'networkd' not in stacks and not (
                src.netplan_rendered is not None and src.netplan_rendered.renderer == 'networkd') and rail.rules:
            findings.append(Finding(
                'boot', rail.device, 'error', 'systemd-networkd runs here and, whenever it reconfigures a link it '
                'manages (networkctl reconfigure, a reload with a changed .network file), deletes every routing rule '
                'no .network file declares (ManageForeignRoutingPolicyRules=yes): the rules of %s included'
                % rail.device,
                'set ManageForeignRoutingPolicyRules=no in /etc/systemd/networkd.conf, or persist the rail with '
                'systemd-networkd'))
    return findings
