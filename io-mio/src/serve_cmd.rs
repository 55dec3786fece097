//! `portcullis serve` and `portcullis check-config`: load what the settings
//! name, report it, and run the server.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use portcullis_core::cred::{hash_password, HashParams, PasswordFile};
use portcullis_core::random::CryptoRng;

use crate::config::{Settings, TlsSource, UsersSource};
use crate::os_random::os_rng;
use crate::passwd_store::PasswdStore;
use crate::server::log;
use crate::server::{Prepared, Server, Site};
use crate::static_files::StaticSite;
use crate::tls;

/// The demo user's name.
pub const DEMO_USER: &str = "fred";

/// Everything loaded, plus what the start-up summary shows.
pub struct Loaded {
    /// Ready for [`Server::bind`].
    pub prepared: Prepared,
    /// The demo user's fresh password (demo mode only).
    pub demo_password: Option<String>,
    /// Summary lines about what was loaded.
    pub summary: Vec<String>,
}

/// Loads the certificate, the users and the site the settings name. The
/// error says which setting and what is wrong.
pub fn load(settings: &Settings) -> Result<Loaded, String> {
    let mut summary = Vec::new();
    let tls = match &settings.tls {
        None => None,
        Some(TlsSource::Files { cert, key }) => {
            let setup = tls::from_pem_files(cert, key).map_err(|e| e.to_string())?;
            summary.push(format!(
                "certificate {} ({}), {}",
                cert.display(),
                setup.names.join(", "),
                setup.fingerprint
            ));
            summary.extend(setup.warnings.iter().map(|w| format!("WARNING: {w}")));
            Some(setup)
        }
        Some(TlsSource::SelfSigned) => {
            let setup = tls::self_signed().map_err(|e| e.to_string())?;
            summary.push(format!(
                "self-signed certificate for {}, {}",
                setup.names.join(", "),
                setup.fingerprint
            ));
            Some(setup)
        }
    };
    let mut demo_password = None;
    let (users, users_path) = match &settings.users {
        UsersSource::File(path) => {
            let file = PasswdStore::new(path)
                .load()
                .map_err(|e| format!("users: {e}"))?;
            if file.is_empty() {
                summary.push(format!(
                    "0 users in {} (add one with `portcullis passwd --file {} add NAME`)",
                    path.display(),
                    path.display()
                ));
            } else {
                summary.push(format!("{} users from {}", file.len(), path.display()));
            }
            (file, Some(path.clone()))
        }
        UsersSource::Demo => {
            let mut rng = os_rng();
            let password = demo_password_text(&mut rng);
            let hash = hash_password(password.as_bytes(), HashParams::default(), &mut rng)
                .map_err(|e| format!("demo user: {e}"))?;
            let mut file = PasswordFile::new();
            file.add(DEMO_USER, hash)
                .map_err(|e| format!("demo user: {e}"))?;
            summary.push(format!("1 demo user ({DEMO_USER}), in memory"));
            demo_password = Some(password);
            (file, None)
        }
    };
    let site = match &settings.root {
        Some(root) => {
            refuse_users_file_under_root(settings, root)?;
            let site =
                StaticSite::new(root).map_err(|e| format!("root: {}: {e}", root.display()))?;
            summary.push(format!("serving files from {}", root.display()));
            Site::Static(site)
        }
        None => {
            summary.push("serving the built-in demo site".to_string());
            Site::Demo
        }
    };
    Ok(Loaded {
        prepared: Prepared {
            tls,
            users,
            users_path,
            site,
        },
        demo_password,
        summary,
    })
}

/// A password file the site would serve is a leak waiting to happen.
fn refuse_users_file_under_root(settings: &Settings, root: &Path) -> Result<(), String> {
    let UsersSource::File(users) = &settings.users else {
        return Ok(());
    };
    let (Ok(users), Ok(root)) = (users.canonicalize(), root.canonicalize()) else {
        return Ok(()); // loading either reports the problem
    };
    if users.starts_with(&root) {
        return Err(format!(
            "users: {} is inside the served root {}; move it out",
            users.display(),
            root.display()
        ));
    }
    Ok(())
}

/// 20 characters from an alphabet without look-alikes (~114 bits).
fn demo_password_text(rng: &mut dyn CryptoRng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut password = String::with_capacity(20);
    while password.len() < 20 {
        let [byte] = portcullis_core::random::random_array::<1>(rng);
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte) < limit {
            password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    password
}

/// Runs the server until it is shut down. Exit status 2 when something the
/// settings name cannot be loaded, 1 when the server fails.
pub fn run(settings: Settings) -> ExitCode {
    let loaded = match load(&settings) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("portcullis serve: {e}");
            return ExitCode::from(2);
        }
    };
    let summary = loaded.summary;
    let demo_password = loaded.demo_password;
    let mut server = match Server::bind(&settings, loaded.prepared) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("portcullis serve: cannot listen: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = server.handle_signals() {
        eprintln!("portcullis serve: cannot handle signals: {e}");
        return ExitCode::from(1);
    }
    eprint!(
        "{}",
        start_summary(&settings, &server, &summary, demo_password.as_deref())
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::notice(format_args!("server failed: {e}"));
            ExitCode::from(1)
        }
    }
}

fn start_summary(
    settings: &Settings,
    server: &Server,
    loaded: &[String],
    demo_password: Option<&str>,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "portcullis {}", env!("CARGO_PKG_VERSION"));
    if let Some(addr) = server.https_addr() {
        let _ = writeln!(text, "  listening on https://{addr}/");
    }
    if let Some(addr) = server.http_addr() {
        if server.https_addr().is_some() {
            let _ = writeln!(text, "  listening on http://{addr}/ (redirects to HTTPS)");
        } else {
            let _ = writeln!(text, "  listening on http://{addr}/");
            let _ = writeln!(
                text,
                "  WARNING: no TLS listener: passwords and cookies travel in clear unless a TLS-terminating proxy is in front"
            );
        }
    }
    for line in loaded {
        let _ = writeln!(text, "  {line}");
    }
    if settings.bench_preload_sessions > 0 {
        let _ = writeln!(
            text,
            "  preloaded {} sessions (benchmark)",
            settings.bench_preload_sessions
        );
    }
    if settings.demo {
        let _ = writeln!(text, "  DEMO MODE: loopback only, self-signed certificate");
    }
    if let Some(password) = demo_password {
        let _ = writeln!(
            text,
            "  log in as {DEMO_USER} with password {password} (new at every start)"
        );
    }
    text
}

/// Loads everything the settings name (certificate, key, password file,
/// site root) without serving; prints a summary. Exit status 0 or 2.
pub fn check(settings: Settings) -> ExitCode {
    match load(&settings) {
        Ok(loaded) => {
            println!("configuration OK");
            if let Some(addr) = settings.https {
                println!("  https {addr}");
            }
            if let Some(addr) = settings.http {
                println!("  http {addr}");
            }
            for line in loaded.summary {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis check-config: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::random::TestRng;

    use super::*;

    #[test]
    fn demo_passwords_are_long_and_differ() {
        let mut rng = TestRng::seeded(7);
        let a = demo_password_text(&mut rng);
        let b = demo_password_text(&mut rng);
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
    }
}
