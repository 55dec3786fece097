//! A blocking `std::net` server that serves one page through
//! `portcullis_core::Connection`: the proof that the sans-IO engine runs
//! unchanged under a second runtime (the real server drives it with mio).
//!
//! ```text
//! cargo run --example blocking_server -- 127.0.0.1:8080
//! curl -v http://127.0.0.1:8080/
//! ```
//!
//! One thread per connection, at most [`MAX_CONNECTIONS`] at once (further
//! clients wait in the listen backlog). Each thread follows the run-loop
//! contract from the core's documentation: feed input, drain events, write
//! output, and never wait past the engine's next deadline.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use portcullis_core::{Connection, Event, Limits, Now, Request, ResponseBody, ResponseHead};

/// The page served at `/`.
pub const PAGE: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Portcullis</title></head>
<body><h1>Portcullis</h1><p>Served by the sans-IO core over blocking std::net.</p></body>
</html>
";

/// The page for every other path.
const NOT_FOUND: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>
<body><h1>Not found</h1></body></html>
";

/// Connections served at once; one thread each.
pub const MAX_CONNECTIONS: usize = 64;

#[allow(dead_code)] // tests/blocking_example.rs includes this file and calls `serve`
fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    eprintln!("serving http://{}/", listener.local_addr()?);
    serve(listener)
}

/// What a server does with the requests of one connection.
pub trait App {
    /// A request arrived: answer it now, or start reading its body.
    fn request(&mut self, conn: &mut Connection, request: Request) -> io::Result<()>;

    /// More body bytes (or the end) of the current request arrived.
    fn body_readable(&mut self, _conn: &mut Connection) -> io::Result<()> {
        Ok(())
    }
}

/// This example's app: one page at `/`.
struct PageApp;

impl App for PageApp {
    fn request(&mut self, conn: &mut Connection, request: Request) -> io::Result<()> {
        respond(conn, &request).map_err(io::Error::other)
    }
}

/// Accepts connections forever, each driven by [`drive`] on its own thread.
#[allow(dead_code)] // examples/guarded_server.rs includes this file and uses `serve_with`
pub fn serve(listener: TcpListener) -> io::Result<()> {
    serve_with(listener, |_peer| PageApp)
}

/// Accepts connections forever; `app` makes each connection's [`App`] from
/// the peer's address.
pub fn serve_with<A: App + Send + 'static>(
    listener: TcpListener,
    app: impl Fn(SocketAddr) -> A,
) -> io::Result<()> {
    let slots = Arc::new(Slots::default());
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // A connection that failed before we accepted it; keep serving.
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let mut app = app(peer);
        let slot = Slots::take(&slots);
        thread::spawn(move || {
            let _slot = slot; // freed when the connection ends, even by a panic
            if let Err(error) = drive(stream, &mut app) {
                eprintln!("connection: {error}");
            }
        });
    }
    Ok(())
}

/// The engine's clocks: the adapter reads them, the core never does.
pub fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// Serves one connection until the engine closes it.
pub fn drive(mut stream: TcpStream, app: &mut impl App) -> io::Result<()> {
    let mut conn = Connection::new(now(), Limits::default());
    let mut buf = vec![0; 16 * 1024];
    // Bytes read from the socket that the engine has not taken yet.
    let (mut fed, mut read) = (0, 0);
    loop {
        // 1. Input: offer what was read. The engine may take less when its
        //    buffer is full; the rest waits here.
        if fed < read {
            fed += conn.receive(now(), &buf[fed..read]);
        }
        // 2. Events, each answered at once. Output is written after every
        //    response so it never piles up past the engine's high-water
        //    mark, however many requests a client pipelines.
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Request(request) => app.request(&mut conn, request)?,
                // An app that reads no bodies ignores this; the engine skips
                // (or, if not all arrived, closes after) what a request carried.
                Event::BodyReadable => app.body_readable(&mut conn)?,
                Event::Error(error) => eprintln!("peer: {error}"),
            }
            flush(&mut stream, &mut conn)?;
        }
        // 3. Output.
        flush(&mut stream, &mut conn)?;
        if conn.is_closed() {
            return linger(stream);
        }
        // 4. Wait for input, but no longer than the next deadline.
        if fed < read && conn.wants_read() {
            continue; // the engine has room for the rest now
        }
        if !conn.wants_read() || fed < read {
            // Nothing to read for now (this server answers at once, so this
            // is brief): sleep until the deadline lets the engine move on.
            thread::sleep(time_left(conn.poll_timeout()).unwrap_or(Duration::from_millis(10)));
            conn.handle_timeout(now());
            continue;
        }
        stream.set_read_timeout(time_left(conn.poll_timeout()))?;
        match stream.read(&mut buf) {
            Ok(0) => conn.receive_eof(now()),
            Ok(n) => (fed, read) = (0, n),
            Err(error) if is_timeout(&error) => conn.handle_timeout(now()),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// The page for `/`, 404 elsewhere, 405 for methods other than GET and HEAD.
/// A HEAD request gets the same head; the engine drops the body bytes.
fn respond(conn: &mut Connection, request: &Request) -> Result<(), portcullis_core::ApiError> {
    let now = now();
    let (status, page) = match (request.method(), request.path()) {
        ("GET" | "HEAD", "/") => (200, PAGE),
        ("GET" | "HEAD", _) => (404, NOT_FOUND),
        _ => {
            let head = ResponseHead::new(405).header("Allow", "GET, HEAD");
            conn.send_response(now, head)?;
            return conn.finish_response(now);
        }
    };
    let head = ResponseHead::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .body(ResponseBody::Length(page.len() as u64));
    conn.send_response(now, head)?;
    // Output was flushed before this response and the page is far below
    // the high-water mark, so the engine takes it whole.
    conn.send_body(now, page.as_bytes())?;
    conn.finish_response(now)
}

/// Writes all pending output, or stops when the engine gives up on a peer
/// that does not read (its send deadline passed).
fn flush(stream: &mut TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        stream.set_write_timeout(time_left(conn.poll_timeout()))?;
        match stream.write(conn.pending_output()) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => conn.advance_output(now(), n),
            Err(error) if is_timeout(&error) => conn.handle_timeout(now()),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Closes gracefully: send FIN, then read (and drop) what the peer still
/// sends for a moment. Closing with unread input would make the kernel send
/// a reset, which can destroy the response (a 400, say) before it is read.
fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut sink = [0; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// Time until `deadline`, for a socket timeout (`None`: wait indefinitely).
/// Never zero: std rejects a zero timeout, and a passed deadline is handled
/// by the `handle_timeout` call that follows the timeout.
fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    })
}

/// A read or write that hit its socket timeout (the error kind differs by OS).
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A counting semaphore bounding the connection threads.
#[derive(Default)]
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

/// One connection's place among [`MAX_CONNECTIONS`]; freed on drop.
struct Slot(Arc<Slots>);

impl Slots {
    /// Waits for a free place and takes it.
    fn take(slots: &Arc<Slots>) -> Slot {
        let mut used = slots.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= MAX_CONNECTIONS {
            used = slots.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot(Arc::clone(slots))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.used.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}
