#!/usr/bin/env bash
# Make (or reuse) a throwaway virtual environment holding the older native recorder,
# codetracer-python-recorder 0.3.0 (CPython 3.12/3.13 only), for the benchmark and for
# tests/e2e/test_native_compare.py. It is never a dependency of rewind.
#
#   bash bench/native_venv.sh [VENV_DIR] [PYTHON]
#
# VENV_DIR defaults to ${TMPDIR:-/tmp}/rewind-native-venv; PYTHON to the first python3.13 or
# python3.12 found on PATH or through pyenv. Also installs the benchmark's third-party
# workload libraries (markdown, pytest, and tomli built as pure Python), so the native
# recorder runs the same programs. Prints the venv's python path as its last line:
#
#   export REWIND_NATIVE_PYTHON=$(bash bench/native_venv.sh)
#   python -m pytest tests/e2e/test_native_compare.py
#   python bench/run.py --native-python "$REWIND_NATIVE_PYTHON"
set -euo pipefail

dir=${1:-${TMPDIR:-/tmp}/rewind-native-venv}
py=${2:-}
usable() {  # a CPython 3.12 or 3.13 that really runs (a pyenv shim may not)
    "$1" -c 'import sys; assert sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 12), (3, 13))' \
        >/dev/null 2>&1
}
if [ -z "$py" ]; then
    for cand in python3.13 python3.12; do
        if command -v "$cand" >/dev/null 2>&1 && usable "$cand"; then py=$(command -v "$cand"); break; fi
    done
fi
if [ -z "$py" ] && command -v pyenv >/dev/null 2>&1; then
    for v in 3.13 3.12; do
        prefix=$(pyenv prefix "$v" 2>/dev/null || true)
        if [ -n "$prefix" ] && usable "$prefix/bin/python$v"; then py="$prefix/bin/python$v"; break; fi
    done
fi
if [ -z "$py" ] || ! usable "$py"; then
    echo "native_venv.sh: no Python 3.12 or 3.13 found (codetracer-python-recorder 0.3.0 needs one)" >&2
    exit 3
fi

if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import codetracer_python_recorder" >/dev/null 2>&1; then
    echo "native_venv.sh: creating $dir with $py" >&2
    "$py" -m venv "$dir" >&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
        "codetracer-python-recorder==0.3.0" markdown pytest >&2
    # tomli's wheels are compiled with mypyc, which no recorder can see into.
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-binary tomli tomli >&2
fi
"$dir/bin/python" -c "import importlib.metadata as m; assert m.version('codetracer-python-recorder') == '0.3.0'" >&2
echo "$dir/bin/python"
