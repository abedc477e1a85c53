#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_guard
short_description: Check a source-routing plan against a host before any change, and undo a run
version_added: 1.0.0
description:
  - Without O(restore), reads the host and changes nothing; a run calls it before its first change.
  - It fails when a rail rule's source holds an address the host is managed on (O(management), and the
    server address of the SSH connection the module runs under), or the source address of the main
    table's default route, so replies to Ansible or the host's own traffic would leave through a rail.
  - The same holds for every address the host owns outside its rails, that is each IPv4 address of a
    NIC that is not a rail (except one a rail lists exactly in its sources, a VF netdev's own) and the
    prefix of each address on C(lo) (C(127.0.0.0/8)). The message names the rule, the address and its
    NIC.
  - It fails when a rail NIC holds a management address other than the rail's own (activating the
    rail's keyfile would take it off the NIC).
  - It fails when a rule the plan does not own sits on a planned priority, when a rule inside the
    managed priority range was not made like the collection's rules (another protocol or family, a
    mark, an interface; unless O(remove_foreign_rules)), or when an IPv4 rule outside the managed
    priority range looks up a planned table. The kernel's own rules (C(proto kernel)) are never in
    the way and never removed.
  - It fails when a planned route cannot be installed (rail NIC missing, renamed or down, gateway not
    on the rail).
  - It warns when the main table's default route leaves through a rail NIC.
  - With O(persist), it also decides which network stack persists each rail, as
    M(roce.multirail.rail_persist) will, and fails when the host cannot be persisted on (see that
    module), so that a run refused for persistence changes nothing either.
  - It returns a O(restore)-able snapshot of what the plan may change (every rule inside the managed
    priority range, every route of the planned tables and of the tables of rails that are gone, the
    planned sysctls) and the tables of rails that are gone (RV(stale_tables)).
  - With O(restore), it puts the host back exactly as in that snapshot, objects of other tools included,
    each re-created from the attributes the kernel reported, through the NICs of the same names.
    Routes that share table, destination and metric (C(ip route append)) come back each in its place;
    the state flags the kernel reports on a route or a nexthop (C(linkdown), C(dead)) are not sent back.
  - A restore puts back every object it can (tables, then the rules that look them up, then sysctls)
    and goes on past one that cannot be; then it reads the host again, and fails naming each rule,
    route and sysctl that is not as in the snapshot and what it is now (C(not_restored) of RV(restored)).
author:
  - roce.multirail maintainers (!UNKNOWN)
extends_documentation_fragment:
  - roce.multirail.run
