//! Every row of every algorithm table has an implementation here that takes the row's key
//! length and produces the row's output lengths: a row without one (or with a wrong length)
//! fails this test rather than a handshake.

use crypto::{
    algorithm, CbcCipher, CipherKey, DhPrivate, HashFunction, IntegrityKey, OsRandom, Phase1Cipher,
};

/// Key bytes that are no weak DES key and no 3DES key with equal halves.
fn key(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i * 7 + 0x23).unwrap_or(0)).collect()
}

#[test]
fn every_ike_cipher_row_has_a_cbc_implementation_of_its_key_and_block_length() {
    for row in algorithm::PHASE1_CIPHERS {
        let mut data = vec![0u8; 2 * row.block_len];
        let iv = vec![1u8; row.block_len];
        row.id.encrypt(&key(row.key_len), &iv, &mut data).unwrap();
        row.id.decrypt(&key(row.key_len), &iv, &mut data).unwrap();
        assert_eq!(data, vec![0u8; 2 * row.block_len], "{}", row.log_name);
        assert!(row.id.encrypt(&key(row.key_len + 1), &iv, &mut data).is_err());
    }
    assert_eq!(Phase1Cipher::ALL.len(), algorithm::PHASE1_CIPHERS.len());
}

#[test]
fn every_hash_row_has_an_implementation_of_its_output_length() {
    for row in algorithm::HASH_ALGORITHMS {
        assert_eq!(row.id.digest(&[b"abc"]).len(), row.output_len, "{}", row.display);
        assert_eq!(row.id.hmac(b"key", &[b"abc"]).len(), row.output_len, "{}", row.display);
    }
}

#[test]
fn every_dh_group_row_has_an_implementation_of_its_lengths() {
    for row in algorithm::DH_GROUPS {
        let a = DhPrivate::generate(row.id, &mut OsRandom).unwrap();
        let b = DhPrivate::generate(row.id, &mut OsRandom).unwrap();
        assert_eq!(a.public_value().len(), row.public_len, "{}", row.display);
        let shared = a.shared_secret(b.public_value()).unwrap();
        assert_eq!(shared.expose().len(), row.shared_len, "{}", row.display);
        assert_eq!(shared.expose(), b.shared_secret(a.public_value()).unwrap().expose());
    }
}

#[test]
fn every_esp_cipher_row_has_a_constructor_for_its_key_length() {
    for row in algorithm::ESP_CIPHERS {
        let cipher = CipherKey::new(row.id, &key(row.key_len)).unwrap();
        assert_eq!(cipher.cipher(), row.id);
        assert!(CipherKey::new(row.id, &key(row.key_len + 1)).is_err(), "{}", row.log_name);
    }
}

#[test]
fn every_integrity_row_has_a_constructor_for_its_key_length_and_icv_length() {
    for row in algorithm::INTEGRITY_ALGORITHMS {
        let integrity = IntegrityKey::new(row.id, &key(row.key_len)).unwrap();
        assert_eq!(integrity.compute(&[b"packet"]).unwrap().len(), row.icv_len, "{}", row.log_name);
        assert!(IntegrityKey::new(row.id, &key(row.key_len + 1)).is_err(), "{}", row.log_name);
    }
}
