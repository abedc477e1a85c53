# -*- coding: utf-8 -*-
# Copyright (c) roce.multirail contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
name: netns
short_description: Run tasks inside a network namespace of the controller
version_added: 1.0.0
description:
  - Treats a named Linux network namespace on the Ansible controller (one listed by C(ip netns list))
    as a host. Every command runs as C(ip netns exec <name> <executable> -c <command>), so modules see
    the namespace's interfaces, addresses, rules, routes and C(net.*) sysctls, and change only those.
  - The namespace shares the controller's filesystem. Files are transferred by plain local copies,
    with the one path rewrite C(ip netns exec) itself makes, see the notes.
  - Needs root on the controller, and the namespace must exist; otherwise the host is unreachable with
    a message saying why.
author:
  - roce.multirail maintainers (!UNKNOWN)
options:
  remote_addr:
    description:
      - The namespace's name, used when O(netns_name) is not set.
    type: string
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  netns_name:
    description:
      - The namespace's name. Takes precedence over O(remote_addr), so C(ansible_host) can keep
        holding an address for other uses.
    type: string
    vars:
      - name: ansible_netns_name
  executable:
    description:
      - The shell that runs each command inside the namespace.
    type: string
    default: /bin/sh
    ini:
      - section: defaults
        key: executable
    env:
      - name: ANSIBLE_EXECUTABLE
    vars:
      - name: ansible_executable
  mount_namespace:
    description:
      - A mount namespace to enter as well, as a path C(nsenter --mount) takes, for example
        C(/proc/<pid>/ns/mnt) of a process of a container, or a bind-mounted namespace file.
      - Commands then run as C(nsenter --mount=<path> --net=/run/netns/<name> <executable> -c <command>),
        so they see that namespace's C(/run), C(/sys), C(/etc) and daemons (its D-Bus, its
        NetworkManager or systemd-networkd) as its own processes do; files are transferred with
        C(cat) inside it. Without it, C(ip netns exec) runs them with the controller's C(/run).
    type: string
    vars:
      - name: ansible_netns_mount_namespace
  ip_executable:
    description:
      - The C(ip) binary of iproute2; a bare name is looked up on E(PATH) and in the sbin directories.
    type: string
    default: ip
    ini:
      - section: netns_connection
        key: ip_executable
    env:
      - name: ANSIBLE_NETNS_IP_EXECUTABLE
    vars:
      - name: ansible_netns_ip_executable
extends_documentation_fragment:
  - connection_pipelining
notes:
  - C(ip netns exec NAME) bind-mounts each entry of C(/etc/netns/NAME/) over the C(/etc) entry of the
    same name, so a module running inside that writes C(/etc/hosts) writes C(/etc/netns/NAME/hosts)
    when that file exists. File transfers make the same rewrite, so M(ansible.builtin.fetch) of
    C(/etc/hosts) returns the file the namespace sees. Everything else, including Ansible's temporary
    files, is copied as is.
  - C(/sys), C(/proc/net) and C(/proc/sys/net) show the namespace's view only to processes inside
    it; read them with a module (M(ansible.builtin.slurp), M(ansible.builtin.command)), not with
    M(ansible.builtin.fetch).
  - Modules run with a Python of the controller's filesystem; set C(ansible_python_interpreter) to one
    that works, since interpreter discovery may pick a shim that does not run.
'''

EXAMPLES = r'''
# Inventory: two lab hosts that are network namespaces on the controller.
# lab:
#   hosts:
#     gpu01: {ansible_host: lab-gpu01}
#     gpu02: {ansible_netns_name: lab-gpu02}
#   vars:
#     ansible_connection: roce.multirail.netns
#     ansible_python_interpreter: /usr/bin/python3

- name: Show the rails of each lab host
  hosts: lab
  gather_facts: false
  tasks:
    - name: List the namespace's links
      ansible.builtin.command: ip -o link show
      changed_when: false