options:
  plan:
    description:
      - The plan, as the P(roce.multirail.source_routing_plan#filter) filter returns it; its C(rails),
        C(rules), C(tables), C(conf) and C(priority_range) are read.
      - Required unless O(restore) is given; ignored with it.
    type: dict
  management:
    description:
      - IP addresses the host is managed on (C(ansible_host), a bastion, monitoring). IPv6 addresses
        are accepted and protect nothing, the plan's rules being IPv4.
      - The server address of the SSH connection the module runs under (C(SSH_CONNECTION)) is always
        protected.
    type: list
    elements: str
    default: []
  allow_management_capture:
    description:
      - Turn the management-path errors into warnings, for hosts managed over a rail on purpose.
    type: bool
    default: false
  remove_foreign_rules:
    description:
      - Let the run remove the rules inside the managed priority range that were not made like the
        collection's (M(roce.multirail.rail_rule) O(roce.multirail.rail_rule#module:remove_foreign)),
        instead of failing on them. The kernel's rules stay.
    type: bool
    default: false
  persist:
    description:
      - Decide, with the plan's rails, which stack persists them (RV(persist)); the options are those of
        M(roce.multirail.rail_persist). Without it nothing about persistence is checked.
    type: dict
    suboptions:
      stack:
        description: The O(roce.multirail.rail_persist#module:stack) option of M(roce.multirail.rail_persist).
        type: str
        choices: [auto, networkmanager, networkd, netplan]
        default: auto
      keyfile_dir:
        description: The O(roce.multirail.rail_persist#module:keyfile_dir) option of M(roce.multirail.rail_persist).
        type: path
        default: /etc/NetworkManager/system-connections
      networkd_dir:
        description: The O(roce.multirail.rail_persist#module:networkd_dir) option of M(roce.multirail.rail_persist).
        type: path
        default: /etc/systemd/network
      netplan_file:
        description: The O(roce.multirail.rail_persist#module:netplan_file) option of M(roce.multirail.rail_persist).
        type: path
        default: /etc/netplan/90-roce-multirail.yaml
      originals_dir:
        description: The O(roce.multirail.rail_persist#module:originals_dir) option of M(roce.multirail.rail_persist).
        type: path
        default: /etc/NetworkManager/roce-multirail
  restore:
    description:
      - A RV(snapshot) returned by an earlier call with the same plan. The rules inside its priority
        range, the routes of its tables and its sysctls are made exactly what they were; nothing else
        is touched. O(management) is not checked.
      - When an object cannot be restored (its NIC is gone, the kernel refuses it), everything else is
        restored and the module fails, listing it.
    type: dict
attributes:
  check_mode:
    description: Without O(restore) it never changes anything; with it, reports what it would restore.
    support: full
  diff_mode:
    description: With O(restore), before and after are the rules, tables and sysctls it restores.
    support: full
  platform:
    description: Linux, in the network namespace the module runs in.
    support: full
    platforms: posix
requirements:
  - pyroute2 >= 0.9 on the managed host
notes:
  - A snapshot holds the raw attributes of the rules and routes in scope; keep it in a registered
    variable of the same play, it is not meant to be edited.
seealso:
  - module: roce.multirail.rail_rule
  - module: roce.multirail.rail_table
  - module: roce.multirail.rail_sysctl
'''

EXAMPLES = r'''
- name: Refuse a plan that would cut the host off, and keep what a rollback needs
  roce.multirail.rail_guard:
    plan: "{{ rails | roce.multirail.source_routing_plan }}"
    management: ["{{ ansible_host }}"]
  register: guard

- name: Put back the rules, tables and sysctls of before the run
  roce.multirail.rail_guard:
    restore: "{{ guard.snapshot }}"
'''

RETURN = r'''
main_routes:
  description:
    - The main table's routes through a gateway, as text without their protocol, before the run changes
      anything. M(roce.multirail.rail_audit) O(roce.multirail.rail_audit#module:kept_routes) checks that they
      are still there.
  returned: success and O(restore) not given
  type: list
  elements: str
  sample: ["default via 192.168.50.1 dev mg0 metric 100"]
snapshot:
  description: What O(restore) needs to undo a run; without O(restore) only.
  returned: success and O(restore) not given
  type: dict
  sample:
    priority_range: [1000, 1999]
    tables: [101, 102]
    rules: [{header: {family: 2, src_len: 32, table: 101}, attrs: [[FRA_TABLE, 101], [FRA_PRIORITY, 1001]]}]
    routes: []
    sysctls: [{target: ib0, key: rp_filter, value: 1}]
    links: [[1, lo], [3, ib0]]
stale_tables:
  description:
    - Tables that a rule inside the managed range looks up and no planned rail uses, as the O(plan)
      C(tables) of P(roce.multirail.rail_table#module) takes them (a table listed with no routes is emptied).
  returned: success and O(restore) not given
  type: list
  elements: dict
  sample: [{table: 105, routes: []}]
management:
  description: The protected addresses, each with where it came from.
  returned: success and O(restore) not given
  type: list
  elements: dict
  sample: [{given: 192.0.2.7, addresses: [192.0.2.7]}, {given: SSH_CONNECTION, addresses: [192.0.2.7]}]
persist:
  description:
    - With O(persist), the stack that persists the rails, per rail the stack, how (adopt, create, dropin,
      netplan) and what sets it up at boot, the same as one line per rail (C(report)), and what runs here.
  returned: success, O(persist) given and O(restore) not given
  type: dict
  sample:
    stack: networkd
    rails: [{device: ib0, stack: networkd, how: dropin, where: /etc/systemd/network/10-ib0.network}]
    report: ["ib0: systemd-networkd, /etc/systemd/network/10-ib0.network"]
    daemons: {networkmanager: not installed, networkd: running, netplan: not installed}
restored:
  description:
    - What O(restore) changed (or would, in check mode), as C(ip) and sysctl(8) print it.
    - C(not_restored) names each object left otherwise than in the snapshot, why, and what it is now;
      the module fails when it is not empty (in check mode, it lists the sysctls of NICs that are gone).
  returned: O(restore) given, also when the restore fails
  type: dict
  sample:
    rules_removed: ["1001:\tfrom 10.0.1.14 lookup 101 proto static"]
    rules_added: []
    routes_removed: ["default via 10.0.1.1 dev ib0 proto static metric 100 (table 101)"]
    routes_added: []
    sysctls: ["net.ipv4.conf.ib0.rp_filter = 1"]
    not_restored: ['route "10.80.0.0/16 via 10.0.2.1 dev ib1" (table 101): not restored (dev ib1 is gone); now absent']
'''

import ipaddress
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.roce.multirail.plugins.module_utils.boot import module_runner, read_module_host
from ansible_collections.roce.multirail.plugins.module_utils.changes import daemons, prepare
from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument
from ansible_collections.roce.multirail.plugins.module_utils.guard import (
    Protected,
    host_addresses,
    local_gateways,
    management_findings,
    not_restored,
    owned_tables,
    restore_routes,
    restore_sysctls,
    unrestorable_sysctls,
)
from ansible_collections.roce.multirail.plugins.module_utils.lock import RUN_ARGUMENT, LockTimeout, RunLost, run_step
from ansible_collections.roce.multirail.plugins.module_utils.netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    ApplyError,
    Raw,
    check_exact,
    connect,
    dump_links,
    dump_routes,
    dump_rules,
    restore_each,
)
from ansible_collections.roce.multirail.plugins.module_utils.routes import (
    desired_tables,
    main_gateway_routes,
    render_tables,
    route_from_dump,
    validate_routes,
)
from ansible_collections.roce.multirail.plugins.module_utils.rules import (
    check_priority_range,
    decide_rules,
    desired_rules,
    foreign_conflicts,
    render_rules,
    rule_from_dump,
)
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import NMError
from ansible_collections.roce.multirail.plugins.module_utils.persist import check_rail
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import (
    desired_settings,
    key_name,
    read_value,
    write_value,
)


try:
    import yaml
except ImportError:
    yaml = None


def read_plan(plan):
    """(rails, rules, tables, priority_range) from a plan, each part validated (conf needs the host)."""
    for part in ('rails', 'rules', 'tables', 'conf', 'priority_range'):
        if part not in plan:
            raise InvalidArgument('plan: has no %s; pass what the source_routing_plan filter returns' % part)
    value = plan['priority_range']
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = {'start': value[0], 'end': value[1]}
    if not isinstance(value, dict):
        raise InvalidArgument('plan: priority_range %r is not {start, end}' % (value,))
    rails = plan['rails']
    if not isinstance(rails, list) or not all(isinstance(r, dict) and 'device' in r and 'table' in r
                                              for r in rails):
        raise InvalidArgument('plan: rails must be a list of {device, table, ...}')
    return rails, desired_rules(plan['rules']), desired_tables(plan['tables']), check_priority_range(value)


def missing_nics(rails, links):
    """A message per planned rail NIC the host does not have, naming where its address is now."""
    problems = []
    for rail in rails:
        if rail['device'] in links:
            continue
        text = 'rail %s: the host has no NIC %s' % (rail['device'], rail['device'])
        moved = [link.name for link in links.values()
                 if any(a.split('/')[0] == rail.get('ip') for a in link.addresses)]
        if moved:
            text += '; its address %s is on %s now: was the NIC renamed? Use the new name in the inventory' % (
                rail.get('ip'), moved[0])
        problems.append(text)
    return problems


def management_addresses(given, links=None, rails=()):
    """([Protected], report): the management addresses, and where each given one came from.

    IPv6 addresses are accepted and protect nothing: the plan's rules are IPv4.
    The host's own addresses outside the rails (guard.host_addresses) are
    protected too; the report lists the given ones.
    """
    protected, report = [], []
    for value in given:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise InvalidArgument('management: %r is not an IP address' % (value,))
        addresses = [str(address)] if address.version == 4 else []
        report.append({'given': value, 'addresses': addresses})
        protected += [Protected(a, 'the host is managed on (%s)' % value) for a in addresses]
    ssh = os.environ.get('SSH_CONNECTION', '').split()
    if len(ssh) == 4:
        try:
            address = ipaddress.ip_address(ssh[2])
        except ValueError:
            address = None
        addresses = [str(address)] if address and address.version == 4 else []
        report.append({'given': 'SSH_CONNECTION', 'addresses': addresses})
        protected += [Protected(a, 'of the SSH connection Ansible uses') for a in addresses]
    protected += host_addresses(links or {}, rails)
    return protected, report


def normalized(raw, convert):
    """{object: Raw}: the dumped objects in dump order, normalized through their plain data.

    A snapshot travels as plain data; going through the same form on both
    sides makes an unchanged object compare equal to its snapshot.
    """
    found = {}
    for item in raw.values():
        data = item.to_data()
        found[convert(data)] = Raw.from_data(data)
    return found


def take_snapshot(nl, links, settings, priority_range, planned_tables):
    current_rules, raw_rules = dump_rules(nl)
    routes, raw_routes = dump_routes(nl, links)
    tables, stale = owned_tables(current_rules, priority_range, planned_tables)
    low, high = priority_range
    snapshot = {
        'priority_range': [low, high],
        'tables': tables,
        'rules': [raw_rules[r].to_data() for r in current_rules if low <= r.priority <= high],
        'routes': [raw_routes[r].to_data() for r in routes if r.table in tables],
        'sysctls': [{'target': s.target, 'key': s.key, 'value': read_value(s.target, s.key)} for s in settings],
        'links': sorted([link.index, link.name] for link in links.values()),
    }
    return snapshot, stale, current_rules, routes


def check(module, nl, rails, rules, tables, priority_range):
    links = dump_links(nl)
    problems = missing_nics(rails, links)
    if problems:
        module.fail_json(msg='nothing was changed: %s' % '; '.join(problems), problems=problems)
    settings = desired_settings(module.params['plan']['conf'])
    snapshot, stale, current_rules, routes = take_snapshot(
        nl, links, settings, priority_range, [t.table for t in tables])
    protected, report = management_addresses(module.params['management'], links, rails)
    errors, warnings = management_findings(rules, rails, protected, routes, links, tables)
    if module.params['allow_management_capture']:
        warnings = ['allowed by allow_management_capture: ' + e for e in errors] + warnings
        errors = []
    errors += foreign_conflicts(current_rules, rules, priority_range, module.params['remove_foreign_rules'])
    errors += local_gateways(rails, tables, links)
    try:
        validate_routes(tables, links, routes, purge=True)
    except InvalidArgument as exc:
        errors.append(str(exc))
    persisted = None
    if module.params['persist'] is not None:
        persisted, problems, more = persistence(module, rails)
        errors += problems
        warnings += more
    for warning in warnings:
        module.warn(warning)
    if errors:
        module.fail_json(msg='nothing was changed: %s' % '; '.join(errors), problems=errors, management=report,
                         **({'persist': persisted} if persisted else {}))
    result = dict(changed=False, snapshot=snapshot, management=report, main_routes=main_gateway_routes(routes),
                  stale_tables=[{'table': table, 'routes': []} for table in stale])
    if persisted is not None:
        result['persist'] = persisted
    return result


def persistence(module, rails):
    """(what rail_persist will do, problems that refuse the host, warnings) for the plan's rails."""
    options = module.params['persist']
    try:
        planned = [check_rail(rail, 'plan: rails[%d]' % index) for index, rail in enumerate(rails)]
    except InvalidArgument as exc:
        return None, [str(exc)], []
    run = module_runner(module)
    view = read_module_host(module, run, yaml.safe_load if yaml else None, keyfile_dir=options['keyfile_dir'],
                            networkd_dir=options['networkd_dir'], netplan_file=options['netplan_file'],
                            originals_dir=options['originals_dir'])
    decision, _changes, problems = prepare(run, view, planned, options['stack'])
    found = dict(stack=decision.stack, rails=[c._asdict() for c in decision.rails], report=decision.report(),
                 daemons=daemons(view))
    return found, problems, list(decision.warnings)


def plain_rule(data):
    return rule_from_dump(data['header'], dict(data['attrs']))


def restore(module, nl):
    snapshot = module.params['restore']
    try:
        low, high = snapshot['priority_range']
        tables = [int(t) for t in snapshot['tables']]
        snap_rules = dict((plain_rule(d), Raw.from_data(d)) for d in snapshot['rules'])
        kept = dict(((s['target'], s['key']), s['value']) for s in snapshot['sysctls'])
        # Interface names at the time of the snapshot (older snapshots: the indexes as they are now).
        names = dict((int(i), str(n)) for i, n in snapshot['links']) if 'links' in snapshot else None
        snap_links = dict((link.index, link.name) for link in dump_links(nl).values()) if names is None else names
        snap_routes = dict((route_from_dump(d['header'], dict(d['attrs']), snap_links), Raw.from_data(d))
                           for d in snapshot['routes'])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument('restore: not a snapshot returned by rail_guard (%s)' % exc)

    def compare():
        """What still differs from the snapshot: (rules, routes, sysctls, gone sysctls, raw objects now)."""
        links = dump_links(nl)
        ifnames = dict((link.index, link.name) for link in links.values())
        _rules, raw_rules = dump_rules(nl)
        now_rules = normalized(raw_rules, plain_rule)      # in kernel order, as dumped
        in_range = [r for r in now_rules if low <= r.priority <= high]
        rules = decide_rules(in_range, list(snap_rules), 'present', (low, high), remove_foreign=True)
        _routes, raw_routes = dump_routes(nl, links)
        now_routes = normalized(raw_routes, lambda d: route_from_dump(d['header'], dict(d['attrs']), ifnames))
        routes = restore_routes(list(now_routes), list(snap_routes), tables)
        current = {}
        for target, key in kept:
            try:
                current[(target, key)] = read_value(target, key)
            except InvalidArgument:
                current[(target, key)] = None
        raw = dict(now_rules)
        raw.update(now_routes)
        return (rules, routes, restore_sysctls(current, kept), unrestorable_sysctls(current, kept), raw, links)

    rule_changes, route_changes, sysctl_changes, gone, now_raw, links = compare()
    check_exact(rule_changes.remove, 'rule')
    check_exact(list(route_changes.remove) + [old for old, _new in route_changes.replace], 'route')

    changed = bool(rule_changes.ops or route_changes.ops or sysctl_changes)
    restored = dict(
        rules_added=[r.render() for r in rule_changes.add],
        rules_removed=[r.render() for r in rule_changes.remove],
        routes_added=['%s (table %d)' % (r.render(), r.table)
                      for r in list(route_changes.add) + [new for _old, new in route_changes.replace]],
        routes_removed=['%s (table %d)' % (r.render(), r.table)
                        for r in list(route_changes.remove) + [old for old, _new in route_changes.replace]],
        sysctls=['%s = %d' % (key_name(c.target, c.key), c.after) for c in sysctl_changes],
        not_restored=not_restored(gone=gone),
    )
    result = dict(changed=changed, restored=restored)
    if module._diff:
        result['diff'] = dict(
            before=render_rules(rule_changes.before) + render_tables(route_changes.before)
            + ''.join('%s = %d\n' % (key_name(c.target, c.key), c.before) for c in sysctl_changes),
            after=render_rules(rule_changes.after) + render_tables(route_changes.after)
            + ''.join('%s = %d\n' % (key_name(c.target, c.key), c.after) for c in sysctl_changes),
            before_header='rules, tables and sysctls (before the restore)',
            after_header='rules, tables and sysctls (the snapshot)')
    if module.check_mode or not (changed or gone):
        return result

    # Everything that can be restored is, past a refusal of one object; then the host is read again.
    snap_raw = dict(snap_rules)
    snap_raw.update(snap_routes)
    errors = restore_each(nl, route_changes.ops, rule_changes.ops, snap_raw, now_raw, links, names)
    for change in sysctl_changes:
        try:
            write_value(change.target, change.key, change.after)
        except OSError as exc:
            errors[('sysctl', (change.target, change.key))] = exc.strerror or str(exc)
    rules_left, routes_left, sysctls_left, gone, _raw, _links = compare()
    restored['not_restored'] = not_restored(rules_left, routes_left, sysctls_left, gone, errors)
    if restored['not_restored']:
        module.fail_json(msg='restore: the host was put back as in the snapshot except for %d object(s): %s'
                         % (len(restored['not_restored']), '; '.join(restored['not_restored'])), **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type='dict'),
            management=dict(type='list', elements='str', default=[]),
            allow_management_capture=dict(type='bool', default=False),
            remove_foreign_rules=dict(type='bool', default=False),
            restore=dict(type='dict'),
            run=RUN_ARGUMENT,
            persist=dict(type='dict', options=dict(
                stack=dict(type='str', default='auto', choices=['auto', 'networkmanager', 'networkd', 'netplan']),
                keyfile_dir=dict(type='path', default='/etc/NetworkManager/system-connections'),
                networkd_dir=dict(type='path', default='/etc/systemd/network'),
                netplan_file=dict(type='path', default='/etc/netplan/90-roce-multirail.yaml'),
                originals_dir=dict(type='path', default='/etc/NetworkManager/roce-multirail'),
            )),
        ),
        required_one_of=[('plan', 'restore')],
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'), exception=PYROUTE2_IMPORT_ERROR)
    try:
        if module.params['restore'] is not None:
            with run_step(None if module.check_mode else module.params['run']) as notes, connect() as nl:
                result = restore(module, nl)
        else:
            rails, rules, tables, priority_range = read_plan(module.params['plan'])
            run = None if module.check_mode else module.params['run']
            with run_step(run, module.params['plan'], claim=True) as notes, connect() as nl:
                result = check(module, nl, rails, rules, tables, priority_range)
    except (InvalidArgument, ApplyError, LockTimeout, NMError, RunLost) as exc:
        module.fail_json(msg=str(exc))
    for note in notes:
        module.warn(note)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
