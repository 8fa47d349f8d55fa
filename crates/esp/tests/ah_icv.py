#!/usr/bin/env python3
"""An independent AH (RFC 4302) ICV computation for IPv4, used by the esp crate's tests.

Each input line is `ALGORITHM KEY_HEX PACKET_HEX` where PACKET is a whole IPv4 packet whose
protocol is AH (51). The script zeroes the mutable IPv4 fields (TOS, flags + fragment
offset, TTL, checksum) and the mutable options (every option but EOL 0, NOP 1, Security 130,
Extended Security 133, Commercial Security 134, Router Alert 148, SDMD 149; RFC 4302
Appendix A.1), zeroes the AH ICV field (its length from the Payload Len field), and prints
the truncated HMAC in hex, one line per input line. Only the Python standard library.
"""
import hashlib
import hmac
import sys

ALGORITHMS = {
    "hmac-md5-96": (hashlib.md5, 12),
    "hmac-sha1-96": (hashlib.sha1, 12),
    "hmac-sha2-256-128": (hashlib.sha256, 16),
    "hmac-sha2-256-96": (hashlib.sha256, 12),
    "hmac-sha2-384-192": (hashlib.sha384, 24),
    "hmac-sha2-512-256": (hashlib.sha512, 32),
}
IMMUTABLE_OPTIONS = {130, 133, 134, 148, 149}


def icv(algorithm, key, packet):
    digest, length = ALGORITHMS[algorithm]
    p = bytearray(packet)
    ihl = (p[0] & 0x0F) * 4
    assert p[0] >> 4 == 4 and p[9] == 51
    p[1] = 0
    p[6] = p[7] = 0
    p[8] = 0
    p[10] = p[11] = 0
    i = 20
    while i < ihl:
        kind = p[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        olen = p[i + 1]
        if kind not in IMMUTABLE_OPTIONS:
            p[i : i + olen] = bytes(olen)
        i += olen
    ah_len = (p[ihl + 1] + 2) * 4
    p[ihl + 12 : ihl + ah_len] = bytes(ah_len - 12)
    return hmac.new(key, bytes(p), digest).digest()[:length]


for line in sys.stdin:
    if not line.strip():
        continue
    algorithm, key, packet = line.split()
    print(icv(algorithm, bytes.fromhex(key), bytes.fromhex(packet)).hex())
