//! AES-CBC keyed for one direction, as AWS-LC's bare `AES_KEY` (244 bytes): the ESP SA of one
//! direction keeps the one key schedule it uses. aws-lc-rs's `EncryptingKey` and
//! `DecryptingKey` each hold both schedules (504 bytes), whichever direction they are for
//! (issue 16: memory per SA). The same `AES_cbc_encrypt` that aws-lc-rs calls does the work.
#![allow(unsafe_code)] // Part of the FFI module; every block has a SAFETY comment.

use aws_lc_sys as sys;

/// AES block and IV length.
pub(crate) const AES_BLOCK: usize = 16;

/// One AES key schedule, for encryption (`ENCRYPT`) or decryption, zeroized on drop. The
/// direction is in the type: a schedule cannot be used the other way, and the key is one
/// pointer wide.
pub(crate) struct AesCbcKey<const ENCRYPT: bool> {
    schedule: Box<sys::AES_KEY>,
}

impl<const ENCRYPT: bool> AesCbcKey<ENCRYPT> {
    /// Schedules a 16-, 24- or 32-byte `key`; `None` for another length.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        if ![16, 24, 32].contains(&key.len()) {
            return None;
        }
        // SAFETY: AES_KEY is a C struct of integers, for which all zeroes is a valid value.
        let mut schedule: Box<sys::AES_KEY> = Box::new(unsafe { core::mem::zeroed() });
        let bits = (key.len() * 8) as core::ffi::c_uint;
        // SAFETY: key points to key.len() readable bytes, bits matches that length, and the
        // schedule is a valid, writable AES_KEY.
        let status = unsafe {
            if ENCRYPT {
                sys::AES_set_encrypt_key(key.as_ptr(), bits, &mut *schedule)
            } else {
                sys::AES_set_decrypt_key(key.as_ptr(), bits, &mut *schedule)
            }
        };
        let key = Self { schedule };
        (status == 0).then_some(key)
    }

    /// Encrypts or decrypts (as scheduled) `data`, a whole number of blocks, in place in CBC
    /// mode from `iv`; `None` when `data` is not whole blocks.
    pub(crate) fn apply(&self, iv: &[u8; AES_BLOCK], data: &mut [u8]) -> Option<()> {
        if !data.len().is_multiple_of(AES_BLOCK) {
            return None;
        }
        let mut ivec = *iv;
        let mode = if ENCRYPT { sys::AES_ENCRYPT } else { sys::AES_DECRYPT };
        // SAFETY: data is data.len() readable and writable bytes, a whole number of blocks
        // (AES_cbc_encrypt works in place, as aws-lc-rs uses it); the schedule was set up by
        // `new` for this direction; ivec is a writable 16-byte IV.
        let inout = data.as_mut_ptr();
        unsafe { sys::AES_cbc_encrypt(inout, inout, data.len(), &*self.schedule, ivec.as_mut_ptr(), mode) };
        Some(())
    }
}

impl<const ENCRYPT: bool> Drop for AesCbcKey<ENCRYPT> {
    fn drop(&mut self) {
        // SAFETY: AES_KEY is a plain-old-data C struct (integers, no pointers, no Drop), for
        // which all zeroes is a valid value.
        unsafe { zeroize::zeroize_flat_type(&mut *self.schedule) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::cipher::{
        DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128,
        AES_192, AES_256,
    };
    use aws_lc_rs::iv::FixedLength;

    /// Against aws-lc-rs's CBC (its keys, its API) for every key length and several lengths.
    #[test]
    fn agrees_with_aws_lc_rs_cbc() {
        for (algorithm, len) in [(&AES_128, 16), (&AES_192, 24), (&AES_256, 32)] {
            let key: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let iv: [u8; 16] = core::array::from_fn(|i| (i * 7) as u8);
            let ours_enc = AesCbcKey::<true>::new(&key).unwrap();
            let ours_dec = AesCbcKey::<false>::new(&key).unwrap();
            for blocks in [1, 2, 7, 88] {
                let plain: Vec<u8> = (0..blocks * 16).map(|i| (i * 31 + 5) as u8).collect();
                let mut expected = plain.clone();
                let theirs = EncryptingKey::cbc(UnboundCipherKey::new(algorithm, &key).unwrap()).unwrap();
                theirs
                    .less_safe_encrypt(&mut expected, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .unwrap();
                let mut data = plain.clone();
                ours_enc.apply(&iv, &mut data).unwrap();
                assert_eq!(data, expected, "{len}-byte key, {blocks} blocks");
                ours_dec.apply(&iv, &mut data).unwrap();
                assert_eq!(data, plain);
                let theirs = DecryptingKey::cbc(UnboundCipherKey::new(algorithm, &key).unwrap()).unwrap();
                let mut back = expected.clone();
                theirs.decrypt(&mut back, DecryptionContext::Iv128(FixedLength::from(iv))).unwrap();
                assert_eq!(back, plain);
            }
        }
        assert!(AesCbcKey::<true>::new(&[0; 20]).is_none());
        assert!(AesCbcKey::<true>::new(&[0; 16]).unwrap().apply(&[0; 16], &mut [0; 15]).is_none());
        assert_eq!(size_of::<Option<AesCbcKey<false>>>(), 8);
    }
}
