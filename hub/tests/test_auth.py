"""Staff accounts and security, without a browser: argon2 hashes, server-side sessions that
expire (idle and absolute, driven by the caller's clock), the login rate limit, the role
table, and the `onewindow user` commands."""

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from onewindow.hub.cli import app as cli
from onewindow.hub.store.accounts import ABSOLUTE_S, IDLE_S, AccountError, Accounts
from onewindow.hub.web import auth
from onewindow.tools.testkit.testbed import default_devices, write_config

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only
T0 = 1_800_000_000.0


@pytest.fixture
def accounts(tmp_path):
    a = Accounts(f"sqlite:///{tmp_path}/hub.db", FAST)
    yield a
    a.close()


def test_passwords_are_argon2_hashes_and_verify(accounts):
    accounts.add("wang", "correct horse", "clerk", "王芳", window=3, now=T0)
    with accounts.engine.connect() as conn:
        stored = conn.exec_driver_sql("select hash from staff_accounts").scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    acc = accounts.verify("wang", "correct horse")
    assert acc is not None and (acc.role, acc.window, acc.display) == ("clerk", 3, "王芳")
    assert accounts.verify("wang", "wrong horse!") is None
    assert accounts.verify("nobody", "correct horse") is None


def test_account_rules(accounts):
    with pytest.raises(AccountError):
        accounts.add("x", "long enough", "clerk")  # username too short
    with pytest.raises(AccountError):
        accounts.add("boss", "long enough", "emperor")
    with pytest.raises(AccountError):
        accounts.add("boss", "short", "supervisor")
    with pytest.raises(AccountError):
        accounts.add("boss", "long enough", "supervisor", window=2)  # only clerks
    accounts.add("boss", "long enough", "supervisor")
    with pytest.raises(AccountError):
        accounts.add("boss", "long enough", "admin")


def test_sessions_expire_idle_and_absolute(accounts):
    acc = accounts.add("li", "password1", "specialist", now=T0)
    token = accounts.start_session(acc, T0)
    assert accounts.session(token, T0 + 60).account.username == "li"
    # active every 20 minutes: alive until the absolute limit
    t = T0
    while t + 1200 < T0 + ABSOLUTE_S:
        t += 1200
        assert accounts.session(token, t) is not None, t
    assert accounts.session(token, T0 + ABSOLUTE_S + 1) is None
    # idle: gone after 30 minutes without a request, and stays gone
    token = accounts.start_session(acc, T0)
    assert accounts.session(token, T0 + IDLE_S - 5) is not None
    assert accounts.session(token, T0 + IDLE_S - 5 + IDLE_S + 1) is None
    assert accounts.session(token, T0 + IDLE_S) is None
    assert accounts.session("forged", T0) is None and accounts.session(None, T0) is None


def test_logout_disable_and_password_change_end_sessions(accounts):
    acc = accounts.add("zhao", "password1", "clerk", window=1, now=T0)
    a, b, c = (accounts.start_session(acc, T0) for _ in range(3))
    accounts.end_session(a)
    assert accounts.session(a, T0 + 1) is None and accounts.session(b, T0 + 1) is not None
    accounts.set_password("zhao", "password2")
    assert accounts.session(b, T0 + 2) is None
    d = accounts.start_session(acc, T0 + 3)
    accounts.set_active("zhao", False)
    assert accounts.session(d, T0 + 4) is None and accounts.session(c, T0 + 4) is None
    assert accounts.verify("zhao", "password2") is None
    accounts.set_active("zhao", True)
    assert accounts.verify("zhao", "password2") is not None


def test_tokens_are_stored_as_digests(accounts):
    acc = accounts.add("qian", "password1", "admin", now=T0)
    token = accounts.start_session(acc, T0)
    with accounts.engine.connect() as conn:
        stored = conn.exec_driver_sql("select token from staff_sessions").scalar()
    assert stored != token and len(stored) == 64


def test_rate_limit_per_username_and_address():
    now = [T0]
    rl = auth.RateLimit(lambda: now[0])
    for _ in range(5):
        assert rl.retry_after("wang", "10.0.0.1") == 0
        rl.failed("wang", "10.0.0.1")
    assert 299 <= rl.retry_after("wang", "10.0.0.1") <= 300
    assert rl.retry_after("WANG", "10.0.0.1") > 0  # usernames are not case games
    assert rl.retry_after("wang", "10.0.0.2") == 0  # another desk
    now[0] += 301
    assert rl.retry_after("wang", "10.0.0.1") == 0
    # one address trying many usernames
    for i in range(20):
        rl.failed(f"user{i}", "10.0.0.9")
    assert rl.retry_after("someone-else", "10.0.0.9") > 0
    # a success forgets that username's failures
    rl.failed("li", "10.0.0.3")
    rl.succeeded("li", "10.0.0.3")
    assert rl.retry_after("li", "10.0.0.3") == 0


ALLOWED = {
    "clerk": {"console"},
    "specialist": {"help.answer", "help.department"},
    "supervisor": {"floor", "windows.manage", "fleet", "cases", "help.department"},
    "technician": {"fleet"},
    "backoffice": {"cases", "help.department"},
    "admin": set(auth.PERMISSIONS) - {"station"},  # an admin has no station
    "station": {"station"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_role_table(role):
    for perm in auth.PERMISSIONS:
        assert auth.may(role, perm) == (perm in ALLOWED[role]), (role, perm)
    assert not auth.may("nobody", "console")
    with pytest.raises(KeyError):
        auth.may(role, "launch_missiles")


def test_cli_user_add_and_list(tmp_path):
    cfg = write_config(tmp_path / "centre.toml", "c1", 1883, tmp_path / "hub.db", windows=2,
                       devices=default_devices(2))
    run = CliRunner()
    r = run.invoke(cli, ["user", "add", "--config", str(cfg), "--username", "zhang",
                         "--role", "clerk", "--window", "2", "--display", "张伟",
                         "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 0, r.output
    r = run.invoke(cli, ["user", "add", "--config", str(cfg), "--username", "zhang",
                         "--role", "clerk", "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 1 and "exists" in r.output
    r = run.invoke(cli, ["user", "add", "--config", str(cfg), "--username", "chen",
                         "--role", "supervisor"], input="another-pass\nanother-pass\n")
    assert r.exit_code == 0, r.output
    r = run.invoke(cli, ["user", "add", "--config", str(cfg), "--username", "li",
                         "--role", "backoffice", "--department", "nowhere",
                         "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 2 and "no department 'nowhere'" in r.output
    r = run.invoke(cli, ["user", "add", "--config", str(cfg), "--username", "li",
                         "--role", "backoffice", "--department", "civil",
                         "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 0 and "department civil" in r.output, r.output
    r = run.invoke(cli, ["user", "list", "--config", str(cfg)])
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert lines == ["chen\tchen\tsupervisor\t-\t-\tactive",
                     "li\tli\tbackoffice\t-\tcivil\tactive",
                     "zhang\t张伟\tclerk\t2\t-\tactive"]
    a = Accounts(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert a.verify("zhang", "s3cret-pass") is not None
    finally:
        a.close()
    r = run.invoke(cli, ["user", "disable", "--config", str(cfg), "--username", "zhang"])
    assert r.exit_code == 0
    assert "disabled" in run.invoke(cli, ["user", "list", "--config", str(cfg)]).output
