//! The chat example's tests, in one test binary: raw Socket.IO clients (`chat`) and headless
//! Chromium (`browser`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod chat;
mod sio;
