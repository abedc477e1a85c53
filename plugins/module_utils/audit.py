# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with a multi-rail host: pure checks over a snapshot of its state.

rail_audit gathers a Snapshot (links, rules, routes, `ip route get` answers,
sysctls, sysctl.d files, what sets up the rails at boot, martian counters) and
audit() turns it into per-rail facts and findings. Every finding says what is
wrong, why it matters and how to fix it, in words an operator without kernel
knowledge can act on. Nothing here touches the host.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.roce.multirail.plugins.module_utils.routes import Link, main_gateway_routes
from ansible_collections.roce.multirail.plugins.module_utils.rules import Rule
from ansible_collections.roce.multirail.plugins.module_utils.sysctl import effective

CHECKS = ('rule', 'rule_order', 'table', 'gateway', 'route_get', 'arp', 'rp_filter', 'accept_local',
          'duplicate', 'link', 'mtu', 'sysctl_files', 'boot', 'martians', 'kept_routes')
SYSCTL_KEYS = ('arp_ignore', 'arp_announce', 'rp_filter', 'accept_local')
MAIN_PRIORITY = 32766
# A documentation address (RFC 5737): only ever looked up, never sent to.
DEFAULT_TARGET = '198.51.100.1'
OUR_SYSCTL_FILE = '99-roce-multirail.conf'


class RouteAnswer(NamedTuple):
    """The kernel's answer to `ip route get TARGET from SOURCE`."""
    dev: str = ''
    table: int = 0
    gateway: str = ''
    error: str = ''


class Snapshot(NamedTuple):
    links: Dict[str, Link]
    rules: List[Rule]
    routes: list                           # routes.Route of every IPv4 table
    route_get: Dict[Tuple[str, str], RouteAnswer]     # (source, target) -> answer
    neighbours: Dict[Tuple[str, str], str]            # (dev, ip) -> state name
    conf: Dict[Tuple[str, str], int]                  # (target, key) -> value
    sysctl_files: List[Tuple[str, List[Tuple[str, str]]]]   # (path, [(key, value)]) in load order
    boot: list                        # boot.Finding: what sets up each rail at boot, see boot.boot_findings
    martians: Optional[Dict[str, int]] = None   # {'before', 'after', 'interval'}
    probes: Optional[Dict[str, Dict[str, str]]] = None   # device -> {source, gateway, error ('' = replied)}


class Finding(NamedTuple):
    check: str
    device: Optional[str]
    severity: str          # error | warning | info
    message: str
    hint: str


def target_for(table_routes):
    """An address to look up for a rail: inside its widest gateway route, off every rail subnet."""
    widest = None
    for route in table_routes:
        if route.gateway:
            net = ipaddress.ip_network(route.dst)
            if widest is None or net.prefixlen < widest.prefixlen:
                widest = net
    if widest is None or widest.prefixlen == 0:
        return DEFAULT_TARGET
    return str(widest.network_address + widest.num_addresses - 2) if widest.num_addresses > 2 \
        else str(widest.network_address)


def is_flat(planned_rail):
    """A planned rail without a gateway route: a flat fabric, its subnet is all there is to reach."""
    return planned_rail is not None and not any(r.get('gateway') for r in planned_rail.get('routes', []))


def rail_target(table_routes, planned_rail=None):
    """The address `ip route get` looks up for a rail (never sent to)."""
    if is_flat(planned_rail):
        subnet = ipaddress.ip_network(planned_rail['subnet'])
        return str(subnet.network_address + max(subnet.num_addresses - 2, 0))
    return target_for(table_routes)


def _ip(address):
    return address.split('/')[0]


