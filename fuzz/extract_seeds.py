#!/usr/bin/env python3
"""Build the seed corpus for the `isakmp_parse` fuzz target (Python 3 stdlib only).

Two kinds of seeds are written to fuzz/corpus/isakmp_parse/ (or the directory given with -o):

* `seed-<pcap>-<frame>`: every ISAKMP message in vectors/*.pcap. The captures are classic libpcap,
  Ethernet / IPv4 / UDP. A UDP/500 payload is an ISAKMP message as-is. A UDP/4500 payload is
  an ISAKMP message after a 4-byte zero non-ESP marker (RFC 3948); ESP packets (first 4 bytes
  non-zero, i.e. an SPI) and 1-byte NAT-keepalives (0xff) are skipped. <frame> is 1-based, as
  in tshark and in the `pcap:N` comments of the vectors files.
* `seed-<vectors>-<tag>-plain`: the decrypted form of each encrypted message in
  vectors/*.vectors.txt (tags mm5, mm6, am3, qm1, qm2, qm3): the 28-byte header of
  `<tag>_message` with the E flag (byte 19, bit 0x01) cleared and the length field (bytes
  24..28) set to 28 + len(plaintext), followed by `<tag>_plaintext` including its padding. These
  let the fuzzer reach the payload-chain parser, which the encrypted messages never reach.

Usage: python3 fuzz/extract_seeds.py [-v VECTORS_DIR] [-o OUT_DIR]
The output is deterministic; re-running it rewrites the same files.
"""

import argparse
import glob
import os
import struct
import sys

ISAKMP_HDR_LEN = 28
TAGS = ("mm5", "mm6", "am3", "qm1", "qm2", "qm3")


def pcap_records(data):
    """Yield (frame_no, link_type, frame_bytes) for each record of a classic libpcap file."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):  # little-endian (usec / nsec)
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):  # big-endian (usec / nsec)
        endian = ">"
    else:
        raise ValueError("not a classic libpcap file (pcapng is not supported)")
    link_type = struct.unpack(endian + "I", data[20:24])[0]
    off, frame_no = 24, 0
    while off + 16 <= len(data):
        incl_len = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        off += 16
        frame_no += 1
        yield frame_no, link_type, data[off : off + incl_len]
        off += incl_len


def udp_payload(frame, link_type):
    """Return (src_port, dst_port, payload) of an Ethernet/IPv4/UDP frame, or None."""
    if link_type != 1:  # LINKTYPE_ETHERNET
        return None
    off = 12
    ethertype = struct.unpack("!H", frame[off : off + 2])[0]
    off += 2
    while ethertype in (0x8100, 0x88A8):  # skip 802.1Q / 802.1ad tags
        ethertype = struct.unpack("!H", frame[off + 2 : off + 4])[0]
        off += 4
    if ethertype != 0x0800 or len(frame) < off + 20:
        return None
    ip = frame[off:]
    ihl = (ip[0] & 0x0F) * 4
    total_len = struct.unpack("!H", ip[2:4])[0]
    frag = struct.unpack("!H", ip[6:8])[0]
    if ip[0] >> 4 != 4 or ip[9] != 17 or frag & 0x1FFF:  # IPv4, UDP, first fragment only
        return None
    ip = ip[:total_len]
    udp = ip[ihl:]
    if len(udp) < 8:
        return None
    sport, dport, ulen = struct.unpack("!HHH", udp[:6])
    return sport, dport, udp[8:ulen]


def isakmp_from_udp(sport, dport, payload):
    """Return the ISAKMP message carried in a UDP payload, or None (ESP, keepalive, other)."""
    if 500 in (sport, dport):
        return payload
    if 4500 in (sport, dport):
        if len(payload) < 4 or payload[:4] != b"\x00\x00\x00\x00":
            return None  # 1-byte NAT-keepalive, or ESP (non-zero SPI)
        return payload[4:]
    return None


def load_vectors(path):
    """Parse a NAME.vectors.txt file into {section: {key: value}} (values kept as text)."""
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            cur[key.strip()] = value.strip()
    return sections


def plain_seeds(vectors):
    """Yield (tag, cleartext_message) for each encrypted message of a vectors file."""
    for section in vectors.values():
        for tag in TAGS:
            if tag + "_message" not in section:
                continue
            msg = bytes.fromhex(section[tag + "_message"])
            plain = bytes.fromhex(section[tag + "_plaintext"])
            payload_len = int(section[tag + "_payload_bytes_num"])
            assert msg[19] & 0x01, f"{tag}: E flag not set in _message"
            assert payload_len <= len(plain), f"{tag}: _payload_bytes_num > plaintext"
            hdr = bytearray(msg[:ISAKMP_HDR_LEN])
            hdr[19] &= 0xFE  # clear the E (encryption) flag
            hdr[24:28] = struct.pack("!I", ISAKMP_HDR_LEN + len(plain))
            yield tag, bytes(hdr) + plain


def write(out_dir, name, data, written):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)
    written.append((name, len(data)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--vectors", default=os.path.join(here, "..", "vectors"))
    ap.add_argument("-o", "--out", default=os.path.join(here, "corpus", "isakmp_parse"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    written = []

    for pcap in sorted(glob.glob(os.path.join(args.vectors, "*.pcap"))):
        name = os.path.splitext(os.path.basename(pcap))[0]
        with open(pcap, "rb") as f:
            data = f.read()
        for frame_no, link_type, frame in pcap_records(data):
            udp = udp_payload(frame, link_type)
            msg = udp and isakmp_from_udp(*udp)
            if msg:
                write(args.out, f"seed-{name}-{frame_no}", msg, written)

    for path in sorted(glob.glob(os.path.join(args.vectors, "*.vectors.txt"))):
        name = os.path.basename(path)[: -len(".vectors.txt")]
        for tag, msg in plain_seeds(load_vectors(path)):
            write(args.out, f"seed-{name}-{tag}-plain", msg, written)

    for name, size in written:
        print(f"{size:6d}  {name}")
    print(f"{len(written)} seeds written to {os.path.relpath(args.out)}", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
