"""Kernel CPU per datagram of raw ESP against a packet socket (issue 16, scripts/bench-send).

One send(2) per datagram from Python for each way, so the system-call entry and Python's own
work are alike in every row, and the kernel time (stime, os.times) per datagram is compared:
- raw ESP: an IPv4 raw socket of protocol 50, the kernel routes and writes the IPv4 header;
- AF_PACKET: the whole Ethernet frame built by us (next-hop MAC, IPv4 header with checksum),
  sent on the device, through the qdisc or with PACKET_QDISC_BYPASS.
Run inside bench-send's namespace: device v0, 198.51.100.1 -> 198.51.100.2 (MAC 02:00:00:00:00:02).
usage: send_packet_cost.py DATAGRAMS SIZE
"""
import os
import socket
import struct
import sys

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 400000
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1436
SOL_PACKET, PACKET_QDISC_BYPASS = 263, 20
esp = b"\x5a" * SIZE


def ipv4_header(payload_len):
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0x4000, 64, 50, 0,
                                   socket.inet_aton("198.51.100.1"), socket.inet_aton("198.51.100.2")))
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(header)


def measure(name, send):
    start = os.times()
    for _ in range(COUNT):
        send()
    end = os.times()
    kernel = (end.system - start.system) / COUNT * 1e9
    user = (end.user - start.user) / COUNT * 1e9
    print(f"| {name:<40} | {kernel:>5.0f} ns | {user:>5.0f} ns |")


raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
to = ("198.51.100.2", 0)
measure("raw ESP, one sendto each", lambda: raw.sendto(esp, to))

source_mac = bytes.fromhex(open("/sys/class/net/v0/address").read().strip().replace(":", ""))
frame = bytes.fromhex("020000000002") + source_mac + b"\x08\x00" + ipv4_header(SIZE) + esp
for bypass in (False, True):
    packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    packet.bind(("v0", 0))
    packet.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if bypass:
        packet.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    name = "AF_PACKET frame, one send each" + (", QDISC_BYPASS" if bypass else "")
    measure(name, lambda: packet.send(frame))
