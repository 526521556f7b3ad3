//! Test harness for sockeye's fault tests (not published).
//!
//! - [`FaultProxy`]: a TCP proxy on 127.0.0.1 between a client and a server (or a node and
//!   Redis) that can pause, delay, throttle or blackhole each direction, half-close it, or
//!   reset every connection.
//! - [`ws`]: raw WebSocket framing, for inputs a well-behaved client library refuses to send
//!   (fragment floods, truncated frames).
//! - [`HttpProxy`]: an HTTP forward proxy (CONNECT and absolute-form requests, optional
//!   Basic credentials) that records what it was asked, for the client's proxy tests.
//! - [`h2raw`]: a raw HTTP/2 client, for streams that never end, resets mid-message, more
//!   streams than allowed and malformed extended CONNECT requests.
//! - [`hostile_server`]: a loopback Engine.IO server that answers with scripted, broken or
//!   malicious bytes (endless bodies, oversized frames, silence), for the client's tests.
//! - [`sio`]: a minimal Socket.IO client that shows exactly what a server sends.
//! - [`panics`]: counts panics outside test code, so a hostile-input test fails when the
//!   server panicked even though the panic was caught and only closed the connection.
//! - [`heap`]: a counting global allocator (live bytes and blocks per thread), for the
//!   memory budget tests.
//! - [`contract`]: the adapter contract suite every adapter runs
//!   ([`adapter_contract!`]).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod contract;
pub mod h2raw;
pub mod heap;
pub mod hostile_server;
mod http_proxy;
pub mod panics;
mod proxy;
pub mod redis_cluster;
pub mod sio;
pub mod ws;

pub use http_proxy::{HttpProxy, ProxyRequest};
pub use proxy::{Direction, Fault, FaultProxy};
