//! The server under abuse and at its edges, over real loopback sockets: a
//! slowloris client, a login flood, connection caps, clients that vanish
//! in every state, a graceful shutdown, and reloads of the password file.

mod server_support;

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use portcullis_core::cred::HashParams;
use server_support::{
    client_hello, hash_line, raw_tcp, wait_until, write_user_lines, write_users, Browser, Client,
    Response, TestServer, PASSWORD, PATIENCE, USER,
};

/// A user whose password check takes a while (hundreds of milliseconds),
/// so that a test can act while it runs.
const SLOW_USER: &str = "sloth";
const SLOW_PASSWORD: &str = "patience is a virtue";

/// argon2id at OWASP's memory cost but eight times its passes.
fn slow_params() -> HashParams {
    HashParams::new(19 * 1024, 16, 1).unwrap()
}

/// Cheap parameters, as the harness's own users have.
fn cheap_params() -> HashParams {
    HashParams::new(64, 1, 1).unwrap()
}

/// Whether the server closes `socket` (EOF or reset) within `within`
/// without sending anything first.
fn closed_at_once(socket: &mut TcpStream, within: Duration) -> bool {
    socket.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match socket.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    }
}

// ----- slowloris ---------------------------------------------------------------

/// What a read on the slow connection saw within its timeout.
enum Heard {
    Nothing,
    Closed,
}

/// Reads whatever the server sends until the read timeout passes (nothing
/// more for now) or the server closes.
fn listen(client: &mut Client, received: &mut Vec<u8>) -> Heard {
    let mut buf = [0u8; 4096];
    loop {
        match client.stream.read(&mut buf) {
            Ok(0) => return Heard::Closed,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Heard::Nothing
            }
            Err(_) => return Heard::Closed,
        }
    }
}

#[test]
fn a_slowloris_client_is_cut_off_at_the_head_deadline_while_others_are_served() {
    let server = TestServer::start(|_, _| {});
    let mut slow = server.https_client();
    // Each read waits half a second: the pace of the attack.
    slow.tcp()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();

    // A head that never ends, one byte every 500 ms.
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
    let started = Instant::now();
    let mut received = Vec::new();
    let mut others_served = 0;
    let mut sent_bytes = 0usize;
    let closed_after = loop {
        let byte = head.get(sent_bytes).copied().unwrap_or(b'a');
        if slow.send(&[byte]).is_err() {
            break started.elapsed();
        }
        sent_bytes += 1;
        if let Heard::Closed = listen(&mut slow, &mut received) {
            break started.elapsed();
        }
        // Meanwhile other visitors are served without delay.
        let elapsed = started.elapsed();
        if (elapsed > Duration::from_secs(3) && others_served == 0)
            || (elapsed > Duration::from_secs(7) && others_served == 1)
        {
            let asked = Instant::now();
            let mut other = server.https_client();
            let page = other
                .get("/", &[("Accept", "text/html")])
                .expect("another client is served");
            assert_eq!(page.status, 303);
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "another client waited {:?} while the slowloris dripped",
                asked.elapsed()
            );
            others_served += 1;
        }
        assert!(
            elapsed < Duration::from_secs(15),
            "the slow client is still connected after {elapsed:?}"
        );
    };
    assert_eq!(others_served, 2);
    // The deadline runs from the first byte: 10 s, noticed within one of our
    // half-second reads (and a little slack for a loaded machine).
    assert!(
        closed_after >= Duration::from_millis(9_900) && closed_after <= Duration::from_secs(12),
        "closed after {closed_after:?} ({sent_bytes} bytes sent)"
    );
    assert!(
        received.starts_with(b"HTTP/1.1 408 "),
        "the server says why it hangs up: {:?}",
        String::from_utf8_lossy(&received)
    );
    // Once the client hangs up too, the server has forgotten it.
    drop(slow);
    server.wait_for_open_connections(0);
}

// ----- login flood ---------------------------------------------------------------

/// One flood post's fate.
struct Shot {
    response: Response,
    took: Duration,
}

