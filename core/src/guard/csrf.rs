//! CSRF tokens for the login and logout forms.
//!
//! A token is a MAC (keyed BLAKE2b-256, 32 bytes, base64url without
//! padding: 43 characters) over a *purpose* and a *binding*: for the login
//! form the binding is the pre-login cookie's value, for the logout form the
//! session's stored hash. A page from another site can make a browser post
//! a form, but it can neither read the cookie nor compute the MAC, so it
//! cannot send a token that matches the binding.
//!
//! The tokens are stateless: the same (binding, purpose) always gives the
//! same token, so nothing is stored per form and a page reloaded in another
//! tab still posts a valid token. A token made for one purpose never
//! verifies for the other. The key lives as long as the [`CsrfKey`] (the
//! guard's lifetime): a restart invalidates the forms on screen, which only
//! costs a reload.
//!
//! The pre-login cookie ([`new_pre_login_value`]) is set on the login page
//! when the browser has none; its name is [`pre_login_cookie_name`].

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, Update};
use blake2::Blake2bMac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::random::{random_array, CryptoRng};

/// The length of a token and of a pre-login cookie value: 32 bytes in
/// base64url without padding.
pub const TOKEN_LEN: usize = 43;

/// What a token is for; a token for one purpose never verifies for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrfPurpose {
    /// The login form (`POST /__login__`), bound to the pre-login cookie.
    Login,
    /// The logout form (`POST /__logout__`), bound to the session.
    Logout,
}

impl CsrfPurpose {
    /// The purpose's name, as it is fed to the MAC.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CsrfPurpose::Login => "login",
            CsrfPurpose::Logout => "logout",
        }
    }
}

/// The secret key behind the guard's CSRF tokens, drawn from the injected
/// generator. `Debug` never shows it; it is wiped when dropped.
pub struct CsrfKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

impl CsrfKey {
    /// A fresh key of 32 bytes from `rng`.
    pub fn new(rng: &mut dyn CryptoRng) -> Self {
        CsrfKey {
            key: Zeroizing::new(random_array(rng)),
        }
    }

    fn mac(&self, binding: &[u8], purpose: CsrfPurpose) -> [u8; 32] {
        // The personalisation string separates these MACs from every other
        // use of BLAKE2b in the guard even if a key were ever shared.
        let mut mac = Blake2bMac::<U32>::new_with_salt_and_personal(
            Some(&self.key[..]),
            &[],
            b"portcullis csrf",
        )
        .expect("a 32-byte key and a 15-byte persona are within BLAKE2b's limits");
        let purpose = purpose.as_str().as_bytes();
        // Length-prefixed, so that (purpose, binding) pairs never collide.
        mac.update(&[purpose.len() as u8]);
        mac.update(purpose);
        mac.update(binding);
        mac.finalize_fixed().into()
    }

    /// The token for `binding` and `purpose` (43 characters of base64url).
    #[must_use]
    pub fn token(&self, binding: &[u8], purpose: CsrfPurpose) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(binding, purpose))
    }

    /// Whether `token` is the token for `binding` and `purpose`. The MAC is
    /// compared in constant time. An empty binding (no pre-login cookie)
    /// never verifies, whatever the token.
    #[must_use]
    pub fn verify(&self, token: &str, binding: &[u8], purpose: CsrfPurpose) -> bool {
        if binding.is_empty() || token.len() != TOKEN_LEN {
            return false;
        }
        let mut presented = [0u8; 32];
        // The engine refuses non-canonical trailing bits, so two different
        // strings never decode to the same MAC.
        match URL_SAFE_NO_PAD.decode_slice(token, &mut presented) {
            Ok(32) => {}
            _ => return false,
        }
        self.mac(binding, purpose).ct_eq(&presented).into()
    }
}

/// The pre-login cookie's name: with the `__Host-` prefix over TLS (the
/// browser then insists on `Secure`, `Path=/` and no `Domain`); without it
/// on plain HTTP, where a `__Host-` cookie would be refused.
#[must_use]
pub fn pre_login_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-portcullis-pre"
    } else {
        "portcullis-pre"
    }
}

/// A new pre-login cookie value: 32 bytes from `rng` in base64url without
/// padding ([`TOKEN_LEN`] characters).
pub fn new_pre_login_value(rng: &mut dyn CryptoRng) -> String {
    URL_SAFE_NO_PAD.encode(random_array::<32>(rng))
}

