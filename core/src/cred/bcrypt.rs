//! Reading and verifying bcrypt hashes (`htpasswd -B`), so that users can
//! move a password file over from nginx or Apache.
//!
//! Only verification: Portcullis never writes bcrypt, it upgrades such an
//! entry to argon2id on the next successful login. The cipher work (the
//! "expensive key schedule" of Blowfish) is the `blowfish` crate's; this
//! module parses the modular-crypt string and drives the schedule as the
//! bcrypt paper (Provos and Mazières, 1999) describes it.
//!
//! bcrypt reads at most 72 bytes of key. A longer password is not truncated
//! to fit: it never matches (the work is still done, so that the time does
//! not tell).

use blowfish::Blowfish;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::hash::HashRefusal;

/// The most key bytes bcrypt reads (the password and its terminating NUL).
pub(crate) const MAX_KEY_BYTES: usize = 72;

/// The smallest cost bcrypt defines.
pub(crate) const MIN_COST: u32 = 4;

/// The largest cost accepted: `htpasswd -B -C` allows up to 17. Each step
/// doubles the work of every login for that user, and anyone can trigger a
/// login, so a typo such as 31 would be a denial of service.
pub(crate) const MAX_COST: u32 = 17;

/// The alphabet of bcrypt's radix-64 encoding (not standard base64's).
const ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The text bcrypt encrypts 64 times with the expensive key schedule.
const MAGIC: &[u8; 24] = b"OrpheanBeholderScryDoubt";

/// A parsed `$2y$` or `$2b$` hash.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BcryptHash {
    pub(crate) cost: u32,
    salt: [u8; 16],
    digest: [u8; 23],
}

impl BcryptHash {
    /// Parses `$2y$NN$<22 salt chars><31 hash chars>`.
    pub(crate) fn parse(text: &str) -> Result<BcryptHash, HashRefusal> {
        let bytes = text.as_bytes();
        let variant = bytes.get(..4).ok_or(HashRefusal::BcryptMalformed)?;
        match variant {
            b"$2y$" | b"$2b$" => {}
            b"$2a$" | b"$2x$" | b"$2$" => return Err(HashRefusal::BcryptOldVariant),
            _ => return Err(HashRefusal::BcryptMalformed),
        }
        // "$2y$" "NN" "$" 22 + 31 characters.
        if bytes.len() != 7 + 22 + 31 || bytes[6] != b'$' {
            return Err(HashRefusal::BcryptMalformed);
        }
        let cost = match (bytes[4], bytes[5]) {
            (tens @ b'0'..=b'9', ones @ b'0'..=b'9') => {
                u32::from(tens - b'0') * 10 + u32::from(ones - b'0')
            }
            _ => return Err(HashRefusal::BcryptMalformed),
        };
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(HashRefusal::BcryptCost(cost));
        }
        let mut salt = [0u8; 16];
        decode_radix64(&bytes[7..29], &mut salt).ok_or(HashRefusal::BcryptMalformed)?;
        let mut digest = [0u8; 23];
        decode_radix64(&bytes[29..], &mut digest).ok_or(HashRefusal::BcryptMalformed)?;
        Ok(BcryptHash { cost, salt, digest })
    }

    /// Whether `password` matches. Costs 2^cost key schedules whatever the
    /// answer; the comparison is constant-time.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        // The key is the password and a terminating NUL, cut at 72 bytes
        // (a 72-byte password loses only the NUL, which is not truncation).
        let fits = password.len() <= MAX_KEY_BYTES;
        let mut key = Zeroizing::new([0u8; MAX_KEY_BYTES]);
        let used = password.len().min(MAX_KEY_BYTES);
        key[..used].copy_from_slice(&password[..used]);
        let key_len = (used + 1).min(MAX_KEY_BYTES);
        let computed = Zeroizing::new(bcrypt_raw(self.cost, &self.salt, &key[..key_len]));
        let same: bool = computed[..23].ct_eq(&self.digest).into();
        same && fits
    }
}

