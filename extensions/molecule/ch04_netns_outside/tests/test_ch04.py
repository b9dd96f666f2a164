# -*- coding: utf-8 -*-
"""Chapter 4's proof: RED and BLUE reach the outside through NAT, and the
outside reaches a server in RED through a published port."""

import time

import pytest

INTERNET_ADDR = '203.0.113.10'   # on the outside host, reachable only via host1's NAT
HOST_ADDR = '192.168.104.2'      # host1's underlay address


def start_http_server(host, bind, directory, log, netns=None):
    """A throwaway HTTP server that logs client addresses; dies with the simulated host."""
    prefix = 'ip netns exec %s ' % netns if netns else ''
    host.run('mkdir -p %s && echo hello-from-%s > %s/index.html' % (directory, bind, directory))
    host.run('cd %s && setsid -f %spython3 -m http.server --bind %s 80 > %s 2>&1'
             % (directory, prefix, bind, log))
    probe = '%scurl -s -m 1 -o /dev/null http://%s/' % (prefix, bind)
    for dummy in range(100):
        if host.run(probe).rc == 0:
            return
        time.sleep(0.1)
    pytest.fail('HTTP server on %s did not start' % bind)


def stop_http_server(host, bind):
    host.run("pkill -f 'http.server --bind %s'" % bind)


@pytest.fixture(scope='module')
def internet_server(simhosts):
    outside = simhosts['outside']
    start_http_server(outside, INTERNET_ADDR, '/tmp/www-internet', '/tmp/http-internet.log')
    yield outside
    stop_http_server(outside, INTERNET_ADDR)


@pytest.fixture(scope='module')
def red_server(simhosts):
    host1 = simhosts['host1']
    start_http_server(host1, '11.11.11.2', '/tmp/www-red', '/tmp/http-red.log', netns='RED')
    yield host1
    stop_http_server(host1, '11.11.11.2')


@pytest.mark.parametrize('ns', ['RED', 'BLUE'])
def test_namespace_reaches_the_outside(simhosts, internet_server, ns):
    r = simhosts['host1'].run('ip netns exec %s curl -s -m 5 http://%s/' % (ns, INTERNET_ADDR))
    assert r.rc == 0 and 'hello-from' in r.stdout, r.stderr


def test_outside_sees_the_host_address_as_source(simhosts, internet_server):
    simhosts['host1'].run('ip netns exec RED curl -s -m 5 http://%s/' % INTERNET_ADDR)
    log = internet_server.run('cat /tmp/http-internet.log').stdout
    # the server's own start-up probe comes from itself; every other client is host1
    clients = {line.split()[0] for line in log.splitlines() if '"GET' in line} - {INTERNET_ADDR}
    assert clients == {HOST_ADDR}, log


def test_outside_has_no_route_to_the_namespaces(simhosts):
    # without NAT the namespaces' replies could not come back: the proof above needs it
    assert '11.11.11' not in simhosts['outside'].run('ip route').stdout


def test_outside_reaches_the_published_port(simhosts, red_server):
    r = simhosts['outside'].run('curl -s -m 5 http://%s:8080/' % HOST_ADDR)
    assert r.rc == 0 and 'hello-from-11.11.11.2' in r.stdout, r.stderr


def test_default_routes_and_forwarding(simhosts):
    h = simhosts['host1']
    for ns in ('RED', 'BLUE'):
        assert 'default via 11.11.11.1' in h.run('ip netns exec %s ip route' % ns).stdout
    assert h.run('cat /proc/sys/net/ipv4/ip_forward').stdout.strip() == '1'
    nat = h.run('iptables-save -t nat').stdout
    assert '-A POSTROUTING -s 11.11.11.0/24 ! -o br0' in nat and 'MASQUERADE' in nat
    assert '--to-destination 11.11.11.2:80' in nat


def test_forwarding_before_the_chapter_is_recorded(simhosts):
    # the reset puts this value back (cleanup.yml checks it, also on a host that forwarded before)
    f = simhosts['host1'].file('/var/lib/nodocker-lab/ch04/ip_forward.before')
    assert f.exists and f.content_string.strip() in ('0', '1')
