//! The only `unsafe` code in keysteward: thin wrappers over AWS-LC functions that the safe
//! `aws-lc-rs` API does not expose. Each wrapper takes and returns plain Rust values, checks
//! every return code, and frees what it allocates on every path.
#![allow(unsafe_code)] // This module exists to hold the FFI; every block has a SAFETY comment.

use aws_lc_sys as sys;

mod aes_cbc;
mod hmac_pads;
pub(crate) use aes_cbc::{AesCbcKey, AES_BLOCK};
pub(crate) use hmac_pads::HmacPads;

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

// ---------------------------------------------------------------------------------------------
// DER key parsing (PKCS#8, PKCS#1, SEC1, SubjectPublicKeyInfo)
// ---------------------------------------------------------------------------------------------

/// A `CBS` over `der`, for AWS-LC's parsers; `consumed_all` says whether a parse used every byte.
struct Cbs<'a> {
    cbs: sys::CBS,
    _der: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> Cbs<'a> {
    fn new(der: &'a [u8]) -> Self {
        let mut cbs = sys::CBS { data: core::ptr::null(), len: 0 };
        // SAFETY: der outlives the Cbs (lifetime 'a); CBS_init only stores pointer and length.
        unsafe { sys::CBS_init(&mut cbs, der.as_ptr(), der.len()) };
        Self { cbs, _der: core::marker::PhantomData }
    }

    fn consumed_all(&self) -> bool {
        // SAFETY: self.cbs was initialised by CBS_init.
        unsafe { sys::CBS_len(&self.cbs) == 0 }
    }
}

/// An owned `EVP_PKEY`, only used transiently while parsing.
struct EvpPkey(*mut sys::EVP_PKEY);

