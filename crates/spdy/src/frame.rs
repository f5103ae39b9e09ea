//! SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 section 2.2 and 2.6, plus 3.1's session
//! WINDOW_UPDATE): encoding and decoding with the connection's header compression contexts.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;
use crate::headers::{HeaderDecoder, HeaderEncoder, Headers};

const VERSION: u16 = 3;
/// FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS frames.
const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM.
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
const FLAG_CLEAR_SETTINGS: u8 = 0x01;
/// Frames longer than this are refused (spdystream's limit is the 24-bit length too).
pub const MAX_FRAME_LENGTH: usize = 0x00ff_ffff;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A SPDY/3.1 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        clear: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
}

/// Encodes and decodes the frames of one connection (header compression is stateful, one
/// context per direction).
#[derive(Default)]
pub struct Codec {
    encoder: HeaderEncoder,
    decoder: HeaderDecoder,
}

fn control_header(out: &mut BytesMut, kind: u16, flags: u8, length: usize) -> Result<(), Error> {
    if length > MAX_FRAME_LENGTH {
        return Err(Error::Protocol(format!(
            "frame of {length} bytes is too long"
        )));
    }
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | length as u32);
    Ok(())
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

impl Codec {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the frame's bytes to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), Error> {
        encode(&mut self.encoder, frame, out)
    }

    /// Takes one complete frame off the front of `buf`; `None` until one is complete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        decode(&mut self.decoder, buf)
    }
}

/// Appends the frame's bytes to `out`, compressing headers with the sender's context.
pub fn encode(encoder: &mut HeaderEncoder, frame: &Frame, out: &mut BytesMut) -> Result<(), Error> {
    match frame {
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            if data.len() > MAX_FRAME_LENGTH {
                return Err(Error::Protocol("data frame too long".into()));
            }
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32((u32::from(fin_flag(*fin)) << 24) | data.len() as u32);
            out.extend_from_slice(data);
        }
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            fin,
            unidirectional,
            headers,
        } => {
            let block = encoder.encode(headers)?;
            let mut flags = fin_flag(*fin);
            if *unidirectional {
                flags |= FLAG_UNIDIRECTIONAL;
            }
            control_header(out, TYPE_SYN_STREAM, flags, 10 + block.len())?;
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(associated_to & 0x7fff_ffff);
            out.put_u8((priority & 0x07) << 5);
            out.put_u8(0); // credential slot
            out.extend_from_slice(&block);
        }
        Frame::SynReply {
            stream_id,
            fin,
            headers,
        }
        | Frame::Headers {
            stream_id,
            fin,
            headers,
        } => {
            let kind = if matches!(frame, Frame::SynReply { .. }) {
                TYPE_SYN_REPLY
            } else {
                TYPE_HEADERS
            };
            let block = encoder.encode(headers)?;
            control_header(out, kind, fin_flag(*fin), 4 + block.len())?;
            out.put_u32(stream_id & 0x7fff_ffff);
            out.extend_from_slice(&block);
        }
        Frame::RstStream { stream_id, status } => {
            control_header(out, TYPE_RST_STREAM, 0, 8)?;
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(*status);
        }
        Frame::Settings { clear, entries } => {
            let flags = if *clear { FLAG_CLEAR_SETTINGS } else { 0 };
            control_header(out, TYPE_SETTINGS, flags, 4 + 8 * entries.len())?;
            out.put_u32(entries.len() as u32);
            for e in entries {
                out.put_u32((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff));
                out.put_u32(e.value);
            }
        }
        Frame::Ping { id } => {
            control_header(out, TYPE_PING, 0, 4)?;
            out.put_u32(*id);
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            control_header(out, TYPE_GOAWAY, 0, 8)?;
            out.put_u32(last_good_stream_id & 0x7fff_ffff);
            out.put_u32(*status);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control_header(out, TYPE_WINDOW_UPDATE, 0, 8)?;
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(delta & 0x7fff_ffff);
        }
    }
    Ok(())
}