class RuleIndex:
    """The IPv4 rules of a host indexed by source prefix, each prefix parsed once.

    A host with thousands of sources has thousands of rules: finding an
    address's rules by parsing every rule's prefix made the audit quadratic.
    Here an address is matched against each prefix length in use (at most
    33), so a lookup costs the same whatever the number of rules. Results
    keep the kernel's order of the rules.
    """

    def __init__(self, rules):
        self.rules = list(rules)
        self.by_length = {}         # prefix length -> {network as int: [(position, rule)]}
        self.from_all = []          # (position, rule) of the rules without a source
        for position, rule in enumerate(self.rules):
            if rule.family != 4 or rule.dst or rule.iif or rule.oif or rule.fwmask or rule.extra:
                continue
            if not rule.src:
                self.from_all.append((position, rule))
                continue
            net = ipaddress.IPv4Network(rule.src, strict=False)
            self.by_length.setdefault(net.prefixlen, {}).setdefault(int(net.network_address), []).append(
                (position, rule))
        self.lengths = sorted(self.by_length)
        self._found = {}

    def selecting(self, ip):
        """Every rule with no selector but its source that selects packets from `ip`, in kernel order."""
        found = self._found.get(ip)
        if found is None:
            addr = int(ipaddress.IPv4Address(ip))
            hits = list(self.from_all)
            for length in self.lengths:
                hits += self.by_length[length].get(addr & _mask(length), ())
            found = self._found[ip] = [rule for _position, rule in sorted(hits, key=lambda hit: hit[0])]
        return found

    def source_rules(self, ip):
        """Lookup rules that select every packet from `ip` (a source, no other selector), in kernel order."""
        return [rule for rule in self.selecting(ip) if rule.src and rule.action == 'lookup']


def _mask(length):
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


def rule_index(rules):
    """A RuleIndex of `rules` (built once, then every address's lookup is cheap); an index is returned as is."""
    return rules if isinstance(rules, RuleIndex) else RuleIndex(rules)


def source_rules(rules, ip):
    """Lookup rules that select every packet from `ip` (no other selector). rules: a list or a RuleIndex."""
    return list(rule_index(rules).source_rules(ip))


def own_rules(rules, ip):
    """The source rules of `ip` that look up a table of their own (not main, default or local)."""
    return [r for r in rule_index(rules).source_rules(ip) if r.table not in (253, 254, 255)]


def rail_rule_for(rules, ip):
    """The rule that decides for traffic from `ip`: its own source rule with the lowest priority."""
    candidates = own_rules(rules, ip)
    return min(candidates, key=lambda r: r.priority) if candidates else None


def rail_table(rules, ips):
    """The rail's table: that of the last of its addresses that has a rule, None without one."""
    index = rule_index(rules)
    table = None
    for ip in ips:
        rule = rail_rule_for(index, ip)
        if rule is not None:
            table = rule.table
    return table


def _covers(routes, target):
    addr = ipaddress.ip_address(target)
    return [r for r in routes if r.type == 1 and addr in ipaddress.ip_network(r.dst)]


def local_addresses(links):
    """{address: NIC} of every IPv4 address the host owns, on any NIC."""
    found = {}
    for name, link in sorted(links.items(), key=lambda item: item[1].index):
        for address in link.addresses:
            found.setdefault(_ip(address), name)
    return found


def discover(snapshot, pattern_match, rdma_devices=()):
    """Rails when none are named: NICs with a source rule, RDMA netdevs, names matching the pattern."""
    found = []
    index = rule_index(snapshot.rules)
    for name, link in sorted(snapshot.links.items(), key=lambda item: item[1].index):
        if name == 'lo':
            continue
        ips = [_ip(a) for a in link.addresses]
        has_rule = any(own_rules(index, ip) for ip in ips)
        if has_rule or name in rdma_devices or pattern_match(name):
            found.append(name)
    return found


