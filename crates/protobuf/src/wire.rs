//! Protobuf wire format: a field reader over a byte slice and append-only writers.
//! (protobuf encoding spec; k8s messages are proto2 without groups or packed fields, but packed
//! repeated scalars are accepted when reading, as the spec requires.)

/// One field value as it appears on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl WireValue<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            WireValue::Varint(_) => "varint",
            WireValue::Fixed64(_) => "fixed64",
            WireValue::Fixed32(_) => "fixed32",
            WireValue::Bytes(_) => "length-delimited",
        }
    }
}

/// Iterates the fields of one encoded message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next `(field number, value)`, `None` at the end; errors name the problem.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| format!("field number {} too large", key >> 3))?;
        if number == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.take_array::<8>()?)),
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| "length overflows".to_owned())?;
                if len > self.buf.len() {
                    return Err(format!(
                        "field {number}: length {len} exceeds the {} remaining bytes",
                        self.buf.len()
                    ));
                }
                let (head, tail) = self.buf.split_at(len);
                self.buf = tail;
                WireValue::Bytes(head)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.take_array::<4>()?)),
            other => return Err(format!("field {number}: unsupported wire type {other}")),
        };
        Ok(Some((number, value)))
    }

    /// Reads one varint (used for packed repeated fields too).
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err("truncated varint".into());
            };
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    pub(crate) fn take_array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.buf.len() < N {
            return Err(format!("truncated {N}-byte fixed field"));
        }
        let (head, tail) = self.buf.split_at(N);
        self.buf = tail;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_key(buf: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(buf, (u64::from(number) << 3) | u64::from(wire_type));
}

/// A varint field (int32/int64 are sign-extended to 64 bits, as the spec requires).
pub(crate) fn put_varint_field(buf: &mut Vec<u8>, number: u32, value: u64) {
    put_key(buf, number, 0);
    put_varint(buf, value);
}

pub(crate) fn put_fixed64_field(buf: &mut Vec<u8>, number: u32, value: u64) {
    put_key(buf, number, 1);
    buf.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_fixed32_field(buf: &mut Vec<u8>, number: u32, value: u32) {
    put_key(buf, number, 5);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A length-delimited field (string, bytes, embedded message).
pub(crate) fn put_bytes_field(buf: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(buf, number, 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}
