//! The login and logout form bodies (`application/x-www-form-urlencoded`).
//!
//! ## Policy
//!
//! - Decoding follows the urlencoded spec: pairs split on `&`, name and
//!   value on the first `=`, `+` is a space, `%XX` is a byte, a `%` not
//!   followed by two hex digits stays a literal `%`, empty pairs are
//!   skipped. Names are decoded too.
//! - Every field the guard reads must be UTF-8, the password included
//!   ([`FormError::NotUtf8`], naming the field): the pages declare UTF-8, so
//!   anything else was not typed into them. (A lossy decoder such as the
//!   `form_urlencoded` crate's would silently turn such a password into a
//!   different one.)
//! - A field the guard reads may appear once ([`FormError::Duplicate`]); a
//!   missing one is reported by name ([`FormError::Missing`]). Fields the
//!   guard does not read are ignored (a submit button may add one).
//! - The username and the password are kept exactly: no trimming, no case
//!   or Unicode normalisation (the password file compares exactly). An
//!   empty username or password is not refused here; it simply fails to log
//!   in, like any other wrong pair.
//! - The password's length is not checked here: the portal refuses one
//!   over [`crate::cred::MAX_PASSWORD_BYTES`] before hashing
//!   ([`crate::cred::LoginFailure::PasswordTooLong`]), one rule in one
//!   place. The guard's body cap (8 KiB) bounds it meanwhile.
//! - The decoded password lives only in buffers that are wiped when
//!   dropped, and [`FormError`] never carries a value.

use std::fmt;

use percent_encoding::percent_decode;
use zeroize::Zeroizing;

use crate::cred::Password;

/// The media type of both forms.
pub const URLENCODED: &str = "application/x-www-form-urlencoded";

/// Why a form body was refused (the guard answers 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormError {
    /// A field the form needs is absent.
    Missing(&'static str),
    /// A field appears more than once.
    Duplicate(&'static str),
    /// A field's decoded value is not UTF-8.
    NotUtf8(&'static str),
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Missing(field) => write!(f, "the form has no {field:?} field"),
            FormError::Duplicate(field) => write!(f, "the form has more than one {field:?} field"),
            FormError::NotUtf8(field) => write!(f, "the form's {field:?} field is not UTF-8"),
        }
    }
}

impl std::error::Error for FormError {}

/// Whether a `Content-Type` value is the urlencoded form type (case
/// insensitive, parameters such as `charset=UTF-8` allowed).
#[must_use]
pub fn is_urlencoded(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default();
    media_type.trim().eq_ignore_ascii_case(URLENCODED)
}

/// One decoded name or value, in a buffer wiped when dropped. `+` becomes a
/// space and `%XX` a byte; a malformed `%` stays as it is.
fn decode(raw: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut plus_as_space = Zeroizing::new(raw.to_vec());
    for byte in plus_as_space.iter_mut().filter(|b| **b == b'+') {
        *byte = b' ';
    }
    // Decoding only shrinks, so the buffer is never reallocated (and no
    // unwiped copy is left behind).
    let mut decoded = Zeroizing::new(Vec::with_capacity(plus_as_space.len()));
    decoded.extend(percent_decode(&plus_as_space));
    decoded
}

/// The named fields of a form body, each taken at most once.
struct Fields<const N: usize> {
    names: [&'static str; N],
    values: [Option<Zeroizing<Vec<u8>>>; N],
}

impl<const N: usize> Fields<N> {
    fn parse(body: &[u8], names: [&'static str; N]) -> Result<Self, FormError> {
        let mut fields = Fields {
            names,
            values: std::array::from_fn(|_| None),
        };
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name);
            let Some(index) = names.iter().position(|n| n.as_bytes() == name.as_slice()) else {
                continue;
            };
            if fields.values[index].is_some() {
                return Err(FormError::Duplicate(names[index]));
            }
            fields.values[index] = Some(decode(value));
        }
        Ok(fields)
    }

    /// The raw bytes of field `index`, taken out of the form.
    fn take_bytes(&mut self, index: usize) -> Result<Zeroizing<Vec<u8>>, FormError> {
        self.values[index]
            .take()
            .ok_or(FormError::Missing(self.names[index]))
    }

    fn take_optional_text(&mut self, index: usize) -> Result<Option<String>, FormError> {
        match self.values[index].take() {
            None => Ok(None),
            Some(mut bytes) => String::from_utf8(std::mem::take(&mut *bytes))
                .map(Some)
                .map_err(|_| FormError::NotUtf8(self.names[index])),
        }
    }

