//! Test doubles shared by the unit tests: a session that records what it is sent, and a root
//! namespace on the in-memory adapter.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use sockeye_engine::{CloseReason, Frame, Transport};
use sockeye_protocol::socketio::Str;

use crate::adapter::MemoryAdapterFactory;
use crate::config::Config;
use crate::conn::Conn;
use crate::error::EmitError;
use crate::id::SocketId;
use crate::ns::{Namespace, NamespaceSpec, SharedHandlers};
use crate::pattern::NsParams;
use crate::socket::SocketRef;

/// A session that keeps every frame it is sent and reports a fixed queue length.
pub(crate) struct FakeConn {
    pub(crate) frames: Mutex<Vec<Frame>>,
    parts: http::request::Parts,
    queued: usize,
}

impl FakeConn {
    /// A session whose outgoing queue always looks `queued` frames long.
    pub(crate) fn new(queued: usize) -> Arc<FakeConn> {
        Arc::new(FakeConn {
            frames: Mutex::default(),
            parts: http::Request::new(()).into_parts().0,
            queued,
        })
    }
}

impl Conn for FakeConn {
    fn send_batch(&self, frames: &[Frame]) -> Result<(), EmitError> {
        self.frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(frames);
        Ok(())
    }
    fn queued_frames(&self) -> usize {
        self.queued
    }
    fn sid(&self) -> &str {
        "fake"
    }
    fn close(&self, _reason: CloseReason) {}
    fn transport(&self) -> Transport {
        Transport::Websocket
    }
    fn request(&self) -> &http::request::Parts {
        &self.parts
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    fn detach(&self, _ns: &Str, _id: &SocketId) {}
    fn legacy(&self) -> bool {
        false
    }
}

/// The namespace `/` with default settings on the in-memory adapter, with no server.
pub(crate) fn root_namespace() -> Arc<Namespace> {
    Namespace::new(
        NamespaceSpec {
            name: Str::from("/"),
            handlers: Arc::new(SharedHandlers::default()),
            params: NsParams::default(),
            registry: None,
        },
        Arc::new(Config::default()),
        Weak::new(),
        &MemoryAdapterFactory,
    )
}

/// A socket of `ns` on `conn`, connected (CONNECT reply sent) and listed in the namespace.
pub(crate) fn connected(ns: &Arc<Namespace>, conn: Arc<FakeConn>) -> SocketRef {
    let socket = SocketRef::new(ns.clone(), conn, ns.config.clone(), None);
    ns.member_joined();
    ns.insert(socket.clone());
    socket.finish_connect().unwrap();
    socket
}

/// The bytes of a frame.
pub(crate) fn bytes(frame: &Frame) -> &[u8] {
    match frame {
        Frame::Text(b) | Frame::Binary(b) => b,
    }
}
