"""Throwaway network namespaces and a module runner for integration tests.

A test gets a fresh namespace ("host") holding veth NICs; the module under
test runs inside it exactly as Ansible would run it (a Python process reading
ANSIBLE_MODULE_ARGS), and the namespace is deleted afterwards even when the
test fails. Nothing here sends traffic anywhere.
"""

import itertools
import json
import os
import subprocess
import sys

from collection_path import COLLECTIONS, REPO
from lab import roce_lab

PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
if not os.path.exists(PYTHON):
    PYTHON = sys.executable
PREFIX = 'rmrt%d' % os.getpid()
_counter = itertools.count()


def sh(*argv, check=True):
    """Run a command; return its stdout. Raises with stderr shown on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d): %s' % (' '.join(argv), proc.returncode, proc.stderr.strip()))
    return proc.stdout


class Namespace:
    """One lab host. Use as a context manager or through the `ns` fixture."""

    def __init__(self):
        self.name = '%s-%d' % (PREFIX, next(_counter))
        sh('ip', 'netns', 'add', self.name)
        self.ip('link', 'set', 'lo', 'up')
        for key in ('all', 'default'):
            self.sysctl('net.ipv6.conf.%s.disable_ipv6=1' % key)

    def close(self):
        roce_lab.forget_run_files(self.name)
        sh('ip', 'netns', 'del', self.name, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, *argv, check=True):
        return sh('ip', 'netns', 'exec', self.name, *argv, check=check)

    def ip(self, *argv, check=True):
        return sh('ip', '-n', self.name, *argv, check=check)

    def sysctl(self, assignment):
        return self.run('sysctl', '-q', '-w', assignment)

    def read_sysctl(self, key):
        return int(self.run('sysctl', '-n', key).strip())

    def add_nic(self, name, address=None, up=True, peer=None):
        """A veth NIC named `name` (its peer stays in this namespace, up)."""
        peer = peer or (name[:12] + 'p')
        self.ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer)
        self.ip('link', 'set', peer, 'up')
        if address:
            self.ip('addr', 'add', address, 'dev', name)
        if up:
            self.ip('link', 'set', name, 'up')
        return name

    def enable_ipv6(self):
        for key in ('all', 'default'):
            self.sysctl('net.ipv6.conf.%s.disable_ipv6=0' % key)

    def dump(self):
        """Everything the modules could touch, as text, for byte-for-byte comparison."""
        parts = [
            self.ip('-4', 'rule', 'show'),
            self.ip('-6', 'rule', 'show'),
            self.ip('-4', 'route', 'show', 'table', 'all'),
            self.run('sysctl', 'net.ipv4.conf'),
        ]
        return '\n'.join(parts)

    def module(self, name, args, check_mode=False, diff=False, python=PYTHON, expect_failure=False, env=None):
        """Run roce.multirail.<name> inside this namespace; return its JSON result.

        env: variables to set for the module (None as a value removes one).
        """
        payload = dict(args)
        payload['_ansible_check_mode'] = check_mode
        payload['_ansible_diff'] = diff
        environment = dict(os.environ, PYTHONPATH=COLLECTIONS)
        environment.pop('SSH_CONNECTION', None)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        proc = subprocess.run(
            ['ip', 'netns', 'exec', self.name, python, '-m',
             'ansible_collections.roce.multirail.plugins.modules.' + name],
            input=json.dumps({'ANSIBLE_MODULE_ARGS': payload}), capture_output=True, text=True, env=environment,
            check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError('module %s printed no JSON (rc %d):\nstdout: %s\nstderr: %s'
                                 % (name, proc.returncode, proc.stdout, proc.stderr))
        if expect_failure:
            assert result.get('failed'), 'expected %s to fail, got %r' % (name, result)
        else:
            assert not result.get('failed'), 'module %s failed: %s' % (name, result.get('msg'))
        return result


def cleanup_stale():
    """Delete lab namespaces a killed earlier run of these tests left behind."""
    for line in sh('ip', 'netns', 'list').splitlines():
        name = line.split()[0] if line.strip() else ''
        if name.startswith('rmrt') and '-' in name:
            pid = name[4:].split('-')[0]
            if pid.isdigit() and not os.path.exists('/proc/%s' % pid):
                roce_lab.forget_run_files(name)
                sh('ip', 'netns', 'del', name, check=False)