#[test]
fn a_login_flood_beyond_the_pool_is_answered_503_at_once_while_a_user_keeps_browsing() {
    // One worker and one queued check: room for two checks at a time.
    let server = TestServer::start(|settings, _| {
        settings.workers = 1;
        settings.verify_queue = 1;
    });
    let mut fred = Browser::new(&server);
    assert_eq!(fred.log_in(USER, PASSWORD).status, 303);

    // Bursts of simultaneous posts for unknown users: each check runs the
    // dummy hash at full cost (tens of ms), so a burst overflows the pool.
    const ROUNDS: usize = 3;
    const BURST: usize = 12;
    let mut shots = Vec::new();
    let mut slowest_get = Duration::ZERO;
    let mut gets = 0;
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(BURST + 1));
        let attackers: Vec<_> = (0..BURST)
            .map(|i| {
                let mut browser = Browser::new(&server);
                let post = browser.login_post_bytes(&format!("nobody-{round}-{i}"), "guess");
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    let sent = Instant::now();
                    browser.client.send(&post).expect("the post is sent");
                    let response = browser.client.read_response(false).expect("an answer");
                    Shot {
                        response,
                        took: sent.elapsed(),
                    }
                })
            })
            .collect();
        barrier.wait();
        // Fred browses through the flood.
        loop {
            let asked = Instant::now();
            let page = fred.get("/");
            slowest_get = slowest_get.max(asked.elapsed());
            gets += 1;
            assert_eq!(page.status, 200, "fred is still logged in");
            assert!(page.text().contains("Hello, fred!"));
            if attackers.iter().all(|a| a.is_finished()) {
                break;
            }
        }
        shots.extend(attackers.into_iter().map(|a| a.join().unwrap()));
    }
    assert!(
        slowest_get < Duration::from_secs(1),
        "fred's slowest page took {slowest_get:?}"
    );
    assert!(gets >= ROUNDS);

    let mut refused = 0;
    let mut checked = 0;
    for shot in &shots {
        match shot.response.status {
            503 => {
                refused += 1;
                assert_eq!(shot.response.header("retry-after"), Some("1"));
                assert!(
                    shot.took < Duration::from_millis(500),
                    "a 503 took {:?}: the loop stalled",
                    shot.took
                );
            }
            200 => {
                checked += 1;
                assert!(shot.response.text().contains("Wrong username or password."));
            }
            other => panic!("unexpected answer {other} to a flood post"),
        }
    }
    assert!(
        refused > 0,
        "bursts of {BURST} never overflowed a pool with room for 2 ({checked} checked)"
    );
    assert!(checked > 0, "the pool checked nothing");
    // Each checked post is a real failure against this address, which gets
    // 20 free ones; the test needs fewer, or fred would rightly be throttled.
    assert!(
        checked < 20,
        "{checked} posts were checked; the bursts did not overflow the pool as planned"
    );

    // The refused posts were never tried, so they were taken back from the
    // counters: 36 charged failures from this address would throttle it.
    let mut again = Browser::new(&server);
    let login = again.log_in(USER, PASSWORD);
    assert_eq!(
        login.status,
        303,
        "after {refused} refused and {checked} checked posts: {}",
        login.text()
    );
}

// ----- connection caps -----------------------------------------------------------

/// Whether nothing at all arrives on `socket` for `quiet` (no answer, no
/// close): the connection waits.
fn waits(socket: &mut TcpStream, quiet: Duration) -> bool {
    socket.set_read_timeout(Some(quiet)).unwrap();
    let mut buf = [0u8; 1];
    match socket.peek(&mut buf) {
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    }
}

