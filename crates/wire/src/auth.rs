//! Password scrambles for `mysql_native_password` and `caching_sha2_password`.
//!
//! The server sends a 20-byte random *scramble* (nonce) in its greeting or in
//! an AuthSwitchRequest. The client never sends the password, only a proof:
//!
//! ```text
//! native:       SHA1(pw)   XOR SHA1(scramble ++ SHA1(SHA1(pw)))
//! caching_sha2: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ++ scramble)
//! ```
//!
//! An empty password is sent as an empty response (some clients send a single
//! NUL byte, which we treat the same). The verifiers here recompute the proof
//! from the plaintext password and compare in constant time.

use rand::Rng;
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Length of the scramble we send.
pub const SCRAMBLE_LEN: usize = 20;

/// A fresh scramble: 20 bytes in 1..=127, avoiding NUL and `$` (as MySQL does),
/// so it survives NUL-terminated parsing on the client.
pub(crate) fn new_scramble() -> [u8; SCRAMBLE_LEN] {
    let mut rng = rand::thread_rng();
    let mut s = [0u8; SCRAMBLE_LEN];
    for b in s.iter_mut() {
        let mut v = rng.gen_range(1u8..=127);
        if v == b'$' {
            v += 1;
        }
        *b = v;
    }
    s
}

/// At most the first 20 bytes (clients may echo the trailing NUL).
fn nonce(scramble: &[u8]) -> &[u8] {
    &scramble[..scramble.len().min(SCRAMBLE_LEN)]
}

/// An empty response or a lone NUL both mean "no password".
pub(crate) fn normalize_response(r: &[u8]) -> &[u8] {
    if r == [0] {
        &[]
    } else {
        r
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Client side of `mysql_native_password` (empty password → empty response).
pub fn scramble_native_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(nonce(scramble));
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// Check a `mysql_native_password` response against a plaintext password.
/// An empty password matches only an empty response and vice versa.
pub fn verify_native_password(password: &str, scramble: &[u8], response: &[u8]) -> bool {
    let response = normalize_response(response);
    if password.is_empty() || response.is_empty() {
        return password.is_empty() && response.is_empty();
    }
    ct_eq(&scramble_native_password(password, scramble), response)
}

/// `SHA1(SHA1(password))`, what MySQL stores for native-password accounts
/// (hex-encoded after a `*` in `mysql.user.authentication_string`).
pub fn native_password_hash(password: &str) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password.as_bytes())).into()
}

/// Check a `mysql_native_password` response against a stored
/// [`native_password_hash`], without knowing the plaintext.
pub fn verify_native_password_hash(hash: &[u8; 20], scramble: &[u8], response: &[u8]) -> bool {
    let response = normalize_response(response);
    if response.len() != 20 {
        return false;
    }
    let mut h = Sha1::new();
    h.update(nonce(scramble));
    h.update(hash);
    let mix = h.finalize();
    let stage1: Vec<u8> = response
        .iter()
        .zip(mix.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    ct_eq(&Sha1::digest(&stage1), hash)
}

/// Client side of `caching_sha2_password`'s fast path (empty password → empty).
pub fn scramble_caching_sha2_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = Sha256::digest(password.as_bytes());
    let p2 = Sha256::digest(p1);
    let mut h = Sha256::new();
    h.update(p2);
    h.update(nonce(scramble));
    let p3 = h.finalize();
    p1.iter().zip(p3.iter()).map(|(a, b)| a ^ b).collect()
}

/// Check a `caching_sha2_password` fast-path response against a plaintext
/// password. An empty password matches only an empty response and vice versa.
pub fn verify_caching_sha2_password(password: &str, scramble: &[u8], response: &[u8]) -> bool {
    let response = normalize_response(response);
    if password.is_empty() || response.is_empty() {
        return password.is_empty() && response.is_empty();
    }
    ct_eq(
        &scramble_caching_sha2_password(password, scramble),
        response,
    )
}

/// `SHA256(SHA256(password))`: enough to check a `caching_sha2_password` fast-path proof
/// without the plaintext (see [`verify_caching_sha2_password_hash`]).
pub fn caching_sha2_password_hash(password: &str) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password.as_bytes())).into()
}

/// Check a `caching_sha2_password` fast-path response against a stored
/// [`caching_sha2_password_hash`]: the proof XOR `SHA256(hash ++ scramble)` gives `SHA256(pw)`,
/// whose own SHA-256 must be the hash.
pub fn verify_caching_sha2_password_hash(hash: &[u8; 32], scramble: &[u8], response: &[u8]) -> bool {
    let response = normalize_response(response);
    if response.len() != 32 {
        return false;
    }
    let mut h = Sha256::new();
    h.update(hash);
    h.update(nonce(scramble));
    let mix = h.finalize();
    let stage1: Vec<u8> = response.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
    ct_eq(&Sha256::digest(&stage1), hash)
}

/// Verify `response` for whichever of the two built-in plugins `plugin` names
/// (false for any other plugin).
pub fn verify_password(plugin: &str, password: &str, scramble: &[u8], response: &[u8]) -> bool {
    match plugin {
        crate::consts::plugins::NATIVE_PASSWORD => {
            verify_native_password(password, scramble, response)
        }
        crate::consts::plugins::CACHING_SHA2_PASSWORD => {
            verify_caching_sha2_password(password, scramble, response)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrambles_have_no_nul() {
        for _ in 0..200 {
            let s = new_scramble();
            assert!(s.iter().all(|&b| b != 0 && b != b'$' && b < 128));
        }
    }

    #[test]
    fn native_round_trip() {
        let s = new_scramble();
        let r = scramble_native_password("secret", &s);
        assert_eq!(r.len(), 20);
        assert!(verify_native_password("secret", &s, &r));
        assert!(!verify_native_password("Secret", &s, &r));
        assert!(!verify_native_password("secret", &s, &[]));
        assert!(verify_native_password("", &s, &[]));
        assert!(verify_native_password("", &s, &[0]));
        assert!(!verify_native_password("", &s, &r));
        let mut with_nul = s.to_vec();
        with_nul.push(0);
        assert!(verify_native_password("secret", &with_nul, &r));
        assert!(verify_native_password_hash(
            &native_password_hash("secret"),
            &s,
            &r
        ));
        assert!(!verify_native_password_hash(
            &native_password_hash("other"),
            &s,
            &r
        ));
    }

    #[test]
    fn native_known_vector() {
        // SHA1(SHA1("password")) is the well-known 2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19.
        let h = native_password_hash("password");
        assert_eq!(h[..4], [0x24, 0x70, 0xc0, 0xc0]);
    }

    #[test]
    fn sha2_round_trip() {
        let s = new_scramble();
        let r = scramble_caching_sha2_password("pässword", &s);
        assert_eq!(r.len(), 32);
        assert!(verify_caching_sha2_password("pässword", &s, &r));
        assert!(verify_caching_sha2_password_hash(&caching_sha2_password_hash("pässword"), &s, &r));
        assert!(!verify_caching_sha2_password_hash(&caching_sha2_password_hash("password"), &s, &r));
        assert!(!verify_caching_sha2_password("password", &s, &r));
        assert!(verify_caching_sha2_password("", &s, &[]));
        assert!(!verify_caching_sha2_password("x", &s, &[]));
        assert!(verify_password("caching_sha2_password", "pässword", &s, &r));
        assert!(!verify_password(
            "mysql_native_password",
            "pässword",
            &s,
            &r
        ));
    }
}
