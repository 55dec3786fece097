//! Portcullis's server adapter: a single-threaded mio event loop over rustls
//! sockets that drives `portcullis-core`.
//!
//! This crate is a placeholder until the server lands; it exists so that the
//! workspace has its final shape and the core's API is built against a second
//! crate from the start.
#![forbid(unsafe_code)]
