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
