//! The only `unsafe` code in keysteward: thin wrappers over AWS-LC functions that the safe
//! `aws-lc-rs` API does not expose. Each wrapper takes and returns plain Rust values, checks
//! every return code, and frees what it allocates on every path.
#![allow(unsafe_code)] // This module exists to hold the FFI; every block has a SAFETY comment.

use aws_lc_sys as sys;

/// The message digests the FFI layer can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Md {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

fn evp_md(md: Md) -> *const sys::EVP_MD {
    // SAFETY: these functions return pointers to static, immutable tables; they never fail.
    unsafe {
        match md {
            Md::Md5 => sys::EVP_md5(),
            Md::Sha1 => sys::EVP_sha1(),
            Md::Sha256 => sys::EVP_sha256(),
            Md::Sha384 => sys::EVP_sha384(),
            Md::Sha512 => sys::EVP_sha512(),
        }
    }
}

/// Largest digest any supported hash produces (SHA-512).
pub(crate) const MAX_MD_LEN: usize = 64;

/// Frees an `HMAC_CTX` when dropped, so an early return cannot leak it.
struct HmacCtx(*mut sys::HMAC_CTX);

impl Drop for HmacCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from HMAC_CTX_new and is freed exactly once; HMAC_CTX_free
        // also cleanses the key schedule it holds.
        unsafe { sys::HMAC_CTX_free(self.0) }
    }
}

/// HMAC over the concatenation of `parts`, written to `out`; returns the output length.
///
/// Returns `None` only if AWS-LC reports an internal failure (allocation).
pub(crate) fn hmac(md: Md, key: &[u8], parts: &[&[u8]], out: &mut [u8; MAX_MD_LEN]) -> Option<usize> {
    // SAFETY: HMAC_CTX_new returns null or a valid context, which HmacCtx frees.
    let ctx = HmacCtx(unsafe { sys::HMAC_CTX_new() });
    if ctx.0.is_null() {
        return None;
    }
    // SAFETY: ctx is valid; key points to key.len() readable bytes (a zero-length key may be
    // a dangling non-null pointer, which AWS-LC does not dereference).
    if unsafe { sys::HMAC_Init_ex(ctx.0, key.as_ptr().cast(), key.len(), evp_md(md), core::ptr::null_mut()) }
        != 1
    {
        return None;
    }
    for part in parts {
        // SAFETY: ctx is initialised; part points to part.len() readable bytes.
        if unsafe { sys::HMAC_Update(ctx.0, part.as_ptr(), part.len()) } != 1 {
            return None;
        }
    }
    let mut len: core::ffi::c_uint = 0;
    // SAFETY: out has MAX_MD_LEN bytes, at least EVP_MAX_MD_SIZE for the digests used here.
    if unsafe { sys::HMAC_Final(ctx.0, out.as_mut_ptr(), &mut len) } != 1 {
        return None;
    }
    Some(len as usize)
}

/// Frees an `EVP_MD_CTX` when dropped.
struct MdCtx(*mut sys::EVP_MD_CTX);

impl Drop for MdCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_MD_CTX_new and is freed exactly once.
        unsafe { sys::EVP_MD_CTX_free(self.0) }
    }
}

/// Plain hash over the concatenation of `parts`; returns the output length.
pub(crate) fn digest(md: Md, parts: &[&[u8]], out: &mut [u8; MAX_MD_LEN]) -> Option<usize> {
    // SAFETY: EVP_MD_CTX_new returns null or a valid context, which MdCtx frees.
    let ctx = MdCtx(unsafe { sys::EVP_MD_CTX_new() });
    if ctx.0.is_null() {
        return None;
    }
    // SAFETY: ctx is valid and evp_md returns a static table.
    if unsafe { sys::EVP_DigestInit_ex(ctx.0, evp_md(md), core::ptr::null_mut()) } != 1 {
        return None;
    }
    for part in parts {
        // SAFETY: ctx is initialised; part points to part.len() readable bytes.
        if unsafe { sys::EVP_DigestUpdate(ctx.0, part.as_ptr().cast(), part.len()) } != 1 {
            return None;
        }
    }
    let mut len: core::ffi::c_uint = 0;
    // SAFETY: out holds MAX_MD_LEN bytes, enough for every digest used here.
    if unsafe { sys::EVP_DigestFinal_ex(ctx.0, out.as_mut_ptr(), &mut len) } != 1 {
        return None;
    }
    Some(len as usize)
}

// ---------------------------------------------------------------------------------------------
// Error queue
// ---------------------------------------------------------------------------------------------