impl Drop for EvpPkey {
    fn drop(&mut self) {
        // SAFETY: owned pointer, freed exactly once (the key material is reference-counted, so
        // an RSA or EC_KEY taken out with get1 survives).
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

/// A key of a type keysteward signs or verifies with, as parsed from DER.
pub(crate) enum ParsedKey {
    /// An RSA key (private or public).
    Rsa(RsaKey),
    /// An EC key on some curve (private or public).
    Ec(EcKey),
}

/// Why a DER key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseFailure {
    /// Not valid DER of the expected structure, or rejected by AWS-LC's key checks.
    Malformed,
    /// Valid, but bytes follow the structure.
    TrailingData,
    /// Valid, but neither RSA nor EC.
    UnsupportedType,
}

fn parsed_from_evp(pkey: EvpPkey) -> Result<ParsedKey, ParseFailure> {
    // SAFETY: pkey.0 is a valid EVP_PKEY.
    let id = unsafe { sys::EVP_PKEY_id(pkey.0) };
    if id == sys::EVP_PKEY_RSA {
        // SAFETY: pkey is an RSA key; get1 returns a new reference that RsaKey owns.
        let rsa = unsafe { sys::EVP_PKEY_get1_RSA(pkey.0) };
        if rsa.is_null() {
            clear_errors();
            return Err(ParseFailure::Malformed);
        }
        Ok(ParsedKey::Rsa(RsaKey(rsa)))
    } else if id == sys::EVP_PKEY_EC {
        // SAFETY: pkey is an EC key; get1 returns a new reference that EcKey owns.
        let ec = unsafe { sys::EVP_PKEY_get1_EC_KEY(pkey.0) };
        if ec.is_null() {
            clear_errors();
            return Err(ParseFailure::Malformed);
        }
        Ok(ParsedKey::Ec(EcKey(ec)))
    } else {
        Err(ParseFailure::UnsupportedType)
    }
}

/// A PKCS#8 `PrivateKeyInfo` (RFC 5208) holding an RSA or EC private key.
pub(crate) fn parse_pkcs8_private_key(der: &[u8]) -> Result<ParsedKey, ParseFailure> {
    let mut cbs = Cbs::new(der);
    // SAFETY: cbs is initialised over der, which outlives the call; the result is null or a
    // new EVP_PKEY that the guard owns.
    let pkey = unsafe { sys::EVP_parse_private_key(&mut cbs.cbs) };
    if pkey.is_null() {
        clear_errors();
        return Err(ParseFailure::Malformed);
    }
    let pkey = EvpPkey(pkey);
    if !cbs.consumed_all() {
        return Err(ParseFailure::TrailingData);
    }
    parsed_from_evp(pkey)
}

/// A `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) holding an RSA or EC public key.
pub(crate) fn parse_spki(der: &[u8]) -> Result<ParsedKey, ParseFailure> {
    let mut cbs = Cbs::new(der);
    // SAFETY: as in parse_pkcs8_private_key.
    let pkey = unsafe { sys::EVP_parse_public_key(&mut cbs.cbs) };
    if pkey.is_null() {
        clear_errors();
        return Err(ParseFailure::Malformed);
    }
    let pkey = EvpPkey(pkey);
    if !cbs.consumed_all() {
        return Err(ParseFailure::TrailingData);
    }
    parsed_from_evp(pkey)
}

impl Bn {
    /// Takes the pointer out, for calls that take ownership on success.
    fn into_raw(self) -> *mut sys::BIGNUM {
        let ptr = self.0;
        core::mem::forget(self);
        ptr
    }
}

// ---------------------------------------------------------------------------------------------
// RSA
// ---------------------------------------------------------------------------------------------

/// An owned, reference-counted AWS-LC `RSA` key (public, or private with its public half).
pub(crate) struct RsaKey(*mut sys::RSA);

// SAFETY: AWS-LC documents RSA objects as safe to use from several threads for the operations
// that take a const key or lock internally (signing locks its blinding cache); this wrapper
// exposes only those operations and never mutates the key after construction.
unsafe impl Send for RsaKey {}
// SAFETY: see the Send impl.
unsafe impl Sync for RsaKey {}

impl Drop for RsaKey {
    fn drop(&mut self) {
        // SAFETY: owned reference, released exactly once; AWS-LC wipes the private components
        // as its allocator frees them.
        unsafe { sys::RSA_free(self.0) }
    }
}

fn rsa_from_ptr(ptr: *mut sys::RSA, cbs: &Cbs<'_>) -> Result<RsaKey, ParseFailure> {
    if ptr.is_null() {
        clear_errors();
        return Err(ParseFailure::Malformed);
    }
    let key = RsaKey(ptr);
    if !cbs.consumed_all() {
        return Err(ParseFailure::TrailingData);
    }
    Ok(key)
}

impl RsaKey {
    /// A PKCS#1 `RSAPrivateKey` (RFC 8017 Appendix A.1.2).
    pub(crate) fn parse_pkcs1_private(der: &[u8]) -> Result<Self, ParseFailure> {
        let mut cbs = Cbs::new(der);
        // SAFETY: cbs is initialised over der; the result is null or a new RSA we own.
        let ptr = unsafe { sys::RSA_parse_private_key(&mut cbs.cbs) };
        rsa_from_ptr(ptr, &cbs)
    }

    /// A PKCS#1 `RSAPublicKey` (RFC 8017 Appendix A.1.1).
    pub(crate) fn parse_pkcs1_public(der: &[u8]) -> Result<Self, ParseFailure> {
        let mut cbs = Cbs::new(der);
        // SAFETY: cbs is initialised over der; the result is null or a new RSA we own.
        let ptr = unsafe { sys::RSA_parse_public_key(&mut cbs.cbs) };
        rsa_from_ptr(ptr, &cbs)
    }

    /// A public key from its big-endian modulus and exponent. AWS-LC checks them (odd modulus,
    /// odd exponent > 1, sizes); the caller applies keysteward's own policy first.
    pub(crate) fn from_public_components(modulus: &[u8], exponent: &[u8]) -> Option<Self> {
        let n = Bn::from_be(modulus)?;
        let e = Bn::from_be(exponent)?;
        // SAFETY: n and e are valid BIGNUMs that RSA_new_public_key copies; it returns null or
        // a new RSA we own.
        let ptr = unsafe { sys::RSA_new_public_key(n.0, e.0) };
        if ptr.is_null() {
            return failed();
        }
        Some(Self(ptr))
    }

    /// Modulus length in bytes: the length of every signature.
    pub(crate) fn modulus_len(&self) -> usize {
        // SAFETY: self.0 is a valid RSA with a modulus (the parsers require one).
        unsafe { sys::RSA_size(self.0) as usize }
    }

    /// Modulus length in bits.
    pub(crate) fn modulus_bits(&self) -> usize {
        // SAFETY: as in modulus_len.
        unsafe { sys::RSA_bits(self.0) as usize }
    }

