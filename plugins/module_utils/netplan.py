# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""netplan: which definition sets up a rail NIC, for which renderer, and the one YAML file of
this collection that adds the rail's routes and rules to it.

netplan merges the files of /lib, /etc and /run/netplan per definition id (lists such as routes
and routing-policy are appended), renders them into /run at every boot and on `netplan
generate`, and the renderer (systemd-networkd or NetworkManager) reads only the rendered files.
So the rails' routing goes into OUR_FILE, keyed by the id and device type of the definition
that sets up each NIC, and what counts is what netplan renders from it: every decision here is
checked against netplan's own generator, run on a copy of the YAML in a scratch directory.
netplan's NetworkManager renderer writes routing rules only from netplan 1.1.2 on; a rail
rendered for NetworkManager whose rules do not come out is refused, never accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import NamedTuple, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.keyfile import read_profile
from ansible_collections.roce.multirail.plugins.module_utils.networkd import NetworkFile, parse, settings
from ansible_collections.roce.multirail.plugins.module_utils.persist import HEADER, read_file

NETPLAN_DIRS = ('/lib/netplan', '/etc/netplan', '/run/netplan')     # later ones hide earlier ones by name
OUR_FILE = '/etc/netplan/90-roce-multirail.yaml'
FILE_MODE = 0o600
GENERATORS = ('/usr/libexec/netplan/generate', '/usr/lib/netplan/generate', '/lib/netplan/generate')
DEVICE_TYPES = ('ethernets', 'bonds', 'bridges', 'vlans', 'vrfs', 'tunnels', 'wifis', 'modems', 'dummy-devices',
                'virtual-ethernets', 'nm-devices')
NETWORKD_OUT = 'run/systemd/network'
NM_OUT = 'run/NetworkManager/system-connections'


def yaml_files(dirs=NETPLAN_DIRS, root='/'):
    """The YAML files netplan reads, in its order: by name, /run hiding /etc hiding /lib."""
    found = {}
    for directory in dirs:
        base = os.path.join(root, directory.lstrip('/'))
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if name.endswith('.yaml'):
                found[name] = os.path.join(directory, name)
    return [found[name] for name in sorted(found)]


class Definition(NamedTuple):
    id: str
    type: str                      # ethernets, vlans, ...
    files: Tuple[str, ...]         # the files that name it, in netplan's order


def definitions(texts, load):
    """({id: Definition}, [problems]) of YAML texts given as [(path, text)], with load = yaml.safe_load."""
    found, problems = {}, []
    for path, text in texts:
        try:
            data = load(text) or {}
        except Exception as exc:   # yaml.YAMLError and whatever a broken file makes the loader raise
            problems.append('%s is not valid YAML: %s' % (path, str(exc).splitlines()[0] if str(exc) else exc))
            continue
        network = data.get('network') if isinstance(data, dict) else None
        if not isinstance(network, dict):
            continue
        for kind in DEVICE_TYPES:
            for ident in network.get(kind) or {}:
                ident = str(ident)
                known = found.get(ident)
                if known and known.type != kind:
                    problems.append('%s: netplan id %s is a %s in %s' % (path, ident, known.type, known.files[0]))
                    continue
                found[ident] = Definition(ident, kind, (known.files if known else ()) + (path,))
    return found, problems


class Rendered(NamedTuple):
    """What netplan renders for one definition."""

    id: str
    renderer: str                  # networkd or NetworkManager
    name: str                      # the rendered file's name
    text: str

    def as_network_file(self):
        return NetworkFile('/' + NETWORKD_OUT + '/' + self.name, self.name, tuple(parse(self.text)), ())

    def routing(self):
        """(addresses, routes, rules) the rendered file gives the link."""
        if self.renderer == 'networkd':
            addresses, _dhcp, routes, rules = settings(self.as_network_file())
            return addresses, routes, rules
        profile = read_profile(self.text)
        return profile.addresses, profile.routes, profile.rules


def generator():
    """netplan's generator binary (fast, no Python start), or None: `netplan generate` is used then."""
    return next((path for path in GENERATORS if os.access(path, os.X_OK)), None)


def generate(run, files, extra=None, scratch=None):
    """Render the YAML files (and `extra`: (name, text) as /etc/netplan/name) in a scratch root.

    run(argv) -> (rc, stdout, stderr). Returns ({id: Rendered}, error text or '').
    """
    own = scratch is None
    root = tempfile.mkdtemp(prefix='roce-multirail-netplan-') if own else scratch
    try:
        for path in files:
            target = os.path.join(root, path.lstrip('/'))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if extra and path == os.path.join('/etc/netplan', extra[0]):
                continue
            shutil.copyfile(path, target)
            os.chmod(target, FILE_MODE)
        if extra:
            target = os.path.join(root, 'etc/netplan', extra[0])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, 'w') as handle:
                handle.write(extra[1])
            os.chmod(target, FILE_MODE)
        binary = generator()
        argv = [binary, '--root-dir', root] if binary else ['netplan', 'generate', '--root-dir', root]
        rc, out, err = run(argv)
        if rc != 0:
            return {}, (err or out).strip() or 'netplan generate failed (rc %d)' % rc
        return rendered_in(root), ''
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def rendered_in(root):
    """{id: Rendered} of what netplan rendered under root."""
    out = {}
    for renderer, directory, prefix, suffix in (('networkd', NETWORKD_OUT, '10-netplan-', '.network'),
                                                ('NetworkManager', NM_OUT, 'netplan-', '.nmconnection')):
        base = os.path.join(root, directory)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix):
                state = read_file(os.path.join(base, name))
                ident = name[len(prefix):-len(suffix)]
                if state is not None:
                    out[ident] = Rendered(ident, renderer, name, state.content)
    return out


def _scalar(value):
    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def render(entries):
    """OUR_FILE's text for [(Definition, Rail)]: each rail's routes and rules under its definition's id."""
    lines = [HEADER, '# The routes and rules of the rails, merged by netplan into the definitions that set them up.',
             'network:', '  version: 2']
    for kind in DEVICE_TYPES:
        mine = [(definition, rail) for definition, rail in entries if definition.type == kind]
        if not mine:
            continue
        lines.append('  %s:' % kind)
        for definition, rail in mine:
            lines.append('    %s:' % _scalar(definition.id))
            if rail.routes:
                lines.append('      routes:')
            for route in rail.routes:
                lines.append('        - to: %s' % _scalar(route.dst))
                if route.gateway:
                    lines.append('          via: %s' % _scalar(route.gateway))
                if route.src:
                    lines.append('          from: %s' % _scalar(route.src))
                lines.append('          scope: %s' % ('global' if route.gateway else 'link'))
                lines.append('          table: %d' % route.table)
                lines.append('          metric: %d' % route.metric)
                if route.onlink:
                    lines.append('          on-link: true')
            if rail.rules:
                lines.append('      routing-policy:')
            for rule in rail.rules:
                lines.append('        - from: %s' % _scalar(rule.src))
                lines.append('          table: %d' % rule.table)
                lines.append('          priority: %d' % rule.priority)
    return '\n'.join(lines) + '\n'
