# -*- coding: utf-8 -*-
"""Static checks as tests: ansible-lint (production profile), ansible-test
sanity, and a built collection tarball that installs and documents itself."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
GET_PIP_CACHE = os.path.expanduser('~/.ansible/test/cache')


def run(argv, cwd=ROOT, timeout=1800, **kw):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get('PATH', ''),
               ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', **kw)
    return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, check=False,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)


def git_files():
    out = run(['git', 'ls-files', '-co', '--exclude-standard']).stdout.split('\n')
    return [f for f in out if f and os.path.exists(os.path.join(ROOT, f))]


@pytest.fixture(scope='module')
def collection_tree(tmp_path_factory):
    """The checkout's files at ansible_collections/nodocker/lab (what ansible-test needs)."""
    base = tmp_path_factory.mktemp('sanity')
    dest = base / 'ansible_collections' / 'nodocker' / 'lab'
    for f in git_files():
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), str(target), follow_symlinks=False)
    run(['git', 'init', '-q', '.'], cwd=str(dest))
    run(['git', 'add', '-A'], cwd=str(dest))
    return dest


def test_ansible_lint_production_profile():
    p = run([os.path.join(BIN, 'ansible-lint'), '--profile', 'production', '--offline'])
    assert p.returncode == 0, p.stdout[-20000:]


def test_ansible_test_sanity(collection_tree):
    # ansible-test bootstraps pip from a host we cannot reach: use our stand-in
    versions = ['24.2']
    os.makedirs(GET_PIP_CACHE, exist_ok=True)
    for v in versions:
        shutil.copy(os.path.join(ROOT, 'scripts', 'ansible-test-get-pip.py'),
                    os.path.join(GET_PIP_CACHE, 'get_pip_%s.py' % v.replace('.', '_')))
    p = run([os.path.join(BIN, 'ansible-test'), 'sanity', '--local', '--python',
             '%d.%d' % sys.version_info[:2], '--color', 'no'], cwd=str(collection_tree),
            timeout=2400)
    assert p.returncode == 0, p.stdout[-30000:]


def test_galaxy_build_installs_and_documents(tmp_path):
    (tmp_path / 'ansible.cfg').write_text('[defaults]\n')
    p = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path',
             str(tmp_path), '--force'])
    assert p.returncode == 0, p.stdout
    tarball = glob.glob(str(tmp_path / 'nodocker-lab-*.tar.gz'))[0]
    inst = tmp_path / 'installed'
    p = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--no-deps', '--force', '-p',
             str(inst), tarball])
    assert p.returncode == 0, p.stdout
    p = run([os.path.join(BIN, 'ansible-doc'), 'nodocker.lab.netns'], cwd=str(tmp_path),
            ANSIBLE_COLLECTIONS_PATH=str(inst), ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'))
    assert p.returncode == 0, p.stdout
    text = ' '.join(p.stdout.split())
    assert 'Creates or deletes network namespaces' in text
    assert 'check_mode' in text and 'EXAMPLES' in text and 'RETURN VALUES' in text
    p = run([os.path.join(BIN, 'ansible-doc'), '-l', 'nodocker.lab'], cwd=str(tmp_path),
            ANSIBLE_COLLECTIONS_PATH=str(inst), ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'))
    modules = [l.split()[0] for l in p.stdout.splitlines() if l.startswith('nodocker.lab.')]
    shipped = sorted('nodocker.lab.' + os.path.basename(m)[:-3]
                     for m in glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py')))
    assert sorted(modules) == shipped
