"""Compiles the Vietnamese catalogs into every wheel built from this tree, so an install
from a bundle or a source checkout speaks Vietnamese without running `make` first; all the
rest of the build is declared in pyproject.toml."""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """The package files as usual, then each copied `.po` compiled to its `.mo`."""

    def run(self) -> None:
        super().run()
        for po in Path(self.build_lib).glob("*/locale/*/LC_MESSAGES/*.po"):
            with po.open("rb") as source:
                catalog = read_po(source)
            with po.with_suffix(".mo").open("wb") as target:
                write_mo(target, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogs})
