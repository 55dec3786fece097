//! One client connection: a TCP socket, rustls on top when it came in on
//! the HTTPS listener, and the core's HTTP/1.1 [`Connection`] fed with the
//! plaintext. The loop calls [`Conn::drive`] after every readiness event,
//! timer or finished password check; `drive` moves bytes and decisions
//! until nothing more can happen, then the loop re-derives the socket's
//! interest and deadline from the state left behind.
//!
//! rustls runs through its unbuffered API (`Tls`): the ciphertext
//! buffers are ours, so an idle keep-alive connection holds none, like the
//! core's own buffers.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::Interest;
use portcullis_core::guard::pages::STRICT_TRANSPORT_SECURITY;
use portcullis_core::guard::{Decision, Ticket};
use portcullis_core::{BodyRead, Connection, Event, Now, Request, ResponseBody, ResponseHead};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::log::{self, AccessRecord};
use super::Shared;
use crate::static_files::{FileBody, SiteBody, SiteResponse};

/// How long a closed connection keeps draining what the client still sends,
/// so that the kernel does not answer it with a reset that destroys the
/// response in flight.
const LINGER: Duration = Duration::from_secs(2);

/// The most plaintext encrypted at once (four full TLS records); the core
/// keeps the rest until the socket took this.
const SEND_CHUNK: usize = 64 * 1024;

/// Which listener the connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Serves the guarded site (HTTPS, or plain HTTP without TLS).
    Site,
    /// Plain HTTP next to an HTTPS listener: every request gets a 308 there.
    Redirect {
        /// The HTTPS listener's port.
        https_port: u16,
    },
}

/// What the current request is waiting for.
enum Work {
    /// No request in progress.
    Idle,
    /// The guard asked for the body (a login or logout form).
    ReadingBody {
        request: Request,
        body: Vec<u8>,
        limit: usize,
    },
    /// A password check is running on the pool.
    Verifying { request: Request, ticket: Ticket },
    /// The response head is out; its body follows as the connection has
    /// room.
    Sending { request: Request, body: OutBody },
}

/// A response body being sent.
enum OutBody {
    Bytes { bytes: Vec<u8>, sent: usize },
    File(FileBody),
}

/// What the access log needs about the request in progress.
struct Pending {
    started: Instant,
    time: SystemTime,
    user: Option<String>,
    status: u16,
    bytes: u64,
}

/// One client connection.
pub struct Conn {
    socket: TcpStream,
    tls: Option<Box<Tls>>,
    http: Connection,
    role: Role,
    /// The peer's address (the client's, unless a trusted proxy names it).
    pub peer: IpAddr,
    work: Work,
    log: Option<Pending>,
    /// Plaintext read but not yet taken by the core.
    unfed: Vec<u8>,
    /// Readiness as last reported by the poller and not yet used up (the
    /// poller is edge-triggered: an edge is reported once).
    readable: bool,
    writable: bool,
    /// The poller reported that the peer closed its side.
    hung_up: bool,
    /// The TCP peer closed its side.
    peer_eof: bool,
    /// The core was told the input ended; nothing more is read.
    input_ended: bool,
    /// The TLS handshake must finish by then.
    handshake_deadline: Option<Instant>,
    /// Closed for HTTP; draining input until then before the socket goes.
    linger_until: Option<Instant>,
    /// The socket is finished: remove the connection.
    done: bool,
    /// What the poller was last asked to report.
    pub registered: Interest,
    /// The deadline the loop's timer set holds for this connection.
    pub timer: Option<Instant>,
}

impl Conn {
    /// A connection accepted at `now`.
    pub fn new(
        socket: TcpStream,
        tls: Option<UnbufferedServerConnection>,
        role: Role,
        peer: IpAddr,
        shared: &Shared,
        now: Now,
    ) -> Conn {
        let handshake_deadline = tls.as_ref().map(|_| now.mono + shared.handshake_timeout);
        Conn {
            socket,
            tls: tls.map(|conn| Box::new(Tls::new(conn))),
            http: Connection::new(now, shared.limits.clone()),
            role,
            peer,
            work: Work::Idle,
            log: None,
            unfed: Vec::new(),
            readable: true,
            writable: true,
            hung_up: false,
            peer_eof: false,
            input_ended: false,
            handshake_deadline,
            linger_until: None,
            done: false,
            registered: Interest::READABLE,
            timer: None,
        }
    }

