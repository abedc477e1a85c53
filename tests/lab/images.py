"""What real images leave for their rail NICs, written into a lab host's private /etc.

An installer, kickstart or cloud-init gives each NIC its address through the host's network
stack, and says nothing about routing:

    networkmanager  one keyfile per rail (id=ibN, a fixed uuid, interface-name, its address,
                    autoconnect), and for ib0 a second profile bound by MAC with autoconnect off
                    (an earlier `nmcli con add`): NetworkManager may activate either on ib0
    networkd        one /etc/systemd/network/10-ibN.network per rail (Name=, Address=)
    netplan         /etc/netplan/50-cloud-init.yaml defining every rail (renderer networkd)

Boot the lab host afterwards (system.boot) and the stack's daemon sets the rails up from these
files, as it does on a real machine. Stdlib only (python >= 3.9).
"""

import os

if __package__:
    from . import roce_lab, system
else:                                   # imported from a script in tests/lab (demo.py)
    import roce_lab  # pylint: disable=import-error
    import system  # pylint: disable=import-error

STACKS = ('networkmanager', 'networkd', 'netplan')
DAEMONS = {'networkmanager': ('NetworkManager',), 'networkd': ('systemd-networkd',),
           'netplan': ('systemd-networkd',)}
NM_DIR = 'NetworkManager/system-connections'
IB0_ALT_UUID = '0f3f6b2e-2b1a-4c47-9a47-3c2a5a1e0001'


def nm_profile(rail, ident=None, uuid=None, mac=None, autoconnect=True):
    """A keyfile as an installer writes it: the NIC's address and nothing about routing.

    With `mac`, the profile is bound to the NIC by its MAC address instead of its name.
    """
    lines = ['[connection]', 'id=%s' % (ident or rail['device'])]
    if uuid:
        lines.append('uuid=%s' % uuid)
    lines.append('type=ethernet')
    if not mac:
        lines.append('interface-name=%s' % rail['device'])
    if not autoconnect:
        lines.append('autoconnect=false')
    if mac:
        lines += ['', '[ethernet]', 'mac-address=%s' % mac]
    lines += ['', '[ipv4]', 'method=manual', 'address1=%s' % rail['address'], '', '[ipv6]', 'method=disabled', '']
    return '\n'.join(lines)


def networkd_file(rail):
    """A .network file as an image ships it for one NIC."""
    return ('[Match]\nName=%s\n\n[Network]\nAddress=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n'
            % (rail['device'], rail['address']))


def netplan_yaml(rails, renderer='networkd', default_via=None):
    """cloud-init's netplan file for the rails; default_via: the host's default route through the first rail."""
    lines = ['# written by cloud-init', 'network:', '  version: 2', '  renderer: %s' % renderer, '  ethernets:']
    for rail in rails:
        lines += ['    %s:' % rail['device'], '      addresses: [%s]' % rail['address'], '      link-local: []',
                  '      accept-ra: false']
        if default_via and rail is rails[0]:
            lines += ['      routes:', '        - to: default', '          via: %s' % default_via]
    return '\n'.join(lines) + '\n'


def mac(host, device):
    return roce_lab.ip_json(host, 'link', 'show', device)[0]['address']


def files(description, stack):
    """{path under /etc: (text, mode)} of the image of `stack` for a lab host."""
    rails = description['rails']
    if stack == 'networkmanager':
        found = dict(('%s/%s.nmconnection' % (NM_DIR, rail['device']),
                      (nm_profile(rail, uuid='0f3f6b2e-2b1a-4c47-9a47-3c2a5a1e0%03d' % index), 0o600))
                     for index, rail in enumerate(rails, start=100))
        found['%s/ib0-alt.nmconnection' % NM_DIR] = (
            nm_profile(rails[0], ident='ib0-alt', uuid=IB0_ALT_UUID, mac=mac(description['host'], 'ib0'),
                       autoconnect=False), 0o600)
        return found
    if stack == 'networkd':
        return dict(('systemd/network/10-%s.network' % rail['device'], (networkd_file(rail), 0o644)) for rail in rails)
    if stack == 'netplan':
        return {'netplan/50-cloud-init.yaml': (netplan_yaml(rails), 0o600)}
    raise ValueError('no image for stack %r (known: %s)' % (stack, ', '.join(STACKS)))


def write(host, image):
    """Write {path under /etc: (text, mode)} into the lab host's private /etc."""
    for relative, (text, mode) in image.items():
        path = system.etc(host, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)
        os.chmod(path, mode)
