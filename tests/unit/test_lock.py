"""Unit tests for lock.py: who may take the host, and the hold file a run leaves between its steps."""

import os
import stat

import pytest

from ansible_collections.roce.multirail.plugins.module_utils.lock import (
    SAME_PLAN_TAKEOVER, Hold, LockTimeout, RunLost, decide_claim, decide_step, hold_path, lock_path, read_hold,
    run_step)

NOW = 1_000_000.0


def hold(run='A', plan='p1', ago=1.0, timeout=300.0):
    return Hold(run, plan, NOW - 100, NOW - ago, timeout)


@pytest.mark.parametrize('current, verdict', [
    (None, 'claim'),
    (hold(run='B'), 'claim'),                                       # our own run again
    (hold(ago=301), 'claim'),                                       # ended: past its timeout
    (hold(ago=SAME_PLAN_TAKEOVER + 1, plan='p2'), 'take over'),    # same plan, no step for a while
    (hold(ago=1, plan='p2'), 'wait'),                               # same plan, alive
    (hold(ago=SAME_PLAN_TAKEOVER + 1), 'wait'),                     # another plan, within its timeout
    (hold(ago=200), 'wait'),
], ids=['free', 'ours', 'ended', 'same-plan-stopped', 'same-plan-alive', 'other-plan', 'other-plan-old'])
def test_decide_claim(current, verdict):
    got, why = decide_claim(current, 'B', 'p2', NOW)
    assert got == verdict
    if current is not None and current.run != 'B' and verdict != 'claim':
        assert 'run A' in why


def test_waiting_names_the_other_run_and_its_plan():
    _verdict, why = decide_claim(hold(ago=3), 'B', 'p2', NOW)
    assert why.startswith('another run holds this host: run A') and 'last step 3 s ago' in why
    assert 'another plan' in why


@pytest.mark.parametrize('current, verdict', [
    (None, 'go'), (hold(run='B'), 'go'), (hold(ago=301), 'go'), (hold(ago=1), 'lost')])
def test_decide_step(current, verdict):
    got, why = decide_step(current, 'B', NOW)
    assert got == verdict
    assert ('restores nothing' in why) == (verdict == 'lost')


def test_a_run_claims_steps_and_gives_the_host_back(tmp_path):
    plan = {'rails': [1]}
    with run_step({'id': 'A', 'timeout': 60}, plan, claim=True, run_dir=str(tmp_path)):
        assert stat.S_IMODE(os.stat(lock_path(str(tmp_path))).st_mode) == 0o600
    first = read_hold(str(tmp_path))
    assert first.run == 'A' and first.timeout == 60
    assert stat.S_IMODE(os.stat(hold_path(str(tmp_path))).st_mode) == 0o600
    with run_step({'id': 'A', 'timeout': 60}, run_dir=str(tmp_path)):
        pass
    assert read_hold(str(tmp_path)).plan == first.plan and read_hold(str(tmp_path)).last >= first.last
    with run_step({'id': 'A', 'timeout': 60, 'finish': True}, run_dir=str(tmp_path)):
        pass
    assert read_hold(str(tmp_path)) is None


def test_a_refused_claim_holds_nothing(tmp_path):
    with pytest.raises(SystemExit):
        with run_step({'id': 'A', 'timeout': 60}, {}, claim=True, run_dir=str(tmp_path)):
            raise SystemExit(1)          # what fail_json does
    assert read_hold(str(tmp_path)) is None


def test_a_failed_step_keeps_the_hold_for_the_rollback(tmp_path):
    with run_step({'id': 'A', 'timeout': 60}, {}, claim=True, run_dir=str(tmp_path)):
        pass
    with pytest.raises(SystemExit):
        with run_step({'id': 'A', 'timeout': 60, 'finish': True}, run_dir=str(tmp_path)):
            raise SystemExit(1)
    assert read_hold(str(tmp_path)).run == 'A'


def test_another_plan_waits_then_fails_naming_the_run(tmp_path):
    with run_step({'id': 'A', 'timeout': 60}, {'plan': 1}, claim=True, run_dir=str(tmp_path)):
        pass
    with pytest.raises(LockTimeout) as error:
        with run_step({'id': 'B', 'timeout': 1}, {'plan': 2}, claim=True, run_dir=str(tmp_path)):
            pytest.fail('B must not get the host')
    assert 'run A' in str(error.value) and 'nothing was changed' in str(error.value)
    assert read_hold(str(tmp_path)).run == 'A'
    # A call outside any run waits for the run too.
    with pytest.raises(LockTimeout):
        with run_step(None, timeout=1, run_dir=str(tmp_path)):
            pytest.fail('a call outside the run must not change the host meanwhile')


def test_a_step_of_a_run_that_lost_the_host_changes_nothing(tmp_path):
    with run_step({'id': 'B', 'timeout': 60}, {}, claim=True, run_dir=str(tmp_path)):
        pass
    with pytest.raises(RunLost):
        with run_step({'id': 'A', 'timeout': 60, 'finish': True}, run_dir=str(tmp_path)):
            pytest.fail('A lost the host')
    assert read_hold(str(tmp_path)).run == 'B'


def test_the_lock_directory_must_be_private(tmp_path):
    open_dir = tmp_path / 'open'
    open_dir.mkdir(mode=0o777)
    os.chmod(str(open_dir), 0o777)
    with pytest.raises(LockTimeout) as error:
        with run_step(None, run_dir=str(open_dir)):
            pass
    assert str(open_dir) in str(error.value)
