//! Reading the client's startup packet and the server's messages off a stream: the I/O
//! around the parsers in [`crate::wire`], which do all the checking.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::{self, Frame, Startup};

/// Reads one startup packet (length-prefixed, no type byte).
pub(crate) async fn read_startup<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Startup> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).await?;
    let mut body = vec![0; wire::startup_body_len(prefix)?];
    s.read_exact(&mut body).await?;
    wire::parse_startup(&body)
}

/// Reads one whole backend message.
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Frame> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await?;
    let len = wire::frame_body_len(&head)?;
    let mut bytes = BytesMut::with_capacity(5 + len);
    bytes.put_slice(&head);
    bytes.resize(5 + len, 0);
    s.read_exact(&mut bytes[5..]).await?;
    Ok(Frame {
        tag: head[0],
        bytes: bytes.freeze(),
    })
}
