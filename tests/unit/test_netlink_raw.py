# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_netlink's raw rtnetlink reader/encoder on bytes (a fake socket, no kernel).

Requests are compared byte for byte with what pyroute2's message classes
encode offline; replies are built with pyroute2 (or by hand) and the raw
decoder's view is compared with pyroute2's decode of the same bytes. One
test reads (only reads) the links of the current namespace through a real
socket and compares them with pyroute2's IPRoute.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket
import struct

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _netlink as nl

ndmsg_mod = pytest.importorskip('pyroute2.netlink.rtnl.ndmsg')
ifinfmsg_mod = pytest.importorskip('pyroute2.netlink.rtnl.ifinfmsg')
ifaddrmsg_mod = pytest.importorskip('pyroute2.netlink.rtnl.ifaddrmsg')

MAC = '02:42:c0:a8:00:03'


# ------------------------------------------------------------------ helpers
def nlmsg(mtype, seq, body, flags=0):
    """One netlink message (header + body), padded to 4 bytes."""
    raw = struct.pack('=IHHII', 16 + len(body), mtype, flags, seq, 0) + body
    return raw + b'\0' * ((4 - len(raw) % 4) % 4)


def nlerror(seq, code, request_header=b'\0' * 16):
    """NLMSG_ERROR: a (negative) errno and the request's header."""
    return nlmsg(nl.NLMSG_ERROR, seq, struct.pack('=i', code) + request_header)


def done(seq):
    return nlmsg(nl.NLMSG_DONE, seq, struct.pack('=i', 0), flags=0x2)


def split(buf):
    """[(length, type, flags, seq, body)] of the messages in a buffer."""
    out, off = [], 0
    while off < len(buf):
        length, mtype, flags, seq, dummy = struct.unpack_from('=IHHII', buf, off)
        out.append((length, mtype, flags, seq, buf[off + 16:off + length]))
        off += (length + 3) & ~3
    return out


class FakeSock:
    """A netlink socket stand-in: ``answer(sent_bytes)`` -> datagrams to receive."""

    def __init__(self, answer):
        self.answer = answer
        self.sent = []
        self.queue = []
        self.closed = False

    def send(self, data):
        self.sent.append(bytes(data))
        self.queue.extend(self.answer(bytes(data)))
        return len(data)

    sendall = send

    def recv(self, size):
        assert self.queue, 'the reader waits for a reply that never comes'
        return self.queue.pop(0)

    def close(self):
        self.closed = True


class FakeIPRoute:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kw):
            self.calls.append((name, args, kw))
            return 'ipr.%s' % name
        return call

    def close(self):
        self.calls.append(('close', (), {}))


def reader(answer):
    """An Rtnl on a fake socket (no socket, no namespace)."""
    r = nl.Rtnl.__new__(nl.Rtnl)
    r.netns, r._ipr, r._seq, r._sock = None, None, 0, FakeSock(answer)
    return r


def pyroute2_bytes(msg, mtype=0, seq=0, flags=0):
    msg['header']['type'] = mtype
    msg['header']['sequence_number'] = seq
    msg['header']['flags'] = flags
    msg.encode()
    return bytes(msg.data)


def ndmsg(family, ifindex, state, flags, attrs, seq=0, mtype=nl.RTM_NEWNEIGH, nlflags=0):
    m = ndmsg_mod.ndmsg()
    m['family'], m['ifindex'], m['state'], m['flags'], m['ndm_type'] = family, ifindex, state, flags, 0
    m['attrs'] = list(attrs)  # pyroute2 replaces the items in place
    return pyroute2_bytes(m, mtype, seq, nlflags)


def ifinfmsg(index, name, flags=0x1043, attrs=(), seq=0):
    m = ifinfmsg_mod.ifinfmsg()
    m['index'], m['flags'], m['change'], m['ifi_type'] = index, flags, 0, 1
    m['attrs'] = [('IFLA_IFNAME', name)] + list(attrs)
    return pyroute2_bytes(m, nl.RTM_NEWLINK, seq, 0x2)


