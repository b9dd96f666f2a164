# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import pyroute2's submodules without its eager package ``__init__``.

``import pyroute2`` (0.9) imports every family the library supports --
conntrack, IPDB, NDB, nftables, nl80211, wireguard, plan9, ... -- about 300
modules, before any submodule can be used. Our modules only need
``pyroute2.iproute`` and ``pyroute2.netns``. Every task of every network
module pays that import: about 0.1 s on a fast host, 2-3 s on a slow VM
(a software-emulated CPU), which is most of a task's time there.

``light()`` registers a stand-in package object for ``pyroute2`` (same
``__path__``, so ``import pyroute2.iproute.linux`` works as usual) whose
top-level names are resolved lazily: a submodule name imports that
submodule, any other name (``pyroute2.NDB``, ``from pyroute2 import
IPRoute``) runs the real ``__init__`` into the same module object first. Code
that wants the whole package still gets it; code that names submodules pays
only for them. Nothing changes when pyroute2 is already imported.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import importlib.util
import sys
import types


def light():
    """Register the lazy ``pyroute2`` package if pyroute2 is not imported yet.

    Raises ImportError when pyroute2 is not installed.
    """
    if 'pyroute2' in sys.modules:
        return sys.modules['pyroute2']
    spec = importlib.util.find_spec('pyroute2')
    if spec is None or not spec.submodule_search_locations or spec.loader is None:
        raise ImportError('No module named pyroute2')
    pkg = types.ModuleType('pyroute2')
    pkg.__spec__ = spec
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    pkg.__package__ = 'pyroute2'
    pkg.__loader__ = spec.loader

    def lazy_getattr(name):
        if name.startswith('__'):
            raise AttributeError(name)
        try:
            return importlib.import_module('pyroute2.' + name)
        except ModuleNotFoundError as e:
            if e.name != 'pyroute2.' + name:
                raise
        # Not a submodule: a name of the package itself. Run the real __init__
        # now (once) into this module object, then answer from it.
        pkg.__dict__.pop('__getattr__', None)
        spec.loader.exec_module(pkg)
        try:
            return pkg.__dict__[name]
        except KeyError:
            raise AttributeError("module 'pyroute2' has no attribute %r" % name)

    pkg.__getattr__ = lazy_getattr
    sys.modules['pyroute2'] = pkg
    return pkg
