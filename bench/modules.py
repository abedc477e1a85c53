"""The modules alone at scale: rail_rule and rail_table with N rules or routes, against `ip`.

Each measurement gets a fresh namespace holding eight rail NICs (veth pairs) (ib0..ib7 with their
rail addresses, up). N rules are the plan's rules for eight rails carrying N/8 - 1 VF sources
each (one rule per rail address and per VF source); N routes are one /32 route per VF source
in its rail's table. The same objects are created four ways, each timed as whole processes:

    ours      one module process (`python -m ...rail_rule`), fresh, then again with no change
    ip        N `ip -n NS rule add ...` (or `route add`) processes, one after the other
    batch     one `ip -n NS -batch -` reading the N commands

and every way must leave the namespace with the same N rules or routes, or the figure is refused.
"""

import json
import os
import subprocess
import time

from lab import roce_lab

RAILS = 8
TABLE_BASE = 100
PRIORITY_BASE = 1000
PROTO_STATIC = 4


def namespace_name(tag):
    return 'rmbench%d%s' % (os.getpid() % 100000, tag)


def rails(count):
    """Eight rails whose rules number exactly `count` (one rule per rail address and VF source)."""
    per_rail = count // RAILS
    if per_rail < 1 or per_rail * RAILS != count or per_rail > 250:
        raise ValueError('the number of rules must be a multiple of 8 between 8 and 2000, got %d' % count)
    found = []
    for k in range(1, RAILS + 1):
        found.append({
            'device': 'ib%d' % (k - 1), 'address': '10.0.%d.14' % k, 'table': TABLE_BASE + k,
            'priority': PRIORITY_BASE + k,
            'sources': ['10.%d.%d.%d' % (k, (j + 1) // 250, (j + 1) % 250 + 1) for j in range(per_rail - 1)],
        })
    return found


def rule_objects(count):
    """[(priority, source, table)] of `count` rules."""
    return [(rail['priority'], source, rail['table'])
            for rail in rails(count) for source in [rail['address']] + rail['sources']]


def route_objects(count):
    """[(destination /32, device, table)] of `count` routes: one per rail address and VF source."""
    return [(source + '/32', rail['device'], rail['table'])
            for rail in rails(count) for source in [rail['address']] + rail['sources']]


def rule_commands(count):
    return ['rule add from %s lookup %d pref %d proto static' % (src, table, prio)
            for prio, src, table in rule_objects(count)]


def route_commands(count):
    return ['route add %s dev %s table %d metric 100 proto static scope link' % (dst, dev, table)
            for dst, dev, table in route_objects(count)]


def rule_args(count):
    return {'rules': [{'priority': prio, 'from': src, 'table': table} for prio, src, table in rule_objects(count)],
            'priority_range': {'start': PRIORITY_BASE, 'end': PRIORITY_BASE + 999}, 'purge': True}


def table_args(count):
    tables = {}
    for dst, dev, table in route_objects(count):
        tables.setdefault(table, []).append({'dst': dst, 'dev': dev, 'metric': 100, 'scope': 'link'})
    return {'tables': [{'table': table, 'routes': routes} for table, routes in sorted(tables.items())],
            'purge': True}


def make_namespace(name):
    """A namespace with the eight rail NICs (veth pairs, both ends inside), up, each with its rail address."""
    delete_namespace(name)
    roce_lab.run(['ip', 'netns', 'add', name])
    commands = ['link set lo up']
    for rail in rails(RAILS):
        commands += ['link add %s type veth peer name %s-peer' % (rail['device'], rail['device']),
                     'addr add %s/24 dev %s' % (rail['address'], rail['device']),
                     'link set %s-peer up' % rail['device'], 'link set %s up' % rail['device']]
    roce_lab.ip_batch(name, commands)


def delete_namespace(name):
    subprocess.run(['ip', 'netns', 'del', name], capture_output=True, check=False)


def state(name, kind):
    """The rules in our priority range or the routes of our tables, as `ip` prints them."""
    if kind == 'rules':
        lines = roce_lab.ip(name, '-4', 'rule', 'show').splitlines()
        return sorted(line for line in lines if PRIORITY_BASE <= int(line.split(':')[0]) < PRIORITY_BASE + 1000)
    lines = roce_lab.ip(name, '-4', 'route', 'show', 'table', 'all').splitlines()
    tables = tuple(' table %d ' % rail['table'] for rail in rails(RAILS))
    return sorted(line for line in lines if any(table in line for table in tables))


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def run_module(name, python, collections, module, args):
    """One module process inside the namespace, as Ansible's pipelined call would start it."""
    payload = json.dumps({'ANSIBLE_MODULE_ARGS': args})
    env = dict(os.environ, PYTHONPATH=collections)
    proc = subprocess.run(['ip', 'netns', 'exec', name, python, '-m',
                           'ansible_collections.roce.multirail.plugins.modules.' + module],
                          input=payload, capture_output=True, text=True, env=env, check=False)
    result = json.loads(proc.stdout) if proc.stdout.strip().startswith('{') else {'failed': True, 'msg': proc.stderr}
    if result.get('failed'):
        raise RuntimeError('%s failed: %s' % (module, result.get('msg')))
    return result


def measure(kind, count, python, collections):
    """{'ours_fresh', 'ours_noop', 'ip', 'batch'} seconds for N rules or routes, each on a fresh namespace."""
    module, args, commands = (('rail_rule', rule_args(count), rule_commands(count)) if kind == 'rules'
                              else ('rail_table', table_args(count), route_commands(count)))
    name = namespace_name(kind[0])
    figures, states = {}, {}
    try:
        make_namespace(name)
        figures['ours_fresh'] = timed(lambda: run_module(name, python, collections, module, args))
        states['ours'] = state(name, kind)
        figures['ours_noop'] = timed(lambda: run_module(name, python, collections, module, args))
        make_namespace(name)

        def one_by_one():
            for command in commands:
                roce_lab.ip(name, *command.split())
        figures['ip'] = timed(one_by_one)
        states['ip'] = state(name, kind)
        make_namespace(name)
        figures['batch'] = timed(lambda: roce_lab.ip_batch(name, commands))
        states['batch'] = state(name, kind)
    finally:
        delete_namespace(name)
    if len(states['ours']) != count or states['ip'] != states['ours'] or states['batch'] != states['ours']:
        raise RuntimeError('%d %s: the ways disagree: ours %d, ip %d, batch %d objects'
                           % (count, kind, len(states['ours']), len(states['ip']), len(states['batch'])))
    return figures
