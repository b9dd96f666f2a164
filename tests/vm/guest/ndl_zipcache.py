"""Bytecode cache for modules imported from zip files (test VMs only).

Ansible runs every task as an AnsiballZ payload: a zip of the module and its
module_utils that Python imports with zipimport, which compiles every source
file on every run (it never writes .pyc files). On a software-emulated CPU
that compilation is most of a task's time (ansible.module_utils.basic: about
6 s). This hook keeps the compiled code of each zipped source file in
/var/cache/ndl-zipcache, keyed by the source's CRC-32 and length: the second
task that imports the same source unmarshals it instead. Loaded at Python
start-up by ndl_zipcache.pth; it changes nothing outside zipimport.
"""
import marshal
import os
import zipimport
import zlib

CACHE = '/var/cache/ndl-zipcache'
_compile = zipimport._compile_source


def _compile_source_cached(pathname, source):
    name = pathname.replace('\\', '/').rsplit('.zip/', 1)[-1].replace('/', '_')
    path = os.path.join(CACHE, '%s-%08x-%d' % (name, zlib.crc32(source), len(source)))
    try:
        with open(path, 'rb') as f:
            return marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile(pathname, source)
    try:
        os.makedirs(CACHE, exist_ok=True)
        tmp = '%s.%d' % (path, os.getpid())
        with open(tmp, 'wb') as f:
            marshal.dump(code, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return code


zipimport._compile_source = _compile_source_cached
