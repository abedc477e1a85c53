"""A real NetworkManager inside one lab host (a network namespace), for tests and demos.

The namespace (``ip netns add H``) and its NICs belong to the caller. ``start(H)`` runs

    ip netns exec H unshare --mount --propagation private sh -c SCRIPT

where SCRIPT, in the new private mount namespace, bind-mounts a private state directory on
/var/lib/NetworkManager, mounts a tmpfs on /run, remounts /sys read-only (NetworkManager then
stops waiting for udev; without it every device stays unmanaged), starts a private D-Bus system
bus (no service activation: no ModemManager, polkit, hostnamed or dispatcher get started) and
then ``NetworkManager --no-daemon`` with a private configuration:

- plugins=keyfile, no-auto-default=* (no "Wired connection 1"), a [device] section with
  match-device=* and managed=0 (NetworkManager touches only the devices ``manage()`` hands it with
  ``nmcli device set DEV managed yes``; keyfile.unmanaged-devices=* would not let that override
  it, and without either NetworkManager takes every device and sets it up), dns=none and rc-manager=unmanaged (it never
  writes resolv.conf), hostname-mode=none (it never sets the machine's hostname), connectivity
  checking off (no traffic to the outside), auth-polkit=false.
- keyfiles come from /etc/NetworkManager/system-connections as seen under ``ip netns exec H``,
  i.e. /etc/netns/H/NetworkManager/system-connections, which must exist (``prepare_etc(H)``) so
  the machine's own /etc/NetworkManager is never read.

The shell stays the root of the tree and reaps NetworkManager and dbus-daemon when stopped, so no
zombies are left on machines whose PID 1 does not reap orphans. ``nmcli(H, ...)`` runs nmcli with
``nsenter -t PID -m -n`` in that NetworkManager's mount and network namespaces, so it reaches that
instance's D-Bus; any process in H reaches it too with DBUS_SYSTEM_BUS_ADDRESS=bus_address(H)
(Ansible modules run through the netns connection, say). Its state (pid, log, private
/var/lib/NetworkManager, that second bus socket) is in /run/roce-lab-nm/H/.

Stdlib only (python >= 3.9). Import it as ``from lab import nm`` (pytest.ini puts tests/ on the
path) or by file path. It is also a CLI (start creates /etc/netns/HOST/NetworkManager if
missing and hands the devices after HOST to NetworkManager):

    python tests/lab/nm.py start HOST [DEVICE...]
    python tests/lab/nm.py stop|status|log HOST
    python tests/lab/nm.py nmcli HOST ARGS...
"""

import errno
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time

STATE_ROOT = '/run/roce-lab-nm'
NETNS_ETC = '/etc/netns'
START_TIMEOUT = 30
STOP_TIMEOUT = 10

NM_CONF = """\
# Private configuration of a lab NetworkManager (written by tests/lab/nm.py).
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

[device-lab-unmanaged]
match-device=*
managed=0

[connectivity]
enabled=false
"""

# A system bus without activatable services (nothing but NetworkManager ever owns a name) and a
# policy that lets root do anything. Processes in the private mount namespace reach it at the usual
# path; others (`ip netns exec HOST ...`) through the second socket, see bus_address().
DBUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <listen>unix:path=/var/lib/NetworkManager/lab-system-bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

# Runs as `sh -c SCRIPT lab-nm STATE LOG_LEVEL` inside the private mount namespace. The state dir
# is out of sight once /run is a tmpfs, so everything it provides is bound or read before that.
SCRIPT = r"""
set -eu
state=$1
mkdir -p "$state/lib"
mount --bind "$state/lib" /var/lib/NetworkManager
nm_conf=$(cat "$state/NetworkManager.conf")
dbus_conf=$(cat "$state/dbus.conf")
mount -t tmpfs -o mode=0755 lab-nm-run /run
mount -o remount,bind,ro /sys
mkdir -p /run/dbus /run/NetworkManager /run/lab-nm/conf.d
printf '%s\n' "$nm_conf" > /run/lab-nm/NetworkManager.conf
printf '%s\n' "$dbus_conf" > /run/lab-nm/dbus.conf
dbus=''
nm=''
stop() {
    trap '' TERM INT HUP
    [ -z "$nm" ] || kill -TERM "$nm" 2>/dev/null || true
    [ -z "$nm" ] || wait "$nm" 2>/dev/null || true
    [ -z "$dbus" ] || kill -TERM "$dbus" 2>/dev/null || true
    wait 2>/dev/null || true
    exit 0
}
trap stop TERM INT HUP
dbus-daemon --config-file=/run/lab-nm/dbus.conf --nofork --nopidfile &
dbus=$!
i=0
while [ ! -S /run/dbus/system_bus_socket ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$dbus" 2>/dev/null; then
        echo "lab-nm: dbus-daemon did not create /run/dbus/system_bus_socket" >&2
        stop
    fi
    sleep 0.05
done
NetworkManager --no-daemon --debug --log-level="$2" --config=/run/lab-nm/NetworkManager.conf \
    --config-dir=/run/lab-nm/conf.d --system-config-dir=/run/lab-nm/conf.d &
nm=$!
wait "$nm" || true
echo "lab-nm: NetworkManager exited" >&2
nm=''
stop
"""


