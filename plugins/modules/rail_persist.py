#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_persist
short_description: Persist the rails' routes and rules through the network stack that sets them up at boot
version_added: 1.0.0
description:
  - Makes the stack that sets up each rail NIC at boot (NetworkManager, systemd-networkd or netplan) hold
    the rail's routes and rules exactly as the live modules create them (same priorities, tables, metrics,
    preferred sources, C(proto static)), so that the stack activating them duplicates, flaps and deletes
    nothing, at boot, on a reload or restart, or on C(nmcli connection up).
  - With O(stack=auto) the stack is read from the host, per rail. C(netplan) where a netplan definition sets
    up the NIC; C(networkmanager) where NetworkManager profiles can activate on it; C(networkd) where a
    C(.network) file in /etc, /run or /usr/lib systemd/network matches it. When nothing describes a rail,
    the stack whose daemon runs here, else NetworkManager when it is installed.
  - A host it cannot persist on is refused before any change, with the NIC, the stack and the file named
    in the message. This covers rails split across stacks, a NIC two stacks describe, ifupdown and
    ifcfg-only rails, and a profile or file that would carry the rail's routes to other NICs. It also
    covers a netplan whose renderer would drop the rules (NetworkManager renderer before netplan 1.1.2),
    and systemd-networkd running beside another stack and deleting its rules.
  - "NetworkManager: the routes and rules go into every profile that can activate on the rail NIC (its other
    settings stay as they are); a profile C(roce-multirail-<device>) is created only where none exists.
    Where NetworkManager runs, profiles are changed with nmcli (keyfile and ifcfg-rh alike) and the active
    ones reapplied; where it does not, keyfiles are edited. What an adopted profile's files looked like
    before is kept in O(originals_dir), so removing the rail gives them back byte for byte (or, when
    someone changed the profile since, takes out only the rail's routes and rules)."
  - "systemd-networkd: a drop-in C(<file>.network.d/90-roce-multirail.conf) next to the rail's C(.network)
    file in O(networkd_dir), the file itself untouched; C(50-roce-multirail-<device>.network) only for a rail
    no file matches. Where networkd runs, it is reloaded and the rails it reconfigures are waited for."
  - "netplan: one file, O(netplan_file) (mode 0600), adding C(routes) and C(routing-policy) to the definition
    of each rail, checked with netplan's own generator before it is written, then rendered with
    C(netplan generate) and taken by the renderer without bouncing links (never C(netplan apply))."
  - With O(sysctl_file), also writes the plan's C(sysctl_lines) there (root, 0644), whatever the stack.
  - Files are written only when their content, mode or owner differ, atomically, through a temporary file
    created 0600 in the same directory and removed on every failure; files this collection wrote for rails no
    longer listed are removed (O(purge)), and only files that start with its header. Directories are listed,
    never globbed.
  - Only regular files are read, written or removed. A symlink, a directory or any other non-regular file where
    a file of this collection goes refuses the run before any change, naming the path and what is there (a
    symlink's target is named, never read nor written, in check mode and diffs too); so does a file at such a
    path that does not start with this collection's header (for O(sysctl_file), its header or that of the
    role's older template). Temporary files a killed run left (C(.roce-multirail-*)) are removed only when
    they are regular files of root that start with the header or whose content matches the digest their name
    carries; others are left alone with a warning.
  - A daemon is told to take the changed files (nmcli load, reapply or up; networkctl reload; netplan's
    rendering) after an owed activation is recorded in C(/run/roce-multirail/activate-<stack>) (root, 0600),
    which is cleared only once the daemon took them. A run that finds such a record, left by a run killed or
    failed in between, activates again even when the files are already as planned, and says so in
    RV(activated). Without a record it also activates where it can tell the daemon has not loaded a file of
    this collection (a created keyfile NetworkManager does not know; a systemd-networkd file newer than the
    link's state, or missing from its list of drop-ins).
    After the change the module reads the host again and fails when what sets up a rail at boot still
    lacks its routes or rules.
author:
  - roce.multirail maintainers (!UNKNOWN)
extends_documentation_fragment:
  - roce.multirail.run
options:
  rails:
    description:
      - The C(rails) of the plan (P(roce.multirail.source_routing_plan#filter)). Each needs C(device),
        C(address), C(table), C(routes) (each with C(dst) and C(metric), optionally C(gateway), C(src),
        C(onlink)) and C(rules) (each with C(priority), C(from) and C(table)); C(mtu) is optional.
    type: list
    elements: dict
    required: true
  stack:
    description: The stack to persist through; C(auto) reads it from the host.
    type: str
    choices: [auto, networkmanager, networkd, netplan]
    default: auto
  keyfile_dir:
    description: Where NetworkManager reads keyfiles (and where a created profile goes).
    type: path
    default: /etc/NetworkManager/system-connections
    aliases: [directory]
  networkd_dir:
    description: Where the systemd-networkd drop-ins and created files go.
    type: path
    default: /etc/systemd/network
  netplan_file:
    description: The netplan YAML file of this collection.
    type: path
    default: /etc/netplan/90-roce-multirail.yaml
  originals_dir:
    description: Where the files of adopted NetworkManager profiles are kept as they were before.
    type: path
    default: /etc/NetworkManager/roce-multirail
  purge:
    description:
      - Take this collection's routes and rules out of every stack for rails not listed, and out of the
        stacks that do not persist the rails (a host moved from one stack to another).
    type: bool
    default: true
  sysctl_file:
    description:
      - The sysctl.d file to write O(sysctl_lines) into, for example C(/etc/sysctl.d/99-roce-multirail.conf).
      - Its directory must exist. A file later in the C(/etc/sysctl.d) order that sets the same key wins.
      - When omitted, no sysctl.d file is touched.
    type: path
  sysctl_lines:
    description:
      - The C(sysctl_lines) of the plan, one setting each, C(net.ipv4.conf.<target>.<key> = <integer>).
      - A line holding a line break, of another form, or setting a key an earlier line sets is refused,
        naming its index, and nothing is written. Required with O(sysctl_file).
      - So is a line setting a key whose write the kernel carries to other keys (C(all.forwarding), and
        the C(default) keys it copies into existing interfaces), as M(roce.multirail.rail_sysctl) refuses.
    type: list
    elements: str
attributes:
  check_mode:
    description: Decides the stack, refuses what it would refuse, reports what would change; changes nothing.
    support: full
  diff_mode:
    description: Each file before and after; for a profile changed through nmcli, its routes and rules.
    support: full
  platform:
    description: Linux.
    support: full
    platforms: posix
requirements:
  - PyYAML on the managed host where netplan YAML exists (netplan itself needs it)
notes:
  - On systemd-networkd 252 a reload re-applies the addresses and routes of a rail whose drop-in changed (the
    link stays up); runs that change nothing reload nothing.
seealso:
  - module: roce.multirail.rail_table
  - module: roce.multirail.rail_rule
  - module: roce.multirail.rail_audit
'''

EXAMPLES = r'''
- name: Persist the rails of a plan through whatever sets them up at boot
  roce.multirail.rail_persist:
    rails: "{{ plan.rails }}"
    sysctl_file: /etc/sysctl.d/99-roce-multirail.conf
    sysctl_lines: "{{ plan.sysctl_lines }}"
  register: persisted

- name: Only tell which stack would persist the rails, and refuse a host it cannot
  roce.multirail.rail_persist:
    rails: "{{ plan.rails }}"
  check_mode: true
  changed_when: false
'''

RETURN = r'''
stack:
  description: The stack that persists the rails.
  returned: success
  type: str
  sample: networkd
rails:
  description: Per rail, the stack, how it is persisted (adopt, create, dropin, netplan) and what sets it up at boot.
  returned: success
  type: list
  elements: dict
  sample:
    - {device: ib0, stack: networkd, how: dropin, where: /etc/systemd/network/10-ib0.network}
report:
  description: The same, one line per rail, for people.
  returned: success
  type: list
  elements: str
  sample: ["ib0: systemd-networkd, /etc/systemd/network/10-ib0.network"]
files:
  description: Files written (or in check mode to be written) and removed.
  returned: success
  type: list
  elements: dict
  sample: [{path: /etc/systemd/network/10-ib0.network.d/90-roce-multirail.conf, state: written}]
profiles:
  description: NetworkManager profiles changed (through nmcli, or their keyfile when NetworkManager does not run) or deleted, by id.
  returned: success
  type: list
  elements: str
  sample: [ib0]
daemons:
  description: Whether NetworkManager and systemd-networkd run in this network namespace, and whether netplan is installed.
  returned: success, and when the host is refused
  type: dict
  sample: {networkmanager: running, networkd: not running, netplan: not installed}
boot:
  description: What the module found about the boot after its change (errors fail it); C(check), C(device), C(severity), C(message), C(hint).
  returned: success and not in check mode
  type: list
  elements: dict
  sample: []
problems:
  description: Why the host is refused.
  returned: failure
  type: list
  elements: str
activated:
  description:
    - Activations done (in check mode, to be done) although the files were already as planned, and why,
      one line each.
  returned: when there were any
  type: list
  elements: str
  sample: ["systemd-networkd: activation owed by an earlier run that did not finish (/run/roce-multirail/activate-networkd): done again"]
sysctl_file:
  description: The sysctl.d file, and whether it was (or in check mode would be) written.
  returned: when O(sysctl_file) is given
  type: dict
  sample: {path: /etc/sysctl.d/99-roce-multirail.conf, changed: true}
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.roce.multirail.plugins.module_utils import netplan
from ansible_collections.roce.multirail.plugins.module_utils.boot import (
    boot_findings,
    booted_netplan,
    module_runner,
    read_module_host,
)
from ansible_collections.roce.multirail.plugins.module_utils.changes import (
    ApplyError,
    apply,
    clear_owed,
    daemons,
    owe,
    prepare,
    read_owed,
    record_owed,
    settle_owed,
    take,
)
from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.lock import RUN_ARGUMENT, LockTimeout, RunLost, run_step
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import NMError
from ansible_collections.roce.multirail.plugins.module_utils.persist import TEMP_PREFIX, check_rail, is_our_temp
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import (
    SYSCTL_D_HEADER,
    check_sysctl_lines,
    render_sysctl_file,
)

try:
    import yaml
except ImportError:
    yaml = None

SYSCTL_FILE_MODE = 0o644
# The first lines the sysctl.d file of this collection has had (now, and as the role's template wrote it).
SYSCTL_FILE_MARKS = (SYSCTL_D_HEADER.split('\n', 1)[0],
                     '# A later file in /etc/sysctl.d setting the same key wins over this one.')


def sysctl_file_is_ours(text):
    """Whether the sysctl.d file's text is one this collection wrote (its header, or the role's older template)."""
    return any(mark in text.split('\n')[:4] for mark in SYSCTL_FILE_MARKS)


def leftovers(directories):
    """([ours], [others]): files named like the temporary files of this collection in the directories (and
    their networkd drop-in directories), split into those a killed run of ours left (persist.is_our_temp:
    regular files it can prove it made) and the rest, which are left alone. Names are listed, never globbed."""
    ours, others = [], []
    for directory in list(directories):
        try:
            directories |= set(os.path.join(directory, name) for name in os.listdir(directory)
                               if name.endswith('.network.d') and os.path.isdir(os.path.join(directory, name))
                               and not os.path.islink(os.path.join(directory, name)))
        except OSError:
            pass
    for directory in sorted(directories):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for path in sorted(os.path.join(directory, n) for n in names if n.startswith(TEMP_PREFIX)):
            (ours if is_our_temp(path) else others).append(path)
    return ours, others


def read_view(module, run):
    params = module.params
    return read_module_host(module, run, yaml.safe_load if yaml else None, keyfile_dir=params['keyfile_dir'],
                            networkd_dir=params['networkd_dir'], netplan_file=params['netplan_file'],
                            originals_dir=params['originals_dir'])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rails=dict(type='list', elements='dict', required=True),
            stack=dict(type='str', default='auto', choices=['auto', 'networkmanager', 'networkd', 'netplan']),
            keyfile_dir=dict(type='path', default='/etc/NetworkManager/system-connections', aliases=['directory']),
            networkd_dir=dict(type='path', default='/etc/systemd/network'),
            netplan_file=dict(type='path', default=netplan.OUR_FILE),
            originals_dir=dict(type='path', default='/etc/NetworkManager/roce-multirail'),
            purge=dict(type='bool', default=True),
            sysctl_file=dict(type='path'),
            sysctl_lines=dict(type='list', elements='str'),
            run=RUN_ARGUMENT,
        ),
        required_together=[('sysctl_file', 'sysctl_lines')],
        supports_check_mode=True,
    )
    params = module.params
    sysctl_file = params['sysctl_file']
    sysctl_text = None
    try:
        rails = [check_rail(rail, 'rails[%d]' % index) for index, rail in enumerate(params['rails'])]
        if sysctl_file:
            sysctl_text = render_sysctl_file(check_sysctl_lines(params['sysctl_lines']))
    except InvalidArgument as exc:
        module.fail_json(msg=str(exc))
    if not rails:
        module.fail_json(msg='rails: empty; list at least one rail')
    if sysctl_file:
        sysctl_dir = os.path.dirname(sysctl_file)
        if not os.path.isdir(sysctl_dir):
            module.fail_json(msg='sysctl_file %s: directory %s does not exist' % (sysctl_file, sysctl_dir or '(none)'))

    run = module_runner(module)
    try:
        with run_step(None if module.check_mode else params['run']):
            result = persist(module, run, rails, sysctl_file, sysctl_text)
    except (LockTimeout, NMError, RunLost) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


def persist(module, run, rails, sysctl_file, sysctl_text):
    params = module.params
    view = read_view(module, run)
    decision, changes, problems = prepare(run, view, rails, params['stack'], params['purge'])
    for warning in decision.warnings:
        module.warn(warning)
    sysctl_changed = False
    if not problems:
        known = len(changes.problems)
        stale, foreign = leftovers(set([view.keyfile_dir, view.networkd_dir, os.path.dirname(view.netplan_file),
                                        view.originals_dir] + ([os.path.dirname(sysctl_file)] if sysctl_file else [])))
        for path in stale:
            changes.file(path, None, 0o600, ours=None)
        for path in foreign:
            module.warn('%s is named like a temporary file of this collection but is not one it can prove it made '
                        '(a regular file of root whose content matches its name): left alone' % path)
        if sysctl_file:
            sysctl_changed = changes.file(sysctl_file, sysctl_text, SYSCTL_FILE_MODE, ours=sysctl_file_is_ours)
        problems = changes.problems[known:]
    if problems:
        module.fail_json(msg='nothing was changed: %s' % '; '.join(problems), problems=problems,
                         daemons=daemons(view))
    owed = read_owed()
    settle_owed(view, changes, owed, rails)

    result = dict(changed=bool(changes) or bool(changes.reapply), stack=decision.stack,
                  rails=[c._asdict() for c in decision.rails], report=decision.report(), daemons=daemons(view),
                  files=[dict(path=c.path, state='removed' if c.after is None else 'written') for c in changes.files],
                  profiles=sorted(set([e.profile.id for e, _r in changes.edits] + [p.id for p, _f in changes.deletes]
                                      + changes.removed_profiles)))
    if sysctl_file:
        result['sysctl_file'] = dict(path=sysctl_file, changed=sysctl_changed)
    if changes.owed:
        result['activated'] = list(changes.owed)
    if module._diff:
        result['diff'] = changes.diffs()
    for message in changes.messages:
        module.warn(message)
    if module.check_mode or not result['changed']:
        return result
    try:
        # Recorded before the first change, cleared once the daemons took it all: a run killed or failed in
        # between leaves it, and the next run activates again even where the files are already as planned.
        owing = owe(view, changes)
        record_owed(owing)
        apply(module, run, view, changes)
        take(run, view, changes, rails)
        clear_owed(set(owing) | set(owed))
    except (ApplyError, NMError, OSError) as exc:
        module.fail_json(msg='persisting the rails through %s failed: %s' % (decision.stack, exc), **result)
    after = read_view(module, run)
    findings = boot_findings(after, rails, booted_netplan(run, after))
    result['boot'] = [f._asdict() for f in findings]
    errors = [f.message for f in findings if f.severity == 'error']
    if errors:
        module.fail_json(msg='persisted, but what sets up the rails at boot still lacks their routing: %s'
                         % '; '.join(errors), **result)
    return result


if __name__ == '__main__':
    main()