def pyroute2_decode(cls, raw):
    m = cls(raw)
    m.decode()
    return m


# ------------------------------------------------------------ attributes
def test_attr_is_padded_to_four_bytes():
    assert nl._attr(3, b'lo\0') == struct.pack('=HH', 7, 3) + b'lo\0' + b'\0'
    assert nl._attr(2, b'\x01' * 6) == b'\x0a\x00\x02\x00' + b'\x01' * 6 + b'\0\0'
    assert nl._attr(7, struct.pack('=I', 42)) == struct.pack('=HHI', 8, 7, 42)  # aligned: no pad
    assert nl._attr(9, b'') == struct.pack('=HH', 4, 9)
    for n in range(9):
        raw = nl._attr(1, b'x' * n)
        assert len(raw) % 4 == 0 and struct.unpack_from('=H', raw)[0] == 4 + n


def test_attrs_walk_padding_nested_flag_and_truncation():
    data = nl._attr(3, b'eth0\0') + nl._attr(4, struct.pack('=I', 1500))
    # NLA_F_NESTED (0x8000) and NLA_F_NET_BYTEORDER (0x4000) are masked off the type
    inner = nl._attr(1, b'vxlan\0')
    data += struct.pack('=HH', 4 + len(inner), 18 | 0x8000) + inner
    data += struct.pack('=HH', 6, 6 | 0x4000) + b'\x12\xb5\0\0'
    got = nl._attrs(data, 0, len(data))
    assert got == {3: b'eth0\0', 4: struct.pack('=I', 1500), 18: inner, 6: b'\x12\xb5'}
    # a bogus length (< 4) ends the walk instead of looping forever
    assert nl._attrs(nl._attr(3, b'a\0') + b'\x02\x00\x05\x00', 0, 12) == {3: b'a\0'}
    # only data[off:end] is read
    assert nl._attrs(data, 0, 12) == {3: b'eth0\0'}


# -------------------------------------------- requests vs pyroute2's encoding
NEIGH_CASES = [
    # (op, family, kwargs of neigh_message, pyroute2 attrs in the same order, netlink flags)
    ('replace', socket.AF_INET, dict(state=0x80, dst='11.11.11.3', lladdr=MAC),
     [('NDA_DST', '11.11.11.3'), ('NDA_LLADDR', MAC)], nl.NLM_F_CREATE | nl.NLM_F_REPLACE),
    ('del', socket.AF_INET6, dict(dst='fd00::3'), [('NDA_DST', 'fd00::3')], 0),
    ('append', 7, dict(state=0xc0, flags=2, dst='192.168.104.3', lladdr='00:00:00:00:00:00',
                       vni=42, port=4789),
     [('NDA_DST', '192.168.104.3'), ('NDA_LLADDR', '00:00:00:00:00:00'), ('NDA_PORT', 4789),
      ('NDA_VNI', 42)], nl.NLM_F_CREATE | nl.NLM_F_APPEND),
    ('add', 7, dict(state=0xc0, flags=2, lladdr=MAC, dst='fd00::1', vni=0xffffff),
     [('NDA_DST', 'fd00::1'), ('NDA_LLADDR', MAC), ('NDA_VNI', 0xffffff)],
     nl.NLM_F_CREATE | nl.NLM_F_EXCL),
    ('del', 7, dict(state=0xc0, flags=2, lladdr=MAC), [('NDA_LLADDR', MAC)], 0),
]


@pytest.mark.parametrize('op,family,kw,attrs,flags', NEIGH_CASES)
def test_neigh_message_equals_pyroute2_encoding(op, family, kw, attrs, flags):
    mtype, nlflags, body = nl.neigh_message(op, family, 5, **kw)
    assert mtype == (nl.RTM_DELNEIGH if op == 'del' else nl.RTM_NEWNEIGH)
    assert nlflags == flags
    want = ndmsg(family, 5, kw.get('state', 0), kw.get('flags', 0), attrs, mtype=mtype)
    assert body == want[16:]
    assert len(body) % 4 == 0
    # and pyroute2 decodes our body back to the same fields
    back = pyroute2_decode(ndmsg_mod.ndmsg, nlmsg(mtype, 1, body))
    assert back['ifindex'] == 5 and back['family'] == family
    assert [(a[0], a[1]) for a in back['attrs']] == attrs


