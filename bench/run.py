"""make bench: this collection against what operators use today, measured side by side in one run.

Every figure comes from namespace lab hosts (tests/lab/roce_lab.py) in the broken state of a
freshly installed machine, each with a real NetworkManager running inside (tests/lab/nm.py)
that manages its rails. Three ways of making the rails route by source are timed, alternating
run by run, as whole `ansible-playbook` processes from the bench virtualenv (.venv/bench):

    ours     playbooks/site.yml (the source_routing role)
    nmcli    bench/playbooks/nmcli.yml: community.general.nmcli per rail (routes4_extended with a
             table, routing_rules4) and ansible.posix.sysctl per key
    recipe   bench/playbooks/recipe.yml: the plain ip route / ip rule / sysctl -w commands in one
             shell task (the lower bound; not idempotent)

nmcli and the recipe get the tables, rules and sysctls of the same plan as site.yml. After a
fresh converge, the next run is the no-change run. Module executions are counted per host by
the interpreter itself (a wrapper that notes every start). The modules alone at scale are in
bench/modules.py.

    python bench/run.py [--quick] [--runs N] [--out bench/results.json]
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
COLLECTIONS = os.path.join(REPO, '.venv', 'collections')
VENV = os.path.join(REPO, '.venv', 'bench')
sys.path[:0] = [os.path.join(REPO, 'tests'), COLLECTIONS, BENCH]

from lab import nm, roce_lab  # noqa: E402  pylint: disable=wrong-import-position
import modules  # noqa: E402  pylint: disable=wrong-import-position

TOOLS = ('ours', 'nmcli', 'recipe')
PLAYBOOKS = {
    'ours': os.path.join(REPO, 'playbooks', 'site.yml'),
    'nmcli': os.path.join(BENCH, 'playbooks', 'nmcli.yml'),
    'recipe': os.path.join(BENCH, 'playbooks', 'recipe.yml'),
}
FORKS = 8
FLEET_RAILS = 4
SETTLE_TIMEOUT = 60
PREFIX = 'bn%d' % (os.getpid() % 10000)
GOALS = {
    'converge_ratio_vs_nmcli': ('<=', 0.5),
    'noop_ratio_vs_nmcli': ('<=', 0.5),
    'rules_1024_ratio_vs_ip': ('<=', 0.1),
    'rail_rule_noop_1024_seconds': ('<', 0.2),
}


class BenchError(RuntimeError):
    """A measurement could not be taken, or its result is not what it must be to count."""


def say(text):
    print(text, flush=True)


def median(values):
    return round(statistics.median(values), 3)


# --- what each tool is given --------------------------------------------------------------

def plan_for(description):
    from ansible_collections.roce.multirail.plugins.filter.source_routing import source_routing_plan
    variables = roce_lab.inventory_vars(description)
    return source_routing_plan(variables['source_routing_rails'], destination=variables['source_routing_destination'])


def nmcli_vars(plan):
    """The same tables, rules and sysctls as connection settings and sysctl keys."""
    rails = []
    for rail in plan['rails']:
        routes = []
        for route in rail['routes']:
            entry = {'ip': route['dst'], 'metric': route['metric'], 'table': rail['table']}
            if route.get('gateway'):
                entry['next_hop'] = route['gateway']
            routes.append(entry)
        rails.append({
            'device': rail['device'],
            'addresses': [rail['address']] + list(rail['sources']),
            'routes': routes,
            'rules': ['priority %d from %s table %d' % (rule['priority'], rule['from'], rule['table'])
                      for rule in rail['rules']],
        })
    sysctls = []
    for line in plan['sysctl_lines']:
        name, value = (part.strip() for part in line.split('=', 1))
        sysctls.append({'name': name, 'value': value})
    return {'bench_rails': rails, 'bench_sysctls': sysctls}


def recipe_vars(plan):
    """The commands an operator writes by hand for the same plan."""
    commands = []
    for table in plan['tables']:
        for route in table['routes']:
            words = ['ip', 'route', 'replace', route['dst']]
            if route.get('gateway'):
                words += ['via', route['gateway']]
            words += ['dev', route['dev'], 'table', str(table['table']), 'metric', str(route['metric']),
                      'proto', 'static']
            if route.get('src'):
                words += ['src', route['src']]
            commands.append(' '.join(words))
    for rule in plan['rules']:
        commands.append('ip rule add from %s lookup %d pref %d proto static'
                        % (rule['from'], rule['table'], rule['priority']))
    commands.append('sysctl -q -w ' + ' '.join(line.replace(' ', '') for line in plan['sysctl_lines']))
    return {'bench_recipe': commands}


def tool_vars(tool, description):
    if tool == 'ours':
        return roce_lab.inventory_vars(description)
    plan = plan_for(description)
    return nmcli_vars(plan) if tool == 'nmcli' else recipe_vars(plan)


# --- lab hosts -------------------------------------------------------------------------------

class Fleet:
    """H lab hosts of R rails, each with NetworkManager managing its rails; removed on exit."""

    def __init__(self, tag, hosts, rails):
        self.names = ['%s%s%d' % (PREFIX, tag, i) for i in range(hosts)]
        self.rails = rails
        self.descriptions = []

    def __enter__(self):
        try:
            for name in self.names:
                self.descriptions.append(roce_lab.create_host(name, 'textbook', self.rails, owner_pid=os.getpid()))
                # A host's default route is on its management NIC; the lab's default through ib0 is held by no
                # profile, and NetworkManager activating a profile on ib0 (any tool's) takes it away.
                roce_lab.ip(name, '-4', 'route', 'del', 'default')
                nm.start(name, managed=['ib%d' % k for k in range(self.rails)])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        errors = []
        for name in self.names:
            try:
                nm.stop(name)
                roce_lab.destroy_host(name)
            except (nm.NMError, roce_lab.LabError) as error:
                errors.append(str(error))
        if errors and exc[0] is None:
            raise BenchError('cleaning up: ' + '; '.join(errors))


def rule_count(name):
    return len(roce_lab.ip(name, '-4', 'rule').splitlines())


def settle(description, deadline):
    """Wait until every rail address routes through its own NIC (NetworkManager applies late).

    Returns (the rails still wrong at the deadline, whether the first look found them all right).
    """
    first = True
    while True:
        wrong = [rail['device'] for rail in description['rails']
                 if roce_lab.route_get(description['host'], roce_lab.rail_ip(rail),
                                       description['peer'])['dev'] != rail['device']]
        if not wrong or time.monotonic() > deadline:
            return wrong, first and not wrong
        first = False
        time.sleep(0.05)


# --- ansible-playbook ----------------------------------------------------------------------

class Runner:
    """Runs one tool's playbook over a fleet, timing it and counting module executions per host."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.calls = os.path.join(workdir, 'calls')
        self.python = os.path.join(workdir, 'python')
        os.makedirs(self.calls)
        os.makedirs(self.python)

    def interpreter(self, host):
        """A python for `host` that notes each start in calls/HOST, then execs the bench venv's.

        It also points D-Bus at the host's own NetworkManager, so that nmcli, run by a module
        inside the namespace, talks to that one.
        """
        path = os.path.join(self.python, host)
        if not os.path.exists(path):
            with open(path, 'w') as handle:
                handle.write('#!/bin/sh\necho >> %s\nDBUS_SYSTEM_BUS_ADDRESS=%s exec %s "$@"\n'
                             % (os.path.join(self.calls, host), nm.bus_address(host),
                                os.path.join(VENV, 'bin', 'python')))
            os.chmod(path, 0o755)
        return path

    def env(self):
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'PYTHON')))
        env.update(ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
                   HOME=self.workdir, ANSIBLE_LOCAL_TEMP=os.path.join(self.workdir, 'local-tmp'),
                   ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_DEPRECATION_WARNINGS='0')
        return env

    def run(self, tool, fleet, forks):
        """(seconds, {host: module executions}, {host: recap}) of one playbook run."""
        hosts = {}
        for description in fleet.descriptions:
            host = description['host']
            hosts[host] = dict(tool_vars(tool, description), ansible_connection='roce.multirail.netns',
                               ansible_python_interpreter=self.interpreter(host))
            with open(os.path.join(self.calls, host), 'w'):
                pass
        inventory = os.path.join(self.workdir, 'inventory-%s.json' % tool)
        with open(inventory, 'w') as handle:
            json.dump({'all': {'children': {'roce_hosts': {'hosts': hosts}}}}, handle)
        argv = [os.path.join(VENV, 'bin', 'ansible-playbook'), '-i', inventory, PLAYBOOKS[tool],
                '--forks', str(forks)]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), cwd=self.workdir,
                              timeout=1800, check=False)
        seconds = time.perf_counter() - start
        recap = dict((m.group(1), {'changed': int(m.group(2)), 'failed': int(m.group(3))}) for m in re.finditer(
            r'^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)', proc.stdout, re.M))
        if proc.returncode != 0 or sorted(recap) != sorted(hosts):
            raise BenchError('%s: ansible-playbook exited %d:\n%s' % (tool, proc.returncode,
                                                                      (proc.stdout + proc.stderr)[-3000:]))
        calls = {}
        for host in hosts:
            with open(os.path.join(self.calls, host)) as handle:
                calls[host] = len(handle.read().splitlines())
        return seconds, calls, recap


