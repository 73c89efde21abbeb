"""The web side depends on its port (hub/web/port.py), never on the runner: no module under
hub/web imports hub/runner.py, in any form (top-level, inside a function, or for type
checking only), and the runner, handed to the pages as their port, journals what they do.
That the pages' actions reach the broker through it: hub/tests/test_live.py and the browser
tests (a real hub process with Mosquitto)."""

import ast
from pathlib import Path

from onewindow.hub.config import BrokerURL
from onewindow.hub.core import commands as c
from onewindow.hub.runner import HubRunner
from onewindow.hub.store.journal import Journal
from onewindow.hub.web.site import Site

from .test_staff_http import Env

WEB = Path(__file__).resolve().parents[1] / "web"
RUNNER = "onewindow.hub.runner"


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` (the module `module`, dotted) imports, as absolute dotted
    names; `from X import name` also counts X.name, which may be a module."""
    package = module.split(".")[:-1]  # a package's own __init__ too: its package
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def imports_runner(source: str, module: str) -> bool:
    return any(m == RUNNER or m.startswith(RUNNER + ".")
               for m in imported_modules(source, module))


def web_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(WEB.rglob("*.py")):
        parts = ["onewindow", "hub", "web", *path.relative_to(WEB).with_suffix("").parts]
        out.append((".".join(parts), path))
    return out


def test_the_check_sees_every_way_of_importing_the_runner():
    web = "onewindow.hub.web.site"
    for source in ("from ..runner import HubRunner",
                   "from .. import runner",
                   "import onewindow.hub.runner",
                   "from onewindow.hub.runner import serve",
                   "from onewindow.hub import runner",
                   "if TYPE_CHECKING:\n    from ..runner import HubRunner",
                   "def f():\n    from ..runner import serve"):
        assert imports_runner(source, web), source
    assert imports_runner("from ...runner import x", "onewindow.hub.web.sub.page")
    assert imports_runner("from ..runner import x", "onewindow.hub.web.__init__")
    for source in ("from ..app import HubApp", "from .port import HubPort",
                   "from ..store import journal", "from ..runners import x"):
        assert not imports_runner(source, web), source


def test_no_web_module_imports_the_runner():
    modules = web_modules()
    assert {"onewindow.hub.web.site", "onewindow.hub.web.port",
            "onewindow.hub.web.__init__"} <= {m for m, _ in modules}
    offenders = [str(path.relative_to(WEB.parent.parent)) for module, path in modules
                 if imports_runner(path.read_text(encoding="utf-8"), module)]
    assert offenders == []


async def test_the_pages_act_through_the_runner_journaled_and_announced(tmp_path):
    env = Env(tmp_path)
    journal = Journal(f"sqlite:///{tmp_path}/journal.db")
    try:
        runner = HubRunner(env.hub, journal, BrokerURL("127.0.0.1", 1), lambda: env.now)
        steps: list = []
        runner.subscribe(steps.append)
        site = Site(env.hub, runner, lambda: env.now)
        other = Site(env.hub, runner, lambda: env.now)  # a second web side hears it too
        item = next(iter(env.hub.centre.windows[1].skills))
        step = await site.act(c.TakeTicket(item))
        assert steps == [step] and step.records
        assert [(r.pos, r.op, r.ts) for r in journal.read()] == [
            (r.pos, "take", env.now) for r in step.records]
        assert (site.live.version, other.live.version) == (1, 1)
    finally:
        journal.close()
        env.site.accounts.close()