def test_neigh_message_rejects_unknown_op():
    with pytest.raises(KeyError):
        nl.neigh_message('frobnicate', socket.AF_INET, 1, dst='1.1.1.1')


def test_link_get_request_equals_pyroute2_encoding():
    seen = []

    def answer(data):
        seen.append(data)
        return [nlerror(split(data)[0][3], -errno.ENODEV, data[:16])]

    r = reader(answer)
    assert nl.get_link(r, ifname='vxlan1') is None  # ENODEV -> None
    assert nl.get_link(r, index=7) is None
    (length, mtype, flags, seq, body), = split(seen[0])
    assert (mtype, flags, seq, length) == (nl.RTM_GETLINK, nl.NLM_F_REQUEST, 1, len(seen[0]))
    m = ifinfmsg_mod.ifinfmsg()
    m['index'], m['flags'], m['change'], m['ifi_type'] = 0, 0, 0, 0
    m['attrs'] = [('IFLA_IFNAME', 'vxlan1')]
    assert body == pyroute2_bytes(m)[16:]
    (dummy, dummy, dummy, seq, body), = split(seen[1])
    assert seq == 2 and body == struct.pack('=BxHiII', 0, 0, 7, 0, 0)  # by index: no name


def test_netnsid_request_and_answer():
    sent = []

    def answer(data):
        sent.append(data)
        seq = split(data)[0][3]
        return [nlmsg(nl.RTM_NEWNSID, seq, b'\0\0\0\0' + nl._attr(1, struct.pack('=i', 3)))]

    r = reader(answer)
    assert r.get_netnsid(fd=9) == {'nsid': 3}
    (dummy, mtype, dummy, dummy, body), = split(sent[0])
    assert mtype == nl.RTM_GETNSID
    assert body == b'\0\0\0\0' + struct.pack('=HHI', 8, 3, 9)  # rtgenmsg, NETNSA_FD
    r = reader(lambda d: [nlmsg(nl.RTM_NEWNSID, 1, b'\0\0\0\0' + nl._attr(1, struct.pack('=i', -1)))])
    assert r.get_netnsid(fd=9) == {'nsid': -1}  # "no id": NO_NSID for netnsid_of
    assert -1 in nl.NO_NSID