/// Takes one complete frame off the front of `buf`; `None` until one is complete. Control
/// frames of unknown types are skipped, as the spec asks.
pub fn decode(decoder: &mut HeaderDecoder, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
    loop {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let length = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
        if buf.len() < 8 + length {
            return Ok(None);
        }
        buf.advance(8);
        let mut body = buf.split_to(length).freeze();
        let fin = flags & FLAG_FIN != 0;
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: word,
                fin,
                data: body,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(Error::Protocol(format!(
                "unsupported SPDY version {version}"
            )));
        }
        let kind = (word & 0xffff) as u16;
        let short = || Error::Protocol(format!("control frame {kind} too short"));
        let need = |body: &Bytes, n: usize| {
            if body.len() < n { Err(short()) } else { Ok(()) }
        };
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need(&body, 10)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let associated_to = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                body.advance(1);
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: decoder.decode(&body)?,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(&body, 4)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let headers = decoder.decode(&body)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(&body, 8)?;
                Frame::RstStream {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(&body, 4)?;
                let count = body.get_u32() as usize;
                need(&body, count.saturating_mul(8))?;
                let entries = (0..count)
                    .map(|_| {
                        let head = body.get_u32();
                        Setting {
                            flags: (head >> 24) as u8,
                            id: head & 0x00ff_ffff,
                            value: body.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & FLAG_CLEAR_SETTINGS != 0,
                    entries,
                }
            }
            TYPE_PING => {
                need(&body, 4)?;
                Frame::Ping { id: body.get_u32() }
            }
            TYPE_GOAWAY => {
                need(&body, 4)?;
                let last_good_stream_id = body.get_u32() & 0x7fff_ffff;
                // SPDY/2 peers send no status; spdystream speaks 3 and sends one.
                let status = if body.len() >= 4 { body.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(&body, 8)?;
                Frame::WindowUpdate {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    delta: body.get_u32() & 0x7fff_ffff,
                }
            }
            _ => continue,
        };
        return Ok(Some(frame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        Codec::new().encode(frame, &mut out).unwrap();
        out.to_vec()
    }

    fn decode(bytes: &[u8]) -> Frame {
        let mut buf = BytesMut::from(bytes);
        let frame = Codec::new().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        frame
    }

    /// Byte layouts from the SPDY/3 draft (section 2.2 and 2.6), as spdystream's framer writes
    /// them: control bit + version 3, type, flags, 24-bit length, then the fields.
    #[test]
    fn fixed_layout_frames_match_the_spec() {
        let ping = [
            0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
        ];
        assert_eq!(encode(&Frame::Ping { id: 1 }), ping);
        assert_eq!(decode(&ping), Frame::Ping { id: 1 });
        let rst = [
            0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
            0x00, 0x05,
        ];
        let frame = Frame::RstStream {
            stream_id: 5,
            status: RST_CANCEL,
        };
        assert_eq!(encode(&frame), rst);
        assert_eq!(decode(&rst), frame);
        let data = [0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, b'h', b'i'];
        let frame = Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::from_static(b"hi"),
        };
        assert_eq!(encode(&frame), data);
        assert_eq!(decode(&data), frame);
        let goaway = [
            0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
            0x00, 0x00,
        ];
        let frame = Frame::GoAway {
            last_good_stream_id: 7,
            status: 0,
        };
        assert_eq!(encode(&frame), goaway);
        assert_eq!(decode(&goaway), frame);
        let window = [
            0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
            0x00, 0x00,
        ];
        let frame = Frame::WindowUpdate {
            stream_id: 1,
            delta: 65536,
        };
        assert_eq!(encode(&frame), window);
        assert_eq!(decode(&window), frame);
        // SETTINGS_INITIAL_WINDOW_SIZE (7) = 65536, persisted flag 0.
        let settings = [
            0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x07, 0x00, 0x01, 0x00, 0x00,
        ];
        let frame = Frame::Settings {
            clear: false,
            entries: vec![Setting {
                flags: 0,
                id: 7,
                value: 65536,
            }],
        };
        assert_eq!(encode(&frame), settings);
        assert_eq!(decode(&settings), frame);
    }

    #[test]
    fn header_frames_round_trip_and_keep_their_fields() {
        let headers: Headers = vec![("streamtype".into(), "stdin".into())];
        let mut writer = Codec::new();
        let mut reader = Codec::new();
        let mut out = BytesMut::new();
        let syn = Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers.clone(),
        };
        writer.encode(&syn, &mut out).unwrap();
        // Control bit, version 3, type 1, no flags; stream 3 right after the 8-byte header.
        assert_eq!(&out[..5], &[0x80, 0x03, 0x00, 0x01, 0x00]);
        assert_eq!(&out[8..12], &[0, 0, 0, 3]);
        let reply = Frame::SynReply {
            stream_id: 3,
            fin: true,
            headers: vec![],
        };
        writer.encode(&reply, &mut out).unwrap();
        assert_eq!(reader.decode(&mut out).unwrap(), Some(syn));
        assert_eq!(reader.decode(&mut out).unwrap(), Some(reply));
        assert_eq!(reader.decode(&mut out).unwrap(), None);
    }

    #[test]
    fn partial_input_waits_and_unknown_control_frames_are_skipped() {
        let mut codec = Codec::new();
        let mut buf = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        // Type 5 (NOOP in SPDY/2, unused in 3) followed by a PING.
        let mut buf = BytesMut::from(
            &[
                0x80, 0x03, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x80, 0x03, 0x00, 0x06, 0x00, 0x00,
                0x00, 0x04, 0x00, 0x00, 0x00, 0x02,
            ][..],
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Ping { id: 2 }));
        let mut buf = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00][..]);
        assert!(codec.decode(&mut buf).is_err(), "SPDY/2 is refused");
    }
}