def audit(snapshot, devices, plan=None, targets=None, kept_routes=None):
    """Per-rail facts and findings for `devices`. targets: {device: address} overrides the lookups.

    kept_routes: main_gateway_routes() of the host at an earlier moment; each
    one that is gone now is an error.
    """
    findings = []
    rails = []
    tables_by_device = {}
    addresses_seen = {}
    planned = dict((r['device'], r) for r in (plan or {}).get('rails', []))
    index = rule_index(snapshot.rules)
    routes_of = {}
    for route in snapshot.routes:
        routes_of.setdefault(route.table, []).append(route)
    local = local_addresses(snapshot.links)

    def add(check, device, severity, message, hint):
        findings.append(Finding(check, device, severity, message, hint))

    for device in devices:
        link = snapshot.links.get(device)
        if link is None:
            add('link', device, 'error', '%s does not exist on this host' % device,
                'check the device name in the inventory (ip -br link)')
            continue
        ips = [_ip(a) for a in link.addresses]
        rail = {'device': device, 'addresses': list(link.addresses), 'state': 'up' if link.up else 'down',
                'carrier': link.carrier, 'mtu': link.mtu, 'table': None, 'rules': [], 'routes': [],
                'route_get': [], 'sysctls': {}}
        if snapshot.probes and device in snapshot.probes:
            rail['probe'] = dict(snapshot.probes[device])
        rails.append(rail)
        _check_link(add, link)
        if not ips:
            add('rule', device, 'error', '%s has no IPv4 address, so it cannot carry RoCEv2 traffic' % device,
                'give it its address (source_routing_rails: address) and apply the role')
        for ip in ips:
            addresses_seen.setdefault(ip, []).append(device)
        for ip in ips:
            _check_rules(add, index, device, ip, rail, planned.get(device))
        table = rail['table'] = rail_table(index, ips)
        table_routes = list(routes_of.get(table, ())) if table is not None else []
        flat = is_flat(planned.get(device))
        target = (targets or {}).get(device) or rail_target(table_routes, planned.get(device))
        if table is not None:
            tables_by_device[device] = table
            rail['routes'] = [r.render() for r in table_routes]
            _check_table(add, snapshot, device, link, table, table_routes, target, flat, local)
        shadowing = {}
        for ip in ips:
            _check_shadow(add, index, routes_of, device, ip, rail_rule_for(index, ip), target, shadowing)
            _check_route_get(add, snapshot, device, ip, target, rail)
        rail['sysctls'] = _check_sysctls(add, snapshot, device)

    _check_duplicates(add, addresses_seen, tables_by_device)
    _check_mtu(add, rails)
    _check_sysctl_files(add, snapshot, [r['device'] for r in rails])
    for found in snapshot.boot:
        add(*found)
    _check_martians(add, snapshot)
    if kept_routes:
        _check_kept_routes(add, snapshot, kept_routes)
    order = {'error': 0, 'warning': 1, 'info': 2}
    findings.sort(key=lambda f: (order[f.severity], CHECKS.index(f.check), f.device or ''))
    errors = sum(1 for f in findings if f.severity == 'error')
    warnings = sum(1 for f in findings if f.severity == 'warning')
    status = 'error' if errors else ('warning' if warnings else 'ok')
    summary = {'status': status, 'errors': errors, 'warnings': warnings,
               'infos': len(findings) - errors - warnings, 'rails': len(rails)}
    return rails, [f._asdict() for f in findings], summary


def _check_link(add, link):
    if not link.up:
        add('link', link.name, 'error', '%s is administratively down' % link.name,
            'bring it up (ip link set %s up) and find out why it was down' % link.name)
    elif not link.carrier:
        add('link', link.name, 'error', '%s has no carrier: the cable, transceiver or switch port is down'
            % link.name, 'check the cable and the leaf switch port of %s' % link.name)


def _check_rules(add, index, device, ip, rail, planned):
    """The rule for one rail address: present, as planned, before main."""
    candidates = own_rules(index, ip)
    rail['rules'] += [{'priority': r.priority, 'from': r.src, 'table': r.table, 'text': r.render()}
                      for r in candidates]
    rule = min(candidates, key=lambda r: r.priority) if candidates else None
    if rule is None:
        add('rule', device, 'error',
            'no rule sends traffic from %s to a table of its own, so it follows the main table and may leave '
            'through another NIC' % ip,
            'add one (ip rule add from %s lookup <table> pref <priority>) or apply the source_routing role' % ip)
        return
    if planned is not None and (rule.priority, rule.table) != (planned['priority'], planned['table']):
        add('rule', device, 'error', 'the rule for %s is "%s", the plan wants priority %d and table %d'
            % (ip, rule.render(), planned['priority'], planned['table']), 'apply the source_routing role')
    if rule.priority >= MAIN_PRIORITY:
        add('rule_order', device, 'error',
            'the rule for %s has priority %d, at or after the main table\'s rule (32766): main decides first'
            % (ip, rule.priority), 'give it a priority below 32766, e.g. 1000 + rail number')


