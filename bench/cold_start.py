"""Benchmark 4: cold start — handler import time in fresh processes, and the built layer's size.

Each import runs in a new ``python -c`` with the function's folder and ``layers/shared`` first
on ``sys.path``, as Lambda puts ``/var/task`` and ``/opt/python``. Three settings:

- ``lambda``: the variables Lambda sets (``LAMBDA_TASK_ROOT``, ...), so the Powertools Tracer is
  live: it imports aws_xray_sdk and patches the libraries it knows (botocore, httpx, pg8000...)
  at init, as it does on Lambda. Bytecode cached, as after the first run on a dev machine.
- ``lambda, no layer bytecode``: the same with no ``.pyc`` for the layer's packages and nothing
  written: what every cold start would pay if the layer shipped no bytecode (``/opt`` is
  read-only on Lambda). The layer Makefile compiles it at build time, so "as shipped" is the
  ``lambda`` setting when the built layer holds ``.pyc`` files. The standard library and the
  runtime's boto3/botocore keep their bytecode, as in the Lambda image.
- ``tracing off``: ``POWERTOOLS_TRACE_DISABLED=true`` (tests, local runs), bytecode cached.

The baseline of the ratio is ``python -c pass`` in the same settings.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    FUNCTIONS_DIR,
    LAYER_DIR,
    ROOT,
    BenchEnv,
    BenchResult,
    Check,
    Sizes,
    md_table,
    median,
)

TARGET_IMPORT_S = 0.5
TARGET_LAYER_MB = 40.0  # 25 MB before cryptography (BYOK's AES-GCM, about 14 MB) joined the layer
# Imported on the BYOK path only: a handler import that loads one of these pays for BYOK on every cold start.
LAZY_ONLY = ("cryptography", "_cffi_backend")
# What the python3.13 Lambda runtime already ships (with its bytecode); the layer leaves it out.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
SAM_ENV = {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", "PYENV_VERSION": "3.11.7:3.12.1:3.13.0"}

IMPORT_SNIPPET = """
import sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
import app
print(time.perf_counter() - started)
"""


@dataclass(frozen=True)
class Runtime:
    """An interpreter and the ``sys.path`` entries that stand in for Lambda's ``/opt/python`` and runtime."""

    description: str
    python: str
    paths: tuple[str, ...]
    layer_paths: tuple[Path, ...]  # whose bytecode the built layer does not ship
    isolated: bool  # ``-S``: no site-packages but ``paths`` (what is not in the layer is not importable)

    def command(self, function: str, *flags: str) -> list[str]:
        code = IMPORT_SNIPPET.format(paths=[str(FUNCTIONS_DIR / function), *self.paths])
        return [self.python, *(["-S"] if self.isolated else []), *flags, "-c", code]


def _site_packages() -> Path:
    return Path(next(p for p in sys.path if p.endswith("site-packages")))


def dev_runtime() -> Runtime:
    """The tests' ``.venv``: quick, but dev-only packages it holds get imported too (httpx's CLI: rich, click)."""
    return Runtime(
        description=f"`.venv` Python {sys.version.split()[0]} with its site-packages",
        python=sys.executable,
        paths=(str(LAYER_DIR),),
        layer_paths=(LAYER_DIR, FUNCTIONS_DIR, _site_packages()),
        isolated=False,
    )


def _python313() -> str | None:
    candidates = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    found = str(candidates[-1]) if candidates else shutil.which("python3.13")
    return found


def lambda_like_runtime(cache_root: Path = ROOT / ".local" / "bench-runtime") -> Runtime:
    """CPython 3.13 with only the layer's requirements (as the layer Makefile installs them, for this
    machine's platform) and boto3 standing in for the runtime's SDK; built once and cached."""
    python = _python313()
    if python is None:
        return dev_runtime()
    requirements = [
        LAYER_DIR / "requirements.txt",
        LAYER_DIR / "requirements-nodeps.txt",
        ROOT / "requirements-dev.txt",
    ]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in requirements) + python.encode()).hexdigest()[:12]
    root = cache_root / digest
    layer, runtime = root / "layer", root / "runtime"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        boto3 = next(line.strip() for line in requirements[2].read_text().splitlines() if line.startswith("boto3"))
        subprocess.run([*pip, "--target", str(layer), "-r", str(requirements[0])], check=True, capture_output=True)
        subprocess.run(
            [*pip, "--no-deps", "--target", str(layer), "-r", str(requirements[1])], check=True, capture_output=True
        )
        subprocess.run([*pip, "--target", str(runtime), boto3], check=True, capture_output=True)
        (root / ".complete").write_text("ok\n")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Runtime(
        description=f"CPython {version}, `-S`, only the layer's requirements and the runtime's boto3 on `sys.path`",
        python=python,
        paths=(str(layer), str(LAYER_DIR), str(runtime)),
        layer_paths=(layer, LAYER_DIR, FUNCTIONS_DIR),
        isolated=True,
    )


