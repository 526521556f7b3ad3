//! `tracing` spans carry the ids: the Engine.IO session span its `sid`, the socket's connect
//! step and each event handler the namespace and socket id (and the event name), inside the
//! session's span. Read back with a small capturing layer, the default subscriber of this
//! test's (single) thread only.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sockeye::prelude::*;
use sockeye_testkit::sio::SioClient;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::common::{self, WAIT};

#[derive(Clone, Default, Debug)]
struct Fields(HashMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// A span as created: its name, fields, and its ancestors' (innermost first).
#[derive(Debug)]
struct SeenSpan {
    name: &'static str,
    fields: Fields,
    ancestors: Vec<(&'static str, Fields)>,
}

impl SeenSpan {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.0.get(name).map(String::as_str)
    }

    /// The `sid` of the `engine.session` span this one is in.
    fn session_sid(&self) -> Option<&str> {
        self.ancestor("engine.session")
            .and_then(|f| f.0.get("sid"))
            .map(String::as_str)
    }

    fn ancestor(&self, name: &str) -> Option<&Fields> {
        self.ancestors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<SeenSpan>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let Some(span) = ctx.span(id) else { return };
        let ancestors = span
            .scope()
            .skip(1)
            .map(|p| {
                let fields = p.extensions().get::<Fields>().cloned().unwrap_or_default();
                (p.name(), fields)
            })
            .collect();
        span.extensions_mut().insert(fields.clone());
        self.0.lock().unwrap().push(SeenSpan {
            name: attrs.metadata().name(),
            fields,
            ancestors,
        });
    }
}

// One thread: every task of the server and client runs where the default subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn session_socket_and_event_spans_carry_the_ids() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let io = common::builder().build();
    io.ns("/spans", async |_: SocketRef| {}).on(
        "ping",
        async |socket: SocketRef, Data(v): Data<serde_json::Value>| {
            let _ = socket.emit("pong", &v);
        },
    );
    let addr = common::serve(&io).await;
    let mut client = SioClient::connected(addr, "/spans", None, WAIT)
        .await
        .unwrap();
    client.emit("ping", &[json!(1)]).await.unwrap();
    assert!(client.event("pong", WAIT).await.is_some());

    let spans = capture.0.lock().unwrap();
    let sessions: Vec<&SeenSpan> = spans
        .iter()
        .filter(|s| s.name == "engine.session")
        .collect();
    assert_eq!(sessions.len(), 1, "{spans:#?}");
    let session = sessions[0];
    assert_eq!(session.field("transport"), Some("websocket"));
    let sid = session.field("sid").expect("the session span has a sid");
    assert!(!sid.is_empty());

    let socket = spans
        .iter()
        .find(|s| s.name == "socket")
        .expect("a socket span");
    assert_eq!(socket.field("ns"), Some("/spans"));
    assert_eq!(socket.field("socket"), Some(client.sid.as_str()));
    assert_eq!(socket.session_sid(), Some(sid));

    let event = spans
        .iter()
        .find(|s| s.name == "event")
        .expect("an event span");
    assert_eq!(event.field("ns"), Some("/spans"));
    assert_eq!(event.field("socket"), Some(client.sid.as_str()));
    assert_eq!(event.field("event"), Some("ping"));
    assert_eq!(event.session_sid(), Some(sid));
}
