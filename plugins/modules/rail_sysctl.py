#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_sysctl
short_description: Set per-interface IPv4 sysctls and explain their effective values
version_added: 1.0.0
description:
  - Sets keys under C(net.ipv4.conf.all), C(net.ipv4.conf.default) and C(net.ipv4.conf.<dev>)
    live, in the network namespace the module runs in, all in one call.
  - Returns the effective value of each key per interface as the kernel computes it
    (C(include/linux/inetdevice.h)) and which side decided it. C(rp_filter), C(arp_ignore) and
    C(arp_announce) take the larger of C(all) and the interface; C(accept_local) and C(arp_filter)
    are on when either is. So C(all.rp_filter=1) makes every interface strict whatever its own value.
  - Interface names with a dot (VLAN C(eth0.100)) may be given as C(eth0.100) or C(eth0/100); keys
    are reported as C(net.ipv4.conf.eth0/100.<key>), the way sysctl(8) and sysctl.d spell them.
  - Validates everything first (interfaces exist, keys exist and are writable, values are integers,
    known keys hold a meaningful value); on a write error the keys already written are restored.
  - Does not persist anything; the source_routing role writes the sysctl.d file.
author:
  - roce.multirail maintainers (!UNKNOWN)
extends_documentation_fragment:
  - roce.multirail.run
options:
  conf:
    description:
      - Mapping of V(all), V(default) or an interface name to a mapping of key to integer value.
      - C(net.ipv4.conf.default) is never consulted for an existing interface, but the kernel copies a
        write of most of its keys into every interface whose own key was never written; such a write is
        refused, as is C(all.forwarding), which the kernel also writes to every interface, to C(default)
        and (its opposite) to C(all.accept_redirects). A diff and a rollback of the one key would miss
        the rest. Set those keys per interface instead.
    type: dict
    required: true
attributes:
  check_mode:
    description: Reports what would change, and the effective values it would give, and writes nothing.
    support: full
  diff_mode:
    description: Before and after are the keys in sysctl(8) form.
    support: full
  platform:
    description: Linux, in the network namespace the module runs in.
    support: full
    platforms: posix
notes:
  - Only pure Python; no pyroute2 needed.
seealso:
  - module: roce.multirail.rail_rule
  - module: roce.multirail.rail_table
'''

EXAMPLES = r'''
- name: ARP flux off and loose reverse-path filtering on four rails
  roce.multirail.rail_sysctl:
    conf:
      all: {rp_filter: 2, accept_local: 1}
      ib0: {arp_ignore: 1, arp_announce: 2, rp_filter: 2}
      ib1: {arp_ignore: 1, arp_announce: 2, rp_filter: 2}
      ib2: {arp_ignore: 1, arp_announce: 2, rp_filter: 2}
      ib3: {arp_ignore: 1, arp_announce: 2, rp_filter: 2}
  register: sysctls

- name: Show why ib0 is strict
  ansible.builtin.debug:
    msg: "{{ sysctls.effective.ib0.rp_filter }}"
'''

RETURN = r'''
changes:
  description: Keys written (or that would be, in check mode), with the old and new value.
  returned: always
  type: list
  elements: dict
  sample:
    - {key: net.ipv4.conf.all.rp_filter, before: 1, after: 2}
values:
  description: Every key the call set, after the call, per target.
  returned: always
  type: dict
  sample: {all: {rp_filter: 2, accept_local: 1}, ib0: {arp_ignore: 1, arp_announce: 2, rp_filter: 2}}
effective:
  description:
    - Per interface, every key set on it or on C(all), as the kernel applies it; C(rule) is
      C(max), C(or), C(and) or C(dev), and C(decided_by) is C(all), C(dev) or C(both).
  returned: always
  type: dict
  sample:
    ib0:
      rp_filter: {value: 2, all: 2, dev: 2, rule: max, decided_by: both}
      accept_local: {value: 1, all: 1, dev: 0, rule: or, decided_by: all}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.lock import RUN_ARGUMENT, LockTimeout, RunLost, run_step
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import (
    apply_sysctls,
    decide_sysctls,
    desired_settings,
    explain,
    key_name,
    needed_pairs,
    read_value,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(conf=dict(type='dict', required=True), run=RUN_ARGUMENT),
        supports_check_mode=True,
    )
    try:
        settings = desired_settings(module.params['conf'])
        with run_step(None if module.check_mode else module.params['run']):
            current = dict((pair, read_value(*pair)) for pair in needed_pairs(settings))
            changes = decide_sysctls(current, settings)
            if changes and not module.check_mode:
                apply_sysctls(changes)
    except (InvalidArgument, LockTimeout, RunLost) as exc:
        module.fail_json(msg=str(exc))

    after = dict(current)
    after.update(((s.target, s.key), s.value) for s in settings)
    values = {}
    for s in settings:
        values.setdefault(s.target, {})[s.key] = s.value
    result = dict(
        changed=bool(changes),
        changes=[dict(key=key_name(c.target, c.key), before=c.before, after=c.after) for c in changes],
        values=values,
        effective=explain(settings, after),
    )
    if module._diff:
        result['diff'] = dict(
            before=''.join('%s = %d\n' % (key_name(s.target, s.key), current[(s.target, s.key)])
                           for s in settings),
            after=''.join('%s = %d\n' % (key_name(s.target, s.key), s.value) for s in settings),
            before_header='sysctl (before)', after_header='sysctl (after)')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