#[test]
fn at_max_connections_new_connections_wait_in_the_queue_until_one_leaves() {
    let server = TestServer::start(|settings, _| settings.max_connections = 5);
    // The cap counts both listeners together.
    let mut tls: Vec<Client> = (0..3).map(|_| server.https_client()).collect();
    let mut plain: Vec<Client> = (0..2).map(|_| server.http_client()).collect();
    server.wait_for_open_connections(5);

    // A sixth is left in the system's accept queue: its request gets no
    // answer and it is not closed either.
    let mut sixth = raw_tcp(server.http.unwrap());
    std::io::Write::write_all(
        &mut sixth,
        &server_support::request_bytes("GET", "/queued", &[], b""),
    )
    .unwrap();
    assert!(waits(&mut sixth, Duration::from_secs(1)));
    assert_eq!(server.handle.open_connections(), 5);

    // The five are still served.
    for client in &mut tls {
        assert_eq!(
            client.get("/", &[("Accept", "text/html")]).unwrap().status,
            303
        );
    }
    for client in &mut plain {
        assert_eq!(
            client.get("/", &[("Accept", "text/html")]).unwrap().status,
            308
        );
    }

    // One leaves: the sixth is let in and answered, and the server is full
    // again.
    drop(plain.pop());
    sixth.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sixth = Client::from_tcp(sixth);
    let answer = sixth
        .read_response(false)
        .expect("the queued request is answered");
    assert_eq!(answer.status, 308);
    assert!(answer
        .header("location")
        .is_some_and(|l| l.ends_with("/queued")));
    server.wait_for_open_connections(5);
    let mut seventh = raw_tcp(server.http.unwrap());
    assert!(waits(&mut seventh, Duration::from_millis(500)));
}

#[test]
fn beyond_max_connections_per_client_a_new_connection_is_closed_at_once_until_one_leaves() {
    let server = TestServer::start(|settings, _| settings.max_connections_per_client = 3);
    let mut clients: Vec<Client> = (0..3).map(|_| server.https_client()).collect();
    server.wait_for_open_connections(3);

    // Far below the global cap, yet refused: all come from 127.0.0.1.
    let mut fourth = raw_tcp(server.https.unwrap());
    assert!(closed_at_once(&mut fourth, Duration::from_secs(2)));
    let mut fifth = raw_tcp(server.http.unwrap());
    assert!(closed_at_once(&mut fifth, Duration::from_secs(2)));
    for client in &mut clients {
        assert_eq!(
            client.get("/", &[("Accept", "text/html")]).unwrap().status,
            303
        );
    }

    drop(clients.pop());
    server.wait_for_open_connections(2);
    let mut newcomer = server.http_client();
    assert_eq!(
        newcomer
            .get("/", &[("Accept", "text/html")])
            .unwrap()
            .status,
        308
    );
    server.wait_for_open_connections(3);
    let mut another = raw_tcp(server.https.unwrap());
    assert!(closed_at_once(&mut another, Duration::from_secs(2)));
}

// ----- abrupt disconnects ----------------------------------------------------------

const BIG: usize = 4 * 1024 * 1024;

/// A server with static files (a public 4 MiB `/big.bin`), fred and
/// `more_users` (password-file lines), and fred logged in on a keep-alive
/// connection that stays open throughout: the baseline is that one
/// connection.
fn disconnect_server(more_users: &[String]) -> (TestServer, Browser) {
    let server = TestServer::start(|settings, dir| {
        let site = dir.path().join("site");
        std::fs::create_dir(&site).unwrap();
        std::fs::write(site.join("index.html"), "<p>home</p>\n").unwrap();
        let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        std::fs::write(site.join("big.bin"), big).unwrap();
        settings.root = Some(site);
        settings.public = vec!["/big.bin".to_string()];
        let mut users = vec![hash_line(USER, PASSWORD, cheap_params())];
        users.extend_from_slice(more_users);
        write_user_lines(&dir.path().join("users.passwd"), &users);
    });
    let mut witness = Browser::new(&server);
    assert_eq!(witness.log_in(USER, PASSWORD).status, 303);
    server.wait_for_open_connections(1);
    (server, witness)
}

