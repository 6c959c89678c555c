//! Reading an HTTP/1.1 answer: its head parsed (status, how its body is
//! framed, whether the connection stays open) and a chunked body decoded
//! as its bytes arrive. Pure: the exchange in `http1.rs` does the I/O.

use super::MAX_HEAD;
use crate::probe::MAX_BODY;

/// A response head with more header lines than this is refused.
const MAX_HEADERS: usize = 100;

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed final head.
#[derive(Clone, Copy, Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) len: usize,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
}

/// Parses a head at the start of `buf`: `Ok(None)` when more is needed.
pub(super) fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err("message head is too large".into());
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err("message head is too large".into()),
        Err(httparse::Error::Version) => return Err("invalid HTTP version parsed".into()),
        Err(httparse::Error::Status) => return Err("invalid HTTP status-code parsed".into()),
        Err(_) => return Err("invalid HTTP header parsed".into()),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let (mut length, mut chunked, mut coded) = (None::<u64>, false, false);
    let (mut close, mut keep) = (false, false);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            let n: u64 = match v.parse() {
                Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err("invalid content-length parsed".into()),
            };
            if length.is_some_and(|l| l != n) {
                return Err("invalid content-length parsed".into());
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            let v = std::str::from_utf8(h.value).unwrap_or("");
            chunked = v
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value).unwrap_or("").split(',') {
                let t = token.trim();
                close |= t.eq_ignore_ascii_case("close");
                keep |= t.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let framing = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if coded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    // After 101 the connection speaks another protocol.
    let keep_alive = !close
        && status != 101
        && (http11 || keep)
        && framing != Framing::UntilClose
        && !(coded && length.is_some());
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

/// Where a chunked body's decoding is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// This many data bytes still to come.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    pub(super) body: Vec<u8>,
    state: ChunkState,
}

impl Chunks {
    /// Consumes what it can from `raw` (what is left stays there);
    /// `Ok(true)` once the last chunk and the trailers are read. Data past
    /// [`MAX_BODY`] is read and dropped.
    pub(super) fn feed(&mut self, raw: &mut Vec<u8>) -> Result<bool, &'static str> {
        let mut at = 0;
        let result = loop {
            let rest = &raw[at..];
            match self.state {
                ChunkState::Done => break Ok(true),
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        break Ok(false);
                    }
                    let take = left.min(rest.len());
                    let room = MAX_BODY.saturating_sub(self.body.len());
                    self.body.extend_from_slice(&rest[..take.min(room)]);
                    at += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        break Ok(false);
                    }
                    if &rest[..2] != b"\r\n" {
                        break Err("invalid chunk body");
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Size | ChunkState::Trailers => {
                    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if rest.len() > 4096 {
                            break Err("invalid chunk size line");
                        }
                        break Ok(false);
                    };
                    let line = &rest[..end];
                    at += end + 2;
                    if self.state == ChunkState::Trailers {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size).unwrap_or("").trim();
                    let n = match usize::from_str_radix(size, 16) {
                        Ok(n) if !size.is_empty() && !size.starts_with('+') => n,
                        _ => break Err("invalid chunk size line"),
                    };
                    self.state = if n == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(n)
                    };
                }
            }
        };
        raw.drain(..at);
        result
    }

    pub(super) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}
