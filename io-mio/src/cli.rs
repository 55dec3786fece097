//! The `portcullis` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::passwd_cmd;

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
}

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
    }
}

#[cfg(test)]
mod tests {
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
            let Command::Passwd(passwd) = Cli::try_parse_from(args).unwrap().command;
            assert_eq!(passwd.file, PathBuf::from("x.passwd"), "{args:?}");
        }
        let Command::Passwd(passwd) = Cli::try_parse_from(["portcullis", "passwd", "list"])
            .unwrap()
            .command;
        assert_eq!(passwd.file, PathBuf::from("users.passwd"));
    }
}