    /// The socket, to register with the poller.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// Whether the connection is finished and can be dropped.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the poller reported the socket readable / writable, and
    /// whether the peer closed its side (then no later edge will come, so
    /// reads go on until the end is seen).
    pub fn ready(&mut self, readable: bool, writable: bool, hung_up: bool) {
        self.readable |= readable;
        self.writable |= writable;
        self.hung_up |= hung_up;
    }

    /// The interest the socket needs now: always readable (to see input and
    /// hang-ups), writable only while output waits for room.
    pub fn interest(&self) -> Interest {
        let tls_wants_write = self.tls.as_ref().is_some_and(|tls| tls.wants_write());
        let plain_wants_write = self.tls.is_none() && !self.http.pending_output().is_empty();
        if (tls_wants_write || plain_wants_write) && self.linger_until.is_none() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// The next moment something is due: the core's deadline, the TLS
    /// handshake's, or the end of lingering.
    pub fn deadline(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        if self.linger_until.is_some() {
            return self.linger_until;
        }
        let handshake = self
            .handshake_deadline
            .filter(|_| self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()));
        match (self.http.poll_timeout(), handshake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the deadlines that passed by `now`.
    pub fn on_timeout(&mut self, shared: &mut Shared, key: usize, now: Now) {
        if let Some(until) = self.linger_until {
            if now.mono >= until {
                self.done = true;
            }
            return;
        }
        if let Some(deadline) = self.handshake_deadline {
            let handshaking = self.tls.as_ref().is_some_and(|tls| tls.is_handshaking());
            if handshaking && now.mono >= deadline {
                // A stalled handshake: nothing was said, nothing to flush.
                self.done = true;
                return;
            }
        }
        self.http.handle_timeout(now);
        self.drive(shared, key, now);
    }

    /// Graceful shutdown: finish the request in flight, read no more.
    pub fn close_when_done(&mut self, shared: &mut Shared, key: usize, now: Now) {
        if self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) {
            self.done = true;
            return;
        }
        self.http.close_when_done();
        self.drive(shared, key, now);
    }

    /// The password check for `ticket` finished.
    pub fn on_verified(
        &mut self,
        shared: &mut Shared,
        key: usize,
        now: Now,
        ticket: Ticket,
        decision: Decision<String>,
    ) {
        match std::mem::replace(&mut self.work, Work::Idle) {
            Work::Verifying {
                request,
                ticket: waiting,
            } if waiting == ticket => self.act(shared, key, now, request, decision),
            other => self.work = other,
        }
        self.drive(shared, key, now);
    }

    /// Moves everything that can move: input into the core, events into
    /// decisions, bodies into the core, output onto the socket. Stops when
    /// a pass makes no progress.
    pub fn drive(&mut self, shared: &mut Shared, key: usize, now: Now) {
        if self.done {
            return;
        }
        if self.linger_until.is_some() {
            self.drain_lingering();
            return;
        }
        loop {
            let mut progress = self.read_input(shared, now);
            while let Some(event) = self.http.poll_event() {
                progress = true;
                self.on_event(shared, key, now, event);
            }
            progress |= self.pump_body(shared, now);
            progress |= self.flush(now);
            if self.done || !progress {
                break;
            }
        }
        if !self.done && self.http.is_closed() {
            self.start_closing(now);
        } else if self.unfed.is_empty() && matches!(self.work, Work::Idle) {
            // Waiting for the next request: keep idle connections small.
            self.http.release_idle_buffers();
            self.unfed = Vec::new();
            if let Some(tls) = &mut self.tls {
                tls.release_idle_buffers();
            }
        }
    }

    // ----- input -------------------------------------------------------------

    /// Reads until the socket has nothing more or the core wants no more.
    /// Returns whether anything happened.
    fn read_input(&mut self, shared: &mut Shared, now: Now) -> bool {
        let mut progress = false;
        loop {
            if self.input_ended {
                return progress; // the end was delivered once
            }
            if !self.unfed.is_empty() {
                let taken = self.http.receive(now, &self.unfed);
                if taken > 0 {
                    progress = true;
                    self.unfed.drain(..taken);
                }
                if !self.unfed.is_empty() {
                    return progress; // the core is full: backpressure
                }
            }
            let handshaking = self.tls.as_ref().is_some_and(|tls| tls.is_handshaking());
            if !(self.http.wants_read() || handshaking) {
                return progress;
            }
            let got = match &mut self.tls {
                None => read_plain(
                    &mut self.socket,
                    &mut shared.scratch,
                    &mut self.readable,
                    self.hung_up,
                ),
                Some(tls) => tls.read(
                    &mut self.socket,
                    &mut shared.scratch,
                    &mut self.readable,
                    self.hung_up,
                    &mut self.unfed,
                ),
            };
            match got {
                Input::Data(n) => {
                    progress = true;
                    let taken = self.http.receive(now, &shared.scratch[..n]);
                    if taken < n {
                        self.unfed.extend_from_slice(&shared.scratch[taken..n]);
                    }
                }
                Input::Progress => progress = true,
                Input::Eof => {
                    if self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) {
                        // Gone before TLS was up: nothing to answer.
                        self.done = true;
                        return true;
                    }
                    self.peer_eof = true;
                    self.input_ended = true;
                    self.http.receive_eof(now);
                    return true;
                }
                Input::Nothing => return progress,
                Input::TlsRefused => {
                    // The alert rustls had to say is encoded; send it, then
                    // close.
                    let _ = self.flush(now);
                    self.done = true;
                    return true;
                }
                Input::Broken => {
                    self.done = true;
                    return true;
                }
            }
        }
    }

