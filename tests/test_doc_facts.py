"""Statements in the README and docs/ that name code are checked against the code: the record schema and statuses
(docs/records.md), tensor shapes (docs/architecture.md, docs/contracts.md), the import layers, config keys and
`group=option` choices, code paths and dotted names, and the README's commands, config groups, console scripts and
its "Add your own fusion" example (tests/test_doc_refs.py checks the links)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import conf_keys
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import cfnsr  # noqa: F401 - registers the config resolvers (cfnsr_len) that num_classes uses
from cfnsr.data.folds import PROTOCOLS
from cfnsr.data.settings import PreprocessSettings, settings_from_config
from cfnsr.models.build import build_model
from cfnsr.runs import record as record_module
from cfnsr.runs.recipe import flatten

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter's dependency (the dev extra) provides it
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
# The Hydra entry points and their primary configs (the config_name of each cfnsr.cli module).
ENTRY_CONFIGS = {"train": "train", "evaluate": "evaluate", "predict": "predict", "preprocess": "preprocess_job",
                 "complexity": "complexity", "download": "download"}
# Packages whose record-writing code sets metrics.json's "status" (predict/ and data/ use "status" for other files).
RECORD_WRITERS = ("cfnsr/tasks", "cfnsr/runs", "cfnsr/callbacks", "cfnsr/search")


# ---------------------------------------------------------------------------------------------------------- helpers

def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under the first heading that starts with ``heading``, up to the next heading of any level <= it."""
    m = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.M)
    assert m, f"no heading {heading!r}"
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{len(m.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def group_options(group: str) -> set[str]:
    return {p.stem for p in (CONF / group).glob("*.yaml")}


@functools.cache
def composed(config: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """``python <entry>.py <overrides>``'s config, unresolved (no interpolation is evaluated)."""
    return conf_keys.composed(config, list(overrides))


@functools.lru_cache(maxsize=1)
def all_config_keys() -> set[str]:
    """Every dotted key (and every prefix of one) of the entry points' composed configs and of every option of every
    group as it lands in the composed config (read from the YAML, not composed: fast and the same keys)."""
    flat: dict[str, Any] = {}
    for config in ENTRY_CONFIGS.values():
        flat.update(flatten(composed(config)))
    for path in CONF.rglob("*.yaml"):
        if path.parent != CONF and not path.relative_to(CONF).as_posix().startswith("hydra/"):
            flat.update(conf_keys.option_keys(path))
    keys: set[str] = set()
    for key in flat:
        parts = key.split(".")
        keys.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return keys


def written_statuses() -> set[str]:
    """Every value the record writers give ``"status"`` (dict displays, ``x["status"] = ...``, ``x.status = ...``,
    ``status=...`` arguments), names resolved through module-level string constants."""
    constants: dict[str, str] = {}
    trees = [ast.parse(p.read_text()) for top in RECORD_WRITERS for p in (REPO / top).rglob("*.py")]
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) and isinstance(node.value.value, str):
                constants[node.targets[0].id] = node.value.value

    def values(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name) and node.id in constants:
            return {constants[node.id]}
        if isinstance(node, ast.IfExp):
            return values(node.body) | values(node.orelse)
        return set()

    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "status":
                        found |= values(v)
            elif isinstance(node, ast.Assign):  # record["status"] = ..., self.status = ...
                for t in node.targets:
                    if (isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) and t.slice.value == "status"
                            or isinstance(t, ast.Attribute) and t.attr == "status"):
                        found |= values(node.value)
            elif isinstance(node, ast.keyword) and node.arg == "status":  # write(..., status="finished")
                found |= values(node.value)
            elif isinstance(node, ast.arguments):  # def finish(self, status: str = "finished", ...)
                named = [*node.posonlyargs, *node.args]
                for arg, default in zip(named[len(named) - len(node.defaults):], node.defaults, strict=True):
                    if arg.arg == "status":
                        found |= values(default)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "finish"
                  and node.args):  # record.finish("debug" if debug else "finished", ...)
                found |= values(node.args[0])
    return found