/// After a client vanished: the server forgets it, and it still serves the
/// connection that stayed and a new one. Both are handed back witness
/// first: dropped in that order, the witness hangs up before the server
/// shuts down, which then need not wait for it.
fn assert_recovered(server: TestServer, mut witness: Browser) -> (Browser, TestServer) {
    let server = back_to_baseline(server);
    let home = witness.get("/");
    assert_eq!(home.status, 200);
    assert_eq!(home.text(), "<p>home</p>\n");
    let mut fresh = server.https_client();
    let head = fresh.request("HEAD", "/big.bin", &[], b"").unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(BIG.to_string().as_str())
    );
    (witness, server)
}

/// Waits until only the witness's connection is open. A server that never
/// gets there may be wedged in a busy loop, and the harness's shutdown on
/// drop would then wait for it forever: it is abandoned (leaked) so that
/// the test fails instead of hanging.
fn back_to_baseline(server: TestServer) -> TestServer {
    if wait_until(|| server.handle.open_connections() == 1).is_err() {
        let open = server.handle.open_connections();
        std::mem::forget(server);
        panic!(
            "the server still has {open} connections open, 1 expected (abandoned: it may be wedged)"
        );
    }
    server
}

/// Time for the server to take in what was just sent.
fn let_it_arrive() {
    thread::sleep(Duration::from_millis(50));
}

#[test]
fn a_client_connecting_and_closing_without_a_word_is_forgotten() {
    // What a port scanner or a TCP health check does.
    let (server, witness) = disconnect_server(&[]);
    let socket = raw_tcp(server.https.unwrap());
    server.wait_for_open_connections(2);
    drop(socket);
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_mid_handshake_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let hello = client_hello(&server);
    let mut socket = raw_tcp(server.https.unwrap());
    std::io::Write::write_all(&mut socket, &hello[..hello.len() / 2]).unwrap();
    server.wait_for_open_connections(2);
    let_it_arrive();
    drop(socket);
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_after_the_handshake_before_asking_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let client = server.https_client();
    server.wait_for_open_connections(2);
    drop(client);
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_mid_head_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let mut client = server.https_client();
    client
        .send(b"GET /index.html HTTP/1.1\r\nHost: loc")
        .unwrap();
    server.wait_for_open_connections(2);
    let_it_arrive();
    drop(client);
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_mid_login_body_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let mut browser = Browser::new(&server);
    let post = browser.login_post_bytes(USER, PASSWORD);
    // Everything but the body's last bytes.
    browser.client.send(&post[..post.len() - 5]).unwrap();
    server.wait_for_open_connections(2);
    let_it_arrive();
    drop(browser);
    let (witness, server) = assert_recovered(server, witness);
    assert_eq!(server.handle.sessions(), 1, "only the witness logged in");
    drop(witness);
}

#[test]
fn a_client_vanishing_while_its_password_is_checked_is_forgotten() {
    let (server, witness) =
        disconnect_server(&[hash_line(SLOW_USER, SLOW_PASSWORD, slow_params())]);
    let mut browser = Browser::new(&server);
    let post = browser.login_post_bytes(SLOW_USER, SLOW_PASSWORD);
    browser.client.send(&post).unwrap();
    // The check takes hundreds of milliseconds; leave in the middle.
    let_it_arrive();
    drop(browser);
    // The verdict comes back for a connection that is gone; the loop
    // carries on, the witness's session untouched.
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_mid_response_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let mut client = server.https_client();
    client
        .send(&server_support::request_bytes("GET", "/big.bin", &[], b""))
        .unwrap();
    // A little of the 4 MiB, then gone with the rest unread (which makes
    // the kernel answer with a reset rather than a FIN).
    let mut buf = [0u8; 16 * 1024];
    let mut got = 0;
    while got < 32 * 1024 {
        let n = client.stream.read(&mut buf).unwrap();
        assert!(n > 0, "the response is cut short");
        got += n;
    }
    assert!(server.handle.open_connections() == 2);
    drop(client);
    assert_recovered(server, witness);
}