def converge(runner, tool, fleet, forks, prove):
    """A fresh converge, then a no-change run, on a fresh fleet: one sample of each.

    Between the two, every rail address of every host must route through its own NIC (a run
    that leaves a host broken does not count), and with `prove` the first host's rails are
    proven with traffic (roce_lab.prove: pings, and which NICs' counters moved).
    """
    fresh, fresh_calls, _recap = runner.run(tool, fleet, forks)
    start = time.monotonic()
    late = False
    for description in fleet.descriptions:
        wrong, at_once = settle(description, start + SETTLE_TIMEOUT)
        if wrong:
            raise BenchError('%s: %s still routes %s through other NICs %ds after the run'
                             % (tool, description['host'], ', '.join(wrong), SETTLE_TIMEOUT))
        late = late or not at_once
    settled = time.monotonic() - start
    first = fleet.descriptions[0]['host']
    proof = roce_lab.prove(first, count=1) if prove else []
    rules = rule_count(first)
    noop, noop_calls, recap = runner.run(tool, fleet, forks)
    return {
        'fresh': fresh, 'noop': noop, 'settle': settled, 'late': late,
        'fresh_calls': sorted(set(fresh_calls.values())), 'noop_calls': sorted(set(noop_calls.values())),
        'noop_changed': max(r['changed'] for r in recap.values()),
        'proof': '%d/%d' % (sum(r['ok'] for r in proof), len(proof)) if proof else 'not run',
        'rules_added_by_noop': rule_count(first) - rules,
    }


