"""A multi-rail RoCE host built from network namespaces, on one machine, as root.

A lab host is a namespace HOST holding rail NICs ib0..ib{N-1} (veth ends).
Each rail's gateway lives in a leaf namespace HOST-l<k>, and a peer namespace
HOST-p owning 10.0.99.99 sits behind every leaf, so each rail has a real,
independent path to the peer:

    textbook  rail i owns 10.0.i.14/24, leaf HOST-l<i> holds 10.0.i.1/24
    shared    rails 2k-1 and 2k own 10.0.k.14/24 and 10.0.k.16/24; both sit on
              a bridge in leaf HOST-l<k>, which holds 10.0.k.1/24

    HOST ib0 ── to-ib0 HOST-l1 to-peer ── to-l1 ┐
    HOST ib1 ── to-ib1 HOST-l2 to-peer ── to-l2 ┤ HOST-p  10.0.99.99/32 on lo
    ...                                         ┘ (transit 10.255.k.0/30)

The peer routes every rail subnet back through that subnet's leaf: a packet
from rail i's address is answered through rail i's leaf. By default the host
starts in the state of a freshly installed machine ("broken"): one default
route via the first rail, strict rp_filter, ARP settings at 0. Traffic from
rail 2's address then leaves through ib0 and its replies, arriving on ib1, are
dropped (--no-broken: no default route, rp_filter 0). `prove` shows, per
source address, which NIC `ip route get` picks, whether the rail's gateway
and the peer get answers from it, and which NICs' tx_packets counters moved:
a source is ok only if its own NIC, and no other, carried the traffic (a NIC
answering ARP for another NIC's address shows up here too).

The description (create --json, show, create_host()) is what inventories and
tests are made from:
    {host, layout, destination, peer, namespaces, mtu, broken, private_etc,
     rails: [{device, address (with prefix), gateway, subnet, leaf, sources}]}

IPv6 is off in every lab namespace, so the counters move only for the traffic
sent. /etc/netns/HOST gives processes run with `ip netns exec HOST` a private
/etc/NetworkManager and /etc/sysctl.d. A record of every lab host is kept in
/run/roce-lab/HOST.json; `destroy` uses it and the naming pattern, so it also
cleans up after a half-built lab or a killed run.

Python standard library only (runs with any python3 >= 3.9); needs `ip`
(iproute2), `ping` (iputils) and `sh`.

    python tests/lab/roce_lab.py create HOST --layout textbook --rails 4 [--sources K] [--mtu M] [--json]
    python tests/lab/roce_lab.py prove HOST [--json]
    python tests/lab/roce_lab.py destroy HOST | --all-stale | --prefix P | --all
"""

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time

PEER_ADDRESS = '10.0.99.99'
LAYOUTS = ('textbook', 'shared')
STATE_DIR = '/run/roce-lab'
ETC_NETNS = '/etc/netns'
# Entries of /etc that a lab host gets privately, with the subdirectories it needs.
# (NetworkManager wants its keyfiles private; systemd-networkd reads its files as systemd-network.)
PRIVATE_ETC = {'NetworkManager': {'system-connections': 0o700}, 'sysctl.d': {}, 'systemd': {'network': 0o755},
               'netplan': {}}
HOST_ADDRESS = 14           # first rail of a subnet; the second (shared layout) gets .16
SOURCE_BASE = 40            # VF stand-ins: 10.0.k.40.. for the first rail of a subnet,
SOURCE_STRIDE = 20          # 10.0.k.60.. for the second one
MAX_SOURCES = SOURCE_STRIDE
MAX_LEAVES = 32             # rail subnets 10.0.1.0/24 .. 10.0.32.0/24 stay clear of 10.0.99.0/24
NAME_RE = re.compile(r'^[A-Za-z0-9_]{1,32}$')
PING_INTERVAL = '0.2'
PING_WAIT = '1'


class LabError(Exception):
    """A lab operation failed; the message says which host and which step."""


# ---------------------------------------------------------------- commands

