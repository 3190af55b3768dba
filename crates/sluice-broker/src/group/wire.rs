//! Small conversions shared by the group API handlers.

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// An owned string as the protocol's string type.
pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// An optional owned string as the protocol's nullable string type.
pub fn opt_str_bytes(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}

/// The error code of a result (0 for success).
pub fn code<T>(result: &Result<T, ResponseError>) -> i16 {
    match result {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}
