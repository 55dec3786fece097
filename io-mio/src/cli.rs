//! The `portcullis` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config;
pub use crate::config::ServeArgs;
use crate::passwd_cmd;
use crate::serve_cmd;

/// Portcullis puts a login form in front of a web site.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the password file (`user:hash` lines, argon2id).
    #[command(after_help = passwd_cmd::EXIT_STATUS_HELP)]
    Passwd(PasswdArgs),
    /// Guard a site: serve it over HTTPS behind a login form. Try `--demo`.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Check the settings `serve` would use, and load what they name,
    /// without serving. Takes the same flags as `serve`.
    #[command(after_help = CHECK_CONFIG_HELP)]
    CheckConfig(ServeArgs),
}

/// `portcullis serve --help`'s closing text.
const SERVE_HELP: &str = "\
The config file (--config) is TOML with the flags' names as keys (https,
tls-cert, idle-timeout = \"30m\", public = [\"/favicon.ico\"]...) and more;
flags override it. Unknown keys are refused.

Exit status:
  0  shut down cleanly
  2  error: bad usage, a bad setting, something it names cannot be loaded";

/// `portcullis check-config --help`'s closing text.
const CHECK_CONFIG_HELP: &str = "\
Exit status:
  0  the settings are good and everything they name loads
  2  error: bad usage, a bad setting, something it names cannot be loaded";

/// `portcullis passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The password file.
    #[arg(
        long,
        short,
        global = true,
        value_name = "PATH",
        default_value = "users.passwd"
    )]
    pub file: PathBuf,

    /// What to do with it.
    #[command(subcommand)]
    pub action: PasswdAction,
}

/// `portcullis passwd` actions.
#[derive(Debug, Subcommand)]
pub enum PasswdAction {
    /// Add a user; refuses one that exists. Asks for the password twice,
    /// without echo.
    Add {
        /// The user name.
        user: String,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give an existing user a new password.
    Set {
        /// The user name.
        user: String,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user.
    Remove {
        /// The user name.
        user: String,
    },
    /// List the users and the scheme of their hashes.
    List,
    /// Check a password: exit status 0 if it matches, 1 if not.
    Verify {
        /// The user name.
        user: String,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Parses the arguments and runs the command. Usage errors exit with 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Passwd(args) => passwd_cmd::run(&args),
        Command::Serve(args) => with_settings("serve", &args, serve_cmd::run),
        Command::CheckConfig(args) => with_settings("check-config", &args, serve_cmd::check),
    }
}

/// Resolves the settings and hands them to `run`; a bad setting is
/// reported on stderr with exit status 2, as clap reports bad usage.
fn with_settings(
    command: &str,
    args: &ServeArgs,
    run: fn(config::Settings) -> ExitCode,
) -> ExitCode {
    match config::load(args) {
        Ok(settings) => run(settings),
        Err(error) => {
            eprintln!("portcullis {command}: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_file_option_goes_before_or_after_the_action() {
        for args in [
            &["portcullis", "passwd", "--file", "x.passwd", "list"][..],
            &["portcullis", "passwd", "list", "--file", "x.passwd"],
            &["portcullis", "passwd", "-f", "x.passwd", "list"],
        ] {
            let Command::Passwd(passwd) = Cli::try_parse_from(args).unwrap().command else {
                panic!("not passwd: {args:?}");
            };
            assert_eq!(passwd.file, PathBuf::from("x.passwd"), "{args:?}");
        }
        let Command::Passwd(passwd) = Cli::try_parse_from(["portcullis", "passwd", "list"])
            .unwrap()
            .command
        else {
            panic!("not passwd");
        };
        assert_eq!(passwd.file, PathBuf::from("users.passwd"));
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Serve(serve) | Command::CheckConfig(serve) => serve,
            Command::Passwd(_) => panic!("passwd: {args:?}"),
        }
    }

    #[test]
    fn serve_takes_every_flag() {
        let serve = serve_args(&[
            "portcullis",
            "serve",
            "--config",
            "site.toml",
            "--https",
            "[::]:443",
            "--http",
            "0.0.0.0:80",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--users",
            "u.passwd",
            "--root",
            "/srv/www",
            "--idle-timeout",
            "20m",
            "--absolute-timeout",
            "1h 30m",
            "--public",
            "/favicon.ico",
            "--public",
            "/static/",
            "--demo",
        ]);
        assert_eq!(
            serve,
            ServeArgs {
                config: Some(PathBuf::from("site.toml")),
                https: Some("[::]:443".parse().unwrap()),
                http: Some("0.0.0.0:80".parse().unwrap()),
                tls_cert: Some(PathBuf::from("cert.pem")),
                tls_key: Some(PathBuf::from("key.pem")),
                users: Some(PathBuf::from("u.passwd")),
                root: Some(PathBuf::from("/srv/www")),
                idle_timeout: Some(Duration::from_secs(20 * 60)),
                absolute_timeout: Some(Duration::from_secs(90 * 60)),
                public: vec!["/favicon.ico".to_string(), "/static/".to_string()],
                demo: true,
            }
        );
        // Nothing given, nothing set: the defaults are the config module's.
        assert_eq!(serve_args(&["portcullis", "serve"]), ServeArgs::default());
    }

    #[test]
    fn check_config_takes_the_same_flags() {
        let argv = ["--demo", "--idle-timeout", "5m", "--public", "/a"];
        let serve = serve_args(&[&["portcullis", "serve"][..], &argv].concat());
        let check = serve_args(&[&["portcullis", "check-config"][..], &argv].concat());
        assert_eq!(serve, check);
        assert!(matches!(
            Cli::try_parse_from(["portcullis", "check-config"])
                .unwrap()
                .command,
            Command::CheckConfig(_)
        ));
    }

    #[test]
    fn malformed_flag_values_are_usage_errors_naming_the_flag() {
        for (flag, value) in [
            ("--idle-timeout", "3x"),
            ("--absolute-timeout", "soon"),
            ("--https", "localhost:8443"),
            ("--http", "8080"),
        ] {
            let error = Cli::try_parse_from(["portcullis", "serve", flag, value]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            // Exit status 2, like every usage error.
            assert_eq!(error.exit_code(), 2);
            assert!(error.to_string().contains(flag), "{error}");
        }
        let error =
            Cli::try_parse_from(["portcullis", "serve", "--idel-timeout", "1h"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