class NMError(RuntimeError):
    """A lab NetworkManager could not be started or stopped, or nmcli failed."""


# Popen objects of the trees this process started, so stop() can reap them (no zombies).
_children = {}


# --- paths -------------------------------------------------------------------

def state_dir(host):
    return os.path.join(STATE_ROOT, host)


def etc_dir(host):
    """/etc/NetworkManager as NetworkManager inside `host` sees it."""
    return os.path.join(NETNS_ETC, host, 'NetworkManager')


def keyfile_dir(host):
    """Where NetworkManager inside `host` reads keyfiles from (the host's /etc/NetworkManager/system-connections)."""
    return os.path.join(etc_dir(host), 'system-connections')


def bus_address(host):
    """DBUS_SYSTEM_BUS_ADDRESS that reaches `host`'s NetworkManager from outside its mount namespace.

    The bus's second socket lies in the private /var/lib/NetworkManager, which is the state dir's
    lib/ seen from everywhere: `DBUS_SYSTEM_BUS_ADDRESS=... ip netns exec HOST nmcli ...` works.
    """
    return 'unix:path=' + os.path.join(state_dir(host), 'lib', 'lab-system-bus')


def log_path(host):
    return os.path.join(state_dir(host), 'NetworkManager.log')


def _pid_path(host):
    return os.path.join(state_dir(host), 'pid')


def prepare_etc(host):
    """Create /etc/netns/HOST/NetworkManager/system-connections (0700); return the keyfile dir."""
    path = keyfile_dir(host)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def remove_etc(host):
    """Remove /etc/netns/HOST/NetworkManager, and /etc/netns/HOST if that leaves it empty."""
    shutil.rmtree(etc_dir(host), ignore_errors=True)
    try:
        os.rmdir(os.path.join(NETNS_ETC, host))
    except OSError:
        pass


def write_keyfile(host, name, text, mode=0o600, uid=0, gid=0):
    """Write a keyfile NAME.nmconnection (root-owned, 0600 unless told otherwise); return its path."""
    path = os.path.join(keyfile_dir(host), name if name.endswith('.nmconnection') else name + '.nmconnection')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


# --- processes -----------------------------------------------------------------

def _ns_ids(pid):
    try:
        return (os.readlink('/proc/%d/ns/mnt' % pid), os.readlink('/proc/%d/ns/net' % pid))
    except OSError:
        return None


def _alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(')') + 2] not in 'ZX'


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _recorded(host):
    """(pid, mnt ns, net ns) written by start(), or None."""
    text = _read(_pid_path(host))
    if not text:
        return None
    fields = text.split()
    if len(fields) != 3 or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1], fields[2]


def tree_pids(host):
    """Live processes of `host`'s NetworkManager tree: everything in its private mount namespace."""
    rec = _recorded(host)
    if rec is None:
        return []
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and _ns_ids(int(entry)) == rec[1:] and _alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


def pid(host):
    """PID of the running tree's root (the shell that nsenter targets), or None."""
    rec = _recorded(host)
    if rec is None or not _alive(rec[0]) or _ns_ids(rec[0]) != rec[1:]:
        return None
    return rec[0]


def log(host):
    """NetworkManager's (and dbus-daemon's) output so far, '' if none."""
    return _read(log_path(host)) or ''


def _tail(host, lines=60):
    text = log(host).splitlines()
    return '\n'.join(text[-lines:])


def _run(argv, timeout, check=True):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NMError('%s timed out after %ss' % (' '.join(argv), timeout)) from exc
    if check and proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip()
        raise NMError('%s failed (rc %d): %s' % (' '.join(argv), proc.returncode, reason))
    return proc