def run(argv, input=None, check=True, timeout=60):
    """Run a command and return its stdout; raise LabError naming it and its stderr."""
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError('%s: %s' % (' '.join(argv), exc))
    if check and proc.returncode != 0:
        raise LabError('%s failed (rc %d): %s'
                       % (' '.join(argv), proc.returncode, (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def ns_exec(name, *argv, check=True, input=None, timeout=60):
    """Run argv inside namespace `name` (`ip netns exec`: private /etc/netns entries, fresh /sys)."""
    return run(['ip', 'netns', 'exec', name] + list(argv), input=input, check=check, timeout=timeout)


def ip(name, *argv, check=True):
    """`ip -n name argv...`."""
    return run(['ip', '-n', name] + list(argv), check=check)


def ip_json(name, *argv):
    """`ip -n name -j argv...`, parsed."""
    out = ip(name, '-j', *argv)
    return json.loads(out) if out.strip() else []


def ip_batch(name, commands):
    """Run `ip` commands (without the leading `ip`) in namespace `name`; stops at the first failure."""
    if commands:
        run(['ip', '-n', name, '-batch', '-'], input='\n'.join(commands) + '\n')


def write_sysctls(name, settings):
    """Write IPv4/IPv6 sysctls ({'net.ipv4.ip_forward': 1, ...}) inside namespace `name`, in order."""
    script = ' && '.join('echo %d > /proc/sys/%s' % (int(value), key.replace('.', '/'))
                         for key, value in settings.items())
    ns_exec(name, 'sh', '-c', script)


def read_sysctl(name, key):
    """An integer sysctl as namespace `name` sees it (keys with dots; no dotted interface names)."""
    return int(ns_exec(name, 'cat', '/proc/sys/' + key.replace('.', '/')).strip())


def netns_list():
    """Names of all network namespaces known to `ip netns`."""
    return [line.split()[0] for line in run(['ip', 'netns', 'list']).splitlines() if line.strip()]


# ---------------------------------------------------------------- the plan (pure)

def check_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LabError('lab host name %r: use 1-32 letters, digits or _ (derived names append -l<k> and -p)'
                       % (name,))


def leaf_name(host, k):
    return '%s-l%d' % (host, k)


def peer_name(host):
    return '%s-p' % host


def describe(name, layout, rails, sources=0, mtu=None, broken=True):
    """The description of a lab host, computed without touching the kernel.

    {host, layout, rails: [{device, address, gateway, subnet, leaf, sources}], peer,
     destination, namespaces, mtu, broken}; create_host() adds private_etc.
    Validates every argument first.
    """
    check_name(name)
    if layout not in LAYOUTS:
        raise LabError('lab host %s: layout %r is not one of %s' % (name, layout, ', '.join(LAYOUTS)))
    if not isinstance(rails, int) or rails < 1:
        raise LabError('lab host %s: rails must be a positive integer, got %r' % (name, rails))
    per_leaf = 2 if layout == 'shared' else 1
    if rails % per_leaf:
        raise LabError('lab host %s: the shared layout pairs rails per /24, rails must be even, got %d'
                       % (name, rails))
    leaves = rails // per_leaf
    if leaves > MAX_LEAVES:
        raise LabError('lab host %s: at most %d leaves (%d rails in the %s layout), got %d rails'
                       % (name, MAX_LEAVES, MAX_LEAVES * per_leaf, layout, rails))
    if not isinstance(sources, int) or not 0 <= sources <= MAX_SOURCES:
        raise LabError('lab host %s: sources must be between 0 and %d, got %r' % (name, MAX_SOURCES, sources))
    if mtu is not None and (not isinstance(mtu, int) or not 68 <= mtu <= 65535):
        raise LabError('lab host %s: mtu must be between 68 and 65535, got %r' % (name, mtu))
    rail_list = []
    for position in range(rails):
        k = position // per_leaf + 1          # leaf number == third octet of the subnet
        slot = position % per_leaf             # 0, or 1 for the second rail of a shared subnet
        subnet = ipaddress.ip_network('10.0.%d.0/24' % k)
        first = SOURCE_BASE + slot * SOURCE_STRIDE
        rail_list.append({
            'device': 'ib%d' % position,
            'address': '%s/24' % subnet[HOST_ADDRESS + 2 * slot],
            'gateway': str(subnet[1]),
            'subnet': str(subnet),
            'leaf': leaf_name(name, k),
            'sources': [str(subnet[first + j]) for j in range(sources)],
        })
    return {
        'host': name,
        'layout': layout,
        'rails': rail_list,
        'peer': PEER_ADDRESS,
        # What each rail table routes via its gateway (source_routing_destination).
        'destination': '10.0.0.0/16' if layout == 'shared' else '0.0.0.0/0',
        'namespaces': [name] + [leaf_name(name, k) for k in range(1, leaves + 1)] + [peer_name(name)],
        'mtu': mtu,
        'broken': bool(broken),
    }


def inventory_vars(description):
    """The role's inventory variables (design.md contract) for a described lab host."""
    return {
        'source_routing_rails': [
            {'device': r['device'], 'address': r['address'], 'gateway': r['gateway'],
             'sources': list(r['sources'])}
            for r in description['rails']],
        'source_routing_destination': description['destination'],
    }


def rail_ip(rail):
    """The rail's own address without its prefix."""
    return rail['address'].split('/')[0]


def _leaves(description):
    """[(k, leaf namespace, [rails on that leaf])] in leaf order."""
    grouped = {}
    for rail in description['rails']:
        grouped.setdefault(rail['leaf'], []).append(rail)
    return [(k, leaf, grouped[leaf]) for k, leaf in enumerate(grouped, start=1)]


def _mtu(description):
    return ['mtu', str(description['mtu'])] if description['mtu'] else []


def _transit(k):
    """(leaf side, peer side, prefix) addresses of leaf k's transit /30."""
    return '10.255.%d.1' % k, '10.255.%d.2' % k, 30


def _sysctls(description, role):
    """Sysctls of one namespace, written before its links exist so `default` reaches them."""
    settings = {'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1}
    if role == 'host':
        strict = 1 if description['broken'] else 0
        for scope in ('all', 'default'):
            # A cloud image's strict reverse-path filter, ARP flux left in place.
            settings['net.ipv4.conf.%s.rp_filter' % scope] = strict
            settings['net.ipv4.conf.%s.arp_ignore' % scope] = 0
            settings['net.ipv4.conf.%s.arp_announce' % scope] = 0
    else:
        if role == 'leaf':
            settings['net.ipv4.ip_forward'] = 1
        for scope in ('all', 'default'):
            settings['net.ipv4.conf.%s.rp_filter' % scope] = 0
    return settings


def power_cycle(description):
    """The kernel state a lab host boots into: rails up, no address, rule or route a boot would not
    have, and the sysctls of the image (tests/lab/system.py boot() calls it between down and up).

    Every policy rule but the kernel's three goes, every table but local is flushed (main too: its
    routes come back with the addresses), the rail NICs keep carrier.
    """
    name = description['host']
    commands = ['addr flush dev %s' % rail['device'] for rail in description['rails']]
    for rule in ip_json(name, '-4', 'rule', 'show'):
        if rule.get('priority') not in (0, 32766, 32767):
            commands.append('rule del priority %d' % rule['priority'])
    tables = set(route.get('table', 'main') for route in ip_json(name, '-4', 'route', 'show', 'table', 'all'))
    commands += ['route flush table %s' % table for table in sorted(tables - {'local'}, key=str)]
    ip_batch(name, commands)
    image = _sysctls(description, 'host')
    settings = dict((key, value) for key, value in image.items() if '.ipv4.' in key)
    for rail in description['rails']:
        for key in ('rp_filter', 'arp_ignore', 'arp_announce', 'accept_local'):
            settings['net.ipv4.conf.%s.%s' % (rail['device'], key)] = image.get('net.ipv4.conf.default.' + key, 0)
    settings['net.ipv4.conf.all.accept_local'] = 0
    write_sysctls(name, settings)


def _host_commands(description):
    """Rail NICs (their veth peers created straight in the leaves), addresses, up."""
    mtu = _mtu(description)
    cmds = ['link set lo up']
    for rail in description['rails']:
        dev = rail['device']
        cmds.append(' '.join(['link add', dev] + mtu + ['type veth peer name', 'to-' + dev] + mtu
                             + ['netns', rail['leaf']]))
        cmds.append('addr add %s dev %s' % (rail['address'], dev))
        cmds.extend('addr add %s/32 dev %s' % (src, dev) for src in rail['sources'])
        cmds.append('link set %s up' % dev)
    return cmds


def _peer_link_commands(description):
    mtu = _mtu(description)
    cmds = ['link set lo up', 'addr add %s/32 dev lo' % description['peer']]
    for k, leaf, _rails in _leaves(description):
        _leaf_side, peer_side, plen = _transit(k)
        cmds.append(' '.join(['link add', 'to-l%d' % k] + mtu + ['type veth peer name to-peer'] + mtu
                             + ['netns', leaf]))
        cmds.append('addr add %s/%d dev to-l%d' % (peer_side, plen, k))
        cmds.append('link set to-l%d up' % k)
    return cmds


def _peer_route_commands(description):
    """Each rail subnet back through its own leaf."""
    cmds = []
    for k, _leaf, rails in _leaves(description):
        leaf_side, _peer_side, _plen = _transit(k)
        cmds.append('route add %s via %s dev to-l%d' % (rails[0]['subnet'], leaf_side, k))
    return cmds


def _leaf_commands(description, k, rails):
    mtu = _mtu(description)
    leaf_side, peer_side, plen = _transit(k)
    gateway = '%s/%d' % (rails[0]['gateway'], ipaddress.ip_network(rails[0]['subnet']).prefixlen)
    cmds = ['link set lo up']
    if len(rails) == 1:
        port = 'to-' + rails[0]['device']
        cmds += ['addr add %s dev %s' % (gateway, port), 'link set %s up' % port]
    else:
        cmds.append(' '.join(['link add br0'] + mtu + ['type bridge']))
        for rail in rails:
            cmds.append('link set to-%s master br0 up' % rail['device'])
        cmds += ['addr add %s dev br0' % gateway, 'link set br0 up']
    cmds += ['addr add %s/%d dev to-peer' % (leaf_side, plen), 'link set to-peer up',
             'route add %s/32 via %s dev to-peer' % (description['peer'], peer_side)]
    return cmds


# ---------------------------------------------------------------- state

def _state_path(name):
    return os.path.join(STATE_DIR, name + '.json')


def _etc_path(name):
    return os.path.join(ETC_NETNS, name)


def _write_state(name, record):
    os.makedirs(STATE_DIR, exist_ok=True)
    tmp = _state_path(name) + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(tmp, _state_path(name))


def _read_state(name):
    try:
        with open(_state_path(name)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise LabError('lab host %s: unreadable record %s: %s' % (name, _state_path(name), exc))


def load(name):
    """The description of an existing lab host."""
    check_name(name)
    record = _read_state(name)
    if record is None:
        raise LabError('no lab host %s (no record %s)' % (name, _state_path(name)))
    return record['description']


def list_hosts():
    """{name: record} of every recorded lab host."""
    hosts = {}
    if os.path.isdir(STATE_DIR):
        for entry in sorted(os.listdir(STATE_DIR)):
            if entry.endswith('.json') and NAME_RE.match(entry[:-5]):
                record = _read_state(entry[:-5])
                if record is not None:
                    hosts[entry[:-5]] = record
    return hosts


# ---------------------------------------------------------------- create / destroy

def _make_private_etc(name):
    """/etc/netns/NAME/<entry> for every PRIVATE_ETC entry that exists in /etc; return the entries.

    `ip netns exec` can only bind-mount over an existing /etc/<entry>; one that is
    missing on this machine is skipped (and would only make every exec print a warning).
    """
    made = []
    for entry, subdirs in sorted(PRIVATE_ETC.items()):
        if not os.path.isdir(os.path.join('/etc', entry)):
            print('roce_lab: /etc/%s does not exist on this machine; lab host %s gets no private copy'
                  % (entry, name), file=sys.stderr)
            continue
        base = os.path.join(_etc_path(name), entry)
        os.makedirs(base, mode=0o755, exist_ok=True)
        for sub, mode in subdirs.items():
            os.makedirs(os.path.join(base, sub), exist_ok=True)
            os.chmod(os.path.join(base, sub), mode)
        made.append(entry)
    return made


def _check_private_etc(name, entries):
    """Prove that `ip netns exec NAME` really sees /etc/netns/NAME/<entry> as /etc/<entry>."""
    if not entries:
        return
    seen = ns_exec(name, 'stat', '-L', '-c', '%d:%i', *['/etc/' + e for e in entries]).split()
    for entry, inside in zip(entries, seen):
        st = os.stat(os.path.join(_etc_path(name), entry))
        if inside != '%d:%d' % (st.st_dev, st.st_ino):
            raise LabError('lab host %s: `ip netns exec` does not bind-mount %s over /etc/%s'
                           % (name, os.path.join(_etc_path(name), entry), entry))


def create_host(name, layout, rails, sources=0, mtu=None, broken=True, owner_pid=None):
    """Build a lab host and return its description; all or nothing.

    owner_pid: a process whose death makes the host stale (`destroy_stale()`), e.g.
    a test run's os.getpid(); None keeps it until destroyed by name or prefix.
    """
    description = describe(name, layout, rails, sources, mtu, broken)
    existing = set(netns_list())
    taken = [ns for ns in description['namespaces'] if ns in existing]
    if taken:
        raise LabError('lab host %s: namespace(s) %s already exist; destroy %s first'
                       % (name, ', '.join(taken), name))
    for path in (_state_path(name), _etc_path(name)):
        if os.path.lexists(path):
            raise LabError('lab host %s: %s already exists; destroy %s first' % (name, path, name))
    # The record comes first so that destroy knows everything a failed create may leave.
    _write_state(name, {'description': description, 'owner_pid': owner_pid})
    step = 'start'
    try:
        roles = {name: 'host', peer_name(name): 'peer'}
        for ns in description['namespaces']:
            step = 'add namespace %s' % ns
            run(['ip', 'netns', 'add', ns])
            step = 'sysctls of %s' % ns
            write_sysctls(ns, _sysctls(description, roles.get(ns, 'leaf')))
        step = 'rail NICs in %s' % name
        ip_batch(name, _host_commands(description))
        step = 'transit links in %s' % peer_name(name)
        ip_batch(peer_name(name), _peer_link_commands(description))
        for k, leaf, leaf_rails in _leaves(description):
            step = 'leaf %s' % leaf
            ip_batch(leaf, _leaf_commands(description, k, leaf_rails))
        step = 'routes in %s' % peer_name(name)
        ip_batch(peer_name(name), _peer_route_commands(description))
        if broken:
            step = 'default route in %s' % name
            first = description['rails'][0]
            ip(name, 'route', 'add', 'default', 'via', first['gateway'], 'dev', first['device'])
        step = 'links coming up'
        wait_links_up(description)
        step = 'private /etc in %s' % _etc_path(name)
        private = _make_private_etc(name)
        _check_private_etc(name, private)
        description['private_etc'] = private
        _write_state(name, {'description': description, 'owner_pid': owner_pid})
    except BaseException as exc:
        try:
            destroy_host(name)
        except LabError as cleanup:
            print('roce_lab: cleaning up %s after a failed create: %s' % (name, cleanup), file=sys.stderr)
        if isinstance(exc, Exception):
            raise LabError('creating lab host %s failed at step "%s" (everything made was removed): %s'
                           % (name, step, exc)) from exc
        raise
    return description


def _links_not_ready(ns):
    """Links of namespace `ns` not yet operationally up (bridge ports: not yet forwarding)."""
    waiting = []
    for link in ip_json(ns, '-d', 'link', 'show'):
        if link['ifname'] == 'lo':
            continue
        port = link.get('linkinfo', {}).get('info_slave_data', {})
        if link.get('operstate') != 'UP' or port.get('state', 'forwarding') != 'forwarding':
            waiting.append('%s/%s' % (ns, link['ifname']))
    return waiting


def wait_links_up(description, timeout=10.0):
    """Wait until every lab link carries traffic.

    veth carrier and bridge port state follow the kernel's linkwatch work, which runs
    up to a second after `link set up`; until then a bridge drops what it is given.
    """
    deadline = time.monotonic() + timeout
    while True:
        waiting = [link for ns in description['namespaces'] for link in _links_not_ready(ns)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabError('lab host %s: links still not up after %gs: %s'
                           % (description['host'], timeout, ', '.join(waiting)))
        time.sleep(0.05)


def _derived(name, candidates):
    pattern = re.compile(r'^%s(-p|-l\d+)?$' % re.escape(name))
    return [ns for ns in candidates if pattern.match(ns)]


# Where the collection keeps a namespace's lock and run hold (plugins/module_utils/lock.py).
RUN_FILES = '/run/roce-multirail'


def forget_run_files(namespace):
    """Remove the lock and hold files the collection's modules left for this namespace in the machine's /run."""
    try:
        info = os.stat(os.path.join('/run/netns', namespace))
    except OSError:
        return
    key = '%d-%d' % (info.st_dev, info.st_ino)
    for name in ('lock-%s' % key, 'run-%s.json' % key, 'run-%s.json.new' % key):
        try:
            os.unlink(os.path.join(RUN_FILES, name))
        except FileNotFoundError:
            pass


def destroy_host(name):
    """Delete every namespace of lab host `name`, /etc/netns/NAME and its record.

    Idempotent: a host that is already (partly) gone is fine. Returns the namespaces deleted.
    """
    check_name(name)
    record = _read_state(name)
    present = netns_list()
    wanted = set(_derived(name, present))
    if record:
        wanted.update(ns for ns in record['description']['namespaces'] if ns in present)
    # Leaves and peer first, the host last: a crash in between leaves a host that a re-run finds.
    order = sorted(wanted, key=lambda ns: (ns == name, ns))
    for ns in order:
        forget_run_files(ns)
        run(['ip', 'netns', 'del', ns], check=False)
    left = [ns for ns in netns_list() if ns in wanted]
    if left:
        raise LabError('lab host %s: could not delete namespace(s) %s' % (name, ', '.join(left)))
    shutil.rmtree(_etc_path(name), ignore_errors=True)
    if os.path.lexists(_etc_path(name)):
        raise LabError('lab host %s: could not remove %s' % (name, _etc_path(name)))
    for path in (_state_path(name), _state_path(name) + '.tmp'):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return order


def _alive(pid):
    return os.path.exists('/proc/%d' % pid)


def destroy_stale(prefix=None, everything=False):
    """Destroy leftovers; return the host names destroyed.

    Default: recorded hosts whose owner process has died. prefix: every lab host
    (recorded, or found by its namespaces or /etc/netns entry) whose name starts
    with prefix. everything: every recorded host.
    """
    names = set()
    for name, record in list_hosts().items():
        owner = record.get('owner_pid')
        if everything or (prefix and name.startswith(prefix)) or (
                not prefix and owner is not None and not _alive(owner)):
            names.add(name)
    if prefix:
        for ns in netns_list():
            host = re.sub(r'(-p|-l\d+)$', '', ns)
            if host.startswith(prefix) and NAME_RE.match(host):
                names.add(host)
        if os.path.isdir(ETC_NETNS):
            names.update(e for e in os.listdir(ETC_NETNS) if e.startswith(prefix) and NAME_RE.match(e))
    for name in sorted(names):
        destroy_host(name)
    return sorted(names)


# ---------------------------------------------------------------- prove

def route_get(name, source, target=PEER_ADDRESS):
    """{'dev', 'table', 'gateway'} of `ip route get target from source` in host `name`, or {'error'}."""
    try:
        routes = ip_json(name, 'route', 'get', target, 'from', source)
    except LabError as exc:
        return {'dev': None, 'table': None, 'gateway': None, 'error': str(exc)}
    route = routes[0] if routes else {}
    return {'dev': route.get('dev'), 'table': route.get('table', 'main'), 'gateway': route.get('gateway')}


def tx_packets(name, devices):
    """{device: tx_packets} for `devices` in namespace `name`, from one netlink dump."""
    stats = {link['ifname']: link['stats64']['tx']['packets'] for link in ip_json(name, '-s', 'link', 'show')}
    missing = [d for d in devices if d not in stats]
    if missing:
        raise LabError('lab host %s: no device(s) %s' % (name, ', '.join(missing)))
    return {d: stats[d] for d in devices}


def ping(name, target=PEER_ADDRESS, source=None, count=3):
    """(sent, received) of `ping [-I source] target` inside namespace `name`."""
    out = ns_exec(name, 'ping', '-n', '-q', *(['-I', source] if source else []), '-c', str(count),
                  '-i', PING_INTERVAL, '-W', PING_WAIT, target, check=False, timeout=count * 2 + 10)
    match = re.search(r'(\d+) packets transmitted, (\d+) (?:packets )?received', out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def prove_source(description, rail, source, count=3, attempts=3):
    """Does `source` (an address of `rail`) use, and only use, the rail's own NIC?

    A daemon on the host (NetworkManager announcing an address it just
    configured) may send a packet on another NIC during the window: when
    that is the only problem, the measurement is taken again, up to
    `attempts` times. Traffic that really leaves through the wrong NIC does
    so every time.
    """
    for _attempt in range(attempts):
        result = _prove_once(description, rail, source, count)
        if result['ok'] or [p for p in result['problems'] if not p.startswith('other NICs sent traffic')]:
            break
    return result


def _prove_once(description, rail, source, count):
    name = description['host']
    devices = [r['device'] for r in description['rails']]
    expected = rail['device']
    route = route_get(name, source, description['peer'])
    # Fresh neighbour caches: any ARP this exchange needs happens now, on the NICs measured,
    # and no delayed probe left over from earlier traffic lands in this window.
    for ns in description['namespaces']:
        ip(ns, 'neigh', 'flush', 'all')
    before = tx_packets(name, devices)
    # The gateway first: its ARP request for `source` is broadcast (to both NICs of a shared
    # subnet), so a NIC that answers for an address it does not own (ARP flux) shows up in tx.
    _sent, leaf_received = ping(rail['leaf'], source, count=1)
    sent, received = ping(name, description['peer'], source, count)
    after = tx_packets(name, devices)
    tx = {d: after[d] - before[d] for d in devices}
    problems = []
    if leaf_received < 1:
        problems.append('gateway %s got no reply from %s' % (rail['gateway'], source))
    if route['dev'] != expected:
        problems.append('route leaves %s, not %s' % (route['dev'], expected)
                        if route['dev'] else 'no route: %s' % route.get('error'))
    if received < count:
        problems.append('%d/%d replies' % (received, count))
    if tx[expected] < count:
        problems.append('%s sent %d packets, fewer than %d' % (expected, tx[expected], count))
    strays = ['%s sent %d' % (d, n) for d, n in tx.items() if d != expected and n]
    if strays:
        problems.append('other NICs sent traffic: ' + ', '.join(strays))
    return {
        'source': source,
        'expected_dev': expected,
        'route_dev': route['dev'],
        'route_table': route['table'],
        'route_gateway': route['gateway'],
        'ping_sent': sent,
        'ping_received': received,
        'ping_ok': received == count,
        'gateway_ping_ok': leaf_received == 1,
        'tx': tx,
        'ok': not problems,
        'problems': problems,
    }


def prove(name, count=3):
    """prove_source() for every rail address and every extra source, in rail order."""
    description = load(name)
    return [prove_source(description, rail, source, count)
            for rail in description['rails']
            for source in [rail_ip(rail)] + rail['sources']]


def format_proof(results):
    """A short table of prove() results."""
    devices = list(results[0]['tx']) if results else []
    rows = [['SOURCE', 'NIC', 'ROUTE', 'TABLE', 'PING'] + ['tx ' + d for d in devices] + ['VERDICT']]
    for r in results:
        rows.append([r['source'], r['expected_dev'], r['route_dev'] or '-', r['route_table'] or '-',
                     '%d/%d' % (r['ping_received'], r['ping_sent'])]
                    + [str(r['tx'][d]) for d in devices]
                    + ['ok' if r['ok'] else 'FAIL: ' + '; '.join(r['problems'])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)) + '  ' + row[-1] for row in rows]
    lines.append('%d/%d sources ok' % (sum(r['ok'] for r in results), len(results)))
    return '\n'.join(lines)


# ---------------------------------------------------------------- CLI

def _parser():
    parser = argparse.ArgumentParser(prog='roce_lab.py', description=__doc__.split('\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('create', help='build a lab host')
    p.add_argument('host')
    p.add_argument('--layout', choices=LAYOUTS, required=True)
    p.add_argument('--rails', type=int, required=True)
    p.add_argument('--sources', type=int, default=0, help='extra /32 source addresses per rail (VFs)')
    p.add_argument('--mtu', type=int, default=None)
    p.add_argument('--broken', action=argparse.BooleanOptionalAction, default=True,
                   help='start like a fresh machine: default route via ib0, strict rp_filter (default);'
                   ' --no-broken: no default route, rp_filter 0')
    p.add_argument('--owner-pid', type=int, default=None,
                   help='the host is stale once this process is gone (destroy --all-stale)')
    p.add_argument('--json', action='store_true', help='print the description')

    p = sub.add_parser('destroy', help='delete a lab host, or leftovers')
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument('host', nargs='?')
    group.add_argument('--all-stale', action='store_true', help='hosts whose owner process is gone')
    group.add_argument('--prefix', help='every lab host whose name starts with PREFIX')
    group.add_argument('--all', action='store_true', help='every recorded lab host')

    p = sub.add_parser('prove', help='show which NIC every source address really uses')
    p.add_argument('host')
    p.add_argument('--json', action='store_true')

    p = sub.add_parser('show', help='print the description of a lab host')
    p.add_argument('host')
    p.add_argument('--inventory', action='store_true', help='print the role inventory variables instead')

    sub.add_parser('list', help='list recorded lab hosts')
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == 'create':
            desc = create_host(args.host, args.layout, args.rails, args.sources, args.mtu, args.broken,
                               args.owner_pid)
            if args.json:
                print(json.dumps(desc, indent=2))
            else:
                print('created %s (%s, %d rails): %s'
                      % (desc['host'], desc['layout'], len(desc['rails']), ' '.join(desc['namespaces'])))
        elif args.command == 'destroy':
            if args.host:
                destroy_host(args.host)
            else:
                gone = destroy_stale(prefix=args.prefix, everything=args.all)
                print('destroyed: %s' % (' '.join(gone) or 'nothing'))
        elif args.command == 'prove':
            results = prove(args.host)
            print(json.dumps(results, indent=2) if args.json else format_proof(results))
            return 0 if results and all(r['ok'] for r in results) else 1
        elif args.command == 'show':
            desc = load(args.host)
            print(json.dumps(inventory_vars(desc) if args.inventory else desc, indent=2))
        elif args.command == 'list':
            for name, record in list_hosts().items():
                desc, owner = record['description'], record.get('owner_pid')
                state = '' if owner is None else ' owner %d%s' % (owner, '' if _alive(owner) else ' (gone)')
                print('%s %s %d rails%s' % (name, desc['layout'], len(desc['rails']), state))
    except LabError as exc:
        print('roce_lab: error: %s' % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