/// Empties AWS-LC's thread-local error queue after a failed call, so stale entries neither
/// accumulate in a long-running daemon nor get blamed on a later, unrelated call.
fn clear_errors() {
    // SAFETY: ERR_clear_error only touches the calling thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// `None`, after clearing the error queue: the common failure exit of the wrappers below.
fn failed<T>() -> Option<T> {
    clear_errors();
    None
}

// ---------------------------------------------------------------------------------------------
// Big numbers and modular exponentiation (MODP Diffie-Hellman, RFC 2409 §6, RFC 3526)
// ---------------------------------------------------------------------------------------------

/// An owned `BIGNUM`, freed with `BN_clear_free` (which wipes the limbs) because some hold DH
/// exponents or shared values.
struct Bn(*mut sys::BIGNUM);

impl Bn {
    fn new() -> Option<Self> {
        // SAFETY: BN_new returns null or a fresh BIGNUM that Bn now owns.
        let ptr = unsafe { sys::BN_new() };
        if ptr.is_null() {
            return failed();
        }
        Some(Self(ptr))
    }

    /// The unsigned big-endian integer in `bytes`.
    fn from_be(bytes: &[u8]) -> Option<Self> {
        // SAFETY: bytes points to bytes.len() readable bytes; a null `ret` asks BN_bin2bn for
        // a new BIGNUM, which Bn then owns.
        let ptr = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), core::ptr::null_mut()) };
        if ptr.is_null() {
            return failed();
        }
        Some(Self(ptr))
    }

    /// Writes the value big-endian, left-padded with zeros to exactly `out.len()` bytes.
    fn write_be_padded(&self, out: &mut [u8]) -> Option<()> {
        // SAFETY: self.0 is a valid BIGNUM; out is writable for out.len() bytes. The call fails
        // (returns 0) rather than truncates when the value does not fit.
        if unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), out.len(), self.0) } != 1 {
            return failed();
        }
        Some(())
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: the pointer is owned by this value and freed exactly once; BN_clear_free
        // zeroizes the limbs before freeing.
        unsafe { sys::BN_clear_free(self.0) }
    }
}

/// An owned `BN_CTX` (scratch space for big-number arithmetic).
struct BnCtx(*mut sys::BN_CTX);

impl BnCtx {
    fn new() -> Option<Self> {
        // SAFETY: BN_CTX_new returns null or a fresh context that BnCtx now owns.
        let ptr = unsafe { sys::BN_CTX_new() };
        if ptr.is_null() {
            return failed();
        }
        Some(Self(ptr))
    }
}

impl Drop for BnCtx {
    fn drop(&mut self) {
        // SAFETY: owned pointer, freed exactly once. BN_CTX_free frees the scratch BIGNUMs,
        // and AWS-LC's allocator wipes memory as it frees it.
        unsafe { sys::BN_CTX_free(self.0) }
    }
}

/// `base^exponent mod modulus`, all unsigned big-endian, with the exponent handled in
/// constant time (`BN_mod_exp_mont_consttime`). The result is written left-padded to exactly
/// `out.len()` bytes, which must be at least the modulus length.
///
/// The caller guarantees `base < modulus` and an odd modulus (every MODP prime is); AWS-LC
/// refuses the call otherwise, which shows here as `None`. Every intermediate `BIGNUM` is
/// wiped and freed before returning, on every path.
pub(crate) fn mod_exp_consttime(base: &[u8], exponent: &[u8], modulus: &[u8], out: &mut [u8]) -> Option<()> {
    let base = Bn::from_be(base)?;
    let exponent = Bn::from_be(exponent)?;
    let modulus = Bn::from_be(modulus)?;
    let result = Bn::new()?;
    let ctx = BnCtx::new()?;
    // SAFETY: every pointer is a valid BIGNUM/BN_CTX owned by a guard above that outlives the
    // call; a null Montgomery context asks AWS-LC to build (and free) one for the modulus.
    let ok = unsafe {
        sys::BN_mod_exp_mont_consttime(result.0, base.0, exponent.0, modulus.0, ctx.0, core::ptr::null())
    };
    if ok != 1 {
        return failed();
    }
    result.write_be_padded(out)
}

/// The RFC 3526 prime AWS-LC carries for `bits` (1536 … 8192), big-endian; used by the tests
/// to check the constants embedded in `dh.rs` against an independent copy.
#[cfg(test)]
pub(crate) fn rfc3526_prime(bits: usize) -> Option<Vec<u8>> {
    // SAFETY: each getter takes a null `ret` and returns a fresh BIGNUM (or null).
    let ptr = unsafe {
        match bits {
            1536 => sys::BN_get_rfc3526_prime_1536(core::ptr::null_mut()),
            2048 => sys::BN_get_rfc3526_prime_2048(core::ptr::null_mut()),
            3072 => sys::BN_get_rfc3526_prime_3072(core::ptr::null_mut()),
            4096 => sys::BN_get_rfc3526_prime_4096(core::ptr::null_mut()),
            6144 => sys::BN_get_rfc3526_prime_6144(core::ptr::null_mut()),
            8192 => sys::BN_get_rfc3526_prime_8192(core::ptr::null_mut()),
            _ => return None,
        }
    };
    if ptr.is_null() {
        return failed();
    }
    let bn = Bn(ptr);
    let mut out = vec![0u8; bits / 8];
    bn.write_be_padded(&mut out)?;
    Some(out)
}
