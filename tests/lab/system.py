"""A lab host that boots: its own /run, D-Bus and network daemons, as a real machine has them.

A lab host (roce_lab.py) is a network namespace; `ip netns exec HOST` gives its processes the
host's NICs and a private /etc (each entry of /etc/netns/HOST mounted over /etc), but the
machine's /run and /var. ``up(HOST)`` gives it a mount namespace of its own, held open by a small
shell (the "holder"):

    ip netns exec HOST unshare --mount --propagation private sh -c HOLDER

which, inside it, mounts a tmpfs on /run (empty at every boot, as on a real machine) with
/run/dbus, /run/systemd/network, /run/systemd/netif (owned by systemd-network) and
/run/NetworkManager, remounts /sys read-only (NetworkManager and systemd-networkd then stop
waiting for udev; without it every device stays unmanaged), binds a private directory on
/var/lib/NetworkManager (kept across boots, as a disk keeps it: NetworkManager's timestamps decide
which profile it autoconnects), and starts a private D-Bus system bus (no service activation).
The bus also listens on a second socket, ``bus_address(HOST)``, for processes that run with a
plain `ip netns exec HOST`.

Daemons run inside that namespace with ``nsenter -t HOLDER -m -n``, each started and stopped on
its own: NetworkManager (a private configuration, see NM_CONF) and systemd-networkd. Anything
else runs there with ``run(HOST, ...)``; an Ansible inventory reaches it with the netns
connection's ``ansible_netns_mount_namespace: mount_namespace(HOST)``.

``boot(HOST, description, daemons)`` is a power cycle: the daemons stop, the rails lose every
address, rule and route a boot would not have and get the image's sysctls back, a fresh /run
is mounted, ``netplan generate`` renders /etc/netplan (as its systemd generator does at boot),
the sysctl.d files of the host are applied, and the daemons start and are left to
autoconnect on their own, until they report startup complete.

Logs, pids and the private /var/lib directories live in /run/roce-lab-sys/HOST/. Stdlib only
(python >= 3.9).
"""

import errno
import glob
import os
import shutil
import signal
import subprocess
import time

STATE_ROOT = '/run/roce-lab-sys'
NETNS_ETC = '/etc/netns'
START_TIMEOUT = 30
STOP_TIMEOUT = 10
NETWORKD = next((path for path in ('/lib/systemd/systemd-networkd', '/usr/lib/systemd/systemd-networkd')
                 if os.path.exists(path)), '/lib/systemd/systemd-networkd')
WAIT_ONLINE = os.path.join(os.path.dirname(NETWORKD), 'systemd-networkd-wait-online')
DAEMONS = ('NetworkManager', 'systemd-networkd')

# The lab's NetworkManager: keyfiles only, never an automatic "Wired connection", no DNS, hostname
# or connectivity checking (nothing leaves the machine). Devices named in MANAGED are managed from
# the start, as a real host's rails are; every other device is left alone unless a test hands it
# over with `nmcli device set DEV managed yes` (keyfile.unmanaged-devices would not allow that).
NM_CONF = """\
# Private configuration of a lab NetworkManager (written by tests/lab/system.py).
[main]
plugins=keyfile
no-auto-default=*
dns=none
rc-manager=unmanaged
systemd-resolved=false
hostname-mode=none
auth-polkit=false

[keyfile]
path=/etc/NetworkManager/system-connections

{managed}[device-zz-lab-unmanaged]
match-device=*
managed=0

[connectivity]
enabled=false
"""

MANAGED_SECTION = """\
[device-lab-managed]
match-device={match}
managed=1

"""

# A system bus without activatable services and a policy that lets root do anything. Processes
# in the private mount namespace reach it at the usual path; others through the second socket.
DBUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <listen>unix:path=/var/lib/NetworkManager/lab-system-bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

