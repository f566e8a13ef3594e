//! Byte streams (plain TCP or TLS, either side) and the buffered message I/O
//! used during the handshakes, before the relay takes over the buffers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::codec::{frame_len, startup_packet_len};
use crate::error::{ProtocolError, SessionError};

/// A connection to a client or to the upstream, plain or TLS.
#[derive(Debug)]
pub enum PgStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS accepted from a client.
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS opened to the upstream.
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl PgStream {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, PgStream::Plain(_))
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            PgStream::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            PgStream::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PgStream::Server(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            PgStream::Client(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PgStream::Plain(s) => s.is_write_vectored(),
            PgStream::Server(s) => s.is_write_vectored(),
            PgStream::Client(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PgStream::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            PgStream::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            PgStream::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream with a receive buffer, for the message-at-a-time handshakes.
/// Whatever the peer sent beyond the handshake stays in `rbuf` and is handed
/// to the relay.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) stream: PgStream,
    pub(crate) rbuf: BytesMut,
    peer: &'static str,
}

impl Wire {
    pub(crate) fn new(stream: PgStream, peer: &'static str) -> Self {
        Self {
            stream,
            rbuf: BytesMut::with_capacity(8 * 1024),
            peer,
        }
    }

    fn protocol(&self, e: ProtocolError) -> SessionError {
        SessionError::Protocol {
            peer: self.peer,
            source: e,
        }
    }

    /// Reads until at least `n` bytes are buffered. `n` has been validated by
    /// the caller against a limit.
    async fn fill(&mut self, n: usize) -> Result<(), SessionError> {
        if self.rbuf.len() < n {
            self.rbuf.reserve(n - self.rbuf.len());
        }
        while self.rbuf.len() < n {
            let read = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(SessionError::io("reading"))?;
            if read == 0 {
                return Err(SessionError::Io {
                    context: "reading",
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection", self.peer),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Reads one untyped startup-phase packet (length word included).
    pub(crate) async fn read_startup_packet(
        &mut self,
        max: usize,
    ) -> Result<BytesMut, SessionError> {
        self.fill(4).await?;
        let len = startup_packet_len(&self.rbuf, max)
            .map_err(|e| self.protocol(e))?
            .unwrap_or(4);
        self.fill(len).await?;
        Ok(self.rbuf.split_to(len))
    }

    /// Reads one regular message (type byte included).
    pub(crate) async fn read_frame(&mut self, max: usize) -> Result<BytesMut, SessionError> {
        self.fill(5).await?;
        let len = frame_len(&self.rbuf, max)
            .map_err(|e| self.protocol(e))?
            .unwrap_or(5);
        self.fill(len).await?;
        Ok(self.rbuf.split_to(len))
    }

    /// Reads a single byte (the answer to SSLRequest).
    pub(crate) async fn read_byte(&mut self) -> Result<u8, SessionError> {
        self.fill(1).await?;
        Ok(self.rbuf.get_u8())
    }

    /// Writes and flushes `bytes`, then clears them.
    pub(crate) async fn send(&mut self, bytes: &mut BytesMut) -> Result<(), SessionError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(SessionError::io("writing"))?;
        self.stream
            .flush()
            .await
            .map_err(SessionError::io("flushing"))?;
        bytes.clear();
        Ok(())
    }
}

/// The one crypto provider this crate uses (ring), passed explicitly so the
/// process-wide default does not matter.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate but still checks handshake signatures: libpq's
/// `sslmode=prefer/require` without a root certificate, i.e. encryption
/// against passive eavesdroppers only.
#[derive(Debug)]
pub(crate) struct NoCertificateVerification(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateVerification {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