# ------------------------------------------------------ decoding of replies
def test_link_decode_equals_pyroute2():
    raw = ifinfmsg(7, 'vxlan1', attrs=[
        ('IFLA_ADDRESS', MAC), ('IFLA_MTU', 1450), ('IFLA_MASTER', 3),
        ('IFLA_OPERSTATE', 'UP'), ('IFLA_LINK_NETNSID', 2), ('IFLA_LINK', 4),
        ('IFLA_TXQLEN', 1000),
        ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'vxlan'), ('IFLA_INFO_DATA', {'attrs': [
            ('IFLA_VXLAN_ID', 42), ('IFLA_VXLAN_GROUP', '239.1.1.1'), ('IFLA_VXLAN_PORT', 4789),
            ('IFLA_VXLAN_L2MISS', 1), ('IFLA_VXLAN_L3MISS', 1)]})]})])
    raw_msg = nl._parse_link(raw, 16, len(raw))
    py = pyroute2_decode(ifinfmsg_mod.ifinfmsg, raw)
    for key in ('index', 'flags', 'change', 'family', 'ifi_type'):
        assert raw_msg[key] == py[key]
    for key in ('IFLA_IFNAME', 'IFLA_ADDRESS', 'IFLA_MTU', 'IFLA_MASTER', 'IFLA_OPERSTATE',
                'IFLA_LINK_NETNSID', 'IFLA_LINK'):
        assert raw_msg.get(key) == py.get(key), key
    assert 'IFLA_TXQLEN' not in raw_msg.attrs  # not read by the modules
    assert nl.link_kind(raw_msg) == nl.link_kind(py) == 'vxlan'
    data = raw_msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA')
    assert data['attrs'] == [('IFLA_VXLAN_ID', 42), ('IFLA_VXLAN_GROUP', '239.1.1.1'),
                             ('IFLA_VXLAN_PORT', 4789)]
    py_data = dict(py.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA')['attrs'])
    assert all(py_data[k] == v for k, v in data['attrs'])
    assert raw_msg.get_nested('IFLA_LINKINFO', 'nothing', 'deeper') is None
    assert raw_msg.get('IFLA_MISSING', 'default') == 'default'
    with pytest.raises(KeyError):
        raw_msg['IFLA_MISSING']  # pylint: disable=pointless-statement


def test_link_decode_edge_values():
    raw = ifinfmsg(1, 'lo', flags=0x48, attrs=[
        ('IFLA_OPERSTATE', 'UNKNOWN'), ('IFLA_LINK_NETNSID', -1),
        ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'veth')]})])
    msg = nl._parse_link(raw, 16, len(raw))
    assert msg.get('IFLA_OPERSTATE') == 'UNKNOWN'
    assert msg.get('IFLA_LINK_NETNSID') == -1  # signed
    assert nl.link_kind(msg) == 'veth'
    assert msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA') is None  # only vxlan's is read
    # an operstate beyond the known names is passed through as its number
    body = struct.pack('=BxHiII', 0, 1, 9, 0, 0) + nl._attr(16, b'\x09')
    assert nl._parse_link(nlmsg(16, 0, body), 16, 16 + len(body)).get('IFLA_OPERSTATE') == 9


def test_link_facts_from_raw_messages():
    links = {
        3: ifinfmsg(3, 'br0', attrs=[('IFLA_MTU', 1500), ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'bridge')]})]),
        7: ifinfmsg(7, 'veth0', flags=0x1002, attrs=[
            ('IFLA_ADDRESS', '02:42:C0:A8:00:03'), ('IFLA_MTU', 1500), ('IFLA_MASTER', 3),
            ('IFLA_OPERSTATE', 'DOWN'), ('IFLA_LINK_NETNSID', 0)]),
    }

    def answer(data):
        (dummy, dummy, dummy, seq, body), = split(data)
        index = struct.unpack_from('=i', body, 4)[0]
        return [nlmsg(nl.RTM_NEWLINK, seq, links[index][16:])]

    r = reader(answer)
    facts = nl.link_facts(r, nl.get_link(r, index=7))
    assert facts == {'name': 'veth0', 'index': 7, 'kind': None, 'mtu': 1500, 'mac': MAC,
                     'state': 'down', 'operstate': 'DOWN', 'master': 'br0', 'link_netnsid': 0}
    assert nl.link_facts(r, None) is None


def test_neigh_and_fdb_decode_equal_pyroute2():
    cases = [
        ndmsg(socket.AF_INET, 5, 0x80, 0, [('NDA_DST', '11.11.11.3'), ('NDA_LLADDR', MAC),
                                           ('NDA_PROBES', 0)]),
        ndmsg(socket.AF_INET6, 5, 0x02, 0x80, [('NDA_DST', 'fd00::3'), ('NDA_LLADDR', MAC)]),
        ndmsg(7, 9, 0xc0, 2, [('NDA_LLADDR', '00:00:00:00:00:00'), ('NDA_DST', '192.168.104.3'),
                              ('NDA_PORT', 4789), ('NDA_VNI', 42), ('NDA_IFINDEX', 2)]),
        ndmsg(7, 9, 0x40, 2, [('NDA_LLADDR', MAC), ('NDA_DST', 'fd00::9'), ('NDA_VNI', 0xffffff)]),
    ]
    for raw in cases:
        msg = nl._parse_neigh(raw, 16, len(raw))
        py = pyroute2_decode(ndmsg_mod.ndmsg, raw)
        for key in ('family', 'ifindex', 'state', 'flags', 'ndm_type'):
            assert msg[key] == py[key]
        for key in ('NDA_DST', 'NDA_LLADDR', 'NDA_PORT', 'NDA_VNI'):
            assert msg.get(key) == py.get(key), key
        assert set(msg.attrs) <= {'NDA_DST', 'NDA_LLADDR', 'NDA_PORT', 'NDA_VNI'}


