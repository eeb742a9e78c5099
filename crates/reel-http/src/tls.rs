//! TLS with rustls (the `ring` provider, the one already in the build) for
//! both directions of reel's HTTP: the server side of `reel serve` and
//! `reel edge` ([`ServerTls`]: a PEM certificate chain and key, HTTP/2 and
//! HTTP/1.1 offered by ALPN, reloaded from the same files on SIGHUP by
//! [`crate::server::serve_http`]), and the client side of an edge's HTTPS
//! upstream ([`client_config`]: a PEM CA bundle, or the system's roots).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocol ids the server offers, most preferred first (RFC 7301;
/// RFC 9113 3.2 names HTTP/2 over TLS `h2`).
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The files a TLS server reads its identity from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key: PathBuf,
}

/// Why a TLS setup could not be made; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading the {role} {path}: {source}")]
    Read {
        /// What the file is for, e.g. "tls certificate".
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("the {role} {path} is not usable PEM: {detail}")]
    Pem {
        /// What the file is for.
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("the tls certificate {cert} and key {key} cannot be used together: {source}")]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// No trusted root could be found for an HTTPS client.
    #[error("no trusted root certificates: {0}")]
    Roots(String),
}

/// A TLS server identity that can be reloaded from its files while
/// connections are served: each new connection takes the current one.
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl ServerTls {
    /// Reads and checks the files (blocking IO: call it at startup or on a
    /// blocking thread).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(config),
        })
    }

    /// The files this identity is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, when they are usable, makes them the
    /// identity of new connections; otherwise the current one stays.
    /// Blocking IO.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The acceptor of a new connection.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

/// Which certificates an HTTPS client trusts.
#[derive(Clone, Copy, Debug)]
pub enum ClientRoots<'a> {
    /// Only those of this PEM bundle (e.g. a private CA).
    Bundle(&'a Path),
    /// The system's (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).
    System,
    /// None: the client of a plain-HTTP upstream, which never needs one
    /// (so a machine without a CA store can still run it).
    Unused,
}

/// The rustls client configuration of an HTTPS upstream, trusting `roots`.
/// No ALPN is set; the connector sets it. Blocking IO.
pub fn client_config(roots: ClientRoots<'_>) -> Result<rustls::ClientConfig, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        ClientRoots::Bundle(path) => {
            for cert in read_certs(path, "upstream ca bundle")? {
                store.add(cert).map_err(|error| TlsError::Pem {
                    role: "upstream ca bundle",
                    path: path.to_path_buf(),
                    detail: format!("a certificate is not a usable trust anchor: {error}"),
                })?;
            }
        }
        ClientRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (n_added, _) = store.add_parsable_certificates(found.certs);
            if n_added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(TlsError::Roots(format!(
                    "the system has none ({}); install ca-certificates or pass a ca bundle",
                    errors.join("; ")
                )));
            }
        }
        ClientRoots::Unused => {}
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Roots(error.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(config)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config of `files`, offering h2 and http/1.1.
fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_certs(&files.cert, "tls certificate")?;
    let key = read_key(&files.key)?;
    let identity_error = |source| TlsError::Identity {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(identity_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(identity_error)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|id| id.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_file(path: &Path, role: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        role,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file; at least one.
fn read_certs(path: &Path, role: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, role)?;
    let pem_error = |detail: String| TlsError::Pem {
        role,
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(error.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(
            "it holds no CERTIFICATE section; give a PEM certificate (chain)".to_owned(),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let role = "tls key";
    let pem = read_file(path, role)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| TlsError::Pem {
        role,
        path: path.to_path_buf(),
        detail: match error {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "it holds no PRIVATE KEY section; give a PEM private key".to_owned()
            }
            other => other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("reel-http-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let not_pem = dir.join("not-pem.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let missing = dir.join("missing.pem");
        let error = ServerTls::load(TlsFiles {
            cert: missing.clone(),
            key: not_pem.clone(),
        })
        .err()
        .expect("a missing certificate fails");
        assert!(
            error.to_string().contains("missing.pem") && error.to_string().contains("certificate"),
            "{error}"
        );
        let error = client_config(ClientRoots::Bundle(&not_pem))
            .expect_err("a file without certificates fails");
        assert!(
            error.to_string().contains("not-pem.pem")
                && error.to_string().contains("no CERTIFICATE"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
