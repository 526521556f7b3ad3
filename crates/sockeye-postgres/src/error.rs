//! Errors of the PostgreSQL adapter.

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// A setting is unusable; the message says which and what is allowed.
    #[error("invalid PostgreSQL adapter setting: {0}")]
    Config(String),
    /// The database could not be reached or refused the connection: check the connection
    /// string, that the server runs, and that the user may log in.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// The database refused a setup statement (e.g. creating the attachments table: grant
    /// the user CREATE, or create it yourself and set `create_table(false)`).
    #[error("PostgreSQL refused {what}: {source}")]
    Setup {
        /// The statement's purpose.
        what: &'static str,
        /// The database's answer.
        #[source]
        source: tokio_postgres::Error,
    },
}
