//! Portcullis's server adapter: a single-threaded mio event loop over rustls
//! sockets that drives `portcullis-core`, and the `portcullis` command.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod demo_site;
pub mod os_random;
pub mod passwd_cmd;
pub mod passwd_store;
pub mod serve_cmd;
pub mod server;
pub mod static_files;
pub mod tls;