/// Whether `value` has the shape of a pre-login cookie value (exactly 32
/// bytes of canonical base64url). A value the browser made up is refused
/// here, so a binding is always one of ours or at least as long.
#[must_use]
pub fn is_pre_login_value(value: &str) -> bool {
    let mut bytes = [0u8; 32];
    value.len() == TOKEN_LEN && matches!(URL_SAFE_NO_PAD.decode_slice(value, &mut bytes), Ok(32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;

    fn key() -> CsrfKey {
        CsrfKey::new(&mut TestRng::seeded(1))
    }

    const BROWSER: &[u8] = b"pre-login-cookie-of-the-browser-0123456789a";

    #[test]
    fn the_token_for_the_form_verifies() {
        let key = key();
        let token = key.token(BROWSER, CsrfPurpose::Login);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(key.verify(&token, BROWSER, CsrfPurpose::Login));
        // Stateless: the same form made twice carries the same token.
        assert_eq!(token, key.token(BROWSER, CsrfPurpose::Login));
    }

    #[test]
    fn a_token_for_another_purpose_or_binding_fails() {
        let key = key();
        let login = key.token(BROWSER, CsrfPurpose::Login);
        assert!(!key.verify(&login, BROWSER, CsrfPurpose::Logout));
        assert!(!key.verify(&login, b"another-browser", CsrfPurpose::Login));
        let logout = key.token(b"session-hash", CsrfPurpose::Logout);
        assert!(!key.verify(&logout, b"session-hash", CsrfPurpose::Login));
        assert!(key.verify(&logout, b"session-hash", CsrfPurpose::Logout));
    }

    #[test]
    fn another_guards_key_does_not_verify_our_tokens() {
        let ours = key();
        let theirs = CsrfKey::new(&mut TestRng::seeded(2));
        let token = theirs.token(BROWSER, CsrfPurpose::Login);
        assert!(theirs.verify(&token, BROWSER, CsrfPurpose::Login));
        assert!(!ours.verify(&token, BROWSER, CsrfPurpose::Login));
    }

    #[test]
    fn truncated_extended_empty_or_garbage_tokens_fail() {
        let key = key();
        let token = key.token(BROWSER, CsrfPurpose::Login);
        assert!(!key.verify("", BROWSER, CsrfPurpose::Login));
        assert!(!key.verify(&token[..TOKEN_LEN - 1], BROWSER, CsrfPurpose::Login));
        assert!(!key.verify(&token[..10], BROWSER, CsrfPurpose::Login));
        assert!(!key.verify(&format!("{token}A"), BROWSER, CsrfPurpose::Login));
        assert!(!key.verify(&format!("{token}="), BROWSER, CsrfPurpose::Login));
        assert!(!key.verify(&"!".repeat(TOKEN_LEN), BROWSER, CsrfPurpose::Login));
    }

    #[test]
    fn every_single_character_change_fails() {
        let key = key();
        let token = key.token(BROWSER, CsrfPurpose::Login);
        for i in 0..TOKEN_LEN {
            for replacement in ['A', 'f', '0', '-', '_'] {
                let mut forged: Vec<char> = token.chars().collect();
                if forged[i] == replacement {
                    continue;
                }
                forged[i] = replacement;
                let forged: String = forged.into_iter().collect();
                assert!(
                    !key.verify(&forged, BROWSER, CsrfPurpose::Login),
                    "{forged}"
                );
            }
        }
    }

    #[test]
    fn a_missing_binding_never_verifies() {
        let key = key();
        // Even the token the key itself makes for an empty binding: a
        // request without the pre-login cookie must always fail.
        let token = key.token(b"", CsrfPurpose::Login);
        assert!(!key.verify(&token, b"", CsrfPurpose::Login));
    }

    #[test]
    fn pre_login_values_are_random_32_bytes_in_base64url() {
        let mut rng = TestRng::seeded(3);
        let first = new_pre_login_value(&mut rng);
        let second = new_pre_login_value(&mut rng);
        assert_ne!(first, second);
        assert_eq!(URL_SAFE_NO_PAD.decode(&first).expect("base64url").len(), 32);
        assert!(is_pre_login_value(&first));
        // Replays from the seed: a test that fails can be rerun exactly.
        assert_eq!(first, new_pre_login_value(&mut TestRng::seeded(3)));
    }

    #[test]
    fn only_well_formed_pre_login_values_are_accepted() {
        let value = new_pre_login_value(&mut TestRng::seeded(4));
        assert!(is_pre_login_value(&value));
        assert!(!is_pre_login_value(""));
        assert!(!is_pre_login_value(&value[1..]));
        assert!(!is_pre_login_value(&format!("{value}A")));
        assert!(!is_pre_login_value(&format!("{}=", &value[..42])));
        assert!(!is_pre_login_value(&"a;".repeat(22)[..TOKEN_LEN]));
        // 43 characters whose last one carries bits past the 32 bytes.
        assert!(!is_pre_login_value(&format!("{}B", &"A".repeat(42))));
        assert!(is_pre_login_value(&format!("{}A", &"A".repeat(42))));
    }

    #[test]
    fn the_cookie_name_has_the_host_prefix_only_over_tls() {
        assert_eq!(pre_login_cookie_name(true), "__Host-portcullis-pre");
        assert_eq!(pre_login_cookie_name(false), "portcullis-pre");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(format!("{:?}", key()), "CsrfKey(<redacted>)");
    }
}