    fn take_text(&mut self, index: usize) -> Result<String, FormError> {
        self.take_optional_text(index)?
            .ok_or(FormError::Missing(self.names[index]))
    }
}

/// A submitted login form (`POST /__login__`).
#[derive(Debug)]
pub struct LoginForm {
    /// The `username` field, exactly as typed.
    pub username: String,
    /// The `password` field, exactly as typed (UTF-8; `Debug` hides it).
    pub password: Password,
    /// The `csrf` field, to check with [`super::csrf::CsrfKey::verify`].
    pub csrf: String,
    /// The `return_to` field if present, *unchecked*: pass it through
    /// [`super::paths::safe_return_path`] before redirecting (absent means
    /// `/`).
    pub return_to: Option<String>,
}

impl LoginForm {
    /// Parses a login form body. Needs `username`, `password` and `csrf`;
    /// `return_to` is optional.
    pub fn parse(body: &[u8]) -> Result<LoginForm, FormError> {
        let mut fields = Fields::parse(body, ["username", "password", "csrf", "return_to"])?;
        // Missing fields first, in form order, then encodings: the error
        // names the first field a person would look at.
        for index in 0..3 {
            if fields.values[index].is_none() {
                return Err(FormError::Missing(fields.names[index]));
            }
        }
        let username = fields.take_text(0)?;
        let mut password = fields.take_bytes(1)?;
        if std::str::from_utf8(&password).is_err() {
            return Err(FormError::NotUtf8("password"));
        }
        let password = Password::new(std::mem::take(&mut *password));
        let csrf = fields.take_text(2)?;
        let return_to = fields.take_optional_text(3)?;
        Ok(LoginForm {
            username,
            password,
            csrf,
            return_to,
        })
    }
}

/// A submitted logout confirmation (`POST /__logout__`).
#[derive(Debug, PartialEq, Eq)]
pub struct LogoutForm {
    /// The `csrf` field.
    pub csrf: String,
}