/// bcrypt's core: the expensive key schedule, then 64 encryptions of the
/// magic text. Returns all 24 bytes (the string form keeps 23).
fn bcrypt_raw(cost: u32, salt: &[u8; 16], key: &[u8]) -> [u8; 24] {
    let mut state = Blowfish::bc_init_state();
    state.salted_expand_key(salt, key);
    for _ in 0..(1u64 << cost) {
        state.bc_expand_key(key);
        state.bc_expand_key(salt);
    }
    let mut words = [0u32; 6];
    for (word, chunk) in words.iter_mut().zip(MAGIC.chunks_exact(4)) {
        *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for pair in words.chunks_exact_mut(2) {
        let mut block = [pair[0], pair[1]];
        for _ in 0..64 {
            block = state.bc_encrypt(block);
        }
        pair.copy_from_slice(&block);
    }
    let mut out = [0u8; 24];
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Decodes bcrypt's radix-64 text into exactly `out.len()` bytes, the bits
/// taken most significant first. Bits left over in the last character are
/// ignored, as the reference implementation does. `None` on a character
/// outside the alphabet or a length that does not fit.
fn decode_radix64(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != (out.len() * 8).div_ceil(6) {
        return None;
    }
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut written = 0;
    for &c in text {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 && written < out.len() {
            bits -= 8;
            out[written] = (acc >> bits) as u8;
            written += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (written == out.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made by Apache's `htpasswd -niB -C 4` (apache2-utils 2.4),
    /// the password fed on stdin.
    const HTPASSWD: &[(&str, &str)] = &[
        (
            "correct horse",
            "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
        ),
        (
            "pässwörd ✓",
            "$2y$04$r9EUutXIQBdkLebNPs9d/eIoMw/hnBYdkgjSLhB9Ymep1cnR.mFeC",
        ),
        (
            "a",
            "$2y$04$ljwzMAjWPqlilz4gyoU3YOnIN49KfkOCpAOeRvLMkgDqHCHfw3ulu",
        ),
        (
            // 71 bytes: the key is the password and its NUL.
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "$2y$04$TKPUUcZmQBgAwwSYJU5BNOe298Yswym3ckrOkBY.Ha8/D2/LpVy2u",
        ),
        (
            // 72 bytes: the key is exactly the password.
            "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
            "$2y$04$eelEsxYn0Sy2pHdRfFZmgOECFLln5JLHm3F3mH.vPC7jyDMqW4PKe",
        ),
        (
            "  spaces  ",
            "$2y$04$oUzAiDFN6bGoZntRf.U2sen8jWPCiFAPD2ZLNvODHaYOZk.XLxAam",
        ),
        (
            "correct horse",
            "$2y$05$acetXkOuhbdpIyTCx6PuSuQHtteiYuKdmmOtwoQutDLEquPeXJ8/.",
        ),
        (
            "",
            "$2y$04$Kq2iRanKzpg1GSxoxYv/S.GRkBc2gxwGLBOsEQcZBvzAbTdkFV5nK",
        ),
    ];

    #[test]
    fn hashes_from_htpasswd_verify_with_their_password_only() {
        for (password, hash) in HTPASSWD {
            let parsed = BcryptHash::parse(hash).expect(hash);
            assert!(parsed.verify(password.as_bytes()), "{password:?} {hash}");
            let mut wrong = password.as_bytes().to_vec();
            wrong.push(b'!');
            assert!(
                !parsed.verify(&wrong),
                "{password:?}! must not match {hash}"
            );
        }
    }

    #[test]
    fn the_2b_prefix_is_the_same_algorithm_as_2y() {
        let hash = HTPASSWD[0].1.replacen("$2y$", "$2b$", 1);
        assert!(BcryptHash::parse(&hash).unwrap().verify(b"correct horse"));
    }

    #[test]
    fn a_password_over_72_bytes_is_not_truncated_to_match() {
        // bcrypt would read only the first 72 bytes of this and match: a
        // truncation that the password file must not allow.
        let (password, hash) = HTPASSWD[4];
        let parsed = BcryptHash::parse(hash).unwrap();
        let longer = format!("{password}and more");
        assert!(!parsed.verify(longer.as_bytes()));
        assert!(parsed.verify(password.as_bytes()));
    }

    #[test]
    fn every_single_byte_change_to_the_password_fails() {
        let (password, hash) = HTPASSWD[0];
        let parsed = BcryptHash::parse(hash).unwrap();
        for i in 0..password.len() {
            let mut wrong = password.as_bytes().to_vec();
            wrong[i] ^= 0x01;
            assert!(!parsed.verify(&wrong), "byte {i}");
        }
        // bcrypt stops at a NUL in C implementations; here "abc\0def" is not
        // "abc".
        assert!(!parsed.verify(b"correct horse\0"));
    }

    #[test]
    fn malformed_and_old_variants_are_refused_with_their_reason() {
        let good = HTPASSWD[0].1;
        let cases: &[(&str, HashRefusal)] = &[
            (
                "$2a$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptOldVariant,
            ),
            (
                "$2x$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptOldVariant,
            ),
            (
                "$2y$03$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptCost(3),
            ),
            (
                "$2y$18$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptCost(18),
            ),
            (
                "$2y$4$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptMalformed,
            ),
            (
                "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDk",
                HashRefusal::BcryptMalformed,
            ),
            (
                "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDk+",
                HashRefusal::BcryptMalformed,
            ),
            (
                "$2y$0a$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO",
                HashRefusal::BcryptMalformed,
            ),
            (
                "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkOé",
                HashRefusal::BcryptMalformed,
            ),
        ];
        assert!(BcryptHash::parse(good).is_ok());
        for (text, reason) in cases {
            assert_eq!(
                BcryptHash::parse(text).err().as_ref(),
                Some(reason),
                "{text}"
            );
        }
    }

    #[test]
    fn radix64_decodes_most_significant_bits_first() {
        // "./" are 0 and 1: 000000 000001 -> 0000 0000 (0001 left over).
        let mut one = [0u8; 1];
        assert_eq!(decode_radix64(b"./", &mut one), Some(()));
        assert_eq!(one, [0]);
        // "99" is 63, 63: 11111111 (1111 left over).
        assert_eq!(decode_radix64(b"99", &mut one), Some(()));
        assert_eq!(one, [0xff]);
        let mut two = [0u8; 2];
        // 'B' = 3, 'C' = 4, 'D' = 5: 000011 000100 000101 -> 00001100 01000001.
        assert_eq!(decode_radix64(b"BCD", &mut two), Some(()));
        assert_eq!(two, [0x0c, 0x41]);
        assert_eq!(decode_radix64(b"BC", &mut two), None);
        assert_eq!(decode_radix64(b"B=D", &mut two), None);
    }
}
