//! Socket.IO v5 packets (socketio/socket.io-protocol). Being written: see docs/architecture.md.
