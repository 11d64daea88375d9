//! TLS for `https` checks (keepalived's `SSL_GET`), with rustls.
//!
//! The server's certificate is accepted whatever it is, as keepalived accepts it: its SSL context
//! (keepalived/check/check_ssl.c `build_ssl_ctx`) never calls `SSL_CTX_set_verify`, so OpenSSL's
//! default `SSL_VERIFY_NONE` applies, and the CA of `SSL { ca }` is loaded but not enforced. A
//! health check asks whether the server answers, not who it is: real servers commonly serve a
//! certificate for the service's public name (or a self-signed one), not for the address the
//! check connects to. The handshake's signatures are still verified against the certificate's
//! key, so the TLS session itself is sound.
use std::net::{IpAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use super::{Conn, HttpError};

pub type Stream = StreamOwned<ClientConnection, TcpStream>;

impl Conn for Stream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Accepts any server certificate; see the module documentation.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration every https check shares: ring, TLS 1.2 and 1.3, no client
/// certificate, any server certificate.
fn config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let c = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Ok(Arc::new(c))
        })
        .clone()
}

/// Runs the TLS handshake on `tcp` before `deadline`. `sni` is the server name to send; none
/// sends none (the session is keyed by the address).
pub fn connect(
    tcp: TcpStream,
    ip: IpAddr,
    sni: Option<&str>,
    deadline: Instant,
) -> Result<Stream, (&'static str, HttpError)> {
    let fail = |m: String| ("tls handshake", HttpError::Malformed(m));
    let name = match sni {
        Some(n) => {
            ServerName::try_from(n.to_owned()).map_err(|_| fail(format!("tls: bad server name {n:?}")))?
        }
        None => ServerName::IpAddress(ip.into()),
    };
    let conn = ClientConnection::new(config().map_err(fail)?, name)
        .map_err(|e| fail(format!("tls handshake: {e}")))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.until(deadline, "tls handshake")?;
        match s.conn.complete_io(&mut s.sock) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(fail("tls handshake: connection closed".into()))
            }
            Err(e) => return Err(("tls handshake", HttpError::Io(e))),
        }
    }
    Ok(s)
}