def start(host, timeout=START_TIMEOUT, log_level='INFO', managed=()):
    """Start NetworkManager inside network namespace `host`; return the tree's root PID.

    /etc/netns/HOST/NetworkManager must exist (see prepare_etc). Waits until nmcli gets an answer
    and NetworkManager reports startup complete; on failure stops everything and raises NMError
    with the tail of the log. `managed` devices are handed to NetworkManager afterwards.
    """
    if not os.path.exists(os.path.join('/run/netns', host)):
        raise NMError('no network namespace %r (ip netns add %s)' % (host, host))
    if not os.path.isdir(keyfile_dir(host)):
        raise NMError('%s does not exist: without it NetworkManager in %s would read the machine\'s '
                      '/etc/NetworkManager (call prepare_etc(%r))' % (keyfile_dir(host), host, host))
    if pid(host) is not None:
        raise NMError('NetworkManager already runs in %s (pid %d)' % (host, pid(host)))
    stop(host)  # leftovers of an earlier run
    state = state_dir(host)
    os.makedirs(os.path.join(state, 'lib'), mode=0o700)
    with open(os.path.join(state, 'NetworkManager.conf'), 'w') as handle:
        handle.write(NM_CONF)
    with open(os.path.join(state, 'dbus.conf'), 'w') as handle:
        handle.write(DBUS_CONF)
    logfile = open(log_path(host), 'ab')
    try:
        proc = subprocess.Popen(
            ['ip', 'netns', 'exec', host, 'unshare', '--mount', '--propagation', 'private',
             'sh', '-c', SCRIPT, 'lab-nm', state, log_level],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        logfile.close()
    _children[host] = proc
    # `ip netns exec` and `unshare` (without --fork) exec, so proc.pid becomes the shell in the
    # private mount namespace once unshare is done; wait for that before recording the namespaces.
    deadline = time.monotonic() + timeout
    ids = None
    while ids is None:
        if proc.poll() is not None:
            _fail(host, 'it exited (rc %s)' % proc.returncode)
        if time.monotonic() > deadline:
            _fail(host, 'its process tree did not come up within %ss' % timeout)
        if _cmdline(proc.pid).startswith('sh\0'):
            ids = _ns_ids(proc.pid)
        else:
            time.sleep(0.01)
    with open(_pid_path(host), 'w') as handle:
        handle.write('%d %s %s\n' % (proc.pid, ids[0], ids[1]))
    while True:
        if proc.poll() is not None:
            _fail(host, 'it exited (rc %s)' % proc.returncode)
        res = _nmcli_proc(host, ('-t', '-f', 'RUNNING', 'general'), timeout=5)
        if res is not None and res.returncode == 0 and res.stdout.strip() == 'running':
            break
        if time.monotonic() > deadline:
            _fail(host, 'nmcli got no answer within %ss (last: %s)'
                  % (timeout, (res.stderr or res.stdout).strip() if res is not None else 'timeout'))
        time.sleep(0.1)
    for device in managed:
        manage(host, device)
    return proc.pid


def _cmdline(pid_):
    """The raw NUL-separated command line of a process, '' if gone."""
    return _read('/proc/%d/cmdline' % pid_) or ''


def _display(pid_):
    return ' '.join('<lab-nm script>' if arg == SCRIPT else arg for arg in _cmdline(pid_).split('\0')).strip()


def _fail(host, why):
    text = _tail(host)
    stop(host, keep_log=True)
    raise NMError('NetworkManager in %s did not start: %s. Log (%s):\n%s' % (host, why, log_path(host), text))


def _wait_gone(host, proc, timeout):
    """Reap and wait until nothing of `host`'s tree is left, or the timeout; return what is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and tree_pids(host):
        _reap(proc)
        time.sleep(0.05)
    return tree_pids(host)


def stop(host, timeout=STOP_TIMEOUT, keep_log=False):
    """Stop NetworkManager, dbus-daemon and everything else of `host`'s tree. Idempotent.

    Asks the tree's shell to stop (it terminates NetworkManager, then dbus-daemon, and reaps them),
    then kills whatever is left of the process group and of the private mount namespace, and
    verifies that nothing is left. Removes the state dir (except the log when keep_log).
    """
    rec = _recorded(host)
    proc = _children.pop(host, None)
    if rec is None and proc is not None and proc.poll() is None:
        # start() failed before it recorded the tree: the process group is all there is.
        _signal(-proc.pid, signal.SIGKILL)
    if rec is not None:
        root = rec[0]
        if _alive(root) and _ns_ids(root) == rec[1:]:
            _signal(root, signal.SIGTERM)
        left = _wait_gone(host, proc, timeout)
        if left:
            if proc is not None and proc.poll() is None:
                _signal(-proc.pid, signal.SIGKILL)  # still our unreaped child: its group id is ours
            elif _alive(root) and _ns_ids(root) == rec[1:]:
                _signal(-root, signal.SIGKILL)
            for other in left:
                _signal(other, signal.SIGKILL)
            left = _wait_gone(host, proc, timeout)
        if left:
            raise NMError('could not stop NetworkManager in %s: still running: %s'
                          % (host, ', '.join('%d %s' % (p, _display(p)) for p in left)))
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    state = state_dir(host)
    if keep_log:
        for entry in os.listdir(state) if os.path.isdir(state) else ():
            if entry != os.path.basename(log_path(host)):
                path = os.path.join(state, entry)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
    else:
        shutil.rmtree(state, ignore_errors=True)


def _signal(target, sig):
    try:
        os.kill(target, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _reap(proc):
    if proc is not None:
        proc.poll()


# --- nmcli -------------------------------------------------------------------------

def _nmcli_proc(host, args, timeout, stdin=None):
    root = pid(host)
    if root is None:
        return None
    try:
        return subprocess.run(['nsenter', '-t', str(root), '-m', '-n', 'nmcli'] + list(args),
                              capture_output=True, text=True, timeout=timeout, check=False,
                              input=stdin)
    except subprocess.TimeoutExpired:
        return None


def nmcli(host, *args, timeout=30, check=True):
    """Run `nmcli ARGS` against `host`'s NetworkManager; return stdout. Raises NMError with stderr."""
    root = pid(host)
    if root is None:
        raise NMError('NetworkManager is not running in %s' % host)
    argv = ['nsenter', '-t', str(root), '-m', '-n', 'nmcli'] + [str(a) for a in args]
    return _run(argv, timeout, check).stdout


def manage(host, device):
    return nmcli(host, 'device', 'set', device, 'managed', 'yes')


def reload(host):
    return nmcli(host, 'connection', 'reload')


def up(host, conn_id, timeout=30):
    """Activate connection `conn_id` (an id, uuid or keyfile path) and wait for it (nmcli --wait)."""
    return nmcli(host, '--wait', str(timeout), 'connection', 'up', *_conn(conn_id), timeout=timeout + 10)


def down(host, conn_id, timeout=30):
    return nmcli(host, '--wait', str(timeout), 'connection', 'down', *_conn(conn_id), timeout=timeout + 10)


def _conn(conn_id):
    if conn_id.startswith('/'):
        return ['path', conn_id]
    return ['id', conn_id]


def status(host):
    """A short human-readable status: pid, processes, `nmcli general`, devices and connections."""
    root = pid(host)
    if root is None:
        return 'NetworkManager in %s: not running' % host
    lines = ['NetworkManager in %s: running (tree root pid %d, log %s)' % (host, root, log_path(host))]
    lines += ['  %d %s' % (p, _display(p)) for p in tree_pids(host)]
    for args in (('general', 'status'), ('device', 'status'), ('connection', 'show')):
        res = _nmcli_proc(host, args, timeout=10)
        lines.append('$ nmcli ' + ' '.join(args))
        lines.append((res.stdout if res is not None and res.returncode == 0 else
                      (res.stderr if res is not None else 'timeout')).rstrip())
    return '\n'.join(lines)


# --- offline validation -----------------------------------------------------------------

# Keys nmcli --offline drops from its output because they hold NetworkManager's default value.
DEFAULT_VALUES = {
    ('connection', 'autoconnect'): ('true', '1'),
    ('connection', 'autoconnect-priority'): ('0',),
    ('ipv4', 'may-fail'): ('true', '1'),
    ('ipv6', 'may-fail'): ('true', '1'),
    ('ipv4', 'never-default'): ('false', '0'),
    ('ipv6', 'never-default'): ('false', '0'),
}


def parse_keyfile(text):
    """A keyfile as {section: {key: value}} (order kept; comments and blank lines skipped)."""
    sections = {}
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('[') and line.endswith(']'):
            current = sections.setdefault(line[1:-1], {})
        elif '=' in line and current is not None:
            key, value = line.split('=', 1)
            current[key.strip()] = value.strip()
        else:
            raise NMError('keyfile line %d is neither a [group] nor key=value: %r' % (number, raw))
    return sections


_NUMBERED = re.compile(r'^(address|route|routing-rule)(\d+)(_options)?$')


def _option_items(value):
    return set(item.strip() for item in value.split(',') if item.strip())


def _entry_key(family, value):
    """A light normalization of one address/route/rule value, as NetworkManager writes it back."""
    if family == 'route':
        parts = [part.strip() for part in value.split(',')]
        try:
            dest = str(ipaddress.ip_network(parts[0], strict=False))
        except ValueError:
            dest = parts[0]
        gateway = parts[1] if len(parts) > 1 and parts[1] not in ('', '0.0.0.0', '::') else ''
        metric = parts[2] if len(parts) > 2 else ''
        return (dest, gateway, metric)
    if family == 'routing-rule':
        return tuple(re.sub(r'/(32|128)$', '', token) for token in value.split())
    return tuple(part.strip() for part in value.split(','))


def _entries(keys):
    """{family: [(display, key, option items)]} of the numbered keys of one section."""
    found = {}
    for key, value in keys.items():
        match = _NUMBERED.match(key)
        if match and not match.group(3):
            family = match.group(1)
            options = keys.get(key + '_options')
            display = '%s=%s' % (key, value) + (' (%s_options=%s)' % (key, options) if options else '')
            found.setdefault(family, []).append(
                (display, _entry_key(family, value), _option_items(options or '')))
    return found


def dropped_keys(original, normalized):
    """What of keyfile text `original` NetworkManager's reader left out of `normalized`.

    Returns 'section.key=value' for plain keys that vanished (invalid, unknown, or a default value
    not listed in DEFAULT_VALUES), for address/route/routing-rule entries without a counterpart
    in the output (NetworkManager renumbers the survivors, so entries are matched by value), and
    'section.routeN_options: item' for route options that vanished from a route that survived.
    """
    before, after = parse_keyfile(original), parse_keyfile(normalized)
    lost = []
    for section, keys in before.items():
        kept = after.get(section, {})
        for key, value in keys.items():
            if _NUMBERED.match(key):
                continue
            if key not in kept and value.lower() not in DEFAULT_VALUES.get((section, key), ()):
                lost.append('%s.%s=%s' % (section, key, value))
        remaining = _entries(kept)
        for family, entries in _entries(keys).items():
            pool = remaining.get(family, [])
            for display, ident, options in entries:
                match = next((e for e in pool if e[1] == ident and e[2] == options), None) \
                    or next((e for e in pool if e[1] == ident), None)
                if match is None:
                    lost.append('%s.%s' % (section, display))
                    continue
                pool.remove(match)
                lost += ['%s.%s: option %s' % (section, display.split('=', 1)[0] + '_options', item)
                         for item in sorted(options - match[2])]
    return lost


def offline_check(path, strict=True, timeout=30):
    """Validate a keyfile without any daemon: `nmcli --offline connection modify < path`.

    nmcli (>= 1.40) reads the keyfile on stdin, loads it as NetworkManager would, normalizes and
    verifies the connection and prints it back as a keyfile; that text is returned. A connection
    NetworkManager would refuse (missing id/type/method, bad address, unknown type, not a keyfile)
    makes nmcli exit 1 with 'Error: ...' on stderr: raises NMError with that reason.

    nmcli is lenient about single entries, exactly like the daemon: an unparsable route
    (`route1=10.0.1.0/24,100`), routing rule (no priority) or route option (`table=abc`) is dropped
    with exit status 0. With `strict` (the default) anything of the input missing from the
    normalized output (see dropped_keys) raises NMError too.
    """
    with open(path) as handle:
        text = handle.read()
    try:
        proc = subprocess.run(['nmcli', '--offline', 'connection', 'modify'], input=text,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NMError('nmcli --offline timed out on %s' % path) from exc
    if proc.returncode != 0:
        raise NMError('%s is not a valid keyfile (nmcli --offline rc %d): %s'
                      % (path, proc.returncode, (proc.stderr or proc.stdout).strip()))
    if strict:
        lost = dropped_keys(text, proc.stdout)
        if lost:
            raise NMError('%s: NetworkManager would ignore %s' % (path, '; '.join(lost)))
    return proc.stdout


# --- CLI ------------------------------------------------------------------------------

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = 'usage: nm.py start HOST [DEVICE...] | nm.py stop|status|log HOST | nm.py nmcli HOST ARGS...'
    if len(argv) < 2 or argv[0] not in ('start', 'stop', 'status', 'log', 'nmcli'):
        print(usage, file=sys.stderr)
        return 2
    cmd, host, rest = argv[0], argv[1], argv[2:]
    try:
        if cmd == 'start':
            if not os.path.isdir(keyfile_dir(host)):
                prepare_etc(host)
            print(start(host, managed=rest))
        elif cmd == 'stop':
            stop(host)
        elif cmd == 'status':
            print(status(host))
            return 0 if pid(host) is not None else 3
        elif cmd == 'log':
            sys.stdout.write(log(host))
        else:
            sys.stdout.write(nmcli(host, *rest))
    except NMError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