def _check_shadow(add, index, routes_of, device, ip, rule, target, shadowing):
    """An earlier rule that catches traffic from `ip` to `target` before the rail's own `rule`.

    shadowing: {(table, target): whether a lookup of that table catches the target}, kept across the
    addresses of a rail so each table is judged once.
    """
    if rule is None or rule.priority >= MAIN_PRIORITY:
        return
    for other in index.selecting(ip):
        if other.priority >= rule.priority or other.table == 255:
            continue
        if other.action in ('blackhole', 'unreachable', 'prohibit'):
            shadows = True
        elif other.action == 'lookup' and other.table != rule.table:
            key = (other.table, target)
            if key not in shadowing:
                shadowing[key] = other.table == 254 or bool(_covers(routes_of.get(other.table, ()), target))
            shadows = shadowing[key]
        else:
            shadows = False
        if shadows:
            add('rule_order', device, 'error', 'rule "%s" comes before "%s" and catches traffic from %s first'
                % (other.render(), rule.render(), ip),
                'move the earlier rule after priority %d or remove it' % rule.priority)
            return


def _check_table(add, snapshot, device, link, table, table_routes, target, flat=False, local=None):
    if not table_routes:
        add('table', device, 'error', 'table %d, which the rule for %s looks up, is empty' % (table, device),
            'add the rail\'s routes to table %d or apply the source_routing role' % table)
        return
    for route in table_routes:
        if route.dev and route.dev != device:
            add('table', device, 'error', 'table %d routes "%s" through %s, not %s'
                % (table, route.render(), route.dev, device), 'make every route of table %d use dev %s'
                % (table, device))
    covering = _covers(table_routes, target)
    if flat:
        if not covering:
            add('table', device, 'error', 'table %d has no route to the rail\'s subnet (nothing covers %s)'
                % (table, target), 'add the subnet route of %s to table %d' % (device, table))
        return
    covering = [r for r in covering if r.gateway]
    if not covering:
        add('table', device, 'error', 'table %d has no route via a gateway to the fabric (nothing covers %s)'
            % (table, target), 'add the default route (or the fabric prefix) via %s\'s gateway to table %d'
            % (device, table))
        return
    route = max(covering, key=lambda r: ipaddress.ip_network(r.dst).prefixlen)
    gateway = ipaddress.ip_address(route.gateway)
    if not route.onlink and not any(gateway in ipaddress.ip_interface(a).network for a in link.addresses):
        add('gateway', device, 'error', 'gateway %s of table %d is in none of %s\'s subnets (%s)'
            % (route.gateway, table, device, ', '.join(link.addresses) or 'no address'),
            'use the gateway of %s\'s own subnet' % device)
    owner = (local or {}).get(route.gateway)
    if owner is not None:
        add('gateway', device, 'error', 'gateway %s of table %d is an address of this host (on %s): the host '
            'answers its own pings and %s reaches nothing through it' % (route.gateway, table, owner, device),
            'use the address of the leaf switch of %s as its gateway' % device)
        return
    state = snapshot.neighbours.get((device, route.gateway))
    probe = (snapshot.probes or {}).get(device)
    if probe and probe['gateway'] == route.gateway and probe['error']:
        # A gateway is alive only on an answer obtained now: the probe dropped the cached neighbour
        # entry first, so a neighbour state after it is a fresh ARP answer, never an old one.
        if state in ('REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT'):
            add('gateway', device, 'error', 'gateway %s answers ARP on %s but not a ping from %s (%s)'
                % (route.gateway, device, probe['source'], probe['error']),
                'check the leaf of %s; a leaf that filters ICMP to its own address must let the echo from '
                '%s through' % (device, probe['source']))
        else:
            add('gateway', device, 'error', 'gateway %s is not reachable from %s on %s: %s, neighbour state %s'
                % (route.gateway, probe['source'], device, probe['error'], state or 'none'),
                'check the leaf switch of %s and its gateway address' % device)
    elif state in ('FAILED', 'INCOMPLETE'):
        add('gateway', device, 'error', 'gateway %s does not answer ARP on %s (neighbour state %s)'
            % (route.gateway, device, state), 'check the leaf switch of %s and its gateway address' % device)