'''

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

NETNS_RUN_DIR = '/run/netns'
NETNS_ETC_DIR = '/etc/netns'


class Connection(ConnectionBase):
    """Run commands in a named network namespace with `ip netns exec`."""

    transport = 'roce.multirail.netns'
    has_pipelining = True
    has_tty = False
    default_user = 'root'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.netns = None
        self.ip_cmd = None
        self.mount_ns = None
        self.nsenter_cmd = None

    def _connect(self):
        name = self.get_option('netns_name') or self.get_option('remote_addr')
        if not name or '/' in name or name in ('.', '..'):
            raise AnsibleConnectionFailure('netns: %r is not a network namespace name' % (name,))
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure(
                'netns: entering network namespace %s needs root (ip netns exec); run ansible as root' % name)
        if not os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
            raise AnsibleConnectionFailure(
                'netns: network namespace %s does not exist (no %s/%s; see ip netns list)'
                % (name, NETNS_RUN_DIR, name))
        ip_exe = self.get_option('ip_executable')
        try:
            self.ip_cmd = ip_exe if os.path.isabs(ip_exe) else get_bin_path(ip_exe)
        except ValueError as exc:
            raise AnsibleConnectionFailure('netns: %s' % to_native(exc))
        self.netns = name
        self.mount_ns = self.get_option('mount_namespace') or None
        if self.mount_ns is not None:
            if not os.path.exists(self.mount_ns):
                raise AnsibleConnectionFailure('netns: mount namespace %s of %s does not exist' % (self.mount_ns, name))
            try:
                self.nsenter_cmd = get_bin_path('nsenter')
            except ValueError as exc:
                raise AnsibleConnectionFailure('netns: %s' % to_native(exc))
        entered = ' AND MOUNT NAMESPACE %s' % self.mount_ns if self.mount_ns else ''
        display.vvv('ENTER NETWORK NAMESPACE %s%s' % (name, entered), host=name)
        self._connected = True
        return self

    def _enter(self, *argv):
        """argv run inside the namespace(s)."""
        if self.mount_ns is None:
            return [self.ip_cmd, 'netns', 'exec', self.netns] + list(argv)
        return [self.nsenter_cmd, '--mount=' + self.mount_ns, '--net=' + os.path.join(NETNS_RUN_DIR, self.netns),
                '--'] + list(argv)

    def _run(self, argv, in_data=None):
        display.vvv('EXEC %s' % argv, host=self.netns)
        proc = subprocess.Popen([to_bytes(arg, errors='surrogate_or_strict') for arg in argv],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run cmd inside the namespace; in_data (pipelining) goes to its stdin."""
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._run(self._enter(self.get_option('executable'), '-c', cmd), in_data)

    def controller_path(self, path):
        """Where a path seen inside the namespace lives on the controller.

        `ip netns exec` bind-mounts /etc/netns/<name>/<entry> over /etc/<entry> for each entry that
        exists in both places; every other path is the same file inside and outside.
        """
        parts = os.path.normpath(path).split(os.sep)
        if len(parts) > 2 and parts[:2] == ['', 'etc']:
            override = os.path.join(NETNS_ETC_DIR, self.netns, parts[2])
            if os.path.lexists(override) and os.path.lexists(os.path.join('/etc', parts[2])):
                return os.path.join(override, *parts[3:])
        return path

    def _copy(self, src, dest):
        try:
            shutil.copyfile(to_bytes(src, errors='surrogate_or_strict'), to_bytes(dest, errors='surrogate_or_strict'))
        except (OSError, shutil.Error) as exc:
            raise AnsibleError('netns %s: failed to copy %s to %s: %s' % (self.netns, src, dest, to_native(exc)))

    def _cat(self, script, path, in_data=None):
        """Run `sh -c script _ path` inside the mount namespace; its stdout."""
        rc, stdout, stderr = self._run(self._enter('/bin/sh', '-c', script, '_', path), in_data)
        if rc != 0:
            raise AnsibleError('netns %s: %s failed in mount namespace %s: %s'
                               % (self.netns, script.replace('"$1"', path), self.mount_ns,
                                  to_native(stderr).strip()))
        return stdout

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv('PUT %s TO %s' % (in_path, out_path), host=self.netns)
        if not os.path.exists(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleFileNotFound('file or module does not exist: %s' % in_path)
        if self.mount_ns is None:
            self._copy(in_path, self.controller_path(out_path))
            return
        with open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb') as handle:
            self._cat('cat > "$1"', out_path, handle.read())

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv('FETCH %s TO %s' % (in_path, out_path), host=self.netns)
        if self.mount_ns is None:
            self._copy(self.controller_path(in_path), out_path)
            return
        content = self._cat('cat "$1"', in_path)
        try:
            with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb') as handle:
                handle.write(content)
        except OSError as exc:
            raise AnsibleError('netns %s: failed to write %s: %s' % (self.netns, out_path, to_native(exc)))

    def close(self):
        super().close()
        self._connected = False