    /// The public exponent, big-endian without leading zeros (empty if the key lacks one).
    pub(crate) fn public_exponent(&self) -> Vec<u8> {
        // SAFETY: self.0 is valid; get0 returns a borrowed pointer (possibly null) that lives
        // as long as the key.
        let e = unsafe { sys::RSA_get0_e(self.0) };
        if e.is_null() {
            return Vec::new();
        }
        // SAFETY: e is a valid BIGNUM owned by the key.
        let len = unsafe { sys::BN_num_bytes(e) } as usize;
        let mut out = vec![0u8; len];
        // SAFETY: out has room for exactly BN_num_bytes(e) bytes.
        if unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), out.len(), e) } != 1 {
            clear_errors();
            return Vec::new();
        }
        out
    }

    /// True when the key holds a private exponent.
    pub(crate) fn has_private(&self) -> bool {
        // SAFETY: self.0 is valid; get0 returns a borrowed pointer or null.
        !unsafe { sys::RSA_get0_d(self.0) }.is_null()
    }

    /// The raw private-key operation `input^d mod n` (no padding): `input` and `out` must both
    /// be exactly the modulus length and `input` below the modulus.
    pub(crate) fn private_raw(&self, input: &[u8], out: &mut [u8]) -> Option<()> {
        let mut out_len = 0usize;
        // SAFETY: self.0 is valid (the caller checked has_private); out is writable for
        // out.len() bytes and input readable for input.len() bytes. RSA_sign_raw locks the
        // key's blinding state internally, so a shared reference suffices.
        let ok = unsafe {
            sys::RSA_sign_raw(
                self.0,
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                input.as_ptr(),
                input.len(),
                sys::RSA_NO_PADDING,
            )
        };
        if ok != 1 || out_len != out.len() {
            return failed();
        }
        Some(())
    }

    /// The raw public-key operation `input^e mod n` (no padding). AWS-LC refuses an input
    /// that is not exactly the modulus length or not below the modulus.
    pub(crate) fn public_raw(&self, input: &[u8], out: &mut [u8]) -> Option<()> {
        let mut out_len = 0usize;
        // SAFETY: as in private_raw; the public operation reads n and e only.
        let ok = unsafe {
            sys::RSA_verify_raw(
                self.0,
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                input.as_ptr(),
                input.len(),
                sys::RSA_NO_PADDING,
            )
        };
        if ok != 1 || out_len != out.len() {
            return failed();
        }
        Some(())
    }
}

// ---------------------------------------------------------------------------------------------
// EC keys and ECDSA over a given digest (RFC 4754 as IKEv1 uses it)
// ---------------------------------------------------------------------------------------------

/// An owned, reference-counted AWS-LC `EC_KEY` (public, or private with its public point).
pub(crate) struct EcKey(*mut sys::EC_KEY);

// SAFETY: AWS-LC EC_KEY objects are safe to share between threads for signing and verifying,
// which take the key as const; this wrapper never mutates the key after construction.
unsafe impl Send for EcKey {}
// SAFETY: see the Send impl.
unsafe impl Sync for EcKey {}

impl Drop for EcKey {
    fn drop(&mut self) {
        // SAFETY: owned reference, released exactly once; EC_KEY_free wipes the private scalar.
        unsafe { sys::EC_KEY_free(self.0) }
    }
}

/// The NIST curves keysteward uses for ECDSA (IKEv1 authentication methods 9, 10, 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NistCurve {
    P256,
    P384,
    P521,
}

impl EcKey {
    /// An RFC 5915 / SEC1 `ECPrivateKey` that names its curve.
    pub(crate) fn parse_sec1_private(der: &[u8]) -> Result<Self, ParseFailure> {
        let mut cbs = Cbs::new(der);
        // SAFETY: cbs is initialised over der; a null group makes AWS-LC take the curve from
        // the DER's parameters field; the result is null or a new EC_KEY we own.
        let ptr = unsafe { sys::EC_KEY_parse_private_key(&mut cbs.cbs, core::ptr::null()) };
        if ptr.is_null() {
            clear_errors();
            return Err(ParseFailure::Malformed);
        }
        let key = Self(ptr);
        if !cbs.consumed_all() {
            return Err(ParseFailure::TrailingData);
        }
        Ok(key)
    }

