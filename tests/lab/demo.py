"""`make demo`: a broken multi-rail host, the fix, and the proof, in a few screens.

Builds a namespace lab host with four rails in the state of a freshly
installed Ubuntu-like machine (cloud-init's netplan file gives the rails
their addresses and the host its default route via ib0; systemd-networkd
sets them up at boot), shows that every rail's traffic leaves through ib0 and
that replies to rails 2-4 are dropped, runs playbooks/site.yml against it
(through the roce.multirail.netns connection; the role reports the stack it
found), proves that each rail now carries its own traffic, shows the effective
sysctls, reboots the host and proves it again, and deletes the lab, also when
interrupted. Re-runnable: a leftover lab host is removed first.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, '.venv', 'collections'))

import images  # noqa: E402  (after the path set-up above)
import roce_lab  # noqa: E402
import system  # noqa: E402
from ansible_collections.roce.multirail.plugins.filter.audit_report import audit_table  # noqa: E402

HOST = 'rmdemo'
RAILS = 4
KEYS = ('arp_ignore', 'arp_announce', 'rp_filter', 'accept_local')


def banner(text):
    print('\n\033[1m== %s ==\033[0m' % text if sys.stdout.isatty() else '\n== %s ==' % text, flush=True)


def show_sysctls(description):
    """Effective per-rail values: max(all, rail), accept_local all OR rail."""
    conf = {}
    for target in ['all'] + [rail['device'] for rail in description['rails']]:
        conf[target] = [roce_lab.read_sysctl(HOST, 'net.ipv4.conf.%s.%s' % (target, key)) for key in KEYS]
    print('  effective value (all, rail) per rail:')
    print('  %-6s %s' % ('', ' '.join('%-15s' % key for key in KEYS)))
    for rail in description['rails']:
        device = rail['device']
        values = []
        for index, key in enumerate(KEYS):
            both = (conf['all'][index], conf[device][index])
            value = int(any(both)) if key == 'accept_local' else max(both)
            values.append('%-15s' % ('%d  (%d, %d)' % (value, both[0], both[1])))
        print('  %-6s %s' % (device, ' '.join(values)))
    print('  wanted: arp_ignore 1, arp_announce 2, rp_filter 2 (loose), accept_local 1')


def show_audit(devices):
    """rail_audit run inside the lab host, as Ansible runs it, shown as audit.yml shows it."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, '.venv', 'collections'))
    args = {'ANSIBLE_MODULE_ARGS': {'devices': devices, 'martian_interval': 1.0}}
    proc = system.run(HOST, os.path.join(REPO, '.venv', 'bin', 'python'), '-m',
                      'ansible_collections.roce.multirail.plugins.modules.rail_audit',
                      input=json.dumps(args), check=False, env=env)
    result = json.loads(proc.stdout)
    # The same table playbooks/audit.yml prints.
    print(audit_table(result))


def run_site(description, workdir):
    inventory = {'all': {'children': {'roce_hosts': {'hosts': {HOST: dict(
        roce_lab.inventory_vars(description),
        ansible_connection='roce.multirail.netns', ansible_netns_mount_namespace=system.mount_namespace(HOST),
        ansible_python_interpreter=os.path.join(REPO, '.venv', 'bin', 'python'))}}}}}
    path = os.path.join(workdir, 'inventory.json')
    with open(path, 'w') as handle:
        json.dump(inventory, handle, indent=2)
    print('inventory (from the lab host):')
    for rail in inventory['all']['children']['roce_hosts']['hosts'][HOST]['source_routing_rails']:
        print('  - device: %(device)s  address: %(address)s  gateway: %(gateway)s' % rail)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.venv', 'collections'),
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'local'), ANSIBLE_REMOTE_TEMP=os.path.join(workdir, 'remote'),
               ANSIBLE_NOCOLOR='1')
    command = [os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', path,
               os.path.join(REPO, 'playbooks', 'site.yml')]
    print('$ ansible-playbook -i inventory.json playbooks/site.yml', flush=True)
    return subprocess.run(command, env=env, cwd=workdir, check=False).returncode


def boot(description):
    """Power-cycle the lab host: systemd-networkd sets up the rails from what netplan renders."""
    system.boot(HOST, lambda: roce_lab.power_cycle(description), daemons=('systemd-networkd',),
                managed=[rail['device'] for rail in description['rails']])


def interrupted(_signum, _frame):
    raise KeyboardInterrupt()


def main():
    if os.geteuid() != 0:
        sys.exit('make demo needs root (it builds network namespaces)')
    # Ctrl-C and SIGTERM both end in the cleanup below, however the demo was started
    # (a background job inherits SIGINT ignored).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, interrupted)
    # Two demos at once would share the lab host and tear it down under each other.
    os.makedirs(roce_lab.STATE_DIR, exist_ok=True)
    lock = open(os.path.join(roce_lab.STATE_DIR, HOST + '.lock'), 'w')
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit('another make demo is running (lock %s)' % lock.name)
    system.forget(HOST)
    roce_lab.destroy_host(HOST)
    ok = False
    try:
        with tempfile.TemporaryDirectory(prefix='roce-demo-') as workdir:
            banner('Building a lab host with %d rails, as a freshly installed machine has them' % RAILS)
            description = roce_lab.create_host(HOST, 'textbook', RAILS)
            rails = description['rails']
            image = {'netplan/50-cloud-init.yaml': (images.netplan_yaml(rails, default_via=rails[0]['gateway']), 0o600)}
            images.write(HOST, image)
            boot(description)
            print('  /etc/netplan/50-cloud-init.yaml (cloud-init), rendered for systemd-networkd, which runs:')
            for rail in rails:
                print('  %(device)s  %(address)s  gateway %(gateway)s (leaf %(leaf)s)' % rail)
            print('  main table: %s' % roce_lab.ip(HOST, 'route', 'show', 'default').strip())

            banner('The problem: every rail\'s traffic leaves through ib0')
            before = roce_lab.prove(HOST)
            print(roce_lab.format_proof(before))
            show_sysctls(description)
            banner('What roce.multirail.rail_audit says about it')
            devices = [rail['device'] for rail in description['rails']]
            show_audit(devices)

            banner('The fix: playbooks/site.yml (role roce.multirail.source_routing)')
            if run_site(description, workdir) != 0:
                print('site.yml failed', file=sys.stderr)
                return 1

            banner('The proof: each rail carries its own traffic')
            print(roce_lab.ip(HOST, 'rule', 'show').rstrip())
            after = roce_lab.prove(HOST)
            print(roce_lab.format_proof(after))
            show_sysctls(description)
            show_audit(devices)

            banner('A reboot: addresses, rules and tables gone, systemd-networkd sets the host up again')
            boot(description)
            print(roce_lab.ip(HOST, 'rule', 'show').rstrip())
            rebooted = roce_lab.prove(HOST)
            print(roce_lab.format_proof(rebooted))
            ok = all(result['ok'] for result in after + rebooted)
            broken = sum(1 for result in before if not result['ok'])
            banner('%d of %d rail sources were broken before; %s now, and after a reboot'
                   % (broken, len(before), 'all work' if ok else 'SOME STILL FAIL'))
    except KeyboardInterrupt:
        print('\ninterrupted', file=sys.stderr)
        return 130
    finally:
        system.forget(HOST)
        roce_lab.destroy_host(HOST)
        print('lab host %s removed' % HOST)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
