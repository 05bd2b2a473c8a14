"""Scenario files, patches and presets: loading, one-line errors, overrides, round trips."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from importlib import resources
from pathlib import Path

import pytest
from conftest import Cli

from vcoresim.kvm import catalog
from vcoresim.kvm.config import ScenarioConfig, dump
from vcoresim.kvm.patches import DEFAULT_PRESET, PATCHES, PRESETS, resolve_kernel
from vcoresim.scenarios import builtin, loader
from vcoresim.scenarios.registry import ScenarioError, get_scenario, program_for

# The six the issues name, plus 8117ac6a6c2f, which fixes the residual race (R3) the checker finds in seed 000.
ALL_PATCHES = {
    "smt-guests",
    "rm-cede",
    "late-join-first-run",
    "stray-ipi-guard",
    "late-join-release-after-wait",
    "late-join-every-run",
    "start-secondary-races",
    "idle-nap-real-mode",
    "idle-skip-kvm-sync",
    "idle-wakeup-test-req",
    "hmi-subcore-sync",
    "entry-irq-hard-disable",
}
V3_2 = {"smt-guests", "rm-cede", "late-join-first-run"}
V3_8 = V3_2 | {"stray-ipi-guard", "late-join-release-after-wait", "late-join-every-run", "start-secondary-races"}
BUILTIN_TOML = sorted(e.name for e in resources.files("vcoresim.scenarios").iterdir() if e.name.endswith(".toml"))
HAVE_MODEL = importlib.util.find_spec("vcoresim.kvm.model") is not None




@pytest.fixture
def stub_model(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in ``vcoresim.kvm.model`` that records what it was asked to build."""

    from vcoresim.errors import ConfigError

    mod = types.ModuleType("vcoresim.kvm.model")
    mod.ConfigError = ConfigError  # type: ignore[attr-defined]
    mod.built = []  # type: ignore[attr-defined]

    def build_world(world: object, cfg: ScenarioConfig, patches: frozenset[str], monitors: object = None) -> None:
        if any(v >= 4 * 256 for vm in cfg.vm for v in vm.vcpus):
            raise ConfigError("vm[0].vcpus", "vCPU id beyond KVM_MAX_VCORES: KVM_CREATE_VCPU returns -EINVAL")
        mod.built.append((cfg, patches))  # type: ignore[attr-defined]

    mod.build_world = build_world  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vcoresim.kvm.model", mod)
    import vcoresim.kvm

    monkeypatch.setattr(vcoresim.kvm, "model", mod, raising=False)
    return mod


# ------------------------------------------------------------------ built-ins
@pytest.mark.parametrize("fname", BUILTIN_TOML)
def test_every_builtin_toml_loads(fname: str) -> None:
    text = resources.files("vcoresim.scenarios").joinpath(fname).read_text()
    cfg = loader.loads(text, fname)  # validated by pydantic, as a user's file is
    # A built-in file is trusted (built without pydantic, checking starts faster):
    # the same tables, values and types (an int of a float field is a float).
    trusted = loader.loads(text, fname, trusted=True)
    assert trusted == cfg and json.dumps(dump(trusted)) == json.dumps(dump(cfg))
    assert cfg.name == fname.removesuffix(".toml")
    assert cfg.expect.verdict in ("holds", "violation")
    for v in cfg.variants:
        eff = builtin.variant_config(cfg, v)
        assert eff.name == f"{cfg.name}@{v}" and eff.variants == {}


def test_required_scenarios_and_variants_are_listed() -> None:
    names = {s.name for s in builtin.provider()}
    assert {"smt-vcore", "smt-vcore@4vcpu", "smt-vcore@late-join", "smt-vcore@late-join-fixed", "stray-ipi", "stray-ipi@fixed", "p8-idle-lockup@buggy", "p8-idle-lockup@fixed", "p8-idle-lockup@before"} <= names


