//! Bytes on their way to one peer: forwarded runs of the receive buffer
//! (zero-copy), rewrites between them, vectored writes, and how the receive
//! buffers make room for the next read.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{MAX_IOV, RelayConfig};
use crate::codec::frame_len;
use crate::error::ProtocolError;

/// Bytes waiting to be written to one peer.
#[derive(Debug, Default)]
pub(super) struct OutQueue {
    chunks: VecDeque<Bytes>,
    pub(super) bytes: usize,
    /// Written but not yet flushed (TLS may hold the last record).
    pub(super) dirty: bool,
}

impl OutQueue {
    pub(super) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.bytes += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Idle: nothing queued and nothing left unflushed.
    pub(super) fn is_drained(&self) -> bool {
        self.chunks.is_empty() && !self.dirty
    }

    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

/// Writes as much of `queue` as the peer takes in one vectored write.
/// Cancel-safe: if the future is dropped, nothing was written.
pub(super) async fn write_some<W: AsyncWrite + Unpin>(
    w: &mut W,
    queue: &mut OutQueue,
) -> std::io::Result<()> {
    let mut slices = [IoSlice::new(&[]); MAX_IOV];
    let mut n = 0;
    for (slot, chunk) in slices.iter_mut().zip(queue.chunks.iter()) {
        *slot = IoSlice::new(chunk);
        n += 1;
    }
    let written = w.write_vectored(&slices[..n]).await?;
    if written == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    queue.consume(written);
    queue.dirty = true;
    Ok(())
}

/// One step of draining `queue`: a write while bytes are queued, then a flush
/// (TLS may hold the last record back until flushed). Cancel-safe.
pub(super) async fn drive<W: AsyncWrite + Unpin>(
    w: &mut W,
    queue: &mut OutQueue,
) -> std::io::Result<()> {
    if queue.is_empty() {
        w.flush().await?;
        queue.dirty = false;
        Ok(())
    } else {
        write_some(w, queue).await
    }
}

/// Queues the forwarded run `buf[..run]` (zero-copy) and resets it.
pub(super) fn flush_run(buf: &mut BytesMut, queue: &mut OutQueue, run: &mut usize) {
    if *run > 0 {
        queue.push(buf.split_to(*run).freeze());
        *run = 0;
    }
}

/// Takes the frame at `buf[run..run + len]` out of the stream: queues the run
/// before it, drops the frame, and queues `replacement` in its place.
pub(super) fn cut(
    buf: &mut BytesMut,
    queue: &mut OutQueue,
    run: &mut usize,
    len: usize,
    replacement: Option<Bytes>,
) {
    flush_run(buf, queue, run);
    buf.advance(len);
    if let Some(bytes) = replacement {
        queue.push(bytes);
    }
}

/// Makes room for the next read: at least a buffer's worth, and for a
/// partially received large frame (whose length has been validated), room
/// that grows with what has arrived, at most doubling per read. A declared
/// length so costs memory only as its bytes come in: a peer that announces
/// 64 MiB and sends nothing more holds one buffer, not 64 MiB. Shrinks a
/// buffer that grew for one large message once it is empty again.
pub(super) fn prepare_read(buf: &mut BytesMut, config: &RelayConfig) -> Result<(), ProtocolError> {
    if buf.is_empty() && buf.capacity() > config.buffer_size * 4 {
        *buf = BytesMut::with_capacity(config.buffer_size);
    }
    let needed = match frame_len(buf, config.limits.max_message)? {
        Some(total) if total > buf.len() => total - buf.len(),
        _ => 0,
    };
    let growth = needed.min(buf.len().max(config.buffer_size));
    let wanted = growth
        .max(config.buffer_size.saturating_sub(buf.len()))
        .max(1024);
    buf.reserve(wanted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Frame, Limits};

    #[test]
    fn out_queue_consumes_across_chunks() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"abc"));
        q.push(Bytes::from_static(b""));
        q.push(Bytes::from_static(b"defg"));
        assert_eq!(q.bytes, 7);
        q.consume(4);
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(&q.chunks[0][..], b"efg");
        q.consume(3);
        assert!(q.is_empty());
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn prepare_read_grows_with_a_large_frame_as_it_arrives_and_validates_first() {
        let config = RelayConfig {
            limits: Limits {
                max_message: 1 << 20,
                max_startup: 10_240,
            },
            buffer_size: 4096,
        };
        // A 512 KiB frame announced: one buffer's worth, not the frame.
        let mut buf = BytesMut::from(&[b'D', 0, 0x08, 0, 0][..]);
        prepare_read(&mut buf, &config).unwrap();
        assert!(buf.capacity() < 16 * 1024, "{}", buf.capacity());
        // Its bytes arrive as fast as there is room: the buffer grows with
        // them, never to more than about twice what has arrived.
        let total = 1 + (8 << 16);
        let mut reads = 0;
        while buf.len() < total {
            prepare_read(&mut buf, &config).unwrap();
            let room = (buf.capacity() - buf.len()).min(total - buf.len());
            assert!(
                buf.capacity() <= 2 * buf.len() + 2 * config.buffer_size,
                "capacity {} with {} bytes",
                buf.capacity(),
                buf.len()
            );
            buf.resize(buf.len() + room, 0);
            reads += 1;
        }
        assert!(reads < 40, "{reads} reads for a 512 KiB frame");
        assert!(matches!(Frame::parse(&buf, 1 << 20), Ok(Some(f)) if f.as_bytes().len() == total));
        // A length beyond the limit is refused before anything is reserved.
        let mut hostile = BytesMut::from(&[b'D', 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            prepare_read(&mut hostile, &config),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert!(hostile.capacity() < 1 << 20);
    }
}
