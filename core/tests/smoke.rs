use portcullis_core::*;
use std::time::{Instant, SystemTime};

#[test]
fn smoke() {
    let now = Now::new(Instant::now(), SystemTime::UNIX_EPOCH);
    let mut c = Connection::new(now, Limits::default());
    let n = c.receive(now, b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    assert!(n > 0);
    let Some(Event::Request(r)) = c.poll_event() else { panic!() };
    assert_eq!(r.path(), "/a");
    c.send_response(now, ResponseHead::new(200).header("X-A", "1").body(ResponseBody::Length(2))).unwrap();
    c.send_body(now, b"hi").unwrap();
    c.finish_response(now).unwrap();
    let out = String::from_utf8(c.pending_output().to_vec()).unwrap();
    println!("{out}");
    let l = c.pending_output().len();
    c.advance_output(now, l);
    let Some(Event::Request(r)) = c.poll_event() else { panic!() };
    assert_eq!(r.method(), "POST");
    let mut buf = [0u8; 10];
    assert_eq!(c.read_body(now, &mut buf).unwrap(), BodyRead::Data(3));
    assert_eq!(c.read_body(now, &mut buf).unwrap(), BodyRead::End);
    c.send_response(now, ResponseHead::new(200).body(ResponseBody::Streamed)).unwrap();
    c.send_body(now, b"hello").unwrap();
    c.finish_response(now).unwrap();
    println!("{}", String::from_utf8_lossy(c.pending_output()));
    c.receive(now, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
    println!("{:?}", c.poll_event());
    println!("{}", String::from_utf8_lossy(c.pending_output()));
    assert!(!c.is_closed());
    let l = c.pending_output().len();
    c.advance_output(now, l);
    assert!(c.is_closed());
}
