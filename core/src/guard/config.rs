//! The guard's settings, with secure defaults.

use crate::session::SessionConfig;

use super::throttle::ThrottleConfig;

/// How the guard behaves. `Default` is the secure configuration for a site
/// served over TLS.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Whether browsers reach the site over HTTPS, whoever terminates TLS
    /// (behind a TLS-terminating proxy that speaks HTTP to Portcullis, leave
    /// it on: the browser still sees `https://`). On: the session cookie is
    /// `__Host-<cookie_name>` with `Secure`, and guard pages send HSTS. Off
    /// (browsers speak plain HTTP): the cookie is `<cookie_name>` without
    /// `Secure` and the `__Host-` prefix (browsers refuse both without
    /// TLS), no HSTS, and posts with an `http://` Origin are accepted too.
    /// Passwords and session cookies then travel in clear.
    ///
    /// Either way, a proxy in front must pass the browser's `Host` field on
    /// unchanged: login and logout posts are checked against
    /// `Origin: <scheme>://<Host>`, and a rewritten Host fails every post
    /// with 403.
    pub tls: bool,
    /// The session cookie's name, before any `__Host-` prefix. Default
    /// `portcullis`.
    pub cookie_name: String,
    /// The site's name, shown on the login page. Default `Portcullis`.
    pub site_name: String,
    /// Paths anonymous visitors may fetch: exact (`/favicon.ico`) or, when
    /// ending in `/`, a prefix (`/static/`). Matched on the normalised path.
    /// Default: none.
    pub public_paths: Vec<String>,
    /// HTTP Basic for API clients (twisted.web.guard's
    /// HTTPAuthSessionWrapper): `Some(realm)` turns it on. Default off.
    pub basic_realm: Option<String>,
    /// Largest login or logout form body accepted (413 above). Default
    /// 8 KiB.
    pub max_form_bytes: usize,
    /// Session lifetimes and store bounds.
    pub sessions: SessionConfig,
    /// Brute-force defence.
    pub throttle: ThrottleConfig,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            tls: true,
            cookie_name: "portcullis".to_string(),
            site_name: "Portcullis".to_string(),
            public_paths: Vec::new(),
            basic_realm: None,
            max_form_bytes: 8 * 1024,
            sessions: SessionConfig::default(),
            throttle: ThrottleConfig::default(),
        }
    }
}

impl GuardConfig {
    /// The session cookie's name as sent: `__Host-` prefixed over TLS.
    pub fn session_cookie(&self) -> String {
        self.prefixed(&self.cookie_name)
    }

    /// The pre-login cookie's name (it binds the login form's CSRF token).
    pub fn pre_login_cookie(&self) -> String {
        self.prefixed(&format!("{}-pre", self.cookie_name))
    }

    /// The trusted-device cookie's name (it keeps the real owner's way in
    /// while an account is throttled).
    pub fn device_cookie(&self) -> String {
        self.prefixed(&format!("{}-device", self.cookie_name))
    }

    fn prefixed(&self, name: &str) -> String {
        if self.tls {
            format!("__Host-{name}")
        } else {
            name.to_string()
        }
    }
}
