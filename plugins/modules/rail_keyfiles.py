#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_keyfiles
short_description: Write the NetworkManager keyfiles of the rails and their sysctl.d file, in one call
version_added: 1.0.0
description:
  - Writes C(roce-multirail-<device>.nmconnection) for every rail of a plan computed by the
    P(roce.multirail.source_routing_plan#filter) filter, atomically, owned by root with mode 0600
    (NetworkManager ignores keyfiles that are not).
  - Each keyfile holds the rail's static address, never-default, the routes of the rail's table with
    their table, source and metric, the rail's routing rules with their priorities, and the MTU when
    given. NetworkManager creates these objects with C(proto static), exactly as the live modules
    do, so activating a keyfile on top of the live state duplicates nothing.
  - The connection type (ethernet or infiniband) is read from the link.
  - Keyfiles of this collection for rails no longer listed are removed (O(purge)).
  - With O(sysctl_file), also writes the plan's C(sysctl_lines) there, under a short header, owned by
    root with mode 0644, in the same call. Only RV(keyfiles_changed) tells whether NetworkManager has
    anything to reload.
  - Every file is written only when its content, mode or owner differ, through a temporary file in
    its own directory (synced to disk, then renamed over it); temporary files a killed earlier run
    left behind are removed. Everything is validated before the first write.
  - Reports whether NetworkManager runs, and which connections to (re)activate.
author:
  - roce.multirail maintainers (!UNKNOWN)
options:
  rails:
    description:
      - The C(rails) of the plan. Each needs C(device), C(address), C(table), C(routes) (each with
        C(dst) and C(metric), optionally C(gateway), C(src), C(onlink)) and C(rules) (each with
        C(priority), C(from) and C(table)); C(mtu) is optional.
    type: list
    elements: dict
    required: true
  directory:
    description: Where NetworkManager reads keyfiles.
    type: path
    default: /etc/NetworkManager/system-connections
  purge:
    description: Remove C(roce-multirail-*.nmconnection) files in O(directory) for rails not listed.
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
      - The C(sysctl_lines) of the plan, one setting each, C(net.ipv4.conf.<target>.<key> = <integer>),
        the target C(all), C(default) or an interface (C(eth0/100) for C(eth0.100)).
      - A line holding a line break, of another form, or setting a key an earlier line sets is
        refused, naming its index, and nothing is written.
      - Required with O(sysctl_file), and only meaningful with it.
    type: list
    elements: str
attributes:
  check_mode:
    description: Reports which files would change and writes nothing.
    support: full
  diff_mode:
    description: Shows each file's content before and after.
    support: full
  platform:
    description: Linux.
    support: full
    platforms: posix
seealso:
  - module: roce.multirail.rail_table
  - module: roce.multirail.rail_rule
  - module: roce.multirail.rail_sysctl
'''

EXAMPLES = r'''
- name: Persist the rails of a plan and their sysctls
  roce.multirail.rail_keyfiles:
    rails: "{{ plan.rails }}"
    sysctl_file: /etc/sysctl.d/99-roce-multirail.conf
    sysctl_lines: "{{ plan.sysctl_lines }}"
  register: keyfiles

- name: Activate what changed where NetworkManager runs
  ansible.builtin.command: nmcli connection up id {{ item }}
  loop: "{{ keyfiles.activate }}"
  when: keyfiles.networkmanager == 'running'
'''

RETURN = r'''
files:
  description: Every keyfile of the listed rails.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /etc/NetworkManager/system-connections/roce-multirail-ib0.nmconnection,
       id: roce-multirail-ib0, uuid: 3c7e8f0a-9d0e-5b43-8f2e-1f7c7c1b2a44, device: ib0, type: ethernet,
       changed: true}
removed:
  description:
    - Keyfiles removed because their rail is no longer listed, and temporary files a killed earlier
      run left behind (C(.roce-multirail-*), in O(directory) and in the directory of O(sysctl_file)).
  returned: always
  type: list
  elements: str
  sample: []
activate:
  description: Connection ids whose keyfile changed, to (re)activate.
  returned: always
  type: list
  elements: str
  sample: [roce-multirail-ib0]
keyfiles_changed:
  description:
    - Whether anything in O(directory) was written or removed, that is whether NetworkManager has
      keyfiles to reload. A change of O(sysctl_file) alone leaves it false.
  returned: always
  type: bool
  sample: true
sysctl_file:
  description: The sysctl.d file, and whether it was (or in check mode would be) written.
  returned: when O(sysctl_file) is given
  type: dict
  contains:
    path:
      description: O(sysctl_file).
      type: str
    changed:
      description: Whether its content, mode or owner differed.
      type: bool
  sample: {path: /etc/sysctl.d/99-roce-multirail.conf, changed: true}
networkmanager:
  description: C(running), C(not running) or C(not installed).
  returned: always
  type: str
  sample: running