def test_variant_kernels_and_expectations() -> None:
    sc = {c.name: c for c in builtin.builtin_configs()}
    stray, p8 = sc["stray-ipi"], sc["p8-idle-lockup"]

    def patches(cfg: ScenarioConfig) -> frozenset[str]:
        return resolve_kernel(cfg.kernel.preset, cfg.kernel.patches, "kernel")

    assert "stray-ipi-guard" not in patches(stray) and stray.expect.verdict == "violation"
    fixed = builtin.variant_config(stray, "fixed")
    assert "stray-ipi-guard" in patches(fixed) and fixed.expect.verdict == "holds"
    assert builtin.variant_config(stray, "2vcpu").vm[0].vcpus == [0, 1]
    buggy, good, before = (builtin.variant_config(p8, v) for v in ("buggy", "fixed", "before"))
    assert {"idle-skip-kvm-sync"} <= patches(buggy) and "idle-wakeup-test-req" not in patches(buggy)
    assert {"idle-skip-kvm-sync", "idle-wakeup-test-req"} <= patches(good)
    assert not {"idle-skip-kvm-sync", "idle-wakeup-test-req"} & patches(before)
    assert [buggy.expect.verdict, good.expect.verdict, before.expect.verdict] == ["violation", "holds", "holds"]
    four = builtin.variant_config(sc["smt-vcore"], "4vcpu")
    assert four.vm[0].vcpus == [0, 1, 2, 3] and four.check.scheduler == "fifo" and four.workload.rounds == 2


# -------------------------------------------------------------------- presets
def test_presets_resolve_as_documented() -> None:
    assert set(PATCHES) == ALL_PATCHES
    assert PRESETS["v3.0"].patches == frozenset()
    assert PRESETS["v3.1"].patches == {"smt-guests"}
    assert PRESETS["v3.2"].patches == V3_2
    assert PRESETS["v3.5"].patches == PRESETS["v3.7"].patches == V3_2 | {"stray-ipi-guard"}
    assert PRESETS["v3.8"].patches == PRESETS["v3.18"].patches == V3_8
    assert PRESETS["v3.19"].patches == V3_8 | {"idle-nap-real-mode"}
    assert PRESETS["v4.16"].patches == ALL_PATCHES - {"idle-wakeup-test-req"}
    assert PRESETS["v4.17"].patches == ALL_PATCHES and DEFAULT_PRESET == "v4.17"
    assert resolve_kernel(None, {}, "kernel") == ALL_PATCHES
    assert resolve_kernel("v3.1", {"stray-ipi-guard": True}, "kernel") == {"smt-guests", "stray-ipi-guard"}
    assert resolve_kernel(None, {"smt-guests": False}, "kernel") == ALL_PATCHES - {"smt-guests"}
    # The 3.8 late-join fix changes the 3.2 rework: without it, it goes too.
    assert resolve_kernel("v3.8", {"late-join-first-run": False}, "kernel") == V3_8 - {"late-join-first-run", "late-join-every-run"}
    # The seed-003 fix changes code 8c1c7fb0b5ec adds: it goes when that patch is off...
    assert resolve_kernel(None, {"idle-skip-kvm-sync": False}, "kernel") == ALL_PATCHES - {"idle-skip-kvm-sync", "idle-wakeup-test-req"}
    # ...and asking for it explicitly without it is an error.
    with pytest.raises(ScenarioError, match=r"^kernel.patches: idle-wakeup-test-req needs idle-skip-kvm-sync"):
        resolve_kernel("v4.13", {"idle-wakeup-test-req": True}, "kernel")


@pytest.mark.parametrize(
    ("preset", "patches", "prefix", "msg"),
    [
        ("v9", {}, "kernel", r"^kernel.preset: unknown preset 'v9' \(known: v3.0, "),
        (None, {"foo": True}, "kernel", r"^kernel.patches: unknown patch 'foo' \(known: smt-guests, "),
        (None, {"foo": True}, "--", r"^--patch: unknown patch 'foo'"),
        ("v9", {}, "--", r"^--kernel: unknown preset 'v9'"),
    ],
)
def test_resolve_kernel_errors_name_the_field(preset: str | None, patches: dict[str, bool], prefix: str, msg: str) -> None:
    with pytest.raises(ScenarioError, match=msg):
        resolve_kernel(preset, patches, prefix)