def compare(runner, tag, hosts, rails, runs, forks, tools=TOOLS, prove=True):
    """`runs` rounds of the tools, alternating, each on a fresh fleet; the samples summarized.

    With `prove`, the first round proves its first host with traffic.
    """
    samples = dict((tool, []) for tool in tools)
    for round_ in range(runs):
        shift = round_ % len(tools)
        order = tools[shift:] + tools[:shift]
        for tool in order:
            with Fleet(tag + tool[0], hosts, rails) as fleet:
                sample = converge(runner, tool, fleet, forks, prove=prove and round_ == 0)
            samples[tool].append(sample)
            say('  H=%-2d R=%d round %d %-6s fresh %6.2fs  no-change %6.2fs  modules/host %s/%s  proof %s%s'
                % (hosts, rails, round_ + 1, tool, sample['fresh'], sample['noop'],
                   sample['fresh_calls'], sample['noop_calls'], sample['proof'],
                   '  (the rails routed right only %.2fs after the run)' % sample['settle'] if sample['late'] else ''))
    return summarize(samples)


def paired(ours, theirs):
    return median([a / b for a, b in zip(ours, theirs)])


def summarize(samples):
    out = {}
    for tool, runs in samples.items():
        out[tool] = {
            'fresh_seconds': [round(s['fresh'], 3) for s in runs],
            'noop_seconds': [round(s['noop'], 3) for s in runs],
            'fresh_median': median([s['fresh'] for s in runs]),
            'noop_median': median([s['noop'] for s in runs]),
            'settle_median': median([s['settle'] for s in runs]),
            'module_calls_fresh': runs[-1]['fresh_calls'],
            'module_calls_noop': runs[-1]['noop_calls'],
            'noop_changed': [s['noop_changed'] for s in runs],
            'proof': runs[0]['proof'],
            'rules_added_by_noop': [s['rules_added_by_noop'] for s in runs],
        }
    for other in ('nmcli', 'recipe'):
        if other not in samples or 'ours' not in samples:
            continue
        out['ratio_vs_' + other] = {
            'fresh': paired([s['fresh'] for s in samples['ours']], [s['fresh'] for s in samples[other]]),
            'noop': paired([s['noop'] for s in samples['ours']], [s['noop'] for s in samples[other]]),
        }
    return out


# --- the modules alone --------------------------------------------------------------------