def test_addr_decode_equals_pyroute2():
    for family, addr, prefixlen in ((socket.AF_INET, '192.0.2.2', 24), (socket.AF_INET6, 'fd00::2', 64)):
        m = ifaddrmsg_mod.ifaddrmsg()
        m['family'], m['prefixlen'], m['flags'], m['scope'], m['index'] = family, prefixlen, 0x80, 0, 4
        m['attrs'] = [('IFA_ADDRESS', addr), ('IFA_LOCAL', addr), ('IFA_LABEL', 'eth0')]
        raw = pyroute2_bytes(m, nl.RTM_NEWADDR)
        msg = nl._parse_addr(raw, 16, len(raw))
        py = pyroute2_decode(ifaddrmsg_mod.ifaddrmsg, raw)
        for key in ('family', 'prefixlen', 'flags', 'scope', 'index', 'IFA_ADDRESS', 'IFA_LOCAL'):
            assert msg.get(key) == py.get(key), key


# ------------------------------------------------------------------- dumps
def neigh_dump_answer(entries, chunk=2):
    """A dump reply in datagrams of ``chunk`` messages, with noise around it."""
    def answer(data):
        (dummy, mtype, flags, seq, dummy), = split(data)
        assert mtype == nl.RTM_GETNEIGH and flags == nl.NLM_F_REQUEST | nl.NLM_F_DUMP
        msgs = [ndmsg(*e, seq=seq, nlflags=0x2) for e in entries]
        msgs.insert(1, ndmsg(socket.AF_INET, 99, 0x80, 0, [], seq=seq + 100))  # other sequence
        dgrams = [b''.join(msgs[i:i + chunk]) for i in range(0, len(msgs), chunk)]
        return dgrams + [done(seq)]
    return answer


def test_fdb_dump_parses_every_datagram_and_filters_the_device():
    entries = [(7, 9, 0xc0, 2, [('NDA_LLADDR', '02:42:c0:a8:00:%02x' % i), ('NDA_DST', '192.168.104.%d' % i),
                                ('NDA_VNI', 42)]) for i in range(1, 6)]
    entries.append((7, 3, 0x80, 1, [('NDA_LLADDR', MAC)]))  # another device's entry
    r = reader(neigh_dump_answer(entries))
    got = r.fdb('dump', ifindex=9)
    assert [(m['ifindex'], m.get('NDA_LLADDR'), m.get('NDA_DST'), m.get('NDA_VNI')) for m in got] == [
        (9, '02:42:c0:a8:00:%02x' % i, '192.168.104.%d' % i, 42) for i in range(1, 6)]
    (dummy, dummy, dummy, dummy, body), = split(r._sock.sent[0])
    assert body == struct.pack('=BxxxiHBB', 7, 0, 0, 0, 0)  # AF_BRIDGE dump
    assert len(reader(neigh_dump_answer(entries)).fdb('dump')) == 6


def test_neigh_dump_family_and_index():
    entries = [(socket.AF_INET, 5, 0x80, 0, [('NDA_DST', '11.11.11.%d' % i), ('NDA_LLADDR', MAC)])
               for i in range(3)]
    r = reader(neigh_dump_answer(entries, chunk=10))
    got = r.neigh('dump', ifindex=5, family=socket.AF_INET)
    assert [m.get('NDA_DST') for m in got] == ['11.11.11.0', '11.11.11.1', '11.11.11.2']
    assert split(r._sock.sent[0])[0][4][:1] == b'\x02'
    assert r.neigh('dump', ifindex=6, family=socket.AF_INET) == []