def test_list_json_has_patches_and_presets(cli: Cli) -> None:
    r = cli("list", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {p["name"] for p in doc["patches"]} == ALL_PATCHES
    assert {"seed", "default", "description"} <= set(doc["patches"][0])
    assert {p["name"] for p in doc["presets"]} == set(PRESETS)
    assert all(isinstance(p["patches"], list) for p in doc["presets"])
    assert {"smt-vcore", "stray-ipi", "p8-idle-lockup"} <= {s["name"] for s in doc["scenarios"]}


def test_catalog_invariant_kinds() -> None:
    kinds = {i["name"]: i["kind"] for i in catalog.invariants()}
    assert kinds["no-host-code-in-guest"] == "safety" and kinds["vcpus-complete"] == "liveness"
    assert {"signal-exits-guest", "tb-host-reads-tod"} <= set(kinds)  # every model's invariants are listed


# ---------------------------------------------------------------- bad input
BAD = [
    ("smt-vcore.toml", 'name = "x"\n[machine]\ncpu = "POWER7"\nthreads_per_core = 9\n', "smt-vcore.toml: machine.threads_per_core: POWER7 has 4 threads per core, not 9"),
    ("split.toml", 'name = "x"\n[machine]\ncpu = "POWER7"\nsplit_core = 2\n', "split.toml: machine.split_core: only POWER8 supports split-core, not POWER7"),
    ("bad.toml", 'name = "x"\n[machine\n', "bad.toml: TOML syntax error: "),
    ("extra.toml", 'name = "x"\n[machine]\nspeed = 3\n', "extra.toml: machine.speed: unknown field (known: cpu, cores, threads_per_core, split_core, opal_tb_scope, opal_hmi_rendezvous)"),
    ("dup.toml", 'name = "x"\n[[vm]]\nvcpus = [0, 0]\n', "dup.toml: vm[0].vcpus: duplicate vCPU id"),
    ("kp.toml", 'name = "x"\n[kernel]\npatches = { x = true }\n', "kp.toml: kernel.patches: unknown patch 'x' (known: "),
    ("kv.toml", 'name = "x"\n[variants.a]\nkernel = { preset = "v2.6" }\n', "kv.toml: variants.a.kernel.preset: unknown preset 'v2.6'"),
    ("noname.toml", "[machine]\n", "noname.toml: name: required field is missing"),
]


@pytest.mark.parametrize(("fname", "text", "msg"), BAD, ids=[b[0] for b in BAD])
def test_bad_file_one_line_error(tmp_path: Path, fname: str, text: str, msg: str) -> None:
    (tmp_path / fname).write_text(text)
    with pytest.raises(ScenarioError) as e:
        loader.load(tmp_path / fname)
    assert str(e.value).startswith(msg) and "\n" not in str(e.value)


@pytest.mark.parametrize(("fname", "text", "msg"), [BAD[0], BAD[1], BAD[2], BAD[3]], ids=[b[0] for b in BAD[:4]])
def test_bad_file_through_cli_exits_2(cli: Cli, tmp_path: Path, fname: str, text: str, msg: str) -> None:
    (tmp_path / fname).write_text(text)
    r = cli("check", fname)
    assert r.code == 2
    assert r.stderr_lines == [r.stderr_lines[0]] and r.stderr_lines[0].startswith(f"vcoresim: error: {msg}")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (("--patch", "foo=on"), "vcoresim: error: --patch: unknown patch 'foo' (known: "),
        (("--kernel", "v9"), "vcoresim: error: --kernel: unknown preset 'v9' (known: "),
        (("--patch", "smt-guests=maybe"), "vcoresim: error: --patch: expected NAME=on|off"),
    ],
)
def test_bad_cli_overrides_exit_2(cli: Cli, args: tuple[str, ...], msg: str) -> None:
    r = cli("check", "smt-vcore", *args)
    assert r.code == 2 and len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith(msg), r.stderr


