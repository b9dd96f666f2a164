# -*- coding: utf-8 -*-
"""Stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test downloads get-pip.py from ci-files.testing.ansible.com to put pip
into the empty virtualenvs it makes for sanity tests; that host is not
reachable from our CI machines, PyPI is. scripts/test.sh places this file
where ansible-test caches the download: it installs pip with the standard
library's ensurepip, then lets pip install what ansible-test asked for.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'],
                      stdout=subprocess.DEVNULL)
# get-pip.py's own options, which `pip install` does not know
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
