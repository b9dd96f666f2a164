# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _runtime as rt


def _params(tmp_path, **kw):
    p = dict(name='RED', rootfs=str(tmp_path), lowerdirs=None, command=['/bin/sh'])
    p.update(kw)
    return p


def test_definition_and_hash(tmp_path):
    d = rt.build_definition(_params(tmp_path, memory='200M'))
    assert d['hostname'] == 'RED' and d['limits']['memory'] == 209715200
    assert rt.definition_hash(d) == rt.definition_hash(rt.build_definition(_params(tmp_path, memory='200MiB')))
    assert rt.definition_hash(d) != rt.definition_hash(rt.build_definition(_params(tmp_path)))


def test_default_hostname_from_a_name_with_underscores(tmp_path):
    assert rt.build_definition(_params(tmp_path, name='ndl_it_1'))['hostname'] == 'ndl-it-1'


@pytest.mark.parametrize('kw,match', [
    (dict(hostname='h' * 65), 'at most 64'),
    (dict(rootfs='/nonexistent/ndl'), 'does not exist'),
    (dict(memory='lots'), 'not a size'),
    (dict(userns=True, uid_map=[dict(container_id=0, host_id=1, size=10),
                                dict(container_id=5, host_id=100, size=10)]), 'overlap'),
    (dict(uid_map=[dict(container_id=0, host_id=1)]), 'need userns'),
    (dict(capabilities=['cap_fly']), 'unknown capability'),
    (dict(cpu_quota='forty percent'), 'cpu_quota'),
    (dict(userns=True, uid_map=[dict(container_id=0, host_id=4294967290, size=65536)]),
     'out of range'),
    (dict(user='nobodyhere'), 'not in the container'),
])
def test_bad_definitions(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        rt.build_definition(_params(tmp_path, **kw))


def test_user_from_passwd(tmp_path):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc/passwd').write_text('root:x:0:0::/root:/bin/sh\nstudent:x:1000:1001::/home:/bin/sh\n')
    d = rt.build_definition(_params(tmp_path, user='student'))
    assert (d['uid'], d['gid']) == (1000, 1001)


class _FakeModule:
    check_mode = False

    def __init__(self, **params):
        self.params = dict(name='RED', command=None, argv=None, env=None, cwd=None,
                           user=None, timeout=None)
        self.params.update(params)

    def fail_json(self, **kw):
        raise AssertionError(kw)


def test_exec_module_output_has_no_trailing_newline(monkeypatch):
    """As ansible.builtin.command: `stdout == 'hello'` holds for `echo hello`."""
    monkeypatch.setattr(rt, 'exec_in_container',
                        lambda *a, **kw: {'rc': 0, 'stdout': 'hello\nworld\n\n', 'stderr': 'warn\r\n'})
    monkeypatch.setattr(rt, 'container_status', lambda name: {'pid': 42})
    r = rt.run_container_exec(_FakeModule(command='echo hello'))
    assert r['stdout'] == 'hello\nworld' and r['stdout_lines'] == ['hello', 'world']
    assert r['stderr'] == 'warn' and r['commands'] == ["nsenter --all --target 42 /bin/sh -c 'echo hello'"]


# --- a container from an image of the local store ---------------------------------

def _stored_image(tmp_path, name='docker.io/library/app:1'):
    """A two-layer image imported into a store under tmp_path; returns the store."""
    from tests.unit.test_image_hostile import docker_archive, entry, layer_tar, run
    base = [entry('bin', 'dir'), entry('bin/sh', data=b'#!'), entry('etc', 'dir'),
            entry('etc/passwd', data=b'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n')]
    top = [entry('srv', 'dir'), entry('srv/app', data=b'x')]
    src = docker_archive(str(tmp_path / 'app.tar'), [layer_tar(base), layer_tar(top)], tag=name)
    store = tmp_path / 'images'
    r = run(store, src, name)
    return str(store), r['layers']


def test_image_gives_layers_and_docker_run_defaults(tmp_path, monkeypatch):
    store, layers = _stored_image(tmp_path)
    config = {'Entrypoint': ['/bin/app'], 'Cmd': ['--serve'], 'Env': ['PATH=/app/bin', 'MODE=img'],
              'WorkingDir': '/srv', 'User': 'app'}
    real = rt.image_layers_and_config
    monkeypatch.setattr(rt, 'image_layers_and_config',
                        lambda name, root: (real(name, root)[0], config))
    d = rt.build_definition(dict(name='web', image='app:1', image_store=store,
                                 env={'MODE': 'task'}))
    assert d['lowerdirs'] == layers and d['image'] == 'app:1' and d['rootfs'] is None
    assert d['command'] == ['/bin/app', '--serve'] and d['cwd'] == '/srv'
    assert d['env']['PATH'] == '/app/bin' and d['env']['MODE'] == 'task'
    assert (d['uid'], d['gid']) == (1000, 1000)
    # what the task says wins over the image; as docker run, the command replaces
    # Cmd and keeps the Entrypoint, an empty entrypoint drops it
    d = rt.build_definition(dict(name='web', image='app:1', image_store=store,
                                 command=['--debug'], cwd='/', user='0'))
    assert d['command'] == ['/bin/app', '--debug'] and d['cwd'] == '/' and d['uid'] == 0
    d = rt.build_definition(dict(name='web', image='app:1', image_store=store,
                                 entrypoint=[], command=['/bin/sh']))
    assert d['command'] == ['/bin/sh']


def test_image_real_config_and_short_name(tmp_path):
    store, layers = _stored_image(tmp_path)
    d = rt.build_definition(dict(name='web', image='app:1', image_store=store))
    assert d['lowerdirs'] == layers
    assert d['command'] == ['/bin/sh']  # the test archive's config has Cmd [/bin/sh]


@pytest.mark.parametrize('kw,match', [
    (dict(image='nosuch:1'), 'is not in the image store'),
    (dict(image='app:1', rootfs='/'), 'exactly one of'),
])
def test_image_bad_input(tmp_path, kw, match):
    store, _layers = _stored_image(tmp_path)
    kw.setdefault('image_store', store)
    with pytest.raises(ValueError, match=match):
        rt.build_definition(dict(name='web', **kw))


def test_image_config_of_the_wrong_shape_is_a_clear_error(tmp_path, monkeypatch):
    store, _layers = _stored_image(tmp_path)
    import json
    import glob
    for path in glob.glob(str(tmp_path / 'images' / 'configs' / 'sha256' / '*')):
        with open(path, 'w') as f:
            json.dump({'config': {'Cmd': 'echo not a list'}}, f)
    with pytest.raises(ValueError, match='Cmd is not a list of strings'):
        rt.build_definition(dict(name='web', image='app:1', image_store=store))


@pytest.mark.parametrize('plant', ['etc', 'passwd'])
def test_user_name_lookup_never_follows_a_layers_symlink(tmp_path, plant):
    """An image's etc -> /etc (or etc/passwd -> /etc/passwd) means something only inside
    the container: looked up on the host it would read the host's users."""
    layer = tmp_path / 'layer'
    layer.mkdir()
    if plant == 'etc':
        (layer / 'etc').symlink_to('/etc')
    else:
        (layer / 'etc').mkdir()
        (layer / 'etc' / 'passwd').symlink_to('/etc/passwd')
    with pytest.raises(ValueError, match='symlink'):
        rt.parse_user('daemon', [str(layer)])


def test_user_name_lookup_stops_at_a_whiteout(tmp_path):
    import os
    top, base = tmp_path / 'top', tmp_path / 'base'
    (base / 'etc').mkdir(parents=True)
    (base / 'etc' / 'passwd').write_text('app:x:1000:1000::/:/bin/sh\n')
    (top / 'etc').mkdir(parents=True)
    os.mknod(str(top / 'etc' / 'passwd'), 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
    with pytest.raises(ValueError, match='not in the container'):
        rt.parse_user('app', [str(top), str(base)])
    assert rt.parse_user('app', [str(base)]) == (1000, 1000)
