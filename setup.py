"""Ships web/ (templates, styles, the built editor) as the ``plein_web`` package, so a
non-editable install serves every page. Everything else is declared in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["app*", "storage*", "sync*", "indexer*"]), "plein_web"],
    package_dir={"plein_web": "web"},
)