    fn drain_lingering(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.done = true;
    }

    // ----- requests ----------------------------------------------------------

    fn on_event(&mut self, shared: &mut Shared, key: usize, now: Now, event: Event) {
        match event {
            Event::Request(request) => {
                if shared.access_log {
                    self.log = Some(Pending {
                        started: now.mono,
                        time: now.wall,
                        user: None,
                        status: 0,
                        bytes: 0,
                    });
                }
                match self.role {
                    Role::Redirect { https_port } => {
                        let reply = redirect_to_https(&request, https_port);
                        self.respond(shared, now, request, reply);
                    }
                    Role::Site => {
                        let client = shared.client_address(self.peer, &request);
                        let decision = shared.guard.handle(now, &request, client, None);
                        self.act(shared, key, now, request, decision);
                    }
                }
            }
            Event::BodyReadable => self.continue_body(shared, key, now),
            Event::Error(error) => {
                // The engine answers protocol errors itself and closes.
                if shared.access_log {
                    log::access(&AccessRecord {
                        time: now.wall,
                        client: self.peer,
                        user: None,
                        method: None,
                        path: None,
                        status: error.status(),
                        bytes: 0,
                        duration: Duration::ZERO,
                    });
                }
            }
        }
    }

    /// Carries out the guard's decision on `request`.
    fn act(
        &mut self,
        shared: &mut Shared,
        key: usize,
        now: Now,
        request: Request,
        decision: Decision<String>,
    ) {
        match decision {
            Decision::Respond(reply) => self.respond(shared, now, request, reply.into()),
            Decision::Forward(access) => {
                if let (Some(log), Some(user)) = (&mut self.log, &access.user) {
                    log.user = Some(user.clone());
                }
                let mut response = shared.site_response(&request, &access);
                if self.tls.is_some() && shared.guard.config().tls {
                    // The site's pages get what the guard's pages get.
                    response.head = response
                        .head
                        .header("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY);
                }
                self.respond(shared, now, request, response);
            }
            Decision::ReadBody { limit } => {
                self.work = Work::ReadingBody {
                    request,
                    body: Vec::new(),
                    limit,
                };
                // The body may be buffered already.
                self.continue_body(shared, key, now);
            }
            Decision::Verify(verification) => {
                let ticket = verification.ticket;
                match shared.pool.try_submit(key, ticket, verification.job) {
                    Ok(()) => self.work = Work::Verifying { request, ticket },
                    Err(_full) => {
                        shared.note_pool_full(now);
                        let reply = shared.guard.cancel(now, ticket);
                        self.respond(shared, now, request, reply.into());
                    }
                }
            }
        }
    }

    fn continue_body(&mut self, shared: &mut Shared, key: usize, now: Now) {
        // The body may have been read already (the head and the body came
        // in apart, and the event for the body is late): then the request
        // has moved on, and its state stays.
        let (request, mut body, limit) = match std::mem::replace(&mut self.work, Work::Idle) {
            Work::ReadingBody {
                request,
                body,
                limit,
            } => (request, body, limit),
            other => {
                self.work = other;
                return;
            }
        };
        loop {
            let room = (limit + 1)
                .saturating_sub(body.len())
                .min(shared.scratch.len());
            let read = self.http.read_body(now, &mut shared.scratch[..room.max(1)]);
            match read {
                Ok(BodyRead::Data(n)) => {
                    body.extend_from_slice(&shared.scratch[..n]);
                    if body.len() > limit {
                        break; // the guard answers 413
                    }
                }
                Ok(BodyRead::Pending) => {
                    self.work = Work::ReadingBody {
                        request,
                        body,
                        limit,
                    };
                    return;
                }
                Ok(BodyRead::End) => break,
                // The engine answered the broken body itself.
                Ok(BodyRead::Failed(_)) | Err(_) => return,
            }
        }
        let client = shared.client_address(self.peer, &request);
        let decision = shared.guard.handle(now, &request, client, Some(&body));
        self.act(shared, key, now, request, decision);
    }

    /// Starts the response; its body follows through [`Conn::pump_body`].
    fn respond(&mut self, shared: &mut Shared, now: Now, request: Request, response: SiteResponse) {
        if let Some(log) = &mut self.log {
            log.status = response.head.status();
        }
        if self.http.send_response(now, response.head).is_err() {
            // Only a bug gets here; never leave the client hanging.
            self.done = true;
            return;
        }
        let body = match response.body {
            SiteBody::None => OutBody::Bytes {
                bytes: Vec::new(),
                sent: 0,
            },
            SiteBody::Bytes(bytes) => OutBody::Bytes { bytes, sent: 0 },
            SiteBody::File(file) => OutBody::File(file),
        };
        self.work = Work::Sending { request, body };
        self.pump_body(shared, now);
    }

    /// Feeds the response body to the core while it has room; finishes the
    /// response at the end. Returns whether anything moved.
    fn pump_body(&mut self, shared: &mut Shared, now: Now) -> bool {
        let Work::Sending { body, .. } = &mut self.work else {
            return false;
        };
        let mut progress = false;
        loop {
            let room = self.http.send_capacity();
            let finished = match body {
                OutBody::Bytes { bytes, sent } => {
                    if *sent < bytes.len() && room > 0 {
                        match self.http.send_body(now, &bytes[*sent..]) {
                            Ok(n) => {
                                *sent += n;
                                progress |= n > 0;
                                count(&mut self.log, n);
                            }
                            Err(_) => {
                                self.done = true;
                                return true;
                            }
                        }
                    }
                    *sent == bytes.len()
                }
                OutBody::File(file) => {
                    if file.remaining() > 0 && room > 0 {
                        let want = room.min(shared.scratch.len());
                        match file.read_chunk(&mut shared.scratch[..want]) {
                            Ok(n) => match self.http.send_body(now, &shared.scratch[..n]) {
                                // The core takes what fits in its room.
                                Ok(taken) if taken == n => {
                                    progress |= n > 0;
                                    count(&mut self.log, n);
                                }
                                _ => {
                                    self.done = true;
                                    return true;
                                }
                            },
                            Err(e) => {
                                // The file changed under us: the declared
                                // length cannot be kept, so the client must
                                // see a cut connection, not a short body.
                                log::notice(format_args!("file read failed mid-response: {e}"));
                                self.done = true;
                                return true;
                            }
                        }
                    }
                    file.remaining() == 0
                }
            };
            if finished {
                if self.http.finish_response(now).is_err() {
                    self.done = true;
                    return true;
                }
                if let Work::Sending { request, .. } = std::mem::replace(&mut self.work, Work::Idle)
                {
                    self.log_finished(&request);
                }
                return true;
            }
            if self.http.send_capacity() == 0 || !progress {
                return progress;
            }
        }
    }

    fn log_finished(&mut self, request: &Request) {
        let Some(pending) = self.log.take() else {
            return;
        };
        log::access(&AccessRecord {
            time: pending.time,
            client: self.peer,
            user: pending.user.as_deref(),
            method: Some(request.method()),
            path: Some(request.path()),
            status: pending.status,
            bytes: pending.bytes,
            // Read afresh: the whole exchange often fits in one pass.
            duration: Instant::now().saturating_duration_since(pending.started),
        });
    }

    // ----- output ------------------------------------------------------------

    /// Moves the core's output to the socket (through rustls when there is
    /// TLS). Returns whether anything moved.
    fn flush(&mut self, now: Now) -> bool {
        let mut progress = false;
        loop {
            let mut moved = false;
            match &mut self.tls {
                None => {
                    let pending = self.http.pending_output();
                    if pending.is_empty() || !self.writable {
                        return progress;
                    }
                    match self.socket.write(pending) {
                        Ok(n) => {
                            self.http.advance_output(now, n);
                            moved = n > 0;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => moved = true,
                        Err(_) => {
                            self.done = true;
                            return true;
                        }
                    }
                }
                Some(tls) => {
                    let pending = self.http.pending_output();
                    // Encrypt more only once the last batch is out: until
                    // then the core holds the rest (and times it out).
                    let can_encrypt = !tls.failed && !tls.is_handshaking();
                    if !pending.is_empty() && !tls.wants_write() && can_encrypt {
                        let chunk = &pending[..pending.len().min(SEND_CHUNK)];
                        let n = tls.encrypt(chunk, &mut self.unfed);
                        if tls.failed {
                            let _ = tls.write_to(&mut self.socket);
                            self.done = true;
                            return true;
                        }
                        if n > 0 {
                            self.http.advance_output(now, n);
                            moved = true;
                        }
                    }
                    if tls.wants_write() && self.writable {
                        match tls.write_to(&mut self.socket) {
                            Ok(n) => moved |= n > 0,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                self.writable = false
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => moved = true,
                            Err(_) => {
                                self.done = true;
                                return true;
                            }
                        }
                    }
                }
            }
            if !moved {
                return progress;
            }
            progress = true;
        }
    }

    /// The core is finished with the connection: say goodbye (TLS
    /// close_notify), stop sending, and drain input for a moment.
    fn start_closing(&mut self, now: Now) {
        if let Some(tls) = &mut self.tls {
            tls.close_notify(&mut self.unfed);
            // One last write for the alert; if it does not fit now it is
            // not worth waiting for.
            while tls.wants_write() {
                match tls.write_to(&mut self.socket) {
                    Ok(n) if n > 0 => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => break,
                }
            }
        }
        if self.peer_eof {
            self.done = true;
            return;
        }
        if self.socket.shutdown(Shutdown::Write).is_err() {
            self.done = true;
            return;
        }
        self.linger_until = Some(now.mono + LINGER);
        self.drain_lingering();
    }
}

/// Counts body bytes for the access log.
fn count(log: &mut Option<Pending>, n: usize) {
    if let Some(log) = log {
        log.bytes += n as u64;
    }
}

/// What one read produced.
enum Input {
    /// Plaintext in the scratch buffer.
    Data(usize),
    /// TLS records were processed (their plaintext, if any, is in `unfed`).
    Progress,
    /// The peer finished sending.
    Eof,
    /// Nothing to read now.
    Nothing,
    /// The TLS peer broke the protocol; an alert is queued.
    TlsRefused,
    /// The socket failed (reset, ...).
    Broken,
}

fn read_plain(
    socket: &mut TcpStream,
    scratch: &mut [u8],
    readable: &mut bool,
    hung_up: bool,
) -> Input {
    if !*readable {
        return Input::Nothing;
    }
    loop {
        return match socket.read(scratch) {
            Ok(0) => Input::Eof,
            Ok(n) => {
                // A short read drained the socket; the poller reports new
                // bytes as a new edge, so the read that would only say
                // WouldBlock is saved.
                if n < scratch.len() && !hung_up {
                    *readable = false;
                }
                Input::Data(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *readable = false;
                Input::Nothing
            }
            Err(_) => Input::Broken,
        };
    }
}

/// rustls over the socket through its unbuffered API. The ciphertext
/// buffers are ours: [`Tls::release_idle_buffers`] frees them while the
/// connection waits, and they come back with the next read or write.
/// [`Tls::run`] is the one place that drives rustls's state machine.
struct Tls {
    conn: UnbufferedServerConnection,
    /// Ciphertext received and not yet used: a partial record, or whole
    /// records left while the core was full.
    incoming: Vec<u8>,
    /// The last run stopped at plaintext: `incoming` may hold more records.
    records_waiting: bool,
    /// Ciphertext for the peer; `outgoing[sent..]` is still to go.
    outgoing: Vec<u8>,
    sent: usize,
    /// The peer sent close_notify: its input is complete.
    peer_closed: bool,
    /// rustls failed; all that is left is to send its alert (if it had one).
    failed: bool,
}

/// What a run of the state machine does besides using the input.
enum Out<'a> {
    Nothing,
    /// Encrypt this plaintext once the handshake allows.
    Data(&'a [u8]),
    /// Say close_notify.
    CloseNotify,
}

/// Why a run stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// It handed over one record's plaintext; more records may follow.
    Plaintext,
    /// It needs more ciphertext from the peer (or has nothing to do).
    Waiting,
    /// The connection failed; rustls's alert, if any, is in `outgoing`.
    Failed,
}

/// What a run did: input bytes used up, plaintext bytes encrypted, why it
/// stopped.
struct Ran {
    used: usize,
    encrypted: usize,
    stop: Stop,
}

impl Tls {
    fn new(conn: UnbufferedServerConnection) -> Tls {
        Tls {
            conn,
            incoming: Vec::new(),
            records_waiting: false,
            outgoing: Vec::new(),
            sent: 0,
            peer_closed: false,
            failed: false,
        }
    }

    fn is_handshaking(&self) -> bool {
        !self.failed && self.conn.is_handshaking()
    }

    /// Whether ciphertext waits for the socket.
    fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Frees the buffers that hold nothing.
    fn release_idle_buffers(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if !self.wants_write() {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
    }

    /// Runs the state machine over the ciphertext at hand, or over the next
    /// read from the socket. Plaintext goes to `plain` (one record at a
    /// time: the caller feeds it to the core before asking for more).
    fn read(
        &mut self,
        socket: &mut TcpStream,
        scratch: &mut [u8],
        readable: &mut bool,
        hung_up: bool,
        plain: &mut Vec<u8>,
    ) -> Input {
        if self.failed {
            return Input::TlsRefused;
        }
        if self.peer_closed {
            return Input::Eof; // every record before close_notify was read
        }
        let stop = if self.records_waiting {
            self.run_incoming(plain)
        } else {
            if !*readable {
                return Input::Nothing;
            }
            let n = loop {
                match socket.read(scratch) {
                    // TCP closed (with or without close_notify): the end
                    // all the same; HTTP's framing tells a cut request.
                    Ok(0) => return Input::Eof,
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        *readable = false;
                        return Input::Nothing;
                    }
                    Err(_) => return Input::Broken,
                }
            };
            if n < scratch.len() && !hung_up {
                *readable = false; // as in `read_plain`
            }
            if self.incoming.is_empty() {
                // Usually whole records: used straight from the scratch
                // buffer, only a partial record's tail is kept.
                let ran = self.run(&mut scratch[..n], plain, Out::Nothing);
                self.incoming.extend_from_slice(&scratch[ran.used..n]);
                ran.stop
            } else {
                self.incoming.extend_from_slice(&scratch[..n]);
                self.run_incoming(plain)
            }
        };
        self.records_waiting = stop == Stop::Plaintext;
        match stop {
            Stop::Failed => Input::TlsRefused,
            Stop::Plaintext | Stop::Waiting => Input::Progress,
        }
    }

    /// Runs the state machine over `incoming` and drops what it used.
    fn run_incoming(&mut self, plain: &mut Vec<u8>) -> Stop {
        let mut incoming = std::mem::take(&mut self.incoming);
        let ran = self.run(&mut incoming, plain, Out::Nothing);
        incoming.drain(..ran.used);
        self.incoming = incoming;
        ran.stop
    }

    /// Encrypts `data` into `outgoing`; returns how much of it was taken
    /// (all of it, or nothing before the handshake is done).
    fn encrypt(&mut self, data: &[u8], plain: &mut Vec<u8>) -> usize {
        self.run(&mut [], plain, Out::Data(data)).encrypted
    }

    /// Puts close_notify into `outgoing` (only once the handshake is done).
    fn close_notify(&mut self, plain: &mut Vec<u8>) {
        let _ = self.run(&mut [], plain, Out::CloseNotify);
    }

    /// Writes what waits in `outgoing` once; the buffer is reused from the
    /// start when all of it went.
    fn write_to(&mut self, socket: &mut TcpStream) -> io::Result<usize> {
        let n = socket.write(&self.outgoing[self.sent..])?;
        self.sent += n;
        if self.sent == self.outgoing.len() {
            self.outgoing.clear();
            self.sent = 0;
        }
        Ok(n)
    }

    /// Drives rustls until it waits for the peer: processes the ciphertext
    /// in `input`, appends the plaintext of one record to `plain` (and then
    /// stops), encodes what rustls has to send into `outgoing`, and carries
    /// out `out` when the handshake allows.
    fn run(&mut self, input: &mut [u8], plain: &mut Vec<u8>, out: Out<'_>) -> Ran {
        let mut used = 0;
        let mut encrypted = 0;
        let mut out = out;
        while !self.failed {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut input[used..]);
            let stop = match state {
                Err(_) => {
                    self.failed = true;
                    None
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                plain.extend_from_slice(record.payload);
                            }
                            Err(_) => self.failed = true,
                        }
                    }
                    Some(Stop::Plaintext)
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    self.failed = !append(&mut self.outgoing, 1024, |buf| {
                        encode.encode(buf).map_err(encode_room)
                    });
                    None
                }
                // The encoded records wait in `outgoing`; rustls need not
                // know when they leave.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    None
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let wrote = match std::mem::replace(&mut out, Out::Nothing) {
                        Out::Nothing => None,
                        Out::Data(data) => {
                            // Room for the records' overhead; rustls says
                            // when it needs more.
                            let guess = data.len() + 256 * (data.len() / 16384 + 1);
                            let ok = append(&mut self.outgoing, guess, |buf| {
                                traffic.encrypt(data, buf).map_err(encrypt_room)
                            });
                            if ok {
                                encrypted = data.len();
                            }
                            Some(ok)
                        }
                        Out::CloseNotify => Some(append(&mut self.outgoing, 256, |buf| {
                            traffic.queue_close_notify(buf).map_err(encrypt_room)
                        })),
                    };
                    match wrote {
                        // Another pass encodes what the write queued (a
                        // key update, say), then stops here.
                        Some(ok) => {
                            self.failed = !ok;
                            None
                        }
                        None => Some(Stop::Waiting),
                    }
                }
                // BlockedHandshake and Closed; early data is never
                // accepted (the config does not offer it).
                Ok(_) => Some(Stop::Waiting),
            };
            used += discard;
            if let Some(stop) = stop {
                if !self.failed {
                    return Ran {
                        used,
                        encrypted,
                        stop,
                    };
                }
            }
        }
        self.encode_alert();
        Ran {
            used,
            encrypted,
            stop: Stop::Failed,
        }
    }

    /// After a failure: encodes what rustls queued (its fatal alert, when
    /// it has one to say) without letting it read any further.
    fn encode_alert(&mut self) {
        while self.conn.wants_write() {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            let Ok(ConnectionState::EncodeTlsData(mut encode)) = state else {
                break;
            };
            if !append(&mut self.outgoing, 1024, |buf| {
                encode.encode(buf).map_err(encode_room)
            }) {
                break;
            }
        }
    }
}