#[test]
fn a_client_vanishing_from_an_idle_keep_alive_connection_is_forgotten() {
    let (server, witness) = disconnect_server(&[]);
    let mut client = server.https_client();
    let head = client.request("HEAD", "/big.bin", &[], b"").unwrap();
    assert_eq!(head.status, 200);
    server.wait_for_open_connections(2);
    drop(client);
    assert_recovered(server, witness);
}

#[test]
fn a_client_resetting_the_connection_is_forgotten() {
    // std cannot set SO_LINGER to zero, but Linux resets a connection
    // closed with unread data in its receive buffer: ask, wait until the
    // answer has arrived, and close without reading it.
    let (server, witness) = disconnect_server(&[]);
    let mut client = server.https_client();
    client
        .send(&server_support::request_bytes("HEAD", "/big.bin", &[], b""))
        .unwrap();
    let mut peek = [0u8; 1];
    assert_eq!(client.tcp().peek(&mut peek).unwrap(), 1);
    drop(client);
    let (witness, server) = assert_recovered(server, witness);

    // The same on the plain listener, which redirects.
    let mut plain = raw_tcp(server.http.unwrap());
    std::io::Write::write_all(
        &mut plain,
        &server_support::request_bytes("GET", "/", &[], b""),
    )
    .unwrap();
    assert_eq!(plain.peek(&mut peek).unwrap(), 1);
    drop(plain);
    assert_recovered(server, witness);
}

// ----- graceful shutdown -----------------------------------------------------------

#[test]
fn a_graceful_shutdown_answers_the_login_in_flight_closes_idle_connections_and_refuses_new_ones() {
    let server = TestServer::start(|settings, dir| {
        settings.workers = 1;
        // Generous: the check runs at the lowest priority, so on a machine
        // busy with other tests it can take seconds; the shutdown ends as
        // soon as it is answered anyway.
        settings.shutdown_timeout = Duration::from_secs(30);
        write_user_lines(
            &dir.path().join("users.passwd"),
            &[hash_line(SLOW_USER, SLOW_PASSWORD, slow_params())],
        );
    });
    let https = server.https.unwrap();

    // How long a login takes here (the check dominates).
    let mut probe = Browser::new(&server);
    let post = probe.login_post_bytes(SLOW_USER, SLOW_PASSWORD);
    let asked = Instant::now();
    probe.client.send(&post).unwrap();
    assert_eq!(probe.client.read_response(false).unwrap().status, 303);
    let check = asked.elapsed();
    assert!(
        check >= Duration::from_millis(80),
        "the slow user's check took only {check:?}; the test needs a slower one"
    );
    drop(probe);

    // A visitor who fetched a page and keeps the connection open.
    let mut idle = Browser::new(&server);
    assert_eq!(idle.get("/").status, 303);

    // A login whose check is running when the shutdown comes.
    let mut login = Browser::new(&server);
    let post = login.login_post_bytes(SLOW_USER, SLOW_PASSWORD);
    login.client.send(&post).unwrap();
    let answer = thread::spawn(move || {
        let response = login.client.read_response(false);
        (response, Instant::now(), login)
    });
    thread::sleep(check / 4);
    let shutdown_at = Instant::now();
    server.handle.shutdown();

    let (response, answered_at, mut login) = answer.join().unwrap();
    let response = response.expect("the login in flight is answered");
    assert!(
        answered_at > shutdown_at,
        "the check finished before the shutdown; the test's timing failed"
    );
    assert_eq!(response.status, 303, "{}", response.text());
    assert!(!response.cookies().is_empty(), "the login succeeded");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(login.client.closed_by_server());

    assert!(
        idle.client.closed_by_server(),
        "the idle connection is closed"
    );
    assert!(
        wait_until(|| TcpStream::connect(https).is_err()).is_ok(),
        "new connections are refused"
    );
    let stopping = Instant::now();
    drop(login);
    drop(idle);
    assert!(server.stop().is_ok());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        stopping.elapsed()
    );
}

// ----- reload ------------------------------------------------------------------------

/// Long enough for the loop to have handled a reload (it has nothing else
/// to do); used where nothing observable changes.
fn let_it_reload() {
    thread::sleep(Duration::from_millis(300));
}