    /// The key's curve, if it is one keysteward supports.
    pub(crate) fn curve(&self) -> Option<NistCurve> {
        // SAFETY: self.0 is valid; the group pointer is borrowed from the key (null only for a
        // key without a group, which the parsers never return).
        let group = unsafe { sys::EC_KEY_get0_group(self.0) };
        if group.is_null() {
            return None;
        }
        // SAFETY: group is a valid EC_GROUP.
        match unsafe { sys::EC_GROUP_get_curve_name(group) } {
            sys::NID_X9_62_prime256v1 => Some(NistCurve::P256),
            sys::NID_secp384r1 => Some(NistCurve::P384),
            sys::NID_secp521r1 => Some(NistCurve::P521),
            _ => None,
        }
    }

    /// True when the key holds a private scalar.
    pub(crate) fn has_private(&self) -> bool {
        // SAFETY: self.0 is valid; get0 returns a borrowed pointer or null.
        !unsafe { sys::EC_KEY_get0_private_key(self.0) }.is_null()
    }

    /// ECDSA signature over `digest` (used as given, truncated to the order's length by
    /// AWS-LC as FIPS 186 says), written as `r || s`, each left-padded to half of `out`.
    pub(crate) fn sign_digest(&self, digest: &[u8], out: &mut [u8]) -> Option<()> {
        let half = out.len() / 2;
        // SAFETY: digest is readable for its length; self.0 is a valid private EC_KEY; the
        // result is null or a new ECDSA_SIG that the guard owns.
        let sig = EcdsaSig(unsafe { sys::ECDSA_do_sign(digest.as_ptr(), digest.len(), self.0) });
        if sig.0.is_null() {
            return failed();
        }
        let mut r: *const sys::BIGNUM = core::ptr::null();
        let mut s: *const sys::BIGNUM = core::ptr::null();
        // SAFETY: sig.0 is valid; r and s become borrowed pointers into it.
        unsafe { sys::ECDSA_SIG_get0(sig.0, &mut r, &mut s) };
        let (r_out, s_out) = out.split_at_mut(half);
        // SAFETY: r and s are valid BIGNUMs owned by sig, which outlives these calls; the
        // outputs are writable for their lengths and the call fails rather than truncates.
        let ok = unsafe {
            sys::BN_bn2bin_padded(r_out.as_mut_ptr(), r_out.len(), r) == 1
                && sys::BN_bn2bin_padded(s_out.as_mut_ptr(), s_out.len(), s) == 1
        };
        if !ok {
            return failed();
        }
        Some(())
    }

    /// True only when `(r, s)` is a valid ECDSA signature of `digest` under this key.
    /// `ECDSA_do_verify` returns 1 for valid and 0 for invalid or error; only an exact 1 is
    /// accepted (CVE-2013-2944 came from treating a negative return as success).
    pub(crate) fn verify_digest(&self, digest: &[u8], r: &[u8], s: &[u8]) -> bool {
        let (Some(r), Some(s)) = (Bn::from_be(r), Bn::from_be(s)) else {
            return false;
        };
        // SAFETY: ECDSA_SIG_new returns null or a new signature the guard owns.
        let sig = EcdsaSig(unsafe { sys::ECDSA_SIG_new() });
        if sig.0.is_null() {
            clear_errors();
            return false;
        }
        // SAFETY: sig.0 is valid; on success ECDSA_SIG_set0 takes ownership of both BIGNUMs,
        // so they are released from their guards only then.
        if unsafe { sys::ECDSA_SIG_set0(sig.0, r.0, s.0) } != 1 {
            clear_errors();
            return false;
        }
        let _ = (r.into_raw(), s.into_raw());
        // SAFETY: digest readable for its length; sig and key valid for the call.
        let verdict = unsafe { sys::ECDSA_do_verify(digest.as_ptr(), digest.len(), sig.0, self.0) };
        if verdict != 1 {
            clear_errors();
            return false;
        }
        true
    }
}

/// An owned `ECDSA_SIG`.
struct EcdsaSig(*mut sys::ECDSA_SIG);

impl Drop for EcdsaSig {
    fn drop(&mut self) {
        // SAFETY: owned pointer (or null, which ECDSA_SIG_free accepts), freed exactly once.
        unsafe { sys::ECDSA_SIG_free(self.0) }
    }
}
