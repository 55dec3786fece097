//! The bounds every connection enforces, with their defaults and why.

use std::time::Duration;

/// Size and time limits for one HTTP/1.1 connection.
///
/// The defaults are no looser than nginx's (`large_client_header_buffers 4
/// 8k`, `client_max_body_size 1m`, `client_header_timeout 60s`,
/// `keepalive_timeout 75s`) and tighter where a login guard can afford it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target and version) in bytes; longer
    /// gets 414. Default 8 KiB, as nginx's per-line buffer.
    pub max_request_line: usize,
    /// Largest request head (request line plus header fields) in bytes; larger
    /// gets 431. Default 16 KiB (nginx allows 32 KiB).
    pub max_head_bytes: usize,
    /// Most header fields in one head; more gets 431. Default 100.
    pub max_headers: usize,
    /// Largest request body in bytes, however it is framed; larger gets 413.
    /// Default 1 MiB, as nginx.
    pub max_body: u64,
    /// Longest chunk-size line (size plus extensions) in bytes; longer gets
    /// 400. Default 1 KiB: extensions carry nothing Portcullis uses.
    pub max_chunk_line: usize,
    /// Largest trailer section in bytes; larger gets 400. Default 4 KiB.
    pub max_trailer_bytes: usize,
    /// Bytes of peer input held before reading pauses ([`wants_read`] turns
    /// false). Raised to `max_head_bytes + 1` (and `max_request_line + 3`)
    /// if set lower, so an oversized head is always seen. Default 32 KiB.
    ///
    /// [`wants_read`]: crate::Connection::wants_read
    pub input_buffer: usize,
    /// Pending output bytes above which [`send_body`] accepts no more until
    /// the adapter drains them. Default 64 KiB.
    ///
    /// [`send_body`]: crate::Connection::send_body
    pub output_high_water: usize,
    /// Time allowed from the first byte of a request to the end of its head
    /// (slowloris defence); then 408 and close. Default 10 s.
    pub head_timeout: Duration,
    /// Longest pause between body bytes while a request body is expected;
    /// then 408 (if no response has started) and close. Default 15 s.
    pub body_idle_timeout: Duration,
    /// How long an idle keep-alive connection is kept; then it closes
    /// silently. Default 60 s.
    pub keep_alive_timeout: Duration,
    /// Longest time pending output may go undrained (a peer that stopped
    /// reading); then the connection closes. Default 30 s.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            max_chunk_line: 1024,
            max_trailer_bytes: 4 * 1024,
            input_buffer: 32 * 1024,
            output_high_water: 64 * 1024,
            head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(15),
            keep_alive_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
        }
    }
}
