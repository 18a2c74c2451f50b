"""Packaging for SocketTornad.IO (the ``tornad_io`` package)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

readme = HERE / "README.rst"
long_description = readme.read_text(encoding="utf-8") if readme.exists() else ""

redis_requires = ["redis>=4.2"]
test_requires = ["pytest", "pytest-timeout", "hypothesis", "playwright", *redis_requires]

setup(
    name="SocketTornad.IO",
    version="0.2.0",
    description="Socket.IO 0.6 server for Tornado 6: websocket, flashsocket, polling and streaming",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    license_files=["LICENSE"],
    packages=find_packages(exclude=["tests", "tests.*", "examples", "examples.*", "bench", "bench.*"]),
    package_data={"tornad_io": ["py.typed", "flashpolicy.xml"]},
    include_package_data=False,
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=["tornado>=6", "beaker", "simplejson"],
    extras_require={
        "redis": redis_requires,
        "test": test_requires,
        # selenium drives WebKitGTK and websocket-client speaks WebDriver BiDi to Firefox (tests/engines.py);
        # uvloop lets the bench smoke test run the websocket takeover on uvloop's transports too
        "dev": [
            *test_requires,
            "selenium",
            "websocket-client",
            "docutils",
            "mypy",
            "ruff",
            "uvloop",
            # the official Python client of Socket.IO v5, which the v5 tests connect with
            "python-socketio[asyncio-client]>=5.11",
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Tornado",
        "Framework :: Tornado :: 6",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet :: WWW/HTTP",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
        "Topic :: Software Development :: Libraries :: Python Modules",
        "Typing :: Typed",
    ],
)
