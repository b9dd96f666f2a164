# -*- coding: utf-8 -*-
"""Shared pytest setup: make the collection importable as
ansible_collections.nodocker.lab (through the checkout's collections/ link)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