def string_constants(top: Path) -> set[str]:
    """String literals under ``top``, and keyword-argument names of calls (``record.update(world_size=...)``)."""
    nodes = [n for p in top.rglob("*.py") for n in ast.walk(ast.parse(p.read_text()))]
    return ({n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            | {n.arg for n in nodes if isinstance(n, ast.keyword) and n.arg})


def module_names(path: Path) -> set[str]:
    """Top-level names a module defines, and ``Class.attr`` for its classes' attributes and methods."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        names.add(f"{node.name}.{item.name}")
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        for t in item.targets if isinstance(item, ast.Assign) else [item.target]:
                            if isinstance(t, ast.Name):
                                names.add(f"{node.name}.{t.id}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Name):
                    names.add(t.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def dotted_name_exists(name: str) -> bool:
    """``cfnsr.a.b.C.d``: the longest module prefix exists and the rest is a name it defines (read, not imported)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        mod = ".".join(parts[:i])
        base = REPO.joinpath(*parts[:i])
        path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if path.is_file():
            rest = ".".join(parts[i:])
            if not rest or rest in module_names(path):
                return True
            return path.name == "__init__.py" and importlib.util.find_spec(f"{mod}.{parts[i]}") is not None
    return False


def doc_texts() -> list[tuple[str, str]]:
    return [(p.relative_to(REPO).as_posix(), p.read_text()) for p in [README, *DOCS]]


# ----------------------------------------------------------------------------------------------- docs/records.md

RECORDS = REPO / "docs" / "records.md"


def test_records_page_states_the_schema_the_code_writes_and_reads():
    text = RECORDS.read_text()
    writes = re.search(r"The record schema this code writes is \*\*schema (\d+)\*\*", text)
    reads = re.search(r"it reads schemas \*\*([\d, ]+)\*\*", text)
    assert writes and reads, "docs/records.md must state the written and the readable schemas"
    assert int(writes.group(1)) == record_module.SCHEMA_VERSION
    assert tuple(int(x) for x in reads.group(1).split(",")) == tuple(record_module.READABLE_SCHEMAS)
    (block,) = [b for b in code_blocks(text, "") if '"schema"' in b]
    assert re.search(r'"schema": (\d+)', block).group(1) == str(record_module.SCHEMA_VERSION)
    assert "docs/records.md" in (record_module.__doc__ or ""), "cfnsr/runs/record.py's docstring refers to the page"


def test_records_page_lists_exactly_the_statuses_the_code_writes():
    table = section(RECORDS.read_text(), "Statuses")
    body = table.split("|---|---|---|", 1)[1]  # the rows below the header
    documented = set(re.findall(r"^\| `(\w+)` \|", body, re.M))
    written = written_statuses()
    assert {"running", "finished", "failed"} <= written  # the scan itself finds the writers
    assert documented == written, f"documented only: {documented - written}; written only: {written - documented}"


def test_records_page_lists_the_protocols():
    text = section(RECORDS.read_text(), "Protocols")
    documented = re.search(r"`protocol` is one of ((?:`\w+`(?:, )?)+)", text).group(1)
    assert set(re.findall(r"`(\w+)`", documented)) == set(PROTOCOLS) == group_options("protocol")
    for option in PROTOCOLS:
        assert yaml.safe_load((CONF / "protocol" / f"{option}.yaml").read_text())["selection"] in " ".join(text.split())


def test_every_record_field_on_the_page_is_a_name_the_code_uses():
    (block,) = [b for b in code_blocks(RECORDS.read_text(), "") if '"schema"' in b]
    fields = set(re.findall(r'^\s+"(\w+)":', block, re.M)) | set(re.findall(r', "(\w+)":', block))
    fields |= set(re.findall(r"`(\w+)`", section(RECORDS.read_text(), "Fields").split("```")[-1]))
    used = string_constants(REPO / "cfnsr")
    assert len(fields) > 40
    assert not sorted(fields - used), f"fields named in docs/records.md that no code names: {sorted(fields - used)}"


# ------------------------------------------------------------------------------------------------ shapes

def test_contract_shapes_match_a_forward_pass():
    """docs/contracts.md's batch and model shapes, and docs/architecture.md's logits, on tiny real models: the data
    module's augmentation turns uint8 (B, T, S, S, 3) into (B, 3, T, S, S); the model returns logits (B, K) with
    K = data.num_classes (8 for RAVDESS and the synthetic corpus, 6 for CREMA-D)."""
    contracts = (REPO / "docs" / "contracts.md").read_text()
    architecture = (REPO / "docs" / "architecture.md").read_text()
    assert '"video": uint8 (T, H, W, 3), "audio": float32 (n_mfcc, L)' in contracts
    assert "float `(B, 3, T, H, W)`" in contracts
    assert "model(video: (B, 3, T, H, W) float, audio: (B, n_mfcc, L) float) -> FusionOutput(logits (B, K)" in contracts
    assert "`FusionOutput.logits` (B, K), K = `data.num_classes` (8 for RAVDESS, 6 for CREMA-D)" in architecture
    assert "(B, 8)" not in contracts + architecture
    # who augments: the data module's hook, which the LightningModule does not have
    assert "the data module (`EmotionDataModule.on_after_batch_transfer`" in contracts
    assert not re.search(r"LightningModule[^.]*augments", " ".join(contracts.split()))
    assert "EmotionDataModule.on_after_batch_transfer" in module_names(REPO / "cfnsr" / "data" / "datamodule.py")
    assert "EmotionModule.on_after_batch_transfer" not in module_names(REPO / "cfnsr" / "module.py")
    torch.manual_seed(0)
    for data, k in (("synthetic", 8), ("ravdess", 8), ("cremad", 6)):
        cfg = OmegaConf.create(composed("train", (f"data={data}", "fusion=cfnsr", "backbone=tiny")))
        cfg.preprocess.frames, cfg.preprocess.size = 4, 32  # small clips; the shapes are symbolic
        assert int(cfg.data.num_classes) == k
        (_, t, s, _), (n_mfcc, length) = settings_from_config(cfg.preprocess).input_shapes()
        augment = __import__("hydra.utils", fromlist=["instantiate"]).instantiate(cfg.augment)
        video = augment(torch.randint(0, 255, (2, t, s, s, 3), dtype=torch.uint8))
        assert video.shape == (2, 3, t, s, s) and video.dtype == torch.float32
        model = build_model(cfg.backbone, cfg.fusion, int(cfg.data.num_classes)).eval()
        with torch.no_grad():
            out = model(video, torch.randn(2, n_mfcc, length))
        assert out.logits.shape == (2, k)


def test_cache_shapes_in_contracts_match_the_preprocessing_settings():
    contracts = (REPO / "docs" / "contracts.md").read_text()
    paper = PreprocessSettings()
    (_, t, s, _), (n_mfcc, length) = paper.input_shapes()
    assert f"paper: ({n_mfcc}, {length})" in contracts
    assert "frames.npy  uint8  (T, S, S, 3)" in contracts
    assert (t, s) == (30, 224) and "30 frames, 224x224" in (REPO / "docs" / "reproduce.md").read_text()


# ------------------------------------------------------------------------------------------------ layers

def test_architecture_layers_are_pyproject_layers():
    text = (REPO / "docs" / "architecture.md").read_text()
    (contract,) = [c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
                   if c["type"] == "layers"]
    layers = [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]
    (block,) = [b for b in code_blocks(text, "") if b.startswith("1 cfnsr.")]
    documented = [{m.strip() for m in line.split(" ", 1)[1].split("|")} for line in block.strip().splitlines()]
    assert documented == layers
    rows = re.findall(r"^\| (\d) \w+ \| `(cfnsr/[\w/.]+)`", text, re.M)
    assert len(rows) >= 15
    for number, path in rows:
        module = path.removesuffix("/").removesuffix(".py").replace("/", ".")
        in_layer = [i + 1 for i, layer in enumerate(layers) if any(module == m or module.startswith(m + ".")
                                                                   or m.startswith(module + ".") for m in layer)]
        assert in_layer == [int(number)], f"docs/architecture.md puts {path} in layer {number}; pyproject: {in_layer}"


# ------------------------------------------------------------------------------------------ names in the docs

PATH_RE = re.compile(r"(?<![\w/.~<$-])((?:cfnsr|conf|tests|scripts|bench|docs|hydra_plugins)/[\w./-]*\w)")
DOTTED_RE = re.compile(r"`((?:cfnsr|hydra_plugins)(?:\.\w+)+)")


def test_code_paths_named_in_the_docs_exist():
    missing, checked = [], 0
    for name, text in doc_texts():
        for span in re.findall(r"`([^`\n]+)`", text):
            for m in PATH_RE.finditer(span):
                path = m.group(1)
                if not re.search(r"[<*]", span[m.start():m.end() + 1]):
                    checked += 1
                    if not (REPO / path).exists():
                        missing.append(f"{name}: {path}")
    assert checked >= 150  # the check reads the docs at all (179 paths when this bound was set)
    assert not missing, "\n".join(missing)


def test_dotted_code_names_in_the_docs_exist():
    names = [(name, m) for name, text in doc_texts() for m in set(DOTTED_RE.findall(text))]
    assert len(names) >= 40  # the check reads the docs at all (52 names when this bound was set)
    missing = [f"{name}: {m}" for name, m in names if not dotted_name_exists(m)]
    assert not missing, "\n".join(missing)


KEY_RE = re.compile(r"^([a-z_]+(?:\.[A-Za-z_][\w]*)+)(?:=|$)")


def test_config_keys_named_in_the_docs_exist():
    """A backticked ``key.sub`` or ``key.sub=value`` whose first part is a config node is a key of some composed
    config (any group option); ``+key=...`` adds a key and ``hydra.*`` is Hydra's."""
    keys = all_config_keys()
    # The trainer node is instantiated into pytorch_lightning.Trainer: its other arguments are keys one may add.
    from pytorch_lightning import Trainer

    keys |= {f"trainer.{p}" for p in inspect.signature(Trainer.__init__).parameters if p != "self"}
    tops = {k for k in keys if "." not in k} - {"hydra"}
    missing = []
    for name, text in doc_texts():
        for span in re.findall(r"`([^`\n]+)`", text):
            for token in span.split():
                m = KEY_RE.match(token.strip("',;()"))
                if not m or re.search(r"\.(py|json|csv|png|yaml|md|ckpt|txt|npy)$", m.group(1)):
                    continue  # a file name such as preprocess.py
                if m.group(1).split(".")[0] in tops and m.group(1) not in keys:
                    missing.append(f"{name}: {m.group(1)}")
    assert not missing, "\n".join(sorted(set(missing)))


# ------------------------------------------------------------------------------------------------ README

def test_readme_is_at_most_150_lines():
    assert len(README.read_text().splitlines()) <= 150


def test_readme_opens_with_the_two_setup_commands():
    first = code_blocks(README.read_text(), "bash")[0].splitlines()
    assert first[0].startswith('pip install torch==2.13.0 && pip install -e ".[dev]" && python train.py ')
    assert first[1].startswith('pip install torch==2.13.0 && pip install -e ".[dev]" && pytest ')


def readme_commands() -> list[list[str]]:
    """The README's command lines (continuations joined, comments dropped), as argument lists."""
    out = []
    for block in code_blocks(README.read_text(), "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\S*\$\([^)]*\)", "", line.split(" # ")[0].split("  #")[0]).strip()  # no $(...)
            if line.startswith(("python ", "cfnsr-", "pytest")):
                out.append(shlex.split(line.split(" && ")[-1] if "&&" in line else line))
    return out


def test_readme_train_commands_compose_with_real_groups_and_keys():
    """Each ``python <entry>.py`` command of the README: the script exists, every ``group=option`` names a YAML,
    every ``key=value`` a key of the composed config, and the whole command composes (sweeps: first values)."""
    checked = 0
    for cmd in readme_commands():
        if cmd[0] != "python" or not cmd[1].endswith(".py") or "--config-dir" in cmd:
            continue
        assert (REPO / cmd[1]).is_file(), cmd
        args = [a for a in cmd[2:] if a != "-m" and "<" not in a and "$(" not in a]
        if any(a.startswith("hydra.searchpath") for a in args):
            continue  # a user's own config folder ("Add your own fusion"; tests/test_add_fusion.py runs it)
        overrides, keys = [], []
        for arg in args:
            key, value = arg.split("=", 1)
            value = value.split(",")[0] if not value.startswith("[") else value
            if "/" in key or key in {p.name for p in CONF.iterdir() if p.is_dir()}:
                assert (CONF / key / f"{value}.yaml").is_file(), f"README: {arg}: no conf/{key}/{value}.yaml"
            else:
                keys.append(key)
            overrides.append(f"{key}={value}")
        config = ENTRY_CONFIGS[cmd[1].removesuffix(".py")]
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config, overrides=overrides, return_hydra_config=True)
        for key in keys:
            assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", (cmd, key)
        checked += 1
    assert checked >= 15


