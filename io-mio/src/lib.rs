//! Portcullis's server adapter: a single-threaded mio event loop over rustls
//! sockets that drives `portcullis-core`, and the `portcullis` command.
//!
//! The server itself has not landed yet. What is here: the command line
//! ([`cli`]), the `passwd` subcommand ([`passwd_cmd`]), the password file's
//! atomic, locked storage ([`passwd_store`]) and OS randomness for the core
//! ([`os_random`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod os_random;
pub mod passwd_cmd;
pub mod passwd_store;
