//! HTTP/1.1 message syntax: request-head parsing, body framing, response
//! encoding and the limits that bound them.

pub(crate) mod chunked;
mod error;
pub(crate) mod head;
mod limits;
mod request;
pub(crate) mod response;

pub use error::{ApiError, ProtocolError, ProtocolErrorKind};
pub use head::MAX_HEADERS_CAP;
pub use limits::Limits;
pub use request::{Request, RequestBody, Version};
pub use response::{is_reserved_header, reason_phrase, ResponseBody, ResponseHead};
