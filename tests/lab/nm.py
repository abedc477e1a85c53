"""A real NetworkManager inside one lab host (a network namespace), for tests and demos.

The namespace (``ip netns add H``) and its NICs belong to the caller. ``start(H)`` brings up the
host's own system (tests/lab/system.py: a private mount namespace with a tmpfs on /run, /sys
read-only, a private /var/lib/NetworkManager and a D-Bus system bus without service activation)
and starts ``NetworkManager --no-daemon`` in it with the lab's configuration (system.NM_CONF:
keyfiles only, no-auto-default=*, no DNS, hostname or connectivity checking, every device left
alone until ``manage()`` hands it over with ``nmcli device set DEV managed yes``).

Keyfiles come from /etc/NetworkManager/system-connections as seen under ``ip netns exec H``,
i.e. /etc/netns/H/NetworkManager/system-connections, which must exist (``prepare_etc(H)``) so
the machine's own /etc/NetworkManager is never read.

``nmcli(H, ...)`` runs nmcli in that system; any process in H reaches it too with
DBUS_SYSTEM_BUS_ADDRESS=bus_address(H) (Ansible modules run through the netns connection, say),
or by entering its mount namespace (ansible_netns_mount_namespace: system.mount_namespace(H)).
``stop(H)`` takes the whole system down and forgets it.

Stdlib only (python >= 3.9). Import it as ``from lab import nm`` (pytest.ini puts tests/ on the
path) or by file path. It is also a CLI (start creates /etc/netns/HOST/NetworkManager if
missing and hands the devices after HOST to NetworkManager):

    python tests/lab/nm.py start HOST [DEVICE...]
    python tests/lab/nm.py stop|status|log HOST
    python tests/lab/nm.py nmcli HOST ARGS...
"""

import ipaddress
import os
import re
import shutil
import subprocess
import sys

if __package__:
    from . import system
else:                                   # run as a script: tests/lab/nm.py
    import system  # pylint: disable=import-error

NETNS_ETC = '/etc/netns'
START_TIMEOUT = 30


class NMError(RuntimeError):
    """A lab NetworkManager could not be started or stopped, or nmcli failed."""


# --- paths -------------------------------------------------------------------

def state_dir(host):
    return system.state_dir(host)


def etc_dir(host):
    """/etc/NetworkManager as NetworkManager inside `host` sees it."""
    return os.path.join(NETNS_ETC, host, 'NetworkManager')


def keyfile_dir(host):
    """Where NetworkManager inside `host` reads keyfiles from (the host's /etc/NetworkManager/system-connections)."""
    return os.path.join(etc_dir(host), 'system-connections')


def bus_address(host):
    """DBUS_SYSTEM_BUS_ADDRESS that reaches `host`'s NetworkManager from outside its mount namespace."""
    return system.bus_address(host)


def log_path(host):
    return system.log_path(host, 'NetworkManager')


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

def tree_pids(host):
    """Live processes of `host`'s system: everything in its private mount namespace."""
    return system.tree_pids(host)


def pid(host):
    """PID of the running system's holder (what nsenter targets) while NetworkManager runs, or None."""
    return system.holder(host) if system.running(host, 'NetworkManager') else None


def log(host):
    """NetworkManager's output so far, '' if none."""
    return system.log(host, 'NetworkManager')


def start(host, timeout=START_TIMEOUT, log_level='INFO', managed=()):
    """Start NetworkManager inside network namespace `host`; return the system's holder PID.

    /etc/netns/HOST/NetworkManager must exist (see prepare_etc). Waits until NetworkManager
    answers on the bus and reports startup complete; on failure stops everything and raises
    NMError with the tail of its log. `managed` devices are handed to it afterwards.
    """
    if not os.path.exists(os.path.join('/run/netns', host)):
        raise NMError('no network namespace %r (ip netns add %s)' % (host, host))
    if not os.path.isdir(keyfile_dir(host)):
        raise NMError('%s does not exist: without it NetworkManager in %s would read the machine\'s '
                      '/etc/NetworkManager (call prepare_etc(%r))' % (keyfile_dir(host), host, host))
    if pid(host) is not None:
        raise NMError('NetworkManager already runs in %s (pid %d)' % (host, system.daemon_pid(host, 'NetworkManager')))
    try:
        if not system.is_up(host):
            system.up(host, timeout)
        system.start(host, 'NetworkManager', timeout=timeout, log_level=log_level)
    except system.LabSystemError as exc:
        system.forget(host)
        raise NMError(str(exc)) from exc
    for device in managed:
        manage(host, device)
    return system.holder(host)


def stop(host):
    """Stop NetworkManager and the rest of `host`'s system, and forget its state. Idempotent."""
    try:
        system.forget(host)
    except system.LabSystemError as exc:
        raise NMError(str(exc)) from exc


# --- nmcli -------------------------------------------------------------------------

def _nmcli_proc(host, args, timeout):
    if pid(host) is None:
        return None
    try:
        return system.run(host, 'nmcli', *args, check=False, timeout=timeout)
    except system.LabSystemError:
        return None


def nmcli(host, *args, timeout=30, check=True):
    """Run `nmcli ARGS` against `host`'s NetworkManager; return stdout. Raises NMError with stderr."""
    if pid(host) is None:
        raise NMError('NetworkManager is not running in %s' % host)
    try:
        return system.run(host, 'nmcli', *args, check=check, timeout=timeout).stdout
    except system.LabSystemError as exc:
        raise NMError(str(exc)) from exc


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
    lines += ['  %d %s' % (p, system.display(p)) for p in tree_pids(host)]
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
