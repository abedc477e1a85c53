#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rail_audit
short_description: Explain what is wrong with a multi-rail host, without changing anything
version_added: 1.0.0
description:
  - Reads the host's rails (addresses, link state, MTU), policy rules, rail tables, the kernel's own
    answer to C(ip route get) from every rail address, the effective ARP and reverse-path sysctls,
    the sysctl.d files that will apply at boot, what sets up each rail at boot and the kernel's
    reverse-path drop counter, and returns per-rail facts and a list of findings, each with what is
    wrong, why it matters and how to fix it.
  - Read-only; never changes the host's configuration. Route lookups send no traffic. With O(probe=true)
    it drops the cached neighbour entry of each probed gateway, so that the gateway must answer ARP again.
  - "Checks: C(rule) (a rule per rail address), C(rule_order) (before main, not shadowed), C(table)
    (not empty, only the rail's NIC, a gateway route to the fabric), C(gateway) (in the rail's subnet,
    not an address of this host, answering ARP, and with O(probe) answering an echo now), C(route_get)
    (the kernel really sends the rail's traffic out of its NIC), C(arp)
    (ARP flux), C(rp_filter) (strict filtering, also when it comes from C(all)), C(accept_local),
    C(duplicate) (addresses, tables), C(link) (down, no carrier), C(mtu) (differs across rails),
    C(sysctl_files) (a later sysctl.d file overriding a key, strict rp_filter at boot), C(boot) (the
    NetworkManager profiles, systemd-networkd file or netplan definition that set up a rail at boot lack
    its rules or routes, or systemd-networkd runs and deletes them), C(martians) (reverse-path drops rising),
    C(kept_routes) (with O(kept_routes), a route of the main table that is gone)."
author:
  - roce.multirail maintainers (!UNKNOWN)
options:
  devices:
    description:
      - The rail NICs. When omitted, rails are discovered, in interface order, as the NICs that carry a
        source rule, the RDMA netdevs under C(/sys/class/infiniband/*/device/net), and the NICs whose
        name matches O(pattern).
    type: list
    elements: str
  pattern:
    description: Regular expression for discovering rails by interface name.
    type: str
    default: '^(ib|roce)[0-9]'
  plan:
    description:
      - The plan the source_routing role computed (P(roce.multirail.source_routing_plan#filter)); rails are
        then the plan's devices and each rail's rule must have the planned priority and table.
    type: dict
  target:
    description:
      - Address looked up with C(ip route get TARGET from <rail address>). Default, per rail, an address
        inside the widest gateway route of the rail's table (a documentation address, 198.51.100.1, for
        a default route). Only looked up, never sent to.
    type: str
  martian_interval:
    description: Seconds between two readings of the reverse-path drop counter; 0 skips the check.
    type: float
    default: 1.0
  persisted_sysctl_file:
    description:
      - Judge the sysctl.d files as if this file already held the C(sysctl_lines) of O(plan), which is
        what the source_routing role is about to write. Its audit before persisting then sees the boot
        order as it will be. Needs O(plan).
    type: path
  probe:
    description:
      - Send one ICMP echo request from each rail's address, out of the rail's NIC, to the gateway its
        table uses, and judge the gateway by the answer it gives now (C(gateway) check). One packet per
        rail, to the rail's own gateway only; needs root (a raw socket).
      - A gateway counts as alive only on a fresh answer. Its cached neighbour entry is dropped first
        (never a PERMANENT one), so the echo needs a new ARP resolution, and only an echo reply from the
        gateway arriving on the rail's NIC counts. A gateway that answers ARP but not the echo, or
        neither, is an error; a gateway that is an address of this host is an error and is not probed.
    type: bool
    default: false
  boot:
    description:
      - Read what sets up each rail at boot (every NetworkManager profile that can activate on it, the
        systemd-networkd C(.network) file with its drop-ins, the netplan definition as netplan renders it)
        and report, as C(boot) findings, each one that lacks the rail's rules or routes.
      - The rules and routes expected are the plan's with O(plan), else the rail's live ones.
    type: bool
    default: true
  probe_timeout:
    description: Seconds to wait for all the echo replies together.
    type: float
    default: 1.0
  details:
    description:
      - With V(false), each entry of RV(rails) keeps only C(device), C(state), C(carrier), C(mtu), C(table)
        and C(probe); the per-address lists (addresses, rules, routes, lookups) and the sysctls are left
        out. The findings are the same. For a caller that reads only the findings of a host with thousands
        of sources, whose result would otherwise carry each of them several times.
    type: bool
    default: true
  kept_routes:
    description:
      - The main table's routes through a gateway that the host must still have, as
        M(roce.multirail.rail_guard) returns them (RV(roce.multirail.rail_guard#module:main_routes)) before a
        run changes anything. Each one that is gone is a C(kept_routes) error; the source_routing role checks
        this again after the network stack took the rails, since activating a NIC removes the routes of that
        NIC its profile does not hold.
    type: list
    elements: str
attributes:
  check_mode:
    description: The module never changes anything.
    support: full
  diff_mode:
    description: Nothing to show; the module changes nothing.
    support: none
  platform:
    description: Linux, in the network namespace the module runs in.
    support: full
    platforms: posix
requirements:
  - pyroute2 >= 0.9 on the managed host
seealso:
  - module: roce.multirail.rail_rule
  - module: roce.multirail.rail_table
  - module: roce.multirail.rail_sysctl
'''

EXAMPLES = r'''
- name: Audit the rails named in the inventory
  roce.multirail.rail_audit:
    devices: "{{ source_routing_rails | map(attribute='device') }}"
  register: audit

- name: Audit whatever looks like a rail
  roce.multirail.rail_audit:
    martian_interval: 0
'''

RETURN = r'''
rails:
  description:
    - Per rail, in order. C(probe) is there with O(probe=true) for a rail whose table leads to a gateway;
      its C(error) is empty when the gateway replied.
  returned: always
  type: list
  elements: dict
  sample:
    - device: ib1
      addresses: [10.0.2.14/24]
      state: up
      carrier: true
      mtu: 4200
      table: 102
      rules: [{priority: 1002, from: 10.0.2.14/32, table: 102, text: "1002:\tfrom 10.0.2.14 lookup 102 proto static"}]
      routes: ["default via 10.0.2.1 dev ib1 proto static metric 100"]
      route_get: [{source: 10.0.2.14, target: 198.51.100.1, dev: ib1, table: 102, ok: true}]
      sysctls: {rp_filter: {value: 2, all: 2, dev: 2, rule: max, decided_by: both}}
      probe: {source: 10.0.2.14, gateway: 10.0.2.1, error: ""}
findings:
  description: What is wrong, most severe first.
  returned: always
  type: list
  elements: dict
  sample:
    - check: rp_filter
      device: ib1
      severity: error
      message: "strict reverse-path filtering drops replies that arrive on ib1 but would be routed out another
        NIC (rp_filter 1 (from net.ipv4.conf.all, which wins over ib1))"
      hint: "sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.ib1.rp_filter=2"
checks:
  description: Every check that ran, in report order.
  returned: always
  type: list
  elements: str
  sample: [rule, rule_order, table, gateway, route_get, arp, rp_filter, accept_local, duplicate, link, mtu,
           sysctl_files, boot, martians]
summary:
  description: C(status) (ok, warning or error) and the number of errors, warnings, infos and rails.
  returned: always
  type: dict
  sample: {status: error, errors: 3, warnings: 1, infos: 0, rails: 4}
devices:
  description: The rails audited.
  returned: always
  type: list
  elements: str
  sample: [ib0, ib1, ib2, ib3]
discovered:
  description: Whether the rails were discovered (no O(devices) and no O(plan) given).
  returned: always
  type: bool
  sample: false
'''

import glob
import ipaddress
import os
import re
import select
import socket
import struct
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.roce.multirail.plugins.module_utils.audit import (
    CHECKS,
    SYSCTL_KEYS,
    Finding,
    RouteAnswer,
    Snapshot,
    audit,
    discover,
    local_addresses,
    own_rules,
    rail_table,
    rail_target,
    rule_index,
)
from ansible_collections.roce.multirail.plugins.module_utils.boot import (
    boot_findings,
    booted_netplan,
    module_runner,
    read_module_host,
)
from ansible_collections.roce.multirail.plugins.module_utils.networkmanager import NMError
from ansible_collections.roce.multirail.plugins.module_utils.persist import Rail, check_rail, source_form
from ansible_collections.roce.multirail.plugins.module_utils.persist import Route as PRoute
from ansible_collections.roce.multirail.plugins.module_utils.persist import Rule as PRule
from ansible_collections.roce.multirail.plugins.module_utils.common import InvalidArgument, show
from ansible_collections.roce.multirail.plugins.module_utils.netlink import (
    HAS_PYROUTE2,
    PYROUTE2_IMPORT_ERROR,
    NetlinkError,
    connect,
    dump_links,
    dump_neighbours,
    dump_routes,
    dump_rules,
    forget_neighbour,
    route_get,
)
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import read_value

try:
    import yaml
except ImportError:
    yaml = None

SYSCTL_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d')
SO_BINDTODEVICE = getattr(socket, 'SO_BINDTODEVICE', 25)
IP_PKTINFO = getattr(socket, 'IP_PKTINFO', 8)
# What RV(rails) keeps of each rail with details=false.
BRIEF = ('device', 'state', 'carrier', 'mtu', 'table', 'probe')
NUD_STATES = {0x01: 'INCOMPLETE', 0x02: 'REACHABLE', 0x04: 'STALE', 0x08: 'DELAY', 0x10: 'PROBE',
              0x20: 'FAILED', 0x40: 'NOARP', 0x80: 'PERMANENT'}


def lookup(nl, links, source, target):
    names = dict((link.index, name) for name, link in links.items())
    try:
        answer = route_get(nl, source, target)
    except NetlinkError as exc:
        return RouteAnswer(error=str(exc))
    return RouteAnswer(dev=names.get(answer.get('RTA_OIF'), ''), table=answer.get('RTA_TABLE') or 0,
                       gateway=answer.get('RTA_GATEWAY') or '')


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def _echo(ident, seq):
    payload = b'roce.multirail rail_audit probe'
    header = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
    return struct.pack('!BBHHH', 8, 0, _checksum(header + payload), ident, seq) + payload


def probe(nl, rails, timeout, local):
    """{device: '' when its gateway answered now, else why not}, all echo requests out at once.

    rails: [(device, ifindex, source, gateway)]; local: {address: NIC} of every address of the host.
    A gateway counts as alive only on an answer obtained now. Its cached neighbour entry (never a
    PERMANENT one) is dropped first, so the echo needs a fresh ARP resolution; the request leaves from
    the rail's address out of the rail's NIC; only an echo reply from the gateway that arrives on that
    NIC counts. A gateway that is an address of this host is not probed: the host would answer itself.
    """
    ident = os.getpid() & 0xffff
    states = dict(((index, address), state) for index, address, state in dump_neighbours(nl))
    result = {}
    waiting = {}
    try:
        for seq, (device, ifindex, source, gateway) in enumerate(rails, start=1):
            if gateway in local:
                result[device] = 'not sent: %s is an address of this host (on %s)' % (gateway, local[gateway])
                continue
            try:
                forget_neighbour(nl, ifindex, gateway, states.get((ifindex, gateway), 0))
            except NetlinkError as exc:
                result[device] = 'its cached neighbour entry could not be dropped: %s' % exc
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode('utf-8'))
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                sock.bind((source, 0))
                sock.setblocking(False)
                sock.sendto(_echo(ident, seq), (gateway, 0))
            except OSError as exc:
                sock.close()
                result[device] = 'the echo request could not be sent: %s' % (exc.strerror or exc)
                continue
            result[device] = 'no echo reply within %.1f s' % timeout
            waiting[sock] = (device, ifindex, gateway, seq)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _w, _x = select.select(list(waiting), [], [], left)
            for sock in ready:
                device, ifindex, gateway, seq = waiting[sock]
                data, ancillary, _flags, sender = sock.recvmsg(4096, socket.CMSG_SPACE(12))
                if _answers(data, ancillary, sender[0], ident, seq, gateway, ifindex) and sender[0] not in local:
                    result[device] = ''
                    sock.close()
                    del waiting[sock]
    finally:
        for sock in waiting:
            sock.close()
    return result


def _answers(data, ancillary, sender, ident, seq, gateway, ifindex):
    """Whether a packet read from the probe's raw socket is the echo reply of `gateway`, arrived on `ifindex`."""
    arrived = None
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
            arrived = struct.unpack('=i', value[:4])[0]       # struct in_pktinfo: ipi_ifindex first
    icmp = data[(data[0] & 0x0f) * 4:] if data else b''     # past the IP header
    if len(icmp) < 8:
        return False
    kind, _code, _sum, reply_ident, reply_seq = struct.unpack('!BBHHH', icmp[:8])
    return (kind, reply_ident, reply_seq, sender, arrived) == (0, ident, seq, gateway, ifindex)


def read_neighbours(nl, links):
    names = dict((link.index, name) for name, link in links.items())
    return dict(((names.get(index, ''), address), NUD_STATES.get(state, 'NONE'))
                for index, address, state in dump_neighbours(nl))


def read_conf(devices):
    conf = {}
    for target in ['all'] + list(devices):
        for key in SYSCTL_KEYS:
            try:
                conf[(target, key)] = read_value(target, key)
            except InvalidArgument:
                pass
    return conf


def parse_sysctl_file(path):
    try:
        with open(path) as handle:
            return parse_sysctl_lines(handle.read().splitlines())
    except OSError:
        return []


def parse_sysctl_lines(lines):
    """[(key, value)] of sysctl.d lines, comments and blank lines skipped."""
    entries = []
    for line in lines:
        line = line.strip()
        if not line or line[0] in '#;' or '=' not in line:
            continue
        key, value = line.split('=', 1)
        entries.append((key.strip().lstrip('-'), value.strip()))
    return entries


def read_sysctl_files(planned=None):
    """The files systemd-sysctl reads, in order: by name, the first directory holding a name wins.

    planned: (path, entries) of a file about to be written, read as if it were there already.
    """
    chosen = {}
    paths = []
    for directory in SYSCTL_DIRS:
        paths += sorted(glob.glob(os.path.join(directory, '*.conf')))
        if planned and os.path.dirname(planned[0]) == directory:
            paths.append(planned[0])
    for path in paths:
        chosen.setdefault(os.path.basename(path), path)
    ordered = [chosen[name] for name in sorted(chosen)]
    linked = set(os.path.realpath(path) for path in ordered)
    if os.path.exists('/etc/sysctl.conf') and os.path.realpath('/etc/sysctl.conf') not in linked:
        ordered.append('/etc/sysctl.conf')
    return [(path, planned[1] if planned and path == planned[0] else parse_sysctl_file(path)) for path in ordered]


def expected_rails(devices, links, rules, routes, plan):
    """The persist.Rail each device should come back with at boot: the plan's, else its live rule and table."""
    planned = dict((rail.get('device'), rail) for rail in (plan or {}).get('rails', []))
    rails = []
    index = rule_index(rules)
    for device in devices:
        link = links.get(device)
        if link is None:
            continue
        if device in planned:
            try:
                rails.append(check_rail(planned[device]))
            except InvalidArgument:
                pass
            continue
        if not link.addresses:
            continue
        ips = [address.split('/')[0] for address in link.addresses]
        table = rail_table(index, ips)
        own = [rule for ip in ips for rule in own_rules(index, ip)]
        if table is None:
            continue
        rails.append(Rail(device, link.addresses[0], table, None,
                          tuple(PRoute(r.dst, r.gateway, r.src, r.metric, r.table, r.onlink)
                                for r in routes if r.table == table and r.dev == device and r.type == 1),
                          tuple(PRule(r.priority, source_form(r.src), r.table) for r in own)))
    return rails


def read_boot(module, links, rules, routes, devices, plan):
    """boot.Finding of every rail: what sets it up at boot, and whether that carries its routing."""
    run = module_runner(module)
    try:
        view = read_module_host(module, run, yaml.safe_load if yaml else None)
    except NMError as exc:
        return [Finding('boot', None, 'warning', 'what NetworkManager holds could not be read: %s' % exc,
                        'check that nmcli works on the host')]
    return boot_findings(view, expected_rails(devices, links, rules, routes, plan), booted_netplan(run, view))


def read_rp_drops():
    """IPReversePathFilter of /proc/net/netstat: packets this namespace dropped by reverse-path filtering."""
    try:
        with open('/proc/net/netstat') as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        fields = dict(zip(names.split()[1:], values.split()[1:]))
        if 'IPReversePathFilter' in fields:
            return int(fields['IPReversePathFilter'])
    return None


def rdma_netdevs():
    return set(os.path.basename(path) for path in glob.glob('/sys/class/infiniband/*/device/net/*'))


def check_arguments(params):
    """The parts of plan and target the module reads, checked before any lookup."""
    plan = params['plan']
    if plan is not None:
        rails = plan.get('rails', [])
        if not isinstance(rails, list):
            raise InvalidArgument('plan: rails must be a list of mappings with a device, got %s' % show(rails))
        for index, rail in enumerate(rails):
            if not isinstance(rail, dict) or not isinstance(rail.get('device'), str):
                raise InvalidArgument('plan: rails[%d] must be a mapping with a device, got %s' % (index, show(rail)))
        lines = plan.get('sysctl_lines', [])
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise InvalidArgument('plan: sysctl_lines must be a list of "key = value" lines, got %s' % show(lines))
    elif params['persisted_sysctl_file']:
        raise InvalidArgument('persisted_sysctl_file: needs plan, whose sysctl_lines it would hold')
    if params['target'] is not None:
        try:
            ipaddress.IPv4Address(params['target'])
        except ValueError:
            raise InvalidArgument('target: %s is not an IPv4 address' % show(params['target']))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            devices=dict(type='list', elements='str'),
            pattern=dict(type='str', default='^(ib|roce)[0-9]'),
            plan=dict(type='dict'),
            target=dict(type='str'),
            martian_interval=dict(type='float', default=1.0),
            persisted_sysctl_file=dict(type='path'),
            probe=dict(type='bool', default=False),
            boot=dict(type='bool', default=True),
            probe_timeout=dict(type='float', default=1.0),
            kept_routes=dict(type='list', elements='str'),
            details=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib('pyroute2'), exception=PYROUTE2_IMPORT_ERROR)
    try:
        pattern = re.compile(module.params['pattern'])
    except re.error as exc:
        module.fail_json(msg='pattern: %r is not a regular expression: %s' % (module.params['pattern'], exc))
    interval = module.params['martian_interval']
    if interval < 0 or interval > 60:
        module.fail_json(msg='martian_interval: %s is not between 0 and 60 seconds' % interval)
    if not 0 < module.params['probe_timeout'] <= 30:
        module.fail_json(msg='probe_timeout: %s is not between 0 and 30 seconds' % module.params['probe_timeout'])
    try:
        check_arguments(module.params)
    except InvalidArgument as exc:
        module.fail_json(msg=str(exc))
    planned_file = None
    if module.params['persisted_sysctl_file']:
        lines = module.params['plan'].get('sysctl_lines') or []
        planned_file = (module.params['persisted_sysctl_file'], parse_sysctl_lines(lines))
    before = read_rp_drops() if interval else None
    started = time.time()

    with connect() as nl:
        links = dump_links(nl)
        rules, _raw_rules = dump_rules(nl)
        routes, _raw_routes = dump_routes(nl, links)
        partial = Snapshot(links=links, rules=rules, routes=routes, route_get={}, neighbours={}, conf={},
                           sysctl_files=[], boot=[])
        plan = module.params['plan']
        devices = module.params['devices']
        if plan:
            devices = [rail['device'] for rail in plan.get('rails', [])]
        discovered = devices is None
        if discovered:
            devices = discover(partial, pattern.search, rdma_netdevs())
        index = rule_index(rules)
        answers = {}
        targets = {}
        planned = dict((rail['device'], rail) for rail in (plan or {}).get('rails', []))
        for device in devices:
            link = links.get(device)
            if link is None:
                continue
            ips = [address.split('/')[0] for address in link.addresses]
            table = rail_table(index, ips)
            target = module.params['target'] or rail_target([r for r in routes if r.table == table],
                                                            planned.get(device))
            targets[device] = target
            for ip in ips:
                answers[(ip, target)] = lookup(nl, links, ip, target)
        probes = None
        if module.params['probe']:
            rails = []
            for device, target in targets.items():
                ips = [address.split('/')[0] for address in links[device].addresses]
                answer = answers.get((ips[0], target)) if ips else None
                if answer and answer.gateway and answer.dev == device:
                    rails.append((device, links[device].index, ips[0], answer.gateway))
            sent = probe(nl, rails, module.params['probe_timeout'], local_addresses(links))
            probes = dict((device, {'source': source, 'gateway': gateway, 'error': sent[device]})
                          for device, _index, source, gateway in rails)
        neighbours = read_neighbours(nl, links)

    if interval:
        time.sleep(max(0.0, interval - (time.time() - started)))
    after = read_rp_drops() if interval else None
    martians = None
    if before is not None and after is not None:
        martians = {'before': before, 'after': after, 'interval': interval}
    snapshot = partial._replace(route_get=answers, neighbours=neighbours, conf=read_conf(devices),
                                sysctl_files=read_sysctl_files(planned_file), martians=martians,
                                boot=read_boot(module, links, rules, routes, devices, plan) if module.params['boot'] else [],
                                probes=probes)
    rails, findings, summary = audit(snapshot, devices, plan=plan, targets=targets,
                                     kept_routes=module.params['kept_routes'])
    if not module.params['details']:
        rails = [dict((key, rail[key]) for key in BRIEF if key in rail) for rail in rails]
    ran = [check for check in CHECKS if check != 'kept_routes' or module.params['kept_routes'] is not None]
    module.exit_json(changed=False, rails=rails, findings=findings, checks=ran, summary=summary,
                     devices=list(devices), discovered=discovered)


if __name__ == '__main__':
    main()
