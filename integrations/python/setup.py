"""Bundling libdtk into the package at build time (optional).

With DTK_BUNDLE_LIBRARY=/path/to/libdtk.so set while building
(`DTK_BUNDLE_LIBRARY=build/core/libdtk.so pip install ./integrations/python`),
that library and the libdtk-*.so beside it (plugins, libdtk-fleet) are copied
into detectk/_libs/, which detectk._lib tries after $DTK_LIBRARY. Without it
the package holds Python only and finds libdtk at run time."""

import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyBundle(build_py):
    def run(self):
        super().run()
        src = os.environ.get("DTK_BUNDLE_LIBRARY")
        if not src:
            return
        src = os.path.realpath(src)
        if not os.path.isfile(src):
            raise SystemExit("DTK_BUNDLE_LIBRARY=%s: no such file" % src)
        dest = os.path.join(self.build_lib, "detectk", "_libs")
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(src, os.path.join(dest, "libdtk.so"))
        here = os.path.dirname(src)
        for p in glob.glob(os.path.join(here, "libdtk-*.so")) + glob.glob(
                os.path.join(here, "fleet", "libdtk-fleet.so")):
            shutil.copy2(os.path.realpath(p), os.path.join(dest, os.path.basename(p)))


setup(cmdclass={"build_py": BuildPyBundle})