def _check_route_get(add, snapshot, device, ip, target, rail):
    answer = snapshot.route_get.get((ip, target))
    if answer is None:
        return
    ok = not answer.error and answer.dev == device
    rail['route_get'].append({'source': ip, 'target': target, 'dev': answer.dev, 'table': answer.table,
                              'ok': ok})
    if answer.error:
        add('route_get', device, 'error', 'ip route get %s from %s fails: %s' % (target, ip, answer.error),
            'give %s a rule and a table with a route to the fabric' % ip)
    elif answer.dev != device:
        add('route_get', device, 'error', 'traffic from %s to %s leaves through %s, not %s (table %s)'
            % (ip, target, answer.dev, device, {254: 'main', 253: 'default', 0: 'main'}.get(answer.table, answer.table)),
            'add a rule from %s to %s\'s table, with a route via %s\'s gateway' % (ip, device, device))


def _check_sysctls(add, snapshot, device):
    values = {}
    for key in SYSCTL_KEYS:
        all_value = snapshot.conf.get(('all', key))
        dev_value = snapshot.conf.get((device, key))
        if all_value is None or dev_value is None:
            continue
        value, rule, side = effective(key, all_value, dev_value)
        values[key] = {'value': value, 'all': all_value, 'dev': dev_value, 'rule': rule, 'decided_by': side}
    origin = {'all': ', from net.ipv4.conf.all, which wins over %s' % device, 'dev': '',
              'both': ', set on both net.ipv4.conf.all and %s' % device}
    name = device.replace('.', '/')
    # The kernel's arp_ignore(): 1 and 2 answer only for the NIC's own addresses, 8 answers nothing,
    # and 3, the reserved 4-7 and anything above 8 answer like 0.
    arp_ignore = values.get('arp_ignore')
    if arp_ignore and arp_ignore['value'] == 8:
        add('arp', device, 'error', '%s answers no ARP request at all (arp_ignore 8%s): nothing on the fabric can '
            'resolve its address' % (device, origin[arp_ignore['decided_by']]),
            'sysctl -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.%s.arp_ignore=1' % name)
    elif arp_ignore and arp_ignore['value'] not in (1, 2):
        add('arp', device, 'error', '%s answers ARP for addresses of other NICs (arp_ignore %d%s): ARP flux sends '
            'replies for one rail to another' % (device, arp_ignore['value'], origin[arp_ignore['decided_by']]),
            'sysctl -w net.ipv4.conf.%s.arp_ignore=1' % name)
    # arp_announce: 2 picks the outgoing NIC's own address; 1, and 0 or any other value, may not.
    if 'arp_announce' in values and values['arp_announce']['value'] != 2:
        add('arp', device, 'warning', '%s may announce other NICs\' addresses in its ARP requests '
            '(arp_announce %d)' % (device, values['arp_announce']['value']),
            'sysctl -w net.ipv4.conf.%s.arp_announce=2' % name)
    if 'rp_filter' in values and values['rp_filter']['value'] == 1:
        add('rp_filter', device, 'error', 'strict reverse-path filtering drops replies that arrive on %s but '
            'would be routed out another NIC (rp_filter 1%s)' % (device, origin[values['rp_filter']['decided_by']]),
            'sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.%s.rp_filter=2' % device.replace('.', '/'))
    if 'accept_local' in values and values['accept_local']['value'] == 0:
        add('accept_local', device, 'warning', '%s drops packets whose source is one of this host\'s own '
            'addresses (accept_local 0): rail-to-rail traffic on one host fails' % device,
            'sysctl -w net.ipv4.conf.all.accept_local=1')
    return values


