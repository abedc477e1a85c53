#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_table
short_description: Manage the IPv4 routes of one or more policy routing tables in one call
version_added: 1.0.0
description:
  - Makes the routes of the listed tables match the given lists, through netlink, with one link
    dump, one address dump and one route dump for all tables together.
  - Routes are created with C(proto static) and an explicit metric, as NetworkManager creates the
    routes of its keyfiles, so live routes and persisted routes are the same kernel objects.
  - A route is identified by table, destination and metric; a route with the same identity but
    another gateway, device, source, scope or flag is replaced in place.
  - Everything is validated before the first change. Devices must exist and be up, gateways must
    be reachable on their device, and C(src) must be an address of the host.
author:
  - roce.multirail maintainers (!UNKNOWN)
extends_documentation_fragment:
  - roce.multirail.run
options:
  tables:
    description: The tables, each with its routes.
    type: list
    elements: dict
    required: true
    suboptions:
      table:
        description:
          - Table id. V(0), V(253) (default), V(254) (main) and V(255) (local) are refused.
        type: int
        required: true
      routes:
        description:
          - The table's routes.
          - With O(state=absent), a table listed with no routes is emptied of all its IPv4 routes.
        type: list
        elements: dict
        default: []
        suboptions:
          dst:
            description: Destination prefix, or V(default).
            type: str
            required: true
          gateway:
            description: Next hop. Must be inside a subnet of O(tables[].routes[].dev) unless onlink.
            type: str
          dev:
            description:
              - The device the route leaves through; required with O(state=present), so the route can
                only ever use that NIC.
            type: str
          src:
            description: Preferred source address; must be an address of this host.
            type: str
          scope:
            description:
              - V(global), V(site), V(link), V(host) or a number. Defaults to V(link) for a route
                without a gateway and V(global) otherwise, as C(ip route) and NetworkManager do.
            type: str
          metric:
            description:
              - Route metric (priority). Defaults to 0, as in the kernel. When NetworkManager also
                manages the table, give the metric its keyfile names.
            type: int
          onlink:
            description: Treat the gateway as on the link even when no subnet of the device holds it.
            type: bool
            default: false
  state:
    description:
      - V(present) adds missing routes and replaces routes whose attributes differ.
      - V(absent) removes the listed routes; fields left out match any value.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With V(true) and O(state=present), each listed table ends up holding exactly the listed
        routes. Tables not listed are never touched.
    type: bool
    default: false
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: Before and after are the listed tables, printed as C(ip route show table N) prints them.
    support: full
  platform:
    description: Linux, in the network namespace the module runs in.
    support: full
    platforms: posix
requirements:
  - pyroute2 >= 0.9 on the managed host
notes:
  - IPv4 only. IPv6 routes that share a table id are neither shown nor touched.
seealso:
  - module: roce.multirail.rail_rule
'''

EXAMPLES = r'''
- name: Textbook layout, rail 1
  roce.multirail.rail_table:
    tables:
      - table: 101
        routes:
          - {dst: 10.0.1.0/24, dev: ib0, src: 10.0.1.14, metric: 100}
          - {dst: default, gateway: 10.0.1.1, dev: ib0, metric: 100}
    purge: true

- name: Shared subnet layout, two rails behind one gateway
  roce.multirail.rail_table:
    tables:
      - table: 101
        routes:
          - {dst: 10.0.0.0/16, gateway: 10.0.1.1, dev: ib0, src: 10.0.1.14, metric: 100}
      - table: 102
        routes:
          - {dst: 10.0.0.0/16, gateway: 10.0.1.1, dev: ib1, src: 10.0.1.16, metric: 100}
    purge: true

- name: Empty a table
  roce.multirail.rail_table:
    tables:
      - {table: 104}
    state: absent
'''

RETURN = r'''
added:
  description: Routes added (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {table: 101, dst: 0.0.0.0/0, gateway: 10.0.1.1, dev: ib0, metric: 100, scope: global,
       proto: static, type: unicast, text: "default via 10.0.1.1 dev ib0 proto static metric 100"}
replaced:
  description: Routes replaced in place, each as the route before and the route after.
  returned: always
  type: list
  elements: dict
  sample: []
removed:
  description: Routes removed (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: []
tables:
  description: The routes of each listed table after the call, keyed by table id.
  returned: always
  type: dict
  sample:
    "101":
      - {table: 101, dst: 10.0.1.0/24, dev: ib0, src: 10.0.1.14, metric: 100, scope: link,
         proto: static, type: unicast, text: "10.0.1.0/24 dev ib0 proto static scope link src 10.0.1.14 metric 100"}
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.lock import RUN_ARGUMENT, LockTimeout, RunLost, run_step
from ansible_collections.roce.multirail.plugins.module_utils.netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    ApplyError,
    apply_routes,
    check_exact,
    connect,
    dump_links,
    dump_routes,
)
from ansible_collections.roce.multirail.plugins.module_utils.routes import (
    add_order,
    decide_routes,
    desired_tables,
    render_tables,
    validate_routes,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tables=dict(type='list', elements='dict', required=True, options=dict(
                table=dict(type='int', required=True),
                routes=dict(type='list', elements='dict', default=[], options=dict(
                    dst=dict(type='str', required=True),
                    gateway=dict(type='str'),
                    dev=dict(type='str'),
                    src=dict(type='str'),
                    scope=dict(type='str'),
                    metric=dict(type='int'),
                    onlink=dict(type='bool', default=False),
                )),
            )),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            purge=dict(type='bool', default=False),
            run=RUN_ARGUMENT,
        ),
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'), exception=PYROUTE2_IMPORT_ERROR)
    state = module.params['state']
    try:
        if module.params['purge'] and state == 'absent':
            raise InvalidArgument('purge: only works with state=present')
        tables = desired_tables(module.params['tables'], state)
    except InvalidArgument as exc:
        module.fail_json(msg=str(exc))

    try:
        with run_step(None if module.check_mode else module.params['run']), connect() as nl:
            links = dump_links(nl)
            current, raw = dump_routes(nl, links)
            if state == 'present':
                validate_routes(tables, links, current, module.params['purge'])
            changes = decide_routes(current, tables, state, module.params['purge'])
            check_exact(list(changes.remove) + [old for old, _new in changes.replace], 'route')
            changed = bool(changes.add or changes.replace or changes.remove)
            if changed and not module.check_mode:
                apply_routes(nl, changes, links, raw, add_order)
    except (InvalidArgument, ApplyError, LockTimeout, RunLost) as exc:
        module.fail_json(msg=str(exc))

    every = [route for routes in [changes.add, changes.remove] + list(changes.replace) + list(changes.after.values())
             for route in routes]
    shown = dict((route, route.as_dict()) for route in set(every))
    result = dict(
        changed=changed,
        added=[shown[route] for route in changes.add],
        replaced=[dict(before=shown[old], after=shown[new]) for old, new in changes.replace],
        removed=[shown[route] for route in changes.remove],
        tables=dict((str(table), [shown[route] for route in routes]) for table, routes in changes.after.items()),
    )
    if module._diff:
        result['diff'] = dict(before=render_tables(changes.before), after=render_tables(changes.after),
                              before_header='ip route show table (before)',
                              after_header='ip route show table (after)')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