# Runs as `sh -c HOLDER lab-sys STATE` inside the new mount namespace. The state dir is out of
# sight once /run is a tmpfs, so everything it provides is bound or read before that. The shell
# stays the root of the tree: it reaps dbus-daemon, and stops it when it is told to stop.
HOLDER = r"""
set -eu
state=$1
mkdir -p "$state/nm-lib"
mount --bind "$state/nm-lib" /var/lib/NetworkManager
dbus_conf=$(cat "$state/dbus.conf")
mount -t tmpfs -o mode=0755 lab-sys-run /run
mount -o remount,bind,ro /sys
mkdir -p /run/dbus /run/NetworkManager /run/systemd/network /run/systemd/netif /run/lab-sys
chown systemd-network:systemd-network /run/systemd/netif 2>/dev/null || true
printf '%s\n' "$dbus_conf" > /run/lab-sys/dbus.conf
dbus=''
stop() {
    trap '' TERM INT HUP
    [ -z "$dbus" ] || kill -TERM "$dbus" 2>/dev/null || true
    wait 2>/dev/null || true
    exit 0
}
trap stop TERM INT HUP
dbus-daemon --config-file=/run/lab-sys/dbus.conf --nofork --nopidfile &
dbus=$!
i=0
while [ ! -S /run/dbus/system_bus_socket ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$dbus" 2>/dev/null; then
        echo "lab-sys: dbus-daemon did not create /run/dbus/system_bus_socket" >&2
        stop
    fi
    sleep 0.05
done
echo "lab-sys: up" >&2
wait "$dbus" || true
echo "lab-sys: dbus-daemon exited" >&2
dbus=''
stop
"""


class LabSystemError(RuntimeError):
    """A booted lab host could not be brought up or down, or a daemon failed."""


# Popen objects this process started (holders and daemons), so they can be reaped.
_children = {}


# --- paths ---------------------------------------------------------------------------

def state_dir(host):
    return os.path.join(STATE_ROOT, host)


def log_path(host, daemon='system'):
    return os.path.join(state_dir(host), '%s.log' % daemon)


def bus_address(host):
    """DBUS_SYSTEM_BUS_ADDRESS that reaches `host`'s bus from outside its mount namespace."""
    return 'unix:path=' + os.path.join(state_dir(host), 'nm-lib', 'lab-system-bus')


def _pid_path(host, daemon='holder'):
    return os.path.join(state_dir(host), '%s.pid' % daemon)


def etc(host, *parts):
    """A path of `host`'s private /etc (/etc/netns/HOST/...)."""
    return os.path.join(NETNS_ETC, host, *parts)


# --- processes -------------------------------------------------------------------------

def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _ns_ids(pid):
    try:
        return (os.readlink('/proc/%d/ns/mnt' % pid), os.readlink('/proc/%d/ns/net' % pid))
    except OSError:
        return None


def _alive(pid):
    """True if `pid` exists and is not a zombie."""
    stat = _read('/proc/%d/stat' % pid)
    if not stat:
        return False
    return stat[stat.rindex(')') + 2] not in 'ZX'


def _cmdline(pid):
    return _read('/proc/%d/cmdline' % pid) or ''


def display(pid):
    """A process's command line, the holder script shown as <lab-sys holder>."""
    return ' '.join('<lab-sys holder>' if arg == HOLDER else arg for arg in _cmdline(pid).split('\0')).strip()


def _recorded(host):
    """(holder pid, mnt ns, net ns) written by up(), or None."""
    text = _read(_pid_path(host))
    fields = text.split() if text else []
    if len(fields) != 3 or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1], fields[2]


def holder(host):
    """PID of the running holder (what nsenter targets), or None."""
    rec = _recorded(host)
    if rec is None or not _alive(rec[0]) or _ns_ids(rec[0]) != rec[1:]:
        return None
    return rec[0]


def is_up(host):
    return holder(host) is not None


def mount_namespace(host):
    """The mount namespace of `host`'s booted system, as a path nsenter --mount takes."""
    pid = holder(host)
    if pid is None:
        raise LabSystemError('lab host %s is not up (system.up)' % host)
    return '/proc/%d/ns/mnt' % pid


def tree_pids(host):
    """Live processes inside `host`'s private mount namespace."""
    rec = _recorded(host)
    if rec is None:
        return []
    return sorted(int(entry) for entry in os.listdir('/proc')
                  if entry.isdigit() and _ns_ids(int(entry)) == rec[1:] and _alive(int(entry)))


