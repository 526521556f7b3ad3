//! The Engine.IO v4 server of sockeye. Being written: see docs/architecture.md.
