#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_keyfiles
short_description: Write one NetworkManager keyfile per rail, in one call
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
'''

EXAMPLES = r'''
- name: Persist the rails of a plan
  roce.multirail.rail_keyfiles:
    rails: "{{ plan.rails }}"
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
      run left behind (C(.roce-multirail-*)).
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


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def networkmanager_state(module):
    nmcli = module.get_bin_path('nmcli')
    if not nmcli:
        return 'not installed'
    rc, out, _err = module.run_command([nmcli, '-t', '-f', 'RUNNING', 'general'])
    return 'running' if rc == 0 and out.strip() == 'running' else 'not running'


TEMP_PREFIX = '.roce-multirail-'


def write(module, path, content):
    directory = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(handle, 'w') as out:
            out.write(content)
        os.chmod(temp, 0o600)
        os.chown(temp, 0, 0)
    except OSError:
        os.unlink(temp)
        raise
    module.atomic_move(temp, path)
    # atomic_move gives a new file the default mode: NetworkManager wants root and 0600.
    os.chmod(path, 0o600)
    os.chown(path, 0, 0)


def sync(module, directory, wanted):
    """Write the keyfiles that differ, remove ours no rail wants; (files, diffs, activate, removed)."""
    files, diffs, activate = [], [], []
    for rail, kind, path, content in wanted:
        before = read(path)
        stat = os.stat(path) if before is not None else None
        changed = (before != content or stat.st_mode & 0o7777 != 0o600
                   or (stat.st_uid, stat.st_gid) != (0, 0))
        if changed:
            activate.append(connection_id(rail['device']))
            diffs.append(dict(before=before or '', after=content, before_header=path, after_header=path))
            if not module.check_mode:
                try:
                    write(module, path, content)
                except OSError as exc:
                    module.fail_json(msg='writing %s failed: %s' % (path, exc))
        files.append(dict(path=path, id=connection_id(rail['device']), uuid=connection_uuid(rail['device']),
                          device=rail['device'], type=kind, changed=changed))

    removed = []
    if module.params['purge']:
        keep = set(path for _rail, _kind, path, _content in wanted)
        removed += [path for path in sorted(glob.glob(os.path.join(directory, PREFIX + '*' + SUFFIX)))
                    if path not in keep]
    # A run killed between mkstemp and the move leaves its temporary file: it is ours, and under the
    # lock no other run of ours is writing one.
    removed += sorted(glob.glob(os.path.join(directory, TEMP_PREFIX + '*')))
    for path in removed:
        diffs.append(dict(before=read(path) or '', after='', before_header=path, after_header='(removed)'))
        if not module.check_mode:
            try:
                os.unlink(path)
            except OSError as exc:
                module.fail_json(msg='removing %s failed: %s' % (path, exc))
    return files, diffs, activate, removed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rails=dict(type='list', elements='dict', required=True),
            directory=dict(type='path', default='/etc/NetworkManager/system-connections'),
            purge=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    directory = module.params['directory']
    wanted = []
    try:
        rails = [check_rail(rail, 'rails[%d]' % index) for index, rail in enumerate(module.params['rails'])]
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

    try:
        with host_lock():
            files, diffs, activate, removed = sync(module, directory, wanted)
    except LockTimeout as exc:
        module.fail_json(msg=str(exc))

    result = dict(changed=bool(activate or removed), files=files, removed=removed, activate=activate,
                  networkmanager=networkmanager_state(module))
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