def module_scale(counts, runs):
    python = os.path.join(VENV, 'bin', 'python')
    out = {}
    for kind in ('rules', 'routes'):
        out[kind] = {}
        for count in counts:
            taken = [modules.measure(kind, count, python, COLLECTIONS) for _round in range(runs)]
            entry = dict((way, [round(t[way], 4) for t in taken]) for way in taken[0])
            entry['median'] = dict((way, median(entry[way])) for way in taken[0])
            entry['ratio_fresh_vs_ip'] = paired(entry['ours_fresh'], entry['ip'])
            entry['ratio_fresh_vs_batch'] = paired(entry['ours_fresh'], entry['batch'])
            out[kind][str(count)] = entry
            say('  %-6s %5d  ours fresh %.3fs  no-change %.3fs  | %d x ip %.3fs  ip -batch %.3fs  | ratio vs ip %.3f'
                % (kind, count, entry['median']['ours_fresh'], entry['median']['ours_noop'], count,
                   entry['median']['ip'], entry['median']['batch'], entry['ratio_fresh_vs_ip']))
    return out


# --- the report ---------------------------------------------------------------------------

def machine():
    def version(argv, pattern):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except OSError:
            return None
        match = re.search(pattern, out)
        return match.group(1) if match else None

    def collection(name):
        path = os.path.join(VENV, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages',
                            'ansible_collections', name.replace('.', '/'), 'MANIFEST.json')
        with open(path) as handle:
            return json.load(handle)['collection_info']['version']

    cpu = ''
    with open('/proc/cpuinfo') as handle:
        for line in handle:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    return {
        'cpu': cpu, 'cores': os.cpu_count(), 'kernel': platform.release(), 'python': platform.python_version(),
        'ansible_core': version([os.path.join(VENV, 'bin', 'ansible'), '--version'], r'core ([\d.]+)'),
        'community_general': collection('community.general'), 'ansible_posix': collection('ansible.posix'),
        'networkmanager': version(['NetworkManager', '--version'], r'([\d.]+)'),
        'iproute2': version(['ip', '-V'], r'(iproute2[-\w.]*)'),
    }


def goals(results):
    found = {}
    for name, (op, limit) in GOALS.items():
        value = results.get(name)
        met = value is not None and (value <= limit if op == '<=' else value < limit)
        found[name] = {'value': value, 'goal': '%s %s' % (op, limit), 'met': met}
    calls = results['module_calls_per_host']
    ours = [calls[r]['ours'] for r in sorted(calls)]
    found['module_calls_per_host_equal_for_R'] = {
        'value': ours, 'goal': 'equal for every R', 'met': all(c == ours[0] for c in ours)}
    return found


def table(results):
    """The figures as Markdown, for docs/benchmarks.md; '-' where a tool was not run."""
    def cell(section, key, phase, unit):
        if key not in section:
            return '-'
        value = section[key][phase + '_median'] if unit else section[key][phase]
        return '%.2f%s' % (value, unit)

    lines = ['| case | ours | nmcli + sysctl | recipe | ours / nmcli | ours / recipe |', '|---|---|---|---|---|---|']
    cases = [('1 host, R=%s' % r, results['single_host'][r]) for r in sorted(results['single_host'], key=int)]
    cases += [('%s hosts, R=%d, forks %d' % (h, FLEET_RAILS, FORKS), results['fleet'][h])
              for h in sorted(results['fleet'], key=int)]
    for label, section in cases:
        for phase in ('fresh', 'noop'):
            lines.append('| %s, %s | %s | %s | %s | %s | %s |' % (
                label, 'fresh converge' if phase == 'fresh' else 'no-change run',
                cell(section, 'ours', phase, ' s'), cell(section, 'nmcli', phase, ' s'),
                cell(section, 'recipe', phase, ' s'), cell(section, 'ratio_vs_nmcli', phase, ''),
                cell(section, 'ratio_vs_recipe', phase, '')))
    lines += ['', '| module executions per host | ours | nmcli + sysctl | recipe |', '|---|---|---|---|']
    for rails, calls in sorted(results['module_calls_per_host'].items(), key=lambda item: int(item[0])):
        lines.append('| R=%s, fresh / no-change | %s |' % (rails, ' | '.join(
            '%s / %s' % (calls[tool]['fresh'], calls[tool]['noop']) if tool in calls else '-' for tool in TOOLS)))
    lines += ['', '| modules alone | N | ours fresh | ours no-change | N x `ip` | one `ip -batch` | fresh / ip |',
              '|---|---|---|---|---|---|---|']
    for kind, module in (('rules', 'rail_rule'), ('routes', 'rail_table')):
        for count, entry in sorted(results['modules'][kind].items(), key=lambda item: int(item[0])):
            m = entry['median']
            lines.append('| %s | %s | %.3f s | %.3f s | %.3f s | %.3f s | %.3f |' % (
                module, count, m['ours_fresh'], m['ours_noop'], m['ip'], m['batch'], entry['ratio_fresh_vs_ip']))
    return '\n'.join(lines)


