"""The documented maximum of sources (plan.MAX_SOURCES over 8 rails): the audit alone, then the role.

rail_audit gathers its snapshot in a few netlink dumps; what grows with the sources is audit()
itself, which looks up each address's rules, route answers and shadowing rules. The snapshot is
the one tests/unit/test_audit_scale.py checks for correctness (every source an address on its
rail with its own rule). Prints seconds per audit() for each size.

With --role, a textbook lab host of 8 rails is given the sources as /32 addresses on its rails
(172.16.0.0/12, as the unit snapshot), playbooks/site.yml converges it and runs again with nothing
to change; both runs are timed and the lab host is removed afterwards (needs root).

    python bench/audit_scale.py [SOURCES ...]          (default: 256 512 1024 4096)
    python bench/audit_scale.py --role [SOURCES]       (default: plan.MAX_SOURCES)
"""

import os
import pathlib
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path[:0] = [os.path.join(REPO, 'tests'), os.path.join(REPO, 'tests', 'unit'),
                os.path.join(REPO, 'tests', 'integration'), os.path.join(REPO, '.venv', 'collections')]

# pylint: disable=wrong-import-position
from ansible_collections.roce.multirail.plugins.module_utils.audit import audit  # noqa: E402
from ansible_collections.roce.multirail.plugins.module_utils.plan import MAX_SOURCES  # noqa: E402
from test_audit_scale import RAILS, scale_snapshot, source_addresses  # noqa: E402


def measure(sources, rails=RAILS):
    """(seconds of one audit(), number of findings) for `sources` sources over `rails` rails."""
    devices, snapshot = scale_snapshot(rails, sources)
    start = time.perf_counter()
    _rails, findings, _summary = audit(snapshot, devices)
    return time.perf_counter() - start, len(findings)


def role(sources, rails=RAILS):
    """(converge seconds, no-change seconds) of site.yml on a lab host with `sources` sources over `rails` rails."""
    from lab import roce_lab
    from roleruns import assert_ok, inventory, site
    name = 'as%d' % (os.getpid() % 10000)
    roce_lab.destroy_host(name)
    description = roce_lab.create_host(name, 'textbook', rails, owner_pid=os.getpid())
    try:
        host_vars = inventory(description)
        commands = []
        for k, rail in enumerate(host_vars['source_routing_rails']):
            extra = source_addresses(k + 1, sources // rails + (1 if k < sources % rails else 0))
            rail['sources'] = extra
            commands += ['addr add %s/32 dev %s' % (address, rail['device']) for address in extra]
        roce_lab.ip_batch(name, commands)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            fresh = site(description, pathlib.Path(tmp), host_vars)
            converge = time.perf_counter() - start
            assert_ok(fresh)
            start = time.perf_counter()
            again = site(description, pathlib.Path(tmp), host_vars)
            noop = time.perf_counter() - start
            assert_ok(again, changed=0)
        return converge, noop
    finally:
        roce_lab.destroy_host(name)


def main(argv):
    if argv[:1] == ['--role']:
        sources = int(argv[1]) if len(argv) > 1 else MAX_SOURCES
        converge, noop = role(sources)
        print('%5d sources over %d rails: site.yml converge %.1f s, no-change %.1f s'
              % (sources, RAILS, converge, noop))
        return
    for sources in [int(arg) for arg in argv] or [256, 512, 1024, 4096]:
        seconds, findings = measure(sources)
        print('%5d sources over %d rails: audit() %.3f s, %d findings' % (sources, RAILS, seconds, findings),
              flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