#[test]
fn a_reload_that_removes_a_user_ends_their_sessions_and_a_broken_file_changes_nothing() {
    let server = TestServer::start(|_, _| {});
    let users = server.path("users.passwd");
    let mut fred = Browser::new(&server);
    assert_eq!(fred.log_in(USER, PASSWORD).status, 303);
    assert_eq!(fred.get("/").status, 200);
    assert!(wait_until(|| server.handle.sessions() == 1).is_ok());

    // fred is gone from the file; wilma is new.
    write_users(&users, &[("wilma", "yabba dabba doo")]);
    server.handle.reload();
    assert!(wait_until(|| server.handle.sessions() == 0).is_ok());
    let page = fred.get("/");
    assert_eq!(page.status, 303);
    assert!(page
        .header("location")
        .is_some_and(|l| l.starts_with("/__login__")));
    let refused = Browser::new(&server).log_in(USER, PASSWORD);
    assert!(refused.text().contains("Wrong username or password."));

    let mut wilma = Browser::new(&server);
    assert_eq!(wilma.log_in("wilma", "yabba dabba doo").status, 303);
    assert!(wait_until(|| server.handle.sessions() == 1).is_ok());

    // A file with a bad line is refused whole: were it taken even in part,
    // wilma's entry would change (ending her session) and barney would be
    // let in.
    let barney = hash_line("barney", "rubble", cheap_params());
    std::fs::write(&users, format!("wilma:not-a-hash\n{barney}")).unwrap();
    server.handle.reload();
    let_it_reload();
    assert_eq!(server.handle.sessions(), 1);
    let page = wilma.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Hello, wilma!"));
    assert_eq!(
        Browser::new(&server)
            .log_in("wilma", "yabba dabba doo")
            .status,
        303
    );
    let stranger = Browser::new(&server).log_in("barney", "rubble");
    assert!(stranger.text().contains("Wrong username or password."));
}

/// bcrypt of "correct horse" by Apache's `htpasswd -B -C 4` (a vector the
/// core's tests verify).
const BOB_BCRYPT: &str = "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO";

#[test]
fn a_bcrypt_entry_is_upgraded_on_disk_at_login_and_a_reload_keeps_the_session() {
    let server = TestServer::start(|_, dir| {
        write_user_lines(
            &dir.path().join("users.passwd"),
            &[
                hash_line(USER, PASSWORD, cheap_params()),
                format!("bob:{BOB_BCRYPT}\n"),
            ],
        );
    });
    let users = server.path("users.passwd");
    let mut bob = Browser::new(&server);
    assert_eq!(bob.log_in("bob", "correct horse").status, 303);
    let mut fred = Browser::new(&server);
    assert_eq!(fred.log_in(USER, PASSWORD).status, 303);

    let bob_line = || {
        std::fs::read_to_string(&users)
            .unwrap()
            .lines()
            .find(|line| line.starts_with("bob:"))
            .map(str::to_string)
    };
    assert!(
        wait_until(|| bob_line().is_some_and(|l| l.starts_with("bob:$argon2id$"))).is_ok(),
        "bob's line is still {:?}",
        bob_line()
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with(&format!("{USER}:$argon2id$")), "{text}");

    // Reload the file as written back, minus fred: fred's session ends
    // (which shows the reload happened), bob's does not, as the upgrade
    // is the hash he logged in with.
    let without_fred: String = text
        .lines()
        .filter(|line| !line.starts_with(&format!("{USER}:")))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&users, without_fred).unwrap();
    assert!(wait_until(|| server.handle.sessions() == 2).is_ok());
    server.handle.reload();
    assert!(wait_until(|| server.handle.sessions() == 1).is_ok());
    assert_eq!(fred.get("/").status, 303);
    let page = bob.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Hello, bob!"));
    // And the new hash takes the same password.
    assert_eq!(
        Browser::new(&server).log_in("bob", "correct horse").status,
        303
    );
}
