//! Signing a webhook's body so its receiver can tell it came from
//! rollguard and refuse a replay: `X-Rollguard-Signature: sha256=HEX`, the
//! HMAC-SHA256 with the receiver's `secret` of `TIMESTAMP.BODY`, where
//! TIMESTAMP is `X-Rollguard-Timestamp` (Unix seconds). A receiver
//! recomputes it over the raw body, compares in constant time, and refuses
//! a timestamp more than a few minutes old. Pure.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Rollguard-Signature";
/// The header that carries the timestamp signed with the body.
pub const TIMESTAMP_HEADER: &str = "X-Rollguard-Timestamp";

/// `sha256=HEX` of `timestamp.body` keyed with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).map(|m| m.finalize().into_bytes().to_vec());
    format!("sha256={}", hex::encode(digest.unwrap_or_default()))
}

/// Whether `header` is the signature of `timestamp.body` with `secret`,
/// and `timestamp` is within `tolerance_s` of `now_s`. Compares in
/// constant time.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now_s: i64,
    tolerance_s: i64,
) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    now_s.abs_diff(timestamp) <= tolerance_s.unsigned_abs()
        && mac(secret, timestamp, body).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// The MAC of `timestamp.body`; `None` never happens (HMAC takes a key of
/// any length) but is not a panic either.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_or_age_is_refused() {
        // RFC 4231 test case 2 as a check of the MAC itself.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = sign(b"k3y", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert!(verify(
            b"k3y",
            1_700_000_000,
            b"{\"a\":1}",
            &s,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"k3y",
            1_700_000_000,
            b"{\"a\":2}",
            &s,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"other",
            1_700_000_000,
            b"{\"a\":1}",
            &s,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"k3y",
            1_700_000_001,
            b"{\"a\":1}",
            &s,
            1_700_000_100,
            300
        ));
        // A replay after the tolerance.
        assert!(!verify(
            b"k3y",
            1_700_000_000,
            b"{\"a\":1}",
            &s,
            1_700_001_000,
            300
        ));
        assert!(!verify(
            b"k3y",
            1_700_000_000,
            b"{}",
            "md5=00",
            1_700_000_000,
            300
        ));
    }
}