impl LogoutForm {
    /// Parses a logout form body; it needs `csrf`.
    pub fn parse(body: &[u8]) -> Result<LogoutForm, FormError> {
        let mut fields = Fields::parse(body, ["csrf"])?;
        Ok(LogoutForm {
            csrf: fields.take_text(0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cred::MAX_PASSWORD_BYTES;
    use proptest::prelude::*;

    #[test]
    fn a_browser_login_form_parses() {
        let form = LoginForm::parse(
            b"csrf=tok_-en&return_to=%2Fadmin%3Fx%3D1&username=alice&password=s3cret",
        )
        .expect("a complete form");
        assert_eq!(form.username, "alice");
        assert_eq!(form.password.as_bytes(), b"s3cret");
        assert_eq!(form.csrf, "tok_-en");
        assert_eq!(form.return_to.as_deref(), Some("/admin?x=1"));
    }

    #[test]
    fn plus_and_escapes_decode_per_the_spec_and_nothing_is_trimmed() {
        let form = LoginForm::parse(b"username=+al%20ice+&password=+a+b%2B%25c%3D%26+&csrf=t")
            .expect("form");
        // Leading and trailing spaces stay: the password file compares
        // exactly, and so does the login.
        assert_eq!(form.username, " al ice ");
        assert_eq!(form.password.as_bytes(), b" a b+%c=& ");
    }

    #[test]
    fn unicode_passwords_are_not_normalised() {
        // "é" precomposed (U+00E9) and decomposed (e + U+0301) stay distinct.
        let composed = LoginForm::parse(b"username=u&password=%C3%A9&csrf=t").expect("form");
        let decomposed = LoginForm::parse(b"username=u&password=e%CC%81&csrf=t").expect("form");
        assert_eq!(composed.password.as_bytes(), "\u{e9}".as_bytes());
        assert_eq!(decomposed.password.as_bytes(), "e\u{301}".as_bytes());
    }

    #[test]
    fn a_malformed_escape_stays_literal() {
        let form = LoginForm::parse(b"username=a%&password=100%zz%4&csrf=t").expect("form");
        assert_eq!(form.username, "a%");
        assert_eq!(form.password.as_bytes(), b"100%zz%4");
    }

    #[test]
    fn missing_fields_are_reported_by_name() {
        assert_eq!(
            LoginForm::parse(b"password=p&csrf=t").unwrap_err(),
            FormError::Missing("username")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&csrf=t").unwrap_err(),
            FormError::Missing("password")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&password=p").unwrap_err(),
            FormError::Missing("csrf")
        );
        assert_eq!(
            LoginForm::parse(b"").unwrap_err(),
            FormError::Missing("username")
        );
        assert_eq!(
            LogoutForm::parse(b"").unwrap_err(),
            FormError::Missing("csrf")
        );
        // A name without '=' is present with an empty value.
        let form = LoginForm::parse(b"username&password&csrf").expect("form");
        assert_eq!(
            (
                form.username.as_str(),
                form.password.len(),
                form.csrf.as_str()
            ),
            ("", 0, "")
        );
        assert_eq!(form.return_to, None);
    }

    #[test]
    fn duplicated_fields_are_refused() {
        assert_eq!(
            LoginForm::parse(b"username=alice&username=bob&password=p&csrf=t").unwrap_err(),
            FormError::Duplicate("username")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&password=a&password=b&csrf=t").unwrap_err(),
            FormError::Duplicate("password")
        );
        // An encoded name is the same field.
        assert_eq!(
            LoginForm::parse(b"username=u&password=p&csrf=t&%63srf=u").unwrap_err(),
            FormError::Duplicate("csrf")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&password=p&csrf=t&return_to=/a&return_to=/b")
                .unwrap_err(),
            FormError::Duplicate("return_to")
        );
        assert_eq!(
            LogoutForm::parse(b"csrf=a&csrf=a").unwrap_err(),
            FormError::Duplicate("csrf")
        );
    }

    #[test]
    fn non_utf8_fields_are_refused_by_name() {
        assert_eq!(
            LoginForm::parse(b"username=%FF&password=p&csrf=t").unwrap_err(),
            FormError::NotUtf8("username")
        );
        // Latin-1 "é": not what the UTF-8 page would have sent.
        assert_eq!(
            LoginForm::parse(b"username=u&password=caf%E9&csrf=t").unwrap_err(),
            FormError::NotUtf8("password")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&password=p&csrf=%C3").unwrap_err(),
            FormError::NotUtf8("csrf")
        );
        assert_eq!(
            LoginForm::parse(b"username=u&password=p&csrf=t&return_to=%80").unwrap_err(),
            FormError::NotUtf8("return_to")
        );
    }

    #[test]
    fn unknown_fields_and_empty_pairs_are_ignored() {
        let form = LoginForm::parse(b"&&username=u&submit=Log+in&%FF=%FF&password=p&&csrf=t&")
            .expect("form");
        assert_eq!(
            (form.username.as_str(), form.password.as_bytes()),
            ("u", &b"p"[..])
        );
        assert_eq!(
            LogoutForm::parse(b"go=1&csrf=abc").expect("form"),
            LogoutForm { csrf: "abc".into() }
        );
    }

    #[test]
    fn an_overlong_password_is_left_for_the_portal_to_refuse() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let body = format!("username=u&password={long}&csrf=t");
        let form = LoginForm::parse(body.as_bytes()).expect("parsed; the portal refuses it");
        assert_eq!(form.password.len(), MAX_PASSWORD_BYTES + 1);
    }

    #[test]
    fn debug_hides_the_password() {
        let form = LoginForm::parse(b"username=alice&password=hunter2&csrf=t").expect("form");
        let shown = format!("{form:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("alice"),
            "{shown}"
        );
    }

    #[test]
    fn the_content_type_check_allows_parameters_and_any_case() {
        assert!(is_urlencoded("application/x-www-form-urlencoded"));
        assert!(is_urlencoded(
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8"
        ));
        assert!(is_urlencoded(
            " application/x-www-form-urlencoded ;charset=utf-8"
        ));
        assert!(!is_urlencoded("multipart/form-data; boundary=x"));
        assert!(!is_urlencoded("text/plain"));
        assert!(!is_urlencoded("application/x-www-form-urlencodedx"));
        assert!(!is_urlencoded(""));
    }

    /// Encodes bytes the way a browser does: unreserved kept, space as '+',
    /// everything else as %XX.
    fn browser_encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for &b in bytes {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn any_typed_username_and_password_round_trip_exactly(
            username in "\\PC{0,20}",
            password in "\\PC{0,40}",
        ) {
            let body = format!(
                "username={}&password={}&csrf=t",
                browser_encode(username.as_bytes()),
                browser_encode(password.as_bytes())
            );
            let form = LoginForm::parse(body.as_bytes()).expect("a browser's form parses");
            prop_assert_eq!(form.username, username);
            prop_assert_eq!(form.password.as_bytes(), password.as_bytes());
        }

        #[test]
        fn no_body_makes_the_parser_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = LoginForm::parse(&body);
            let _ = LogoutForm::parse(&body);
        }
    }
}