'''

import glob
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.keyfile import (
    LINK_TYPES,
    PREFIX,
    SUFFIX,
    check_rail,
    connection_id,
    connection_uuid,
    file_name,
    render,
)
from ansible_collections.roce.multirail.plugins.module_utils.lock import LockTimeout, host_lock
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import check_sysctl_lines, render_sysctl_file


def link_type(device):
    path = '/sys/class/net/%s/type' % device
    try:
        with open(path) as handle:
            number = int(handle.read().strip())
    except (OSError, ValueError):
        return None, 'rail %s: no such interface (%s is missing)' % (device, path)
    if number not in LINK_TYPES:
        return None, 'rail %s: link type %d is neither Ethernet (1) nor InfiniBand (32)' % (device, number)
    return LINK_TYPES[number], None


def networkmanager_state(module):
    nmcli = module.get_bin_path('nmcli')
    if not nmcli:
        return 'not installed'
    rc, out, _err = module.run_command([nmcli, '-t', '-f', 'RUNNING', 'general'])
    return 'running' if rc == 0 and out.strip() == 'running' else 'not running'


KEYFILE_MODE = 0o600        # NetworkManager ignores keyfiles that others can read
SYSCTL_FILE_MODE = 0o644
TEMP_PREFIX = '.roce-multirail-'


def current(path):
    """(content, mode, uid, gid) of the file at path, or None when there is none to read."""
    try:
        with open(path) as handle:
            st = os.fstat(handle.fileno())
            return handle.read(), st.st_mode & 0o7777, st.st_uid, st.st_gid
    except (OSError, UnicodeDecodeError):
        return None


def differs(found, content, mode):
    """Whether a file found as current() found it must be (re)written to hold content, root-owned with mode."""
    return found != (content, mode, 0, 0)


def write(module, path, content, mode):
    """Replace path atomically: a temporary file in its directory, synced to disk, renamed over it."""
    handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, 'w') as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.chown(temp, 0, 0)
    except OSError:
        os.unlink(temp)
        raise
    module.atomic_move(temp, path)
    # atomic_move gives a new file the default mode and a replacement the mode of the file it replaces.
    os.chmod(path, mode)
    os.chown(path, 0, 0)


def update(module, path, content, mode, diffs):
    """Write path when its content, mode or owner differ (not in check mode); whether they did."""
    found = current(path)
    if not differs(found, content, mode):
        return False
    diffs.append(dict(before=found[0] if found else '', after=content, before_header=path, after_header=path))
    if not module.check_mode:
        try:
            write(module, path, content, mode)
        except OSError as exc:
            module.fail_json(msg='writing %s failed: %s' % (path, exc))
    return True


def remove(module, paths, diffs):
    for path in paths:
        found = current(path)
        diffs.append(dict(before=found[0] if found else '', after='', before_header=path, after_header='(removed)'))
        if not module.check_mode:
            try:
                os.unlink(path)
            except OSError as exc:
                module.fail_json(msg='removing %s failed: %s' % (path, exc))


def leftovers(directory):
    """Temporary files of a run killed between writing one and moving it into place: they are ours, and
    under the lock no other run of ours is writing one."""
    return sorted(glob.glob(os.path.join(directory, TEMP_PREFIX + '*')))


def sync(module, directory, wanted, diffs):
    """Write the keyfiles that differ, remove ours no rail wants; (files, activate, removed)."""
    files, activate = [], []
    for rail, kind, path, content in wanted:
        changed = update(module, path, content, KEYFILE_MODE, diffs)
        if changed:
            activate.append(connection_id(rail['device']))
        files.append(dict(path=path, id=connection_id(rail['device']), uuid=connection_uuid(rail['device']),
                          device=rail['device'], type=kind, changed=changed))
    removed = []
    if module.params['purge']:
        keep = set(path for _rail, _kind, path, _content in wanted)
        removed += [path for path in sorted(glob.glob(os.path.join(directory, PREFIX + '*' + SUFFIX)))
                    if path not in keep]
    removed += leftovers(directory)
    remove(module, removed, diffs)
    return files, activate, removed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rails=dict(type='list', elements='dict', required=True),
            directory=dict(type='path', default='/etc/NetworkManager/system-connections'),
            purge=dict(type='bool', default=True),
            sysctl_file=dict(type='path'),
            sysctl_lines=dict(type='list', elements='str'),
        ),
        required_together=[('sysctl_file', 'sysctl_lines')],
        supports_check_mode=True,
    )
    directory = module.params['directory']
    sysctl_file = module.params['sysctl_file']
    sysctl_text = sysctl_dir = None
    wanted = []
    try:
        rails = [check_rail(rail, 'rails[%d]' % index) for index, rail in enumerate(module.params['rails'])]
        if sysctl_file:
            sysctl_text = render_sysctl_file(check_sysctl_lines(module.params['sysctl_lines']))
    except InvalidArgument as exc:
        module.fail_json(msg=str(exc))
    for rail in rails:
        kind, error = link_type(rail['device'])
        if error:
            module.fail_json(msg=error)
        path = os.path.join(directory, file_name(rail['device']))
        wanted.append((rail, kind, path, render(rail, kind)))
    if not os.path.isdir(directory):
        module.fail_json(msg='directory %s does not exist; is NetworkManager installed?' % directory)
    if sysctl_file:
        sysctl_dir = os.path.dirname(sysctl_file)
        if not os.path.isdir(sysctl_dir):
            module.fail_json(msg='sysctl_file %s: directory %s does not exist' % (sysctl_file, sysctl_dir or '(none)'))
        if os.path.lexists(sysctl_file) and not os.path.isfile(sysctl_file):
            module.fail_json(msg='sysctl_file %s exists and is not a regular file' % sysctl_file)

    diffs = []
    sysctl_changed = False
    try:
        with host_lock():
            files, activate, removed = sync(module, directory, wanted, diffs)
            keyfiles_changed = bool(activate or removed)
            if sysctl_file:
                sysctl_changed = update(module, sysctl_file, sysctl_text, SYSCTL_FILE_MODE, diffs)
                if os.path.realpath(sysctl_dir) != os.path.realpath(directory):
                    stale = leftovers(sysctl_dir)
                    remove(module, stale, diffs)
                    removed += stale
    except LockTimeout as exc:
        module.fail_json(msg=str(exc))

    result = dict(changed=bool(activate or removed or sysctl_changed), files=files, removed=removed,
                  activate=activate, keyfiles_changed=keyfiles_changed, networkmanager=networkmanager_state(module))
    if sysctl_file:
        result['sysctl_file'] = dict(path=sysctl_file, changed=sysctl_changed)
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
