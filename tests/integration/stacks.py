"""Lab hosts that look like real images of each network stack, booted with their real daemons.

The image (tests/lab/images.py: what an installer, kickstart or cloud-init leaves for the rail
NICs) is written into the lab host's private /etc. The host is then booted (tests/lab/system.py): the
kernel state of a power-on, a fresh /run, netplan generate, the host's sysctl.d files, and
the stack's daemon, which gives the rails their addresses on its own as a boot does. The role
reaches the booted host through the netns connection with ansible_netns_mount_namespace, so
its modules see that host's /run, D-Bus and daemons.
"""

import json
import os
import subprocess
import time

import pytest

from lab import images, roce_lab, system
from lab.images import DAEMONS
from roleruns import BIN, ansible_env, inventory, site

KEYS = ('arp_ignore', 'arp_announce', 'rp_filter', 'accept_local')


class Booted:
    """A lab host of one stack's image, booted; what the tests do with it."""

    def __init__(self, description, stack, tmp_path):
        self.description = description
        self.host = description['host']
        self.stack = stack
        self.tmp_path = tmp_path
        self.devices = [rail['device'] for rail in description['rails']]
        self.image = images.files(description, stack)
        images.write(self.host, self.image)

    # --- the machine's life ---
    def boot(self, daemons=None, managed=None):
        """A power cycle; the stack's daemons start and set up the rails on their own."""
        system.boot(self.host, lambda: roce_lab.power_cycle(self.description),
                    daemons=DAEMONS[self.stack] if daemons is None else daemons,
                    managed=self.devices if managed is None else managed)

    def run(self, *argv, check=True):
        return system.run(self.host, *argv, check=check).stdout

    def stop_daemons(self):
        for daemon in DAEMONS[self.stack]:
            system.stop(self.host, daemon)

    def restart(self):
        for daemon in DAEMONS[self.stack]:
            system.restart(self.host, daemon, managed=self.devices)
        self.settle()

    def settle(self):
        if self.stack == 'networkmanager':
            self.run('nm-online', '-s', '-q', '-t', '30', check=False)
        else:
            system.wait_online(self.host, self.devices)

    def ansible(self, module, args, *options):
        """One module run with `ansible` ad hoc inside the booted host; (rc, result as JSON)."""
        env = ansible_env(self.tmp_path)
        inventory_file = self.tmp_path / 'adhoc.json'
        inventory_file.write_text(json.dumps({'all': {'hosts': {self.host: {
            'ansible_connection': 'roce.multirail.netns', 'ansible_python_interpreter': os.path.join(BIN, 'python'),
            'ansible_netns_mount_namespace': system.mount_namespace(self.host)}}}}))
        proc = subprocess.run([os.path.join(BIN, 'ansible'), self.host, '-i', str(inventory_file), '-m', module,
                               '-a', json.dumps(args), '-o'] + list(options), capture_output=True, text=True, env=env,
                              cwd=str(self.tmp_path), timeout=300, check=False)
        line = next((l for l in proc.stdout.splitlines() if l.startswith(self.host + ' | ')), '')
        assert line, proc.stdout + proc.stderr
        return proc.returncode, json.loads(line.split(' => ', 1)[1])

    # --- the role ---
    def site(self, *options, **overrides):
        host_vars = inventory(self.description, **overrides)
        host_vars['ansible_netns_mount_namespace'] = system.mount_namespace(self.host)
        return site(self.description, self.tmp_path, host_vars, *options)

    # --- the state ---
    def state(self):
        """What persistence must reproduce: every IPv4 rule, the rail tables, the rails' addresses, the sysctls."""
        tables = {}
        for line in roce_lab.ip(self.host, '-4', 'rule', 'show').splitlines():
            if 'lookup' in line and line.split('lookup')[1].split()[0].isdigit():
                number = line.split('lookup')[1].split()[0]
                tables[number] = roce_lab.ip(self.host, '-4', 'route', 'show', 'table', number).splitlines()
        addresses = {}
        for device in self.devices:
            info = roce_lab.ip_json(self.host, '-4', 'addr', 'show', 'dev', device)
            addresses[device] = sorted('%s/%s' % (a['local'], a['prefixlen']) for a in info[0]['addr_info']) \
                if info else []
        sysctls = dict(('%s.%s' % (target, key), roce_lab.read_sysctl(self.host, 'net.ipv4.conf.%s.%s' % (target, key)))
                       for target in ['all'] + self.devices for key in KEYS)
        return {'rules': roce_lab.ip(self.host, '-4', 'rule', 'show').splitlines(), 'tables': tables,
                'addresses': addresses, 'sysctls': sysctls}

    def files(self):
        """{path under /etc: text} of everything the stacks and the role read or write."""
        found = {}
        for top in ('NetworkManager', 'systemd/network', 'netplan', 'sysctl.d'):
            base = system.etc(self.host, top)
            for root, _dirs, names in os.walk(base):
                for name in names:
                    path = os.path.join(root, name)
                    with open(path) as handle:
                        mode = oct(os.stat(path).st_mode & 0o7777)
                        found[os.path.relpath(path, system.etc(self.host))] = (mode, handle.read())
        return found

    def assert_proven(self, when):
        results = roce_lab.prove(self.host)
        assert results and all(r['ok'] for r in results), 'after %s:\n%s' % (when, roce_lab.format_proof(results))

    def assert_same_state(self, live, when, timeout=10.0):
        """The host reaches the live-applied state again (the daemons configure asynchronously)."""
        deadline = time.monotonic() + timeout
        now = self.state()
        while now != live and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.state()
        assert now == live, 'after %s the host differs from the live-applied state:\n%s' % (
            when, json.dumps({'live': live, 'now': now}, indent=1))


@pytest.fixture
def booted(lab_host, tmp_path):
    """booted(stack, rails=2) -> Booted: a lab host of that stack's image; its system is taken down afterwards."""
    made = []

    def make(stack, rails=2):
        description = lab_host(rails)
        host = Booted(description, stack, tmp_path)
        made.append(host)
        return host

    try:
        yield make
    finally:
        for host in made:
            print('--- %s logs ---\n%s' % (host.host, '\n'.join(
                system.log(host.host, daemon)[-3000:] for daemon in ('system',) + DAEMONS[host.stack])))
            system.forget(host.host)
