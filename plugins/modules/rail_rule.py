#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_rule
short_description: Manage a set of IPv4 and IPv6 policy routing rules in one call
version_added: 1.0.0
description:
  - Makes the host's policy rules (C(ip rule)) match a list, through netlink, with one dump and
    one comparison for the whole list whatever its length.
  - Rules are created with C(proto static), the way NetworkManager creates the rules of its
    keyfiles, so live rules and persisted rules are the same kernel objects.
  - The kernel treats the protocol as part of a rule, so a rule added by hand (C(proto boot)) next to
    ours is a different rule, and one O(purge) leaves alone unless O(remove_foreign=true).
  - Idempotent by comparing normalized dumps, never by catching "File exists".
author:
  - roce.multirail maintainers (!UNKNOWN)
extends_documentation_fragment:
  - roce.multirail.run
options:
  rules:
    description:
      - The rules. Each needs O(rules[].priority) and O(rules[].table); the address family comes
        from O(rules[].from) or O(rules[].to), else from O(rules[].family).
      - An empty list is valid with O(purge=true) and removes every rule in O(priority_range) made
        like ours.
    type: list
    elements: dict
    required: true
    suboptions:
      priority:
        description:
          - The rule's priority (C(pref)). Always explicit; a rule without one would take the
            priority before the second rule's.
          - V(0), V(32766) and V(32767) are refused; they hold the kernel's local, main and default rules.
        type: int
        required: true
      from:
        description: Source address or prefix (V(10.0.1.14), V(10.0.8.0/29), V(2001:db8::1)). Omitted means all.
        type: str
        aliases: [src]
      to:
        description: Destination address or prefix. Omitted means all.
        type: str
        aliases: [dst]
      table:
        description:
          - The table to look up. V(0), V(253) (default), V(254) (main) and V(255) (local) are refused.
        type: int
        required: true
      iif:
        description: Match packets arriving on this interface.
        type: str
      oif:
        description: Match packets whose socket is bound to this interface.
        type: str
      fwmark:
        description: Match a firewall mark, V(0x10) or V(0x10/0xff) (mark/mask), or a decimal number.
        type: str
      family:
        description: Address family, needed only when neither O(rules[].from) nor O(rules[].to) is given.
        type: str
        choices: [ipv4, ipv6]
  state:
    description:
      - V(present) adds the listed rules that are missing.
      - V(absent) removes every rule that matches a listed one, whatever protocol created it.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With V(true), rules whose priority is inside O(priority_range), that are not listed and that
        are made like the rules of this module are removed (IPv4, C(from <prefix> lookup <table> proto
        static), no other selector). Other rules in the range are removed only with O(remove_foreign=true).
      - Rules outside the range, and rules of the kernel (C(proto kernel), such as a VRF's l3mdev rule)
        are never touched.
    type: bool
    default: false
  remove_foreign:
    description:
      - With O(purge=true), also remove the rules inside O(priority_range) that are not made like ours
        (another protocol or family, a mark, an interface, a destination), except the kernel's.
      - With V(false) and O(exclusive=true), such a rule fails the call before any change, naming it.
    type: bool
    default: false
  exclusive:
    description:
      - With V(true), fail before any change when a rule this call did not create sits on a priority a
        listed rule uses (its protocol is not C(static)), when a rule inside O(priority_range) is not
        made like ours (see O(remove_foreign)), or when a rule of the same family outside the managed
        priorities (O(priority_range), else the listed priorities) looks up a table a listed rule uses.
    type: bool
    default: false
  priority_range:
    description:
      - The priorities this call owns, for O(purge) and O(exclusive). Must not contain 32766 or 32767.
    type: dict
    suboptions:
      start:
        description: First priority of the range.
        type: int
        required: true
      end:
        description: Last priority of the range.
        type: int
        required: true
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Before and after are the rules in scope, printed as C(ip rule show) prints them.
    support: full
  platform:
    description: Linux, in the network namespace the module runs in.
    support: full
    platforms: posix
requirements:
  - pyroute2 >= 0.9 on the managed host
notes:
  - Rules in scope for the diff and RV(rules) are those inside O(priority_range) and those on a
    priority a listed rule uses.
seealso:
  - module: roce.multirail.rail_table
  - module: roce.multirail.rail_sysctl
'''

EXAMPLES = r'''
- name: One rule per rail address, stale rules of earlier runs removed
  roce.multirail.rail_rule:
    rules:
      - {priority: 1001, from: 10.0.1.14, table: 101}
      - {priority: 1002, from: 10.0.2.14, table: 102}
      - {priority: 1001, from: 10.0.1.32/29, table: 101}   # SR-IOV VF addresses of rail 1
    purge: true
    priority_range: {start: 1000, end: 1999}

- name: IPv6 and fwmark rules
  roce.multirail.rail_rule:
    rules:
      - {priority: 1101, from: "2001:db8:1::14", table: 101}
      - {priority: 1200, fwmark: "0x10/0xff", family: ipv4, table: 300}

- name: Remove one rule
  roce.multirail.rail_rule:
    rules:
      - {priority: 1002, from: 10.0.2.14, table: 102}
    state: absent
'''

RETURN = r'''
added:
  description: Rules that were added (or would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {family: ipv4, priority: 1001, from: 10.0.1.14/32, table: 101, action: lookup, proto: static,
       text: "1001:\tfrom 10.0.1.14 lookup 101 proto static"}
removed:
  description: Rules that were removed (or would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: []
rules:
  description: The rules in scope after the call, in kernel order.
  returned: always
  type: list
  elements: dict
  sample:
    - {family: ipv4, priority: 1001, from: 10.0.1.14/32, table: 101, action: lookup, proto: static,
       text: "1001:\tfrom 10.0.1.14 lookup 101 proto static"}
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.lock import RUN_ARGUMENT, LockTimeout, RunLost, run_step
from ansible_collections.roce.multirail.plugins.module_utils.netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    ApplyError,
    apply_rules,
    check_exact,
    connect,
    dump_rules,
)
from ansible_collections.roce.multirail.plugins.module_utils.rules import (
    check_priority_range,
    decide_rules,
    desired_rules,
    foreign_conflicts,
    render_rules,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(type='list', elements='dict', required=True, options=dict(
                priority=dict(type='int', required=True),
                table=dict(type='int', required=True),
                iif=dict(type='str'),
                oif=dict(type='str'),
                fwmark=dict(type='str'),
                family=dict(type='str', choices=['ipv4', 'ipv6']),
                **{'from': dict(type='str', aliases=['src']), 'to': dict(type='str', aliases=['dst'])}
            )),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            purge=dict(type='bool', default=False),
            exclusive=dict(type='bool', default=False),
            remove_foreign=dict(type='bool', default=False),
            run=RUN_ARGUMENT,
            priority_range=dict(type='dict', options=dict(
                start=dict(type='int', required=True),
                end=dict(type='int', required=True),
            )),
        ),
        required_if=[('purge', True, ('priority_range',))],
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'), exception=PYROUTE2_IMPORT_ERROR)
    state = module.params['state']
    try:
        if module.params['purge'] and state == 'absent':
            raise InvalidArgument('purge: only works with state=present')
        desired = desired_rules(module.params['rules'], state)
        priority_range = None
        if module.params['priority_range']:
            priority_range = check_priority_range(module.params['priority_range'])
    except InvalidArgument as exc:
        module.fail_json(msg=str(exc))

    try:
        with run_step(None if module.check_mode else module.params['run']), connect() as nl:
            current, raw = dump_rules(nl)
            if module.params['exclusive'] and state == 'present':
                problems = foreign_conflicts(current, desired, priority_range, module.params['remove_foreign'])
                if problems:
                    raise InvalidArgument('; '.join(problems))
            changes = decide_rules(current, desired, state, priority_range if module.params['purge'] else None,
                                   module.params['remove_foreign'])
            check_exact(changes.remove, 'rule')
            changed = bool(changes.add or changes.remove)
            if changed and not module.check_mode:
                apply_rules(nl, changes, raw)
    except (InvalidArgument, ApplyError, LockTimeout, RunLost) as exc:
        module.fail_json(msg=str(exc))

    shown = dict((rule, rule.as_dict()) for rule in set(changes.add + changes.remove + changes.after))
    result = dict(
        changed=changed,
        added=[shown[rule] for rule in changes.add],
        removed=[shown[rule] for rule in changes.remove],
        rules=[shown[rule] for rule in changes.after],
    )
    if module._diff:
        result['diff'] = dict(before=render_rules(changes.before), after=render_rules(changes.after),
                              before_header='ip rule (before)', after_header='ip rule (after)')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