/// How much room an encoding needs, if that is why it failed.
fn encode_room(error: EncodeError) -> Option<usize> {
    match error {
        EncodeError::InsufficientSize(size) => Some(size.required_size),
        _ => None,
    }
}

/// How much room an encryption needs, if that is why it failed.
fn encrypt_room(error: EncryptError) -> Option<usize> {
    match error {
        EncryptError::InsufficientSize(size) => Some(size.required_size),
        _ => None,
    }
}

/// Appends to `buf` what `write` puts into fresh room after it: first
/// `guess` bytes, then as many as `write` says it needs (it answers
/// `Err(Some(needed))` for too little room, `Err(None)` for a failure).
/// Returns whether `write` succeeded.
fn append(
    buf: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> bool {
    let start = buf.len();
    let mut room = guess;
    loop {
        buf.resize(start + room, 0);
        match write(&mut buf[start..]) {
            Ok(n) => {
                buf.truncate(start + n);
                return true;
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => {
                buf.truncate(start);
                return false;
            }
        }
    }
}

/// The plain-HTTP listener's answer: the same host and target on HTTPS.
fn redirect_to_https(request: &Request, https_port: u16) -> SiteResponse {
    let Some(host) = request.host().filter(|h| !h.is_empty()) else {
        return plain_response(400, "A Host field is needed to redirect to HTTPS.\n");
    };
    // The core checked the Host field's syntax; drop its port.
    let name = match host.rfind(':') {
        Some(colon) if !host.ends_with(']') => &host[..colon],
        _ => host,
    };
    // Path and query only: an absolute-form target's own scheme and host
    // are not repeated.
    let target = match request.query() {
        Some(query) => format!("{}?{query}", request.path()),
        None => request.path().to_string(),
    };
    let location = if https_port == 443 {
        format!("https://{name}{target}")
    } else {
        format!("https://{name}:{https_port}{target}")
    };
    let body = format!("Moved to {location}\n").into_bytes();
    SiteResponse {
        head: ResponseHead::new(308)
            .header("Location", location)
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(ResponseBody::Length(body.len() as u64)),
        body: SiteBody::Bytes(body),
    }
}

/// A short plain-text answer.
fn plain_response(status: u16, text: &str) -> SiteResponse {
    let body = text.as_bytes().to_vec();
    SiteResponse {
        head: ResponseHead::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(ResponseBody::Length(body.len() as u64)),
        body: SiteBody::Bytes(body),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::sync::Arc;

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use super::*;

    /// The server's `Tls` on one end of a loopback socket, a rustls client
    /// on the other.
    struct Pair {
        server: Tls,
        socket: TcpStream,
        /// Plaintext the server received.
        received: Vec<u8>,
        client: ClientConnection,
        client_socket: StdStream,
        /// Plaintext the client received.
        answer: Vec<u8>,
        /// The client saw close_notify.
        closed: bool,
        scratch: Vec<u8>,
    }

    impl Pair {
        fn new() -> Pair {
            let setup = crate::tls::self_signed().expect("a demo certificate");
            let mut roots = RootCertStore::empty();
            roots
                .add(setup.leaf.clone())
                .expect("the leaf as trust anchor");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("default versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from("localhost").expect("a name");
            let client = ClientConnection::new(Arc::new(config), name).expect("a client");
            let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
            let client_socket =
                StdStream::connect(listener.local_addr().expect("its address")).expect("connect");
            client_socket.set_nonblocking(true).expect("non-blocking");
            let (accepted, _) = listener.accept().expect("accept");
            accepted.set_nonblocking(true).expect("non-blocking");
            let server = UnbufferedServerConnection::new(setup.config).expect("a server");
            Pair {
                server: Tls::new(server),
                socket: TcpStream::from_std(accepted),
                received: Vec::new(),
                client,
                client_socket,
                answer: Vec::new(),
                closed: false,
                scratch: vec![0; 32 * 1024],
            }
        }

        /// The server reads all there is, then sends all it has.
        fn serve(&mut self) {
            loop {
                let mut readable = true;
                let input = self.server.read(
                    &mut self.socket,
                    &mut self.scratch,
                    &mut readable,
                    false,
                    &mut self.received,
                );
                match input {
                    Input::Progress => continue,
                    Input::Nothing => break,
                    _ => panic!("the server's read failed"),
                }
            }
            while self.server.wants_write() {
                self.server
                    .write_to(&mut self.socket)
                    .expect("server write");
            }
        }

        /// The client sends what it has and takes in what came.
        fn client_turn(&mut self) {
            while self.client.wants_write() {
                self.client
                    .write_tls(&mut self.client_socket)
                    .expect("client write");
            }
            match self.client.read_tls(&mut self.client_socket) {
                Ok(_) => {
                    self.client.process_new_packets().expect("the client");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
            let mut buf = [0u8; 4096];
            loop {
                match self.client.reader().read(&mut buf) {
                    Ok(0) => break self.closed = true,
                    Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }

        /// Both sides take turns until `done` (loopback: a few turns).
        fn until(&mut self, done: impl Fn(&Pair) -> bool) {
            for _ in 0..500 {
                self.client_turn();
                self.serve();
                if done(self) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            panic!("the exchange stalled");
        }

        fn holds_no_buffers(&self) -> bool {
            self.server.incoming.capacity() == 0 && self.server.outgoing.capacity() == 0
        }
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn an_idle_connection_holds_no_ciphertext_buffers_between_requests() {
        let mut pair = Pair::new();
        pair.until(|p| !p.client.is_handshaking() && !p.server.is_handshaking());
        assert_eq!(pair.server.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

        // Handshake done, tickets sent: nothing is kept for the wait.
        pair.server.release_idle_buffers();
        assert!(pair.holds_no_buffers());

        // A request and its answer bring the buffers back for a while…
        pair.client.writer().write_all(REQUEST).expect("request");
        pair.until(|p| p.received.len() >= REQUEST.len());
        assert_eq!(pair.received, REQUEST);
        assert_eq!(
            pair.server.encrypt(RESPONSE, &mut pair.received),
            RESPONSE.len()
        );
        assert!(pair.server.wants_write());
        pair.until(|p| p.answer.len() >= RESPONSE.len());
        assert_eq!(pair.answer, RESPONSE);

        // …and the next wait frees them again.
        pair.server.release_idle_buffers();
        assert!(pair.holds_no_buffers());

        // Goodbye: the client sees close_notify.
        pair.server.close_notify(&mut pair.received);
        pair.until(|p| p.closed);
    }

    #[test]
    fn a_record_cut_in_two_is_kept_until_its_rest_comes() {
        let mut pair = Pair::new();
        pair.until(|p| !p.client.is_handshaking() && !p.server.is_handshaking());
        pair.received.clear();

        // The request's record, sent in two halves.
        pair.client.writer().write_all(REQUEST).expect("request");
        let mut record = Vec::new();
        while pair.client.wants_write() {
            pair.client.write_tls(&mut record).expect("encode");
        }
        let half = record.len() / 2;
        pair.client_socket
            .write_all(&record[..half])
            .expect("first half");
        pair.until(|p| p.server.incoming.len() == half);
        assert!(pair.received.is_empty(), "no plaintext from half a record");
        pair.server.release_idle_buffers();
        assert_eq!(pair.server.incoming.len(), half, "the half is kept");

        pair.client_socket
            .write_all(&record[half..])
            .expect("second half");
        pair.until(|p| p.received.len() >= REQUEST.len());
        assert_eq!(pair.received, REQUEST);
        pair.server.release_idle_buffers();
        assert!(pair.holds_no_buffers());
    }
}
