//! [`Rejection`]: why an extractor refused to produce its value.

use std::borrow::Cow;
use std::convert::Infallible;

use serde_json::{Value, json};

/// Why an extractor could not produce its value; the handler is then not called.
///
/// A rejection is either *client-facing* (the client sent something unusable: bad data, a
/// missing auth payload; the client is told why) or *server-side* (the server is misconfigured:
/// a state or extension that was never registered; the client only learns that the server
/// failed, the details go to the log).
///
/// For an event whose sender asked for an ack, the ack carries one argument:
/// `{"error": {"code": "...", "message": "..."}}`. For a connect handler, the connection is
/// refused with that message (`connect_error` on the client, `err.data.code` holds the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    code: Cow<'static, str>,
    message: String,
    client_facing: bool,
}

/// What a client is told when the server itself failed to run its handler.
const SERVER_ERROR_MESSAGE: &str = "internal server error";

impl Rejection {
    /// A rejection caused by what the client sent; `message` is shown to the client.
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Rejection {
        Rejection {
            code: code.into(),
            message: message.into(),
            client_facing: true,
        }
    }

    /// A rejection caused by the server's configuration; `message` is only logged, the client
    /// sees `internal server error`.
    pub fn server(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Rejection {
        Rejection {
            code: code.into(),
            message: message.into(),
            client_facing: false,
        }
    }

    /// A short machine-readable code (`invalid_data`, `missing_auth`, `missing_state`, ...).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The full explanation, as logged.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the client caused it (and is told the message).
    pub fn is_client_facing(&self) -> bool {
        self.client_facing
    }

    /// The message the client receives.
    pub fn client_message(&self) -> &str {
        if self.client_facing {
            &self.message
        } else {
            SERVER_ERROR_MESSAGE
        }
    }

    /// The code the client receives (`internal` for server-side rejections).
    pub fn client_code(&self) -> &str {
        if self.client_facing {
            &self.code
        } else {
            "internal"
        }
    }

    /// The ack argument sent to a client whose event was rejected.
    pub fn to_ack_value(&self) -> Value {
        json!({ "error": { "code": self.client_code(), "message": self.client_message() } })
    }

    /// The refusal sent to a client whose connection was rejected by an extractor.
    pub fn to_refusal(&self) -> crate::error::ConnectionRefusedError {
        crate::error::ConnectionRefusedError::with_data(
            self.client_message(),
            json!({ "code": self.client_code() }),
        )
    }
}

impl From<Infallible> for Rejection {
    fn from(never: Infallible) -> Rejection {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rejections_hide_their_details_from_clients() {
        let r = Rejection::server("missing_state", "State<Db> was never registered");
        assert_eq!(r.client_message(), "internal server error");
        assert_eq!(
            r.to_ack_value(),
            json!({"error": {"code": "internal", "message": "internal server error"}})
        );
        assert_eq!(r.message(), "State<Db> was never registered");
    }

    #[test]
    fn client_rejections_explain_themselves() {
        let r = Rejection::client("invalid_data", "missing field `text`");
        assert_eq!(
            r.to_ack_value(),
            json!({"error": {"code": "invalid_data", "message": "missing field `text`"}})
        );
        let refusal = r.to_refusal();
        assert_eq!(refusal.message, "missing field `text`");
        assert_eq!(refusal.data, Some(json!({"code": "invalid_data"})));
    }
}
