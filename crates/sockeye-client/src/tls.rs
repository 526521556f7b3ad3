//! TLS for `https`/`wss` URLs (crate feature `tls`): one rustls configuration, built once per
//! connection attempt, shared by the polling HTTP client and the WebSocket connector.
//!
//! The crypto provider is ring, chosen explicitly for this configuration (never the
//! process-wide default), so an application that installed another provider keeps it and the
//! workspace compiles one provider only (sockeye-redis's `tls` uses ring too).

#[cfg(feature = "tls")]
use std::sync::Arc;

use crate::error::ConnectionError;

/// What the builder was told about TLS.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    /// PEM documents whose certificates are trusted as roots.
    #[cfg(feature = "tls")]
    pub(crate) root_pems: Vec<Vec<u8>>,
    /// Without the built-in web PKI roots: only `root_pems` are trusted.
    #[cfg(feature = "tls")]
    pub(crate) no_builtin_roots: bool,
    /// A configuration given whole by the user; the options above are then ignored.
    #[cfg(feature = "tls")]
    pub(crate) config: Option<Arc<rustls::ClientConfig>>,
}

/// The TLS configuration of one connection attempt (`None` for `http`/`ws` URLs).
#[derive(Clone, Default)]
pub(crate) struct Tls {
    /// For the WebSocket transport; `None`: plain TCP.
    #[cfg(feature = "tls")]
    config: Option<Arc<rustls::ClientConfig>>,
    /// For the polling HTTP client (set for plain URLs too, see `TlsOptions::build`).
    #[cfg(feature = "tls")]
    http: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "tls")]
        let enabled = self.config.is_some();
        #[cfg(not(feature = "tls"))]
        let enabled = false;
        f.debug_struct("Tls").field("enabled", &enabled).finish()
    }
}

impl TlsOptions {
    /// The configuration for an endpoint; `secure` is true for `https`/`wss`.
    #[cfg(feature = "tls")]
    pub(crate) fn build(&self, secure: bool) -> Result<Tls, ConnectionError> {
        if !secure {
            // reqwest builds a rustls backend even for plain `http` and would look for a
            // process-wide provider (and panic without one): give it ours, trusting nothing,
            // which no `http` request ever uses.
            return Ok(Tls {
                config: None,
                http: Some(Arc::new(ring_config(rustls::RootCertStore::empty())?)),
            });
        }
        if let Some(config) = &self.config {
            return Ok(Tls {
                config: Some(config.clone()),
                http: Some(config.clone()),
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        if !self.no_builtin_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.root_pems {
            add_pem_roots(&mut roots, pem)?;
        }
        if roots.is_empty() {
            return Err(ConnectionError::InvalidOption(
                "no TLS root certificate to trust: give one with tls_root_certificate or keep \
                 the built-in roots"
                    .into(),
            ));
        }
        let config = Arc::new(ring_config(roots)?);
        Ok(Tls {
            config: Some(config.clone()),
            http: Some(config),
        })
    }

    /// Without the `tls` feature a secure URL cannot work: say so before any request.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn build(&self, secure: bool) -> Result<Tls, ConnectionError> {
        if secure {
            return Err(ConnectionError::InvalidOption(
                "https/wss URLs need the `tls` feature of sockeye-client".into(),
            ));
        }
        Ok(Tls::default())
    }
}

/// A ring configuration trusting `roots`.
#[cfg(feature = "tls")]
fn ring_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, ConnectionError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectionError::InvalidOption(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Adds every certificate of a PEM document to `roots`.
#[cfg(feature = "tls")]
fn add_pem_roots(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<(), ConnectionError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| {
            ConnectionError::InvalidOption(format!("tls_root_certificate: bad PEM: {e}"))
        })?;
        roots.add(cert).map_err(|e| {
            ConnectionError::InvalidOption(format!(
                "tls_root_certificate: not a usable root certificate: {e}"
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(ConnectionError::InvalidOption(
            "tls_root_certificate: no CERTIFICATE block in the PEM given".into(),
        ));
    }
    Ok(())
}

impl Tls {
    /// Applies the configuration to the polling HTTP client.
    pub(crate) fn http(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        #[cfg(feature = "tls")]
        {
            match &self.http {
                Some(config) => {
                    builder.tls_backend_preconfigured(rustls::ClientConfig::clone(config))
                }
                None => builder,
            }
        }
        #[cfg(not(feature = "tls"))]
        builder
    }

    /// TLS over an open TCP connection (direct or tunnelled) to `host`, for `wss`.
    pub(crate) async fn wrap(
        &self,
        tcp: tokio::net::TcpStream,
        host: &str,
    ) -> Result<Box<dyn crate::engine::websocket::Io>, ConnectionError> {
        #[cfg(feature = "tls")]
        {
            let Some(config) = &self.config else {
                return Err(ConnectionError::InvalidOption(
                    "a wss URL without a TLS configuration".into(),
                ));
            };
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
                ConnectionError::InvalidOption(format!("{host} is not a TLS server name: {e}"))
            })?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectionError::Transport(format!("WebSocket: TLS: {e}")))?;
            Ok(Box::new(tls))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (tcp, host);
            Err(ConnectionError::InvalidOption(
                "https/wss URLs need the `tls` feature of sockeye-client".into(),
            ))
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn a_pem_without_certificates_is_refused() {
        let options = TlsOptions {
            root_pems: vec![b"not a pem".to_vec()],
            ..TlsOptions::default()
        };
        let Err(e) = options.build(true) else {
            panic!("accepted a PEM without certificates");
        };
        assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
    }

    #[test]
    fn no_roots_at_all_is_refused() {
        let options = TlsOptions {
            no_builtin_roots: true,
            ..TlsOptions::default()
        };
        let Err(e) = options.build(true) else {
            panic!("accepted an empty root store");
        };
        assert!(e.to_string().contains("no TLS root certificate"), "{e}");
    }

    #[test]
    fn plain_urls_get_no_tls() {
        let options = TlsOptions {
            no_builtin_roots: true,
            ..TlsOptions::default()
        };
        assert!(options.build(false).unwrap().config.is_none());
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use super::*;

    #[test]
    fn secure_urls_need_the_feature() {
        let Err(e) = TlsOptions::default().build(true) else {
            panic!("a secure URL was accepted without the tls feature");
        };
        assert!(e.to_string().contains("`tls` feature"), "{e}");
        assert!(TlsOptions::default().build(false).is_ok());
    }
}
