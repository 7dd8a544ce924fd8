//! Identifiers that look like the real ones.

use rand::Rng;
use rand::rngs::StdRng;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An 18-character Salesforce id: key prefix, a pod (`SM`), a sequence number, the case checksum.
pub fn salesforce(prefix: &str, seq: u64) -> String {
    let mut body = String::new();
    let mut n = seq;
    for _ in 0..10 {
        body.insert(0, BASE62[(n % 62) as usize] as char);
        n /= 62;
    }
    id18(&format!("{prefix}SM{body}"))
}

/// The 18-character form of a 15-character id.
pub fn id18(id15: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut out = id15.to_owned();
    for chunk in id15.as_bytes().chunks(5) {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | (1 << i));
        out.push(ALPHABET[bits] as char);
    }
    out
}

/// An org id from a position: `00D` + `SM` + sequence, 18 characters.
pub fn org(index: u64) -> String {
    salesforce("00D", index + 1)
}

/// `n` random characters from `[A-Za-z0-9]`.
pub fn random(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| BASE62[rng.random_range(0..62)] as char)
        .collect()
}

/// A random UUID (version 4 layout).
pub fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// An IAM role id: `AROA` and 17 upper-case letters and digits.
pub fn role_id(rng: &mut StdRng) -> String {
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..17)
        .map(|_| upper[rng.random_range(0..32)] as char)
        .collect();
    format!("AROA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn salesforce_ids() {
        let id = salesforce("7k2", 1);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("7k2SM000000000"));
        assert_eq!(id18("00D000000000062"), "00D000000000062EAA");
        assert_ne!(salesforce("0YL", 1), salesforce("0YL", 2));
    }

    #[test]
    fn random_ids_repeat_with_the_seed() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        assert_eq!(uuid(&mut a), uuid(&mut b));
        let u = uuid(&mut a);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(role_id(&mut a).len(), 21);
    }
}