def settings(quick, runs):
    """Rounds per case: {'single': {R: (rounds, tools)}, 'fleet': {H: (rounds, tools)}, 'modules': rounds}."""
    if quick:
        return {'single': {8: (runs or 3, TOOLS), 4: (1, ('ours',))}, 'fleet': {}, 'modules': runs or 3}
    return {'single': {4: (runs or 5, TOOLS), 8: (runs or 5, TOOLS)},
            'fleet': {8: (runs or 3, TOOLS), 32: (runs or 3, TOOLS)}, 'modules': runs or 5}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--quick', action='store_true',
                        help='R=8 three rounds, R=4 one round of site.yml alone, no fleets, no proof with '
                             'traffic, the modules three rounds (under 3 minutes)')
    parser.add_argument('--runs', type=int, help='rounds for every case instead of the defaults')
    parser.add_argument('--out', default=os.path.join(BENCH, 'results.json'))
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error('--runs must be at least 1, got %d' % args.runs)
    if not os.path.exists(os.path.join(VENV, 'bin', 'ansible-playbook')):
        parser.error('%s is missing: run `make bench`, which builds it' % VENV)
    if os.geteuid() != 0:
        parser.error('run as root: the lab hosts are network namespaces')
    rounds = settings(args.quick, args.runs)
    roce_lab.destroy_stale()
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix='roce-bench-')
    results = {'settings': {'quick': args.quick, 'rounds': rounds, 'forks': FORKS, 'fleet_rails': FLEET_RAILS,
                            'pipelining': False, 'gather_facts': False},
               'machine': machine()}
    say('machine: %(cpu)s, %(cores)d cores, kernel %(kernel)s, ansible-core %(ansible_core)s, '
        'community.general %(community_general)s, ansible.posix %(ansible_posix)s, '
        'NetworkManager %(networkmanager)s' % results['machine'])
    try:
        runner = Runner(workdir)
        # Untimed: the first ansible-playbook of a run reads everything from a cold disk cache.
        with Fleet('w', 1, 1) as fleet:
            runner.run('recipe', fleet, FORKS)
        say('one host, a fresh converge then a no-change run, tools alternating:')
        results['single_host'] = dict(
            (str(rails), compare(runner, 's%d' % rails, 1, rails, count, FORKS, tools, prove=not args.quick))
            for rails, (count, tools) in sorted(rounds['single'].items()))
        if rounds['fleet']:
            say('fleets of hosts with R=%d, forks %d:' % (FLEET_RAILS, FORKS))
        results['fleet'] = dict((str(hosts), compare(runner, 'f%d' % hosts, hosts, FLEET_RAILS, count, FORKS, tools))
                                for hosts, (count, tools) in sorted(rounds['fleet'].items()))
        say('the modules alone, each way on a fresh namespace, %d rounds:' % rounds['modules'])
        results['modules'] = module_scale((16, 128, 1024), rounds['modules'])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    eight = results['single_host']['8']
    results['converge_ratio_vs_nmcli'] = eight['ratio_vs_nmcli']['fresh']
    results['noop_ratio_vs_nmcli'] = eight['ratio_vs_nmcli']['noop']
    results['rules_1024_ratio_vs_ip'] = results['modules']['rules']['1024']['ratio_fresh_vs_ip']
    results['rail_rule_noop_1024_seconds'] = results['modules']['rules']['1024']['median']['ours_noop']
    results['module_calls_per_host'] = dict(
        (rails, dict((tool, {'fresh': section[tool]['module_calls_fresh'][0],
                             'noop': section[tool]['module_calls_noop'][0]}) for tool in TOOLS if tool in section))
        for rails, section in results['single_host'].items())
    results['goals'] = goals(results)
    results['duration_seconds'] = round(time.monotonic() - started, 1)
    with open(args.out, 'w') as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write('\n')
    say('\n' + table(results) + '\n')
    for name, goal in results['goals'].items():
        say('%-36s %-22s goal %-10s %s' % (name, goal['value'], goal['goal'], 'met' if goal['met'] else 'NOT met'))
    say('wrote %s in %.0fs' % (args.out, results['duration_seconds']))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (BenchError, roce_lab.LabError, nm.NMError, RuntimeError) as exc:
        print('bench: %s' % exc, file=sys.stderr)
        sys.exit(1)