def _signal(target, sig):
    try:
        os.kill(target, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _reap():
    for proc in list(_children.values()):
        proc.poll()


def _tail(host, daemon, lines=60):
    return '\n'.join((_read(log_path(host, daemon)) or '').splitlines()[-lines:])


def log(host, daemon='system'):
    """What a daemon (or the holder and its dbus-daemon: 'system') printed so far."""
    return _read(log_path(host, daemon)) or ''


# --- the system ------------------------------------------------------------------------

def up(host, timeout=START_TIMEOUT):
    """Give `host` its own mount namespace with a fresh /run and a D-Bus system bus; return the holder's pid."""
    if not os.path.exists(os.path.join('/run/netns', host)):
        raise LabSystemError('no network namespace %r (ip netns add %s)' % (host, host))
    if holder(host) is not None:
        raise LabSystemError('lab host %s is already up (holder %d)' % (host, holder(host)))
    down(host)  # leftovers of an earlier run
    state = state_dir(host)
    os.makedirs(os.path.join(state, 'nm-lib'), mode=0o700, exist_ok=True)
    with open(os.path.join(state, 'dbus.conf'), 'w') as handle:
        handle.write(DBUS_CONF)
    logfile = open(log_path(host), 'ab')
    # The log is kept across boots: only what this holder prints tells whether it is up.
    offset = logfile.tell()
    try:
        proc = subprocess.Popen(
            ['ip', 'netns', 'exec', host, 'unshare', '--mount', '--propagation', 'private',
             'sh', '-c', HOLDER, 'lab-sys', state],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        logfile.close()
    _children[(host, 'holder')] = proc
    # `ip netns exec` and `unshare` exec, so proc.pid becomes the holder shell once in its namespace.
    deadline = time.monotonic() + timeout
    ids = None
    while ids is None:
        if proc.poll() is not None:
            _fail(host, 'system', 'its holder exited (rc %s)' % proc.returncode)
        if time.monotonic() > deadline:
            _fail(host, 'system', 'its holder did not come up within %ss' % timeout)
        if _cmdline(proc.pid).startswith('sh\0'):
            ids = _ns_ids(proc.pid)
        else:
            time.sleep(0.01)
    with open(_pid_path(host), 'w') as handle:
        handle.write('%d %s %s\n' % (proc.pid, ids[0], ids[1]))
    while 'lab-sys: up' not in _log_since(host, offset):
        if proc.poll() is not None or 'lab-sys: dbus-daemon' in _log_since(host, offset):
            _fail(host, 'system', 'dbus-daemon did not start')
        if time.monotonic() > deadline:
            _fail(host, 'system', 'dbus-daemon did not start within %ss' % timeout)
        time.sleep(0.02)
    return proc.pid


def _log_since(host, offset, daemon='system'):
    """What a log got after byte `offset`."""
    try:
        with open(log_path(host, daemon), 'rb') as handle:
            handle.seek(offset)
            return handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def _fail(host, daemon, why):
    text = _tail(host, daemon)
    down(host, keep_logs=True)
    raise LabSystemError('lab host %s: %s did not start: %s. Log (%s):\n%s'
                         % (host, 'the system' if daemon == 'system' else daemon, why, log_path(host, daemon), text))


def down(host, timeout=STOP_TIMEOUT, keep_logs=True):
    """Stop every daemon and the holder, and everything else left in the mount namespace. Idempotent.

    The private /var/lib directories stay (a disk keeps them across a reboot) unless keep_logs is
    False, which removes the whole state directory.
    """
    for daemon in DAEMONS:
        stop(host, daemon, timeout)
    rec = _recorded(host)
    proc = _children.pop((host, 'holder'), None)
    if rec is None and proc is not None and proc.poll() is None:
        _signal(-proc.pid, signal.SIGKILL)      # it never got as far as recording itself
    if rec is not None:
        if holder(host) is not None:
            _signal(rec[0], signal.SIGTERM)
        left = _wait_gone(host, timeout)
        if left:
            for pid in left:
                _signal(pid, signal.SIGKILL)
            left = _wait_gone(host, timeout)
        if left:
            raise LabSystemError('lab host %s: could not stop %s'
                                 % (host, ', '.join('%d %s' % (p, display(p)) for p in left)))
    _reap_child(proc, timeout)
    try:
        os.unlink(_pid_path(host))
    except FileNotFoundError:
        pass
    if not keep_logs:
        shutil.rmtree(state_dir(host), ignore_errors=True)


def _reap_child(proc, timeout):
    """Wait for a process this one started (killing it if it will not end), so it leaves no zombie."""
    if proc is None:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def forget(host):
    """down() and remove everything kept for `host`: logs and the private /var/lib directories."""
    down(host, keep_logs=False)


def _wait_gone(host, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and tree_pids(host):
        _reap()
        time.sleep(0.05)
    return tree_pids(host)


def run(host, *argv, check=True, input=None, timeout=60, env=None):
    """Run argv inside `host`'s booted system (its mount and network namespaces); a CompletedProcess."""
    pid = holder(host)
    if pid is None:
        raise LabSystemError('lab host %s is not up (system.up)' % host)
    command = ['nsenter', '-t', str(pid), '-m', '-n', '--'] + [str(a) for a in argv]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              input=input, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabSystemError('lab host %s: %s timed out after %ss' % (host, ' '.join(argv), timeout)) from exc
    if check and proc.returncode != 0:
        raise LabSystemError('lab host %s: %s failed (rc %d): %s'
                             % (host, ' '.join(str(a) for a in argv), proc.returncode,
                                (proc.stderr or proc.stdout).strip()))
    return proc


# --- daemons ---------------------------------------------------------------------------

def daemon_pid(host, daemon):
    """PID of a running daemon of `host`, or None."""
    text = _read(_pid_path(host, daemon))
    if not text or not text.strip().isdigit():
        return None
    pid = int(text)
    rec = _recorded(host)
    if rec is None or not _alive(pid) or _ns_ids(pid) != rec[1:]:
        return None
    return pid


def running(host, daemon):
    return daemon_pid(host, daemon) is not None


def nm_conf(managed=()):
    """NetworkManager's lab configuration, managing the devices named in `managed` from the start."""
    section = MANAGED_SECTION.format(match=';'.join('interface-name:%s' % d for d in managed)) if managed else ''
    return NM_CONF.format(managed=section)


def _command(host, daemon, log_level, managed):
    if daemon == 'NetworkManager':
        conf = os.path.join(state_dir(host), 'NetworkManager.conf')
        with open(conf, 'w') as handle:
            handle.write(nm_conf(managed))
        # The configuration is read before the tmpfs hides the state dir: pass it by contents.
        return ['sh', '-c', 'mkdir -p /run/lab-sys/nm-conf.d && cat > /run/lab-sys/NetworkManager.conf && exec '
                'NetworkManager --no-daemon --debug --log-level="$1" --config=/run/lab-sys/NetworkManager.conf '
                '--config-dir=/run/lab-sys/nm-conf.d --system-config-dir=/run/lab-sys/nm-conf.d',
                'lab-nm', log_level], conf
    if daemon == 'systemd-networkd':
        return ['env', 'SYSTEMD_LOG_LEVEL=%s' % log_level.lower(), NETWORKD], None
    raise LabSystemError('unknown daemon %r (known: %s)' % (daemon, ', '.join(DAEMONS)))


def start(host, daemon, timeout=START_TIMEOUT, log_level='INFO', managed=()):
    """Start a daemon inside `host`'s system and wait until it answers on the bus; return its pid."""
    pid = holder(host)
    if pid is None:
        raise LabSystemError('lab host %s is not up (system.up)' % host)
    if running(host, daemon):
        raise LabSystemError('%s already runs in %s (pid %d)' % (daemon, host, daemon_pid(host, daemon)))
    argv, conf = _command(host, daemon, log_level, managed)
    logfile = open(log_path(host, daemon), 'ab')
    stdin = open(conf, 'rb') if conf else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(['nsenter', '-t', str(pid), '-m', '-n', '--'] + argv, stdin=stdin,
                                stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        logfile.close()
        if conf:
            stdin.close()
    _children[(host, daemon)] = proc
    with open(_pid_path(host, daemon), 'w') as handle:
        handle.write('%d\n' % proc.pid)
    name = 'org.freedesktop.NetworkManager' if daemon == 'NetworkManager' else 'org.freedesktop.network1'
    deadline = time.monotonic() + timeout
    while not _on_bus(host, name):
        if proc.poll() is not None:
            _stopped_early(host, daemon, 'it exited (rc %s)' % proc.returncode)
        if time.monotonic() > deadline:
            _stopped_early(host, daemon, 'it did not take %s on the bus within %ss' % (name, timeout))
        time.sleep(0.05)
    if daemon == 'NetworkManager':
        # Startup complete: every autoconnect attempt of this start is over.
        run(host, 'nm-online', '-s', '-q', '-t', str(int(timeout)), check=False, timeout=timeout + 5)
    return proc.pid


def _stopped_early(host, daemon, why):
    text = _tail(host, daemon)
    stop(host, daemon)
    raise LabSystemError('%s in %s did not start: %s. Log (%s):\n%s' % (daemon, host, why, log_path(host, daemon), text))


def _on_bus(host, name):
    proc = run(host, 'busctl', '--system', 'call', 'org.freedesktop.DBus', '/org/freedesktop/DBus',
               'org.freedesktop.DBus', 'NameHasOwner', 's', name, check=False, timeout=10)
    return proc.returncode == 0 and proc.stdout.strip() == 'b true'


def stop(host, daemon, timeout=STOP_TIMEOUT):
    """Stop a daemon of `host` (SIGTERM, then SIGKILL) and reap it. Idempotent."""
    pid = daemon_pid(host, daemon)
    proc = _children.pop((host, daemon), None)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            if proc is not None:
                proc.poll()
            time.sleep(0.02)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    _reap_child(proc, timeout)
    try:
        os.unlink(_pid_path(host, daemon))
    except FileNotFoundError:
        pass


def restart(host, daemon, **kwargs):
    stop(host, daemon)
    return start(host, daemon, **kwargs)


# --- boot ------------------------------------------------------------------------------

def netplan_generate(host):
    """Render the host's /etc/netplan into its /run, as netplan's systemd generator does at boot."""
    if glob.glob(etc(host, 'netplan', '*.yaml')):
        run(host, 'netplan', 'generate')


def apply_sysctl_files(host):
    """Apply the host's own /etc/sysctl.d files, in name order, as systemd-sysctl does at boot.

    Only these: the machine's /usr/lib/sysctl.d and /etc/sysctl.conf hold keys that are not per
    network namespace, and writing them from a lab host would change the machine.
    """
    for path in sorted(glob.glob(etc(host, 'sysctl.d', '*.conf'))):
        run(host, 'sysctl', '-q', '-p', '/etc/sysctl.d/' + os.path.basename(path))


def wait_online(host, devices, timeout=30):
    """Wait until systemd-networkd has configured `devices` (systemd-networkd-wait-online)."""
    args = [WAIT_ONLINE, '--timeout=%d' % timeout] + ['--interface=%s' % d for d in devices]
    proc = run(host, *args, check=False, timeout=timeout + 10)
    if proc.returncode != 0:
        raise LabSystemError('lab host %s: systemd-networkd did not configure %s within %ss: %s\n%s'
                             % (host, ', '.join(devices), timeout, proc.stderr.strip(),
                                _tail(host, 'systemd-networkd')))


def boot(host, power_cycle, daemons=(), managed=(), timeout=START_TIMEOUT):
    """Reboot `host`: down, power_cycle() (the caller's: the kernel state a fresh boot starts from),
    a fresh /run, netplan generate, the sysctl.d files, then the daemons, left to set up the
    devices on their own. systemd-networkd is waited for until `managed` devices are configured.
    """
    down(host)
    power_cycle()
    up(host, timeout)
    netplan_generate(host)
    apply_sysctl_files(host)
    for daemon in daemons:
        start(host, daemon, timeout=timeout, managed=managed)
    if 'systemd-networkd' in daemons and managed:
        wait_online(host, managed, timeout)
