# Regenerates the MODP primes embedded in src/dh.rs (RFC 2409 §6, RFC 3526) from their
# definition p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), checks that p and
# (p-1)/2 are probable primes, and prints each prime with its SHA-256 (used by the tests).
# Run: python3 gen_modp_primes.py  (writes primes.json in the current directory).
import hashlib, random
def arctan_inv(x, one):
    s = t = one // x; x2 = x*x; n = 1; sign = -1
    while t:
        t //= x2; n += 2
        s += sign * (t // n); sign = -sign
    return s
G = 8400
one = 1 << (G + 64)
pi_fixed = 16*arctan_inv(5, one) - 4*arctan_inv(239, one)  # pi * 2^(G+64)
def floor_pi_times_2pow(e):  # floor(2^e * pi)
    return pi_fixed >> (G + 64 - e)
def is_probable_prime(n, k=20):
    if n < 2: return False
    d = n-1; r = 0
    while d % 2 == 0: d//=2; r+=1
    rnd = random.Random(1)
    for _ in range(k):
        a = rnd.randrange(2, n-2); x = pow(a, d, n)
        if x in (1, n-1): continue
        for _ in range(r-1):
            x = pow(x, 2, n)
            if x == n-1: break
        else: return False
    return True
groups = {1:(768,149686),2:(1024,129093),5:(1536,741804),14:(2048,124476),15:(3072,1690314),16:(4096,240904),17:(6144,929484),18:(8192,4743158)}
out = {}
for g,(n,k) in groups.items():
    p = 2**n - 2**(n-64) - 1 + 2**64 * (floor_pi_times_2pow(n-130) + k)
    ok = is_probable_prime(p, 8) and is_probable_prime((p-1)//2, 8)
    h = p.to_bytes(n//8,'big').hex().upper()
    out[g] = h
    print(g, n, ok, p.bit_length(), h[:32], h[-16:], hashlib.sha256(bytes.fromhex(h)).hexdigest())
import json; json.dump(out, open('primes.json','w'))
