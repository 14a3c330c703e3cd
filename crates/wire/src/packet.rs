//! Packet framing.
//!
//! Every MySQL message is a *payload* cut into *packets*: a 4-byte header
//! (3-byte little-endian length, 1-byte sequence id) followed by up to
//! 0xff_ffff payload bytes. A packet of exactly 0xff_ffff bytes means "more
//! follows"; the payload ends with the first shorter packet, which may be
//! empty. So a 16 MiB − 1 byte payload is sent as one full packet plus an
//! empty one.
//!
//! Sequence ids: the client starts each command at 0; every packet after
//! that, in either direction, takes the next id (wrapping at 255). We simply
//! continue from the last id we read, so a reply to a 3-packet command starts
//! at id 3.
//!
//! Writes go into a buffer and reach the socket on [`PacketStream::flush`],
//! which the command loop calls once per reply. Underneath the buffers sits a
//! [`Transport`]: the plain socket, or TLS after [`PacketStream::start_tls`].

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio_rustls::rustls;

use crate::transport::{Rewind, Transport};
use crate::types::TlsInfo;

/// Largest payload of a single packet; a packet this long is continued.
pub const MAX_CHUNK: usize = 0xff_ffff;

/// Largest payload we accept from a client (MySQL's default
/// `max_allowed_packet`). Bigger ones end the connection with ERR 1153.
pub const MAX_ALLOWED_PACKET: usize = 64 << 20;

/// Errors from [`PacketStream::read_packet`] with this message mean the client
/// exceeded [`MAX_ALLOWED_PACKET`].
pub(crate) const TOO_LARGE: &str = "packet larger than max_allowed_packet";

/// What `BufStream` is, spelled out so that the read buffer can be inspected
/// when the transport changes under it.
type Buffered<S> = BufReader<BufWriter<Transport<S>>>;

fn buffered<S: AsyncRead + AsyncWrite + Unpin>(t: Transport<S>) -> Buffered<S> {
    BufReader::with_capacity(16 * 1024, BufWriter::with_capacity(64 * 1024, t))
}

pub(crate) struct PacketStream<S> {
    io: Buffered<S>,
    seq: u8,
    /// Bytes of packets (headers included) read and written since the last [`Self::take_traffic`].
    received: u64,
    sent: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    pub fn new(stream: S) -> PacketStream<S> {
        PacketStream {
            io: buffered(Transport::Plain(stream)),
            seq: 0,
            received: 0,
            sent: 0,
        }
    }

    /// Switch to TLS: run the server side of the TLS handshake on the socket,
    /// then carry on (same sequence ids) over the encrypted stream. Call right
    /// after reading the SSLRequest. Bytes already read past it (the client's
    /// ClientHello may arrive in the same segment) are fed to rustls first.
    pub async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        self.flush().await?;
        let early = self.io.buffer().to_vec();
        let old = std::mem::replace(&mut self.io, buffered(Transport::Upgrading));
        let Transport::Plain(raw) = old.into_inner().into_inner() else {
            return Err(io::Error::other("TLS requested twice"));
        };
        let tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(Rewind::new(early, raw))
            .await?;
        self.io = buffered(Transport::Tls(Box::new(tls)));
        Ok(())
    }

    /// The negotiated protocol and cipher, once TLS is on.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.io.get_ref().get_ref().tls_info()
    }

    /// Read one whole payload, joining continuation packets. `Ok(None)` is a
    /// clean end of stream before the first header byte.
    pub async fn read_packet(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut payload = Vec::new();
        let mut first = true;
        loop {
            let mut header = [0u8; 4];
            let n = self.io.read(&mut header[..1]).await?;
            if n == 0 {
                if first {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.io.read_exact(&mut header[1..]).await?;
            first = false;
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            self.seq = header[3].wrapping_add(1);
            if payload.len() + len > MAX_ALLOWED_PACKET {
                return Err(io::Error::new(io::ErrorKind::InvalidData, TOO_LARGE));
            }
            // Grow as the bytes arrive rather than trusting the header up front.
            let got = (&mut self.io)
                .take(len as u64)
                .read_to_end(&mut payload)
                .await?;
            if got != len {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.received += 4 + len as u64;
            if len < MAX_CHUNK {
                return Ok(Some(payload));
            }
        }
    }

    /// Resolves when the peer has gone away (end of stream or a read error) while nothing of a
    /// next command is waiting; a pipelined next command keeps it pending forever and is left
    /// unread for [`PacketStream::read_packet`].
    pub async fn peer_closed(&mut self) {
        use tokio::io::AsyncBufReadExt;
        match self.io.fill_buf().await {
            Ok([]) | Err(_) => {}
            Ok(_) => std::future::pending::<()>().await,
        }
    }

    /// Queue one payload, splitting it into packets as needed.
    pub async fn write_packet(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_CHUNK);
            let len = (n as u32).to_le_bytes();
            self.io
                .write_all(&[len[0], len[1], len[2], self.seq])
                .await?;
            self.io.write_all(&rest[..n]).await?;
            self.sent += 4 + n as u64;
            self.seq = self.seq.wrapping_add(1);
            rest = &rest[n..];
            if n < MAX_CHUNK {
                return Ok(());
            }
        }
    }

    /// A client starts each command at sequence id 0.
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// (received, sent) bytes since the last call.
    pub fn take_traffic(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.received), std::mem::take(&mut self.sent))
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}
