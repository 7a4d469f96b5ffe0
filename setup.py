"""Install rewind's auto-start hook, src/rewind-autostart.pth, into site-packages.

All project metadata lives in pyproject.toml; this file exists only because a `.pth` file at
the root of site-packages cannot be declared there.  The hook is one line that does nothing
unless CODETRACER_TRACE is set (docs/auto-start.md).

- `pip install .` (a wheel): build_py copies the file to the root of the build directory,
  so it lands in the wheel's purelib root, i.e. site-packages.
- `pip install -e .` (PEP 660): the editable wheel holds only a path hook, not the build
  directory, so editable_wheel adds the file to the wheel itself.

It also builds the optional C accelerator, rewind.accelerator._speedups (docs/accelerator.md).
Like coverage.py's C tracer it is optional: when it cannot be compiled (no compiler, no Python
headers) one warning line is printed and the install goes on with the pure-Python core.
"""
import os
import re
import sys
import zlib

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

PTH = "rewind-autostart.pth"
PTH_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", PTH)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH_SOURCE, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return list(super().get_outputs(include_bytecode)) + [os.path.join(self.build_lib, PTH)]


# Everything that means "this machine cannot build C extensions".
BUILD_ERRORS = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError)


class optional_build_ext(build_ext):
    """build_ext that never fails the install: a failed build leaves the pure-Python core."""

    warned = False

    def run(self):
        try:
            super().run()
        except BUILD_ERRORS as exc:  # no compiler at all
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self._warn(exc)

    def _warn(self, exc):
        if optional_build_ext.warned:
            return
        optional_build_ext.warned = True
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # "Command '['gcc', ...every flag...]' returned ..." -> "gcc returned ...": one short line.
        reason = re.sub(r"Command '\[([^,\]]*)[^\]]*\]'", r"\1", reason)
        sys.stderr.write("rewind: the C accelerator could not be built (%s); the pure-Python core will be used\n"
                         % reason)


cmdclass = {"build_py": build_py_with_pth, "build_ext": optional_build_ext}

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable installs
    editable_wheel = None

if editable_wheel is not None:
    class editable_wheel_with_pth(editable_wheel):
        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir, *args, **kwargs):
            result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir, *args, **kwargs)
            # Everything in the unpacked wheel directory goes into the editable wheel's root.
            self.copy_file(PTH_SOURCE, os.path.join(unpacked_wheel, PTH), preserve_mode=0)
            return result

    cmdclass["editable_wheel"] = editable_wheel_with_pth

def _source_crc(path):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), path), "rb") as f:
        return zlib.crc32(f.read())


# The accelerator's modules: the per-line core, the encoder's node check and the CBOR
# transcoder.  Only public CPython API, so one source builds for every supported version;
# optional=True: an editable install then skips copying a .so that was not built.
# Each module records the CRC-32 of the source it was built from (its SOURCE_CRC): when an
# editable install's source has changed since, rewind uses the pure-Python core instead of a
# module whose functions no longer match the Python code (accelerator/__init__.py, _load).
SOURCES = {name: "src/rewind/accelerator/%s.c" % name for name in ("_speedups", "_nodes", "_cbor")}
# headroom.h, shared by _speedups and _nodes, holds no interface the Python code calls.
HEADERS = ["src/rewind/accelerator/headroom.h"]
accelerator = [Extension("rewind.accelerator.%s" % name, sources=[path], depends=HEADERS, optional=True,
                         define_macros=[("REWIND_SOURCE_CRC", "%dUL" % _source_crc(path))])
               for name, path in SOURCES.items()]

setup(cmdclass=cmdclass, ext_modules=accelerator)