def test_addr_dump_filters_index():
    def answer(data):
        seq = split(data)[0][3]
        out = b''
        for index, addr in ((1, '127.0.0.1'), (4, '192.0.2.2')):
            body = struct.pack('=BBBBI', 2, 8, 0, 0, index) + nl._attr(1, socket.inet_aton(addr))
            out += nlmsg(nl.RTM_NEWADDR, seq, body, flags=0x2)
        return [out + done(seq)]

    assert [m.get('IFA_ADDRESS') for m in reader(answer).addr('dump', index=4)] == ['192.0.2.2']
    assert len(reader(answer).addr('dump')) == 2


def test_dump_error_raises_netlink_error_with_positive_code():
    r = reader(lambda d: [nlerror(split(d)[0][3], -errno.EPERM, d[:16])])
    with pytest.raises(nl.NetlinkError) as e:
        r.neigh('dump')
    assert e.value.code == errno.EPERM
    assert 'errno 1' in nl.error_text(e.value)
    # ENODEV from a get is "no such link" for get_link; anything else propagates
    r = reader(lambda d: [nlerror(split(d)[0][3], -errno.EACCES)])
    with pytest.raises(nl.NetlinkError) as e:
        nl.get_link(r, ifname='x')
    assert e.value.code == errno.EACCES


def test_error_of_another_sequence_is_ignored():
    def answer(data):
        seq = split(data)[0][3]
        return [nlerror(seq + 7, -errno.EPERM) + ifinfmsg(2, 'eth0', seq=seq)]

    got = reader(answer).link('get', index=2)
    assert [m.get('IFLA_IFNAME') for m in got] == ['eth0']


def test_other_calls_go_to_iproute_lazily():
    r = reader(lambda d: [])
    fake = FakeIPRoute()
    r._ipr = fake
    assert r.link('add', ifname='v0', kind='veth') == 'ipr.link'
    assert r.link('get', ifname='v0', match='x') == 'ipr.link'
    assert r.addr('add', index=1, address='10.0.0.1') == 'ipr.addr'
    assert r.neigh('dump', match='x') == 'ipr.neigh'
    assert r.fdb('append', ifindex=1) == 'ipr.fdb'
    assert r.get_netnsid() == 'ipr.get_netnsid'
    assert r.route('dump') == 'ipr.route'  # __getattr__
    with pytest.raises(AttributeError):
        r._private  # pylint: disable=pointless-statement
    assert r._sock.sent == []  # nothing went over the raw socket
    r.close()
    assert r._sock.closed and r._ipr is None and fake.calls[-1][0] == 'close'


# ---------------------------------------------------------------- batches
def acking(refuse=None, reverse=False):
    """Acknowledge every request; ``refuse``: {index in the whole batch: errno}."""
    state = {'count': 0}

    def answer(data):
        acks = []
        for dummy, mtype, flags, seq, body in split(data):
            code = -(refuse or {}).get(state['count'], 0)
            state['count'] += 1
            acks.append(nlerror(seq, code, struct.pack('=IHHII', 16 + len(body), mtype, flags, seq, 0)))
        if reverse:
            acks.reverse()
        # several acks per datagram, as a busy socket may deliver them
        return [b''.join(acks[i:i + 50]) for i in range(0, len(acks), 50)]
    return answer