def _lambda_env(function: str) -> dict[str, str]:
    function_dir = str(FUNCTIONS_DIR / function)
    return {
        "LAMBDA_TASK_ROOT": function_dir,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYENV_VERSION")
    return {name: os.environ[name] for name in keep if name in os.environ}


def import_seconds(runtime: Runtime, function: str, env: dict[str, str], *flags: str) -> float:
    """Seconds to ``import app`` of ``function`` in a fresh interpreter."""
    out = subprocess.run(
        runtime.command(function, *flags),
        env=env,
        cwd=FUNCTIONS_DIR / function,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def eagerly_loaded(runtime: Runtime, function: str, env: dict[str, str], modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` the handler import loaded (it should load none of the BYOK-only ones)."""
    code = runtime.command(function)[-1] + f"print(sorted(m for m in {modules!r} if m in sys.modules))\n"
    flags = ["-S"] if runtime.isolated else []
    out = subprocess.run(
        [runtime.python, *flags, "-c", code],
        env=env,
        cwd=FUNCTIONS_DIR / function,
        capture_output=True,
        text=True,
        check=True,
    )
    return list(ast.literal_eval(out.stdout.strip().splitlines()[-1]))


def bare_interpreter_seconds(runtime: Runtime, env: dict[str, str]) -> float:
    """Seconds for ``import json`` in a fresh interpreter: the floor any handler import sits on."""
    code = "import time\ns = time.perf_counter()\nimport json\nprint(time.perf_counter() - s)"
    flags = ["-S"] if runtime.isolated else []
    out = subprocess.run([runtime.python, *flags, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def importtime_by_package(
    runtime: Runtime, function: str, env: dict[str, str], top: int = 12
) -> list[tuple[str, float]]:
    """``-X importtime`` of the handler import, self time summed per top-level package (ms)."""
    out = subprocess.run(
        runtime.command(function, "-X", "importtime"),
        env=env,
        cwd=FUNCTIONS_DIR / function,
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = {}
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
    for line in out.stderr.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        name = match.group(4)
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return ranked[:top]


class NoLayerBytecode:
    """A ``PYTHONPYCACHEPREFIX`` holding bytecode for everything but the layer's own packages."""

    def __init__(self) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="bench-pycache-"))
        self.layer_bytecode_bytes = 0  # .pyc of the layer modules a handler imports (largest of the handlers)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "PYTHONPYCACHEPREFIX": str(self.prefix), "PYTHONDONTWRITEBYTECODE": "1"}

    def prepare(self, runtime: Runtime, function: str, base: dict[str, str]) -> None:
        """Compile everything once into the prefix, then drop the layer's part of it."""
        import_seconds(runtime, function, {**base, "PYTHONPYCACHEPREFIX": str(self.prefix)})
        layer_pyc = sum(
            directory_bytes(self._mirror(path)) for path in runtime.layer_paths if self._mirror(path).exists()
        )
        self.layer_bytecode_bytes = max(self.layer_bytecode_bytes, layer_pyc)
        for path in runtime.layer_paths:
            mirrored = self._mirror(path)
            if path.name != "site-packages":
                shutil.rmtree(mirrored, ignore_errors=True)
            elif mirrored.exists():
                for entry in mirrored.iterdir():
                    if entry.name.split(".")[0] not in RUNTIME_PROVIDED:
                        shutil.rmtree(entry, ignore_errors=True)

    def _mirror(self, path: Path) -> Path:
        return self.prefix / str(path.resolve()).lstrip("/")

    def close(self) -> None:
        shutil.rmtree(self.prefix, ignore_errors=True)


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def biggest_entries(path: Path, top: int = 8) -> list[tuple[str, int]]:
    sizes = [
        (entry.name, directory_bytes(entry) if entry.is_dir() else entry.stat().st_size) for entry in path.iterdir()
    ]
    return sorted(sizes, key=lambda item: -item[1])[:top]


def sam_build_layer(build_dir: Path) -> Path:
    """``sam build SharedLayer`` exactly as ``make sam-check`` runs it; returns the built layer's folder."""
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    subprocess.run(
        [str(sam), "build", "SharedLayer", "--build-dir", str(build_dir)],
        cwd=ROOT,
        env={**os.environ, **SAM_ENV},
        check=True,
        capture_output=True,
        text=True,
    )
    return build_dir / "SharedLayer"


def run(env: BenchEnv, sizes: Sizes, layer_dir: Path | None = None) -> BenchResult:
    """``layer_dir``: an already built layer to size instead of running ``sam build`` (smoke mode)."""
    del env  # no database: imports only
    runtime = dev_runtime() if sizes.smoke else lambda_like_runtime()
    base = _base_env()
    handlers = sizes.cold_start_functions
    settings: dict[str, dict[str, list[float]]] = {"lambda": {}, "lambda, no layer bytecode": {}, "tracing off": {}}
    floors: list[float] = []
    cold = NoLayerBytecode()
    try:
        for function in handlers:
            lambda_env = {**base, **_lambda_env(function)}
            off_env = {**lambda_env, "POWERTOOLS_TRACE_DISABLED": "true"}
            del off_env["LAMBDA_TASK_ROOT"]
            import_seconds(
                runtime, function, lambda_env
            )  # write bytecode once, as a second run on a dev box would have
            cold.prepare(runtime, function, lambda_env)
            runs: dict[str, list[float]] = {name: [] for name in settings}
            for _ in range(sizes.cold_start_runs):  # interleaved, so load changes hit every setting
                runs["lambda"].append(import_seconds(runtime, function, lambda_env))
                runs["lambda, no layer bytecode"].append(import_seconds(runtime, function, cold.env(lambda_env)))
                runs["tracing off"].append(import_seconds(runtime, function, off_env))
                floors.append(bare_interpreter_seconds(runtime, lambda_env))
            for name, values in runs.items():
                settings[name][function] = values
        profiles = {f: importtime_by_package(runtime, f, cold.env({**base, **_lambda_env(f)})) for f in handlers}
        eager = {f: eagerly_loaded(runtime, f, {**base, **_lambda_env(f)}, LAZY_ONLY) for f in handlers}
    finally:
        cold.close()

    build_tmp: Path | None = None
    if layer_dir is None and sizes.run_sam_build:
        build_tmp = Path(tempfile.mkdtemp(prefix="bench-sam-build-"))
        layer_dir = sam_build_layer(build_tmp)
    try:
        layer_bytes = directory_bytes(layer_dir) if layer_dir is not None else None
        largest = (
            biggest_entries(layer_dir / "python") if layer_dir is not None and (layer_dir / "python").is_dir() else []
        )
        has_botocore = layer_dir is not None and (layer_dir / "python" / "botocore").exists()
        has_pyc = layer_dir is not None and any(layer_dir.rglob("*.pyc"))
    finally:
        if build_tmp is not None:
            shutil.rmtree(build_tmp, ignore_errors=True)

    shipped_setting = "lambda" if has_pyc else "lambda, no layer bytecode"
    medians = {name: {f: median(v) for f, v in per.items()} for name, per in settings.items()}
    floor = median(floors)
    result = BenchResult(key="cold_start", title="4. Cold start: handler import and layer size")
    for function in handlers:
        shipped = medians[shipped_setting][function]
        result.checks.append(
            Check(
                f"{function} import, median of {sizes.cold_start_runs} (Lambda env, layer as shipped: "
                f"{'.pyc built in' if has_pyc else 'no .pyc'})",
                "≤ 0.5 s",
                f"{shipped:.3f} s",
                shipped <= TARGET_IMPORT_S,
            )
        )
        warm = medians["lambda"][function]
        result.checks.append(
            Check(
                f"{function} import, median of {sizes.cold_start_runs} (Lambda env, bytecode cached)",
                "≤ 0.5 s",
                f"{warm:.3f} s",
                warm <= TARGET_IMPORT_S,
            )
        )
    if layer_bytes is not None:
        mb = layer_bytes / 1_000_000
        result.checks.append(
            Check(
                "built layer, unzipped (sam build)",
                f"≤ {TARGET_LAYER_MB:.0f} MB, no botocore",
                f"{mb:.1f} MB",
                mb <= TARGET_LAYER_MB,
            )
        )
        result.checks[-1].met = result.checks[-1].met and not has_botocore
    loaded = sorted({m for modules in eager.values() for m in modules})
    result.checks.append(
        Check(
            "BYOK-only modules loaded by a handler import (cryptography, _cffi_backend)",
            "none",
            ", ".join(loaded) or "none",
            not loaded,
        )
    )
    result.figures = {
        "runs": sizes.cold_start_runs,
        "runtime": runtime.description,
        "import_json_floor_s": round(floor, 4),
        "import_median_s": {name: {f: round(v, 4) for f, v in per.items()} for name, per in medians.items()},
        "layer_unzipped_bytes": layer_bytes,
        "layer_has_botocore": has_botocore,
        "layer_has_pyc": has_pyc,
        "byok_only_modules_loaded": loaded,
        "imported_layer_bytecode_bytes": cold.layer_bytecode_bytes,
        "importtime_no_bytecode_ms": {f: [[n, round(t, 1)] for n, t in p] for f, p in profiles.items()},
    }
    rows = [
        [f"`{function}`"]
        + [f"{medians[name][function]:.3f} s" for name in settings]
        + [f"{medians[shipped_setting][function] / floor:.0f}×"]
        for function in handlers
    ]
    result.details = [
        f"Fresh `python -c` per run: {runtime.description}; the function folder first on `sys.path`, "
        f"median of {sizes.cold_start_runs} interleaved runs. "
        f"Same-run baseline: `import json` in a fresh interpreter, median {floor * 1000:.1f} ms.",
        "",
        *md_table(
            ["handler", *[f"import ({name})" for name in settings], "as shipped ÷ baseline"],
            rows,
        ),
        "",
    ]
    if layer_bytes is not None:
        result.details += [
            f"Built layer (`sam build SharedLayer`, `BuildMethod: makefile`): **{layer_bytes / 1_000_000:.1f} MB** "
            f"unzipped; botocore in it: {'yes' if has_botocore else 'no'}; `.pyc` in it: {'yes' if has_pyc else 'no'}. "
            "Largest entries:",
            "",
            *md_table(["entry", "size"], [[name, f"{size / 1_000_000:.2f} MB"] for name, size in largest]),
            "",
        ]
    else:
        result.details += ["Layer size not measured in this run (no `sam build`).", ""]
    result.details += [
        f"Bytecode of the layer modules a handler imports: {cold.layer_bytecode_bytes / 1_000_000:.1f} MB "
        "(the layer Makefile compiles every module but those the handlers never import).",
        "",
    ]
    for function, profile in profiles.items():
        result.details += [
            f"`-X importtime` of `{function}` as shipped (Lambda env, no layer bytecode), "
            "self time by top-level package:",
            "",
            *md_table(["package", "self time"], [[name, f"{value:.1f} ms"] for name, value in profile]),
            "",
        ]
    shipped_worst = max(medians[shipped_setting].values())
    cached_worst = max(medians["lambda"].values())
    if shipped_worst > TARGET_IMPORT_S and not has_pyc:
        result.findings += [
            f"- **Cold start as shipped: {shipped_worst:.2f} s > 0.5 s** (the same imports take {cached_worst:.2f} s "
            "when the layer's bytecode exists — same interpreter, same run). Cause: `layers/shared/Makefile` installs "
            "with `--no-compile` and deletes every `__pycache__`, and `/opt` is read-only on Lambda, so every cold "
            "start compiles Powertools, pydantic, httpx, pg8000, aws_xray_sdk and the `service` package from source "
            "(the `-X importtime` tables in section 4). Proposed fix (layer Makefile, not a bench file): compile with "
            "the runtime's interpreter at build time, e.g. `python3.13 -m compileall -q -j 0 --invalidation-mode "
            'unchecked-hash "$(ARTIFACTS_DIR)/python"` instead of deleting `__pycache__` (unchecked-hash: zip '
            f"timestamps cannot invalidate it). Cost: about {cold.layer_bytecode_bytes / 1_000_000:.1f} MB of "
            "bytecode for the modules the handlers import (more if everything is compiled) — re-check the "
            f"{TARGET_LAYER_MB:.0f} MB budget. Moving imports into the invoke path would only shift the cost to the "
            "first request and make it per-invoke-billed, so it is not proposed.",
            "",
        ]
    if cached_worst > TARGET_IMPORT_S:
        result.findings += [
            f"- **Cold start with bytecode: {cached_worst:.2f} s > 0.5 s**; see the `-X importtime` tables.",
            "",
        ]
    return result