def test_unknown_scenario_file(cli: Cli) -> None:
    r = cli("check", "missing.toml")
    assert r.code == 2 and r.stderr_lines == ["vcoresim: error: scenario: missing.toml: cannot read: no such scenario file"]


# ------------------------------------------------------- make and round trip
def test_make_applies_cli_overrides(stub_model: types.ModuleType) -> None:
    sc = get_scenario("smt-vcore")
    assert sc.kind == "kvm" and sc.expected == "holds" and sc.strategy == "auto" and sc.bounds.max_steps == 4000
    prog = sc.make({})
    assert prog.name == "smt-vcore" and prog.config["patches"] == ["smt-guests"]
    prog = sc.make({"kernel": "v3.5", "patches": {"smt-guests": False}})
    assert prog.config["patches"] == ["late-join-first-run", "rm-cede", "stray-ipi-guard"]
    assert prog.config["kernel"] == {"preset": "v3.5", "patches": {"smt-guests": False}}
    # --patch alone applies on top of the scenario's kernel.
    assert get_scenario("stray-ipi").make({"patches": {"stray-ipi-guard": True}}).config["patches"] == ["smt-guests", "stray-ipi-guard"]
    cfg, patches = stub_model.built[-1]
    assert isinstance(cfg, ScenarioConfig) and patches == {"smt-guests", "stray-ipi-guard"}


@pytest.mark.parametrize("name", ["smt-vcore", "smt-vcore@4vcpu", "stray-ipi@fixed-2vcpu", "p8-idle-lockup@before"])
def test_round_trip(stub_model: types.ModuleType, name: str) -> None:
    prog = get_scenario(name).make({"patches": {"hmi-subcore-sync": False}})
    again = get_scenario(name).make(prog.config)
    assert again.config == prog.config and again.name == prog.name == name
    replayed = program_for(name, json.loads(json.dumps(prog.config)))
    assert replayed.config == prog.config and replayed.name == name


def test_file_scenario_check_and_replay(stub_model: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\n[[vm]]\nvcpus = [0, 1]\n[variants.old]\nkernel = { preset = "v3.0" }\n')
    monkeypatch.chdir(tmp_path)
    prog = get_scenario("mine.toml").make({})
    assert prog.name == "mine" and len(prog.config["patches"]) == len(ALL_PATCHES)
    old = get_scenario("mine.toml@old").make({})
    assert old.name == "mine@old" and old.config["patches"] == []
    (tmp_path / "mine.toml").unlink()  # a trace replays from its config alone
    assert program_for("mine@old", old.config).config == old.config


def test_model_config_error_is_a_scenario_error(stub_model: types.ModuleType, tmp_path: Path) -> None:
    (tmp_path / "big.toml").write_text('name = "big"\n[[vm]]\nvcpus = [0, 1024]\n')
    with pytest.raises(ScenarioError, match=r"^big: vm\[0\].vcpus: vCPU id beyond KVM_MAX_VCORES: KVM_CREATE_VCPU returns -EINVAL$"):
        get_scenario(str(tmp_path / "big.toml")).make({})


def test_bad_full_config_is_one_line(stub_model: types.ModuleType) -> None:
    doc = get_scenario("smt-vcore").make({}).config
    doc["machine"] = {**doc["machine"], "cores": 0}
    with pytest.raises(ScenarioError, match=r"^config: machine.cores: Input should be greater than or equal to 1"):
        get_scenario("smt-vcore").make(doc)


# ------------------------------------------------------- with the real model
@pytest.mark.skipif(not HAVE_MODEL, reason="vcoresim.kvm.model is not there yet")
@pytest.mark.parametrize("name", [s.name for s in builtin.provider()])
def test_real_model_builds_every_builtin(name: str) -> None:
    prog = get_scenario(name).make({})
    assert prog.new_world() is not None
    assert get_scenario(name).make(prog.config).config == prog.config
