"""Install rewind's auto-start hook, src/rewind-autostart.pth, into site-packages.

All project metadata lives in pyproject.toml; this file exists only because a `.pth` file at
the root of site-packages cannot be declared there.  The hook is one line that does nothing
unless CODETRACER_TRACE is set (docs/auto-start.md).

- `pip install .` (a wheel): build_py copies the file to the root of the build directory,
  so it lands in the wheel's purelib root, i.e. site-packages.
- `pip install -e .` (PEP 660): the editable wheel holds only a path hook, not the build
  directory, so editable_wheel adds the file to the wheel itself.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "rewind-autostart.pth"
PTH_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", PTH)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH_SOURCE, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return list(super().get_outputs(include_bytecode)) + [os.path.join(self.build_lib, PTH)]


cmdclass = {"build_py": build_py_with_pth}

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

setup(cmdclass=cmdclass)
