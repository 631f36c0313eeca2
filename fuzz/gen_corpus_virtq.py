#!/usr/bin/env python3
"""Write the seed corpus of fuzz-virtq (fuzz/corpus/fuzz-virtq/): well-formed rings and a full
driver register sequence, so the fuzzer starts from inputs that reach deep paths."""
import os
import struct
import sys

RAM = 0x10000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz-virtq')
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def desc(addr, length, flags, nxt=0):
    return struct.pack('<QIHH', RAM + addr, length, flags, nxt)


def rings(qsel, flags, descs, heads, extra=b'', desc_off=0x0, avail_off=0x200, used_off=0x300):
    ram = bytearray(0x800)
    table = b''.join(descs)
    ram[desc_off:desc_off + len(table)] = table
    avail = struct.pack('<HH', 0, len(heads)) + b''.join(struct.pack('<H', h) for h in heads)
    ram[avail_off:avail_off + len(avail)] = avail
    ram[0x600:0x600 + len(extra)] = extra
    hdr = bytes([0, qsel, flags]) + struct.pack('<HHH', desc_off, avail_off, used_off)
    return hdr + bytes(ram)


def regs(ops, ram=b'', mode=1):
    body = b''
    for write, off, val in ops:
        body += bytes([1 if write else 0, off & 0xff, off >> 8]) + struct.pack('<I', val)
    return bytes([mode, len(ops)]) + body + ram


def queue_ops(q, size, desc, avail, used):
    return [(1, 0x30, q), (0, 0x34, 0), (1, 0x38, size), (1, 0x80, RAM + desc), (1, 0x84, 0),
            (1, 0x90, RAM + avail), (1, 0x94, 0), (1, 0xa0, RAM + used), (1, 0xa4, 0),
            (1, 0x44, 1)]


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    # Two chains: out+in direct, and an indirect one whose table is at 0x600.
    table = desc(0x700, 8, F_NEXT, 1) + desc(0x780, 8, F_WRITE)
    seeds['direct-and-indirect'] = rings(4, 1, [
        desc(0x400, 16, F_NEXT, 1), desc(0x500, 64, F_WRITE),
        desc(0x600, len(table), F_INDIRECT)], [0, 2], extra=table)
    seeds['loop'] = rings(4, 0, [desc(0x400, 16, F_NEXT, 0)], [0])
    seeds['unpop'] = rings(3, 2, [desc(0x400, 16, F_WRITE), desc(0x410, 16, F_WRITE)], [0, 1])
    # Register sequence: reset, ACK|DRIVER, features (VERSION_1), FEATURES_OK, queue 0 with
    # 16 entries at desc 0x10000, avail 0x10200, used 0x10300, ready, DRIVER_OK, kick.
    ram = bytearray(0x800)
    ram[0:16] = desc(0x400, 32, F_WRITE)
    ram[0x200:0x206] = struct.pack('<HHH', 0, 1, 0)
    seeds['rng-driver'] = regs([
        (1, 0x70, 0), (1, 0x70, 3), (1, 0x24, 1), (1, 0x20, 1), (1, 0x24, 0), (1, 0x20, 0),
        (1, 0x70, 11), (0, 0x70, 0), (1, 0x30, 0), (0, 0x34, 0), (1, 0x38, 16),
        (1, 0x80, RAM), (1, 0x84, 0), (1, 0x90, RAM + 0x200), (1, 0x94, 0),
        (1, 0xa0, RAM + 0x300), (1, 0xa4, 0), (1, 0x44, 1), (1, 0x70, 15), (1, 0x50, 0),
        (0, 0x60, 0), (1, 0x64, 1), (1, 0x70, 0)], bytes(ram))
    # virtio-net: RX queue 0 with one buffer, TX queue 1 with header + 60-byte frame; the
    # RX path then receives the first bytes of RAM (length from RAM[0..1]).
    ram = bytearray(0x800)
    ram[0:2] = bytes([0, 60])
    ram[0x40:0x50] = desc(0x400, 1526, F_WRITE)
    ram[0x200:0x206] = struct.pack('<HHH', 0, 1, 0)
    ram[0x80:0x90] = desc(0x600, 12 + 60, 0)
    ram[0x280:0x286] = struct.pack('<HHH', 0, 1, 0)
    ram[0x60c:0x612] = b'\xff' * 6
    net_ops = [(1, 0x70, 0), (1, 0x70, 3), (1, 0x24, 1), (1, 0x20, 1), (1, 0x24, 0),
               (1, 0x20, 1 << 5), (1, 0x70, 11)]
    net_ops += queue_ops(0, 4, 0x40, 0x200, 0x300) + queue_ops(1, 4, 0x80, 0x280, 0x380)
    net_ops += [(1, 0x70, 15), (1, 0x50, 1), (1, 0x50, 0), (0, 0x100, 0), (0, 0x104, 0)]
    seeds['net-driver'] = regs(net_ops, bytes(ram), mode=2)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