def _check_duplicates(add, addresses_seen, tables_by_device):
    for ip, owners in sorted(addresses_seen.items()):
        if len(owners) > 1:
            for device in owners:
                add('duplicate', device, 'error', 'address %s is on %s' % (ip, ' and '.join(owners)),
                    'give every rail its own address')
    by_table = {}
    for device, table in tables_by_device.items():
        by_table.setdefault(table, []).append(device)
    for table, owners in sorted(by_table.items()):
        if len(owners) > 1:
            for device in owners:
                add('duplicate', device, 'error', 'table %d serves %s: their traffic shares one set of routes'
                    % (table, ' and '.join(owners)), 'give every rail its own table')


def _check_mtu(add, rails):
    mtus = [r['mtu'] for r in rails]
    if len(set(mtus)) <= 1:
        return
    common = max(set(mtus), key=mtus.count)
    for rail in rails:
        if rail['mtu'] != common:
            add('mtu', rail['device'], 'warning', '%s has MTU %d, the other rails %d: collectives run at the '
                'smallest' % (rail['device'], rail['mtu'], common), 'set the same MTU on every rail (mtu:)')


def _check_sysctl_files(add, snapshot, devices):
    """Keys a later file sets again at boot, and strict rp_filter left in a file."""
    watched = ['net.ipv4.conf.%s.%s' % (t.replace('.', '/'), k) for t in ['all'] + list(devices)
               for k in SYSCTL_KEYS]
    ours = {}
    last = {}
    for path, entries in snapshot.sysctl_files:
        for key, value in entries:
            # sysctl.d accepts net/ipv4/conf/all/rp_filter and globs like net.ipv4.conf.*.rp_filter.
            # With '/' as the first separator the key is a path: its dots belong to names (eth0.100).
            if '/' in key and ('.' not in key or key.index('/') < key.index('.')):
                pattern = key.translate(str.maketrans('/.', './'))
            else:
                pattern = key
            for name in watched:
                if fnmatch.fnmatchcase(name, pattern):
                    last[name] = (path, value)
                    if path.endswith('/' + OUR_SYSCTL_FILE):
                        ours[name] = value
    for name, value in sorted(ours.items()):
        path, final = last[name]
        if not path.endswith('/' + OUR_SYSCTL_FILE) and final != value:
            add('sysctl_files', _device_of(name, devices), 'error', '%s sets %s = %s after %s sets it to %s: at '
                'boot the later file wins' % (path, name, final, OUR_SYSCTL_FILE, value),
                'remove the key from %s, or give it the same value' % path)
    strict = last.get('net.ipv4.conf.all.rp_filter')
    if strict and strict[1] == '1' and 'net.ipv4.conf.all.rp_filter' not in ours:
        add('sysctl_files', None, 'error', '%s sets net.ipv4.conf.all.rp_filter = 1: after a reboot every rail '
            'whose own rp_filter is not 2 is strict (the kernel takes the larger of all and the rail)' % strict[0],
            'set it to 2 there, or apply the source_routing role, which persists 2')


def _device_of(name, devices):
    part = name.split('.')[3].replace('/', '.')
    return part if part in devices else None


def _check_martians(add, snapshot):
    counters = snapshot.martians
    if not counters:
        return
    delta = counters['after'] - counters['before']
    if delta > 0:
        add('martians', None, 'warning', 'the kernel dropped %d packets as martians or by reverse-path '
            'filtering in %.1f s' % (delta, counters['interval']),
            'look at the rp_filter and route_get findings; enable log_martians to see which ones')


def _check_kept_routes(add, snapshot, kept_routes):
    now = set(main_gateway_routes(snapshot.routes))
    for text in kept_routes:
        if text in now:
            continue
        words = text.split()
        device = words[words.index('dev') + 1] if 'dev' in words[:-1] else None
        add('kept_routes', device, 'error',
            'the main table\'s route "%s" is gone: the host had it before this run changed anything' % text,
            'a network stack that activates a NIC removes the routes of that NIC its profile or file does not '
            'hold: add the route to it (nmcli connection modify <profile> +ipv4.routes ..., a [Route] section), '
            'or route that traffic through the management NIC')