def requests(n):
    return [nl.neigh_message('replace', 7, 9, state=0xc0, flags=2, dst='192.168.104.%d' % (i % 250 + 1),
                             lladdr='02:42:c0:a8:%02x:%02x' % (i // 256, i % 256), vni=42)
            for i in range(n)]


def test_batch_writes_256_per_write_each_acked():
    reqs = requests(600)
    r = reader(acking())
    r.batch(reqs)
    writes = [split(w) for w in r._sock.sent]
    assert [len(w) for w in writes] == [256, 256, 88]
    msgs = [m for w in writes for m in w]
    assert [m[3] for m in msgs] == list(range(1, 601))  # consecutive sequence numbers
    for (length, mtype, flags, dummy, body), (rtype, rflags, rbody) in zip(msgs, reqs):
        assert (mtype, body, length) == (rtype, rbody, 16 + len(rbody))
        assert flags == rflags | nl.NLM_F_REQUEST | nl.NLM_F_ACK
    r.batch(requests(3), window=2)
    assert [len(split(w)) for w in r._sock.sent[3:]] == [2, 1]
    assert split(r._sock.sent[-1])[0][3] == 603
    r.batch([])
    assert len(r._sock.sent) == 5


def test_batch_raises_the_first_refusal_after_reading_its_window():
    r = reader(acking(refuse={300: errno.EEXIST, 290: errno.EINVAL, 400: errno.ENOENT}, reverse=True))
    with pytest.raises(nl.BatchFailed) as e:
        r.batch(requests(600))
    assert e.value.index == 290  # the first refused one, though its ack came after 300's
    assert isinstance(e.value.error, nl.NetlinkError) and e.value.error.code == errno.EINVAL
    assert len(r._sock.sent) == 2  # the third window is not sent
    assert r._sock.queue == []  # the whole window's acks were read


def test_batch_failure_in_first_window_and_index_in_whole_list():
    r = reader(acking(refuse={0: errno.ENODEV}))
    with pytest.raises(nl.BatchFailed) as e:
        r.batch(requests(10), window=4)
    assert e.value.index == 0 and e.value.error.code == errno.ENODEV
    r = reader(acking(refuse={9: errno.EEXIST}))
    with pytest.raises(nl.BatchFailed) as e:
        r.batch(requests(10), window=4)
    assert e.value.index == 9 and 'File exists' in str(e.value)


# ------------------------------------------------ a real socket, read only
def test_raw_link_dump_equals_pyroute2_in_this_namespace():
    """Read only: dumps the links (and asks each by index and name) of this namespace."""
    try:
        r = nl.Rtnl(None)
    except OSError as e:  # pragma: no cover - no netlink here
        pytest.skip('no netlink socket: %s' % e)
    try:
        def dump():
            msgs = r._request(nl.RTM_GETLINK, nl.NLM_F_DUMP, struct.pack('=BxHiII', 0, 0, 0, 0, 0),
                              nl._parse_link, nl.RTM_NEWLINK)
            return sorted((m['index'], m.get('IFLA_IFNAME')) for m in msgs)

        before = dump()
        with nl.iproute_class()() as ipr:
            theirs = sorted((m['index'], m.get('IFLA_IFNAME')) for m in ipr.get_links())
            facts = dict((m['index'], nl.link_facts(ipr, m)) for m in ipr.get_links())
        if dump() != before:  # pragma: no cover - another process changed the links meanwhile
            pytest.skip('links changed during the test')
        assert before == theirs and before
        for index, name in before:
            mine = nl.link_facts(r, nl.get_link(r, index=index))
            assert mine == facts[index]
            assert nl.get_link(r, ifname=name)['index'] == index
        assert nl.get_link(r, ifname='nd-nosuchlink') is None
    finally:
        r.close()


# ------------------------------------------------------- datagram walking
def test_messages_walks_padded_messages():
    data = nlmsg(nl.RTM_NEWLINK, 7, b'\1\2\3') + nlmsg(nl.NLMSG_DONE, 7, b'\0' * 4)
    walked = list(nl._messages(data))
    assert [(kind, seq) for off, length, kind, seq in walked] == [
        (nl.RTM_NEWLINK, 7), (nl.NLMSG_DONE, 7)]
    assert walked[1][0] == 20  # 16 + 3, padded to 4


@pytest.mark.parametrize('data', [
    struct.pack('=IHHII', 8, nl.RTM_NEWLINK, 0, 1, 0),           # shorter than a header
    struct.pack('=IHHII', 64, nl.RTM_NEWLINK, 0, 1, 0) + b'\0',  # longer than the datagram
])
def test_messages_refuses_a_corrupt_datagram(data):
    with pytest.raises(nl.NetlinkError) as err:
        list(nl._messages(data))
    assert err.value.code == errno.EPROTO
