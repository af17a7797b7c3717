"""The functions of ``template.yaml`` as local code: where their handler is, their timeout, their routes.

Everything is read from the template itself, so the local API and the local invoke follow
whatever the deployed functions are given (a changed ``Timeout`` or route needs no edit here).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_DEFAULT_TIMEOUT_S = 3
SAM_DEFAULT_MEMORY_MB = 128

Handler = Callable[[Any, Any], Any]


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]  # no PyYAML stubs installed
    """YAML loader that keeps CloudFormation short-form tags (``!Ref X`` → ``{"Ref": "X"}``)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """``template.yaml`` as plain data, intrinsic functions in their long form."""
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)
    return data


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` of the template, as the local tools need it."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    routes: tuple[tuple[str, str], ...]
    environment_names: frozenset[str]

    @property
    def timeout_ms(self) -> int:
        return self.timeout_s * 1000

    @property
    def function_dir(self) -> str:
        return self.code_dir.name


def function_specs(template: dict[str, Any] | None = None) -> dict[str, FunctionSpec]:
    """Every function of the template by logical id (Globals applied as SAM applies them)."""
    template = template if template is not None else load_template()
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    global_env = ((globals_.get("Environment") or {}).get("Variables")) or {}
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        routes = tuple(
            (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
            for event in (props.get("Events") or {}).values()
            if event.get("Type") == "HttpApi"
        )
        env = {**global_env, **(((props.get("Environment") or {}).get("Variables")) or {})}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=ROOT / str(props["CodeUri"]),
            handler=str(props.get("Handler") or globals_.get("Handler")),
            timeout_s=int(props.get("Timeout", globals_.get("Timeout", SAM_DEFAULT_TIMEOUT_S))),
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", SAM_DEFAULT_MEMORY_MB))),
            routes=routes,
            environment_names=frozenset(env),
        )
    return specs


def find_function(name: str, specs: dict[str, FunctionSpec] | None = None) -> FunctionSpec:
    """A function by logical id (``ContractDriftFunction``) or code folder (``contract_drift``)."""
    specs = specs if specs is not None else function_specs()
    for spec in specs.values():
        if name in (spec.logical_id, spec.function_dir, str(spec.code_dir.relative_to(ROOT))):
            return spec
    known = ", ".join(sorted(specs))
    raise KeyError(f"No function {name!r} in template.yaml (known: {known})")


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handler(function_dir: str) -> ModuleType:
    """``functions/<dir>/app.py`` loaded as Lambda loads it (by path, not as a package)."""
    return _load_module(ROOT / "functions" / function_dir / "app.py", f"{function_dir}_app")


@functools.cache
def handler_of(function: FunctionSpec) -> Handler:
    """The function's ``Handler`` (``module.attribute``), loaded once per process like a warm instance."""
    module_name, _, attribute = function.handler.rpartition(".")
    path = function.code_dir / f"{module_name.replace('.', '/')}.py"
    handler: Handler = getattr(_load_module(path, f"{function.function_dir}_{module_name}"), attribute)
    return handler