def test_readme_module_commands_name_real_modules_and_options():
    checked = 0
    for cmd in readme_commands():
        if cmd[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(cmd[2]) is not None, cmd
            flags = [a.strip("[]").split("=")[0] for a in cmd[3:] if a.strip("[]").startswith("--")]
            if flags:
                helptext = subprocess.run([sys.executable, "-m", cmd[2], "--help"], cwd=REPO, capture_output=True,
                                          text=True, timeout=120).stdout
                unknown = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", helptext)]
                assert not unknown, (cmd, unknown, helptext)  # the full option name, not an abbreviation
            checked += 1
    assert checked >= 3


def test_readme_config_groups_list_every_option_of_each_group():
    text = README.read_text()
    lines = re.search(r"^Config groups .*?\n((?:- .*\n)+)", text, re.M).group(1)
    listed = re.findall(r"`([\w/]+)`: ([\w, ]+?)(?: \(|;|$)", lines, re.M)
    assert len(listed) >= 10
    for group, options in listed:
        assert {o.strip() for o in options.split(",")} == group_options(group), group


def test_readme_names_every_console_script():
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    named = set(re.findall(r"`(cfnsr-\w+)`", README.read_text()))
    assert named == scripts


def test_readme_fusion_example_is_the_one_the_suite_runs():
    """The README's module and YAML are the committed example the suite tests (tests/fixtures/user_fusion: same
    class AST, same YAML data), and its pytest command selects that fusion's tests, slow ones included."""
    readme = section(README.read_text(), "Add your own fusion")
    example = REPO / "tests" / "fixtures" / "user_fusion"

    def class_dump(src: str) -> str:
        (cls,) = [n for n in ast.parse(src).body if isinstance(n, ast.ClassDef)]
        return ast.dump(cls)

    (module,) = code_blocks(readme, "python")
    assert class_dump(module) == class_dump((example / "code" / "gated_sum.py").read_text())
    (conf,) = code_blocks(readme, "yaml")
    assert yaml.safe_load(conf) == yaml.safe_load((example / "conf" / "fusion" / "gated_sum.yaml").read_text())
    (run,) = [c for c in readme_commands() if c[0] == "pytest" and "-k" in c]
    assert run[1:] == ["-m", "not slurm", "-k", "gated_sum"]


def test_constants_and_environment_variables_named_in_the_docs_exist():
    """A backticked ``UPPER_CASE`` name is a module-level constant of the code or tests, or an environment variable
    the code, configs or scripts read; "``NAME``, now N" states its value."""
    values: dict[str, Any] = {}
    strings: set[str] = set()
    for top in ("cfnsr", "tests", "scripts", "bench", "hydra_plugins"):
        for path in (REPO / top).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, ast.AnnAssign) and node.value is not None else []
                for t in targets:
                    if isinstance(t, ast.Name):
                        try:
                            values[t.id] = ast.literal_eval(node.value)
                        except ValueError:
                            values[t.id] = None
            strings |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    shell = " ".join(p.read_text() for p in [*CONF.rglob("*.yaml"), *(REPO / "scripts").glob("*.sh"),
                                            REPO / ".ci" / "run"])
    unknown, wrong = [], []
    for name, text in doc_texts():
        for const in set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", text)):
            if const not in values and not any(const in s for s in strings) and const not in shell:
                unknown.append(f"{name}: {const}")
        for const, number in re.findall(r"`([A-Z][A-Z0-9_]+)`, now (\d+)", text):
            if values.get(const) != int(number):
                wrong.append(f"{name}: {const} is {values.get(const)!r}, the page says {number}")
    assert not unknown and not wrong, "\n".join(unknown + wrong)
