//! JSON → protobuf bytes, walking the message plans.
//!
//! Fields are written in field-number order, as Go does. JSON keys the schema does not know are
//! ignored (Go's JSON decoding into the typed struct drops them too); `null` means absent, except
//! for `metav1.Time`/`MicroTime`, which Go writes as an empty message (a zero non-pointer time).

use base64::Engine as _;
use serde_json::Value;

use crate::ProtoError;
use crate::schema::{Card, FieldPlan, JsonTarget, Schema, Special, ValueType};
use crate::timefmt;
use crate::wire::{put_bytes_field, put_fixed32_field, put_fixed64_field, put_varint_field};

/// Encodes the JSON object members `entries` as the fields of message `msg`.
pub(crate) fn encode_fields<'v>(
    schema: &Schema,
    msg: usize,
    entries: &[(&'v str, &'v Value)],
    buf: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    let plan = schema.message(msg)?;
    // (field index, value or members of an inline struct)
    let mut direct: Vec<(usize, &Value)> = Vec::with_capacity(entries.len());
    let mut inline: Vec<(usize, Vec<(&str, &Value)>)> = Vec::new();
    for (i, f) in plan.fields.iter().enumerate() {
        if f.inline {
            inline.push((i, Vec::new()));
        }
    }
    for (key, value) in entries {
        match plan.by_json.get(*key) {
            Some(JsonTarget::Field(i)) => direct.push((*i, value)),
            Some(JsonTarget::Inline(i)) => {
                if let Some((_, members)) = inline.iter_mut().find(|(f, _)| f == i) {
                    members.push((key, value));
                }
            }
            None => {}
        }
    }
    let mut order: Vec<(u32, Item<'_, 'v>)> = direct
        .into_iter()
        .filter_map(|(i, v)| plan.fields.get(i).map(|f| (f.number, Item::Direct(f, v))))
        .collect();
    for (i, members) in inline {
        if let Some(f) = plan.fields.get(i) {
            order.push((f.number, Item::Inline(f, members)));
        }
    }
    order.sort_by_key(|(n, _)| *n);
    for (_, item) in order {
        match item {
            Item::Direct(f, v) => {
                encode_field(schema, f, v, buf).map_err(|e| e.within(&f.json_name))?
            }
            Item::Inline(f, members) => {
                // Go embeds inline structs by value, so they are always on the wire.
                let ValueType::Message(child) = f.ty else {
                    continue;
                };
                let mut sub = Vec::new();
                encode_fields(schema, child, &members, &mut sub)?;
                put_bytes_field(buf, f.number, &sub);
            }
        }
    }
    Ok(())
}

enum Item<'p, 'v> {
    Direct(&'p FieldPlan, &'v Value),
    Inline(&'p FieldPlan, Vec<(&'v str, &'v Value)>),
}

fn encode_field(
    schema: &Schema,
    f: &FieldPlan,
    v: &Value,
    buf: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    match f.card {
        Card::Single => {
            if v.is_null() {
                if let ValueType::Message(m) = f.ty
                    && matches!(
                        schema.message(m)?.special,
                        Special::Time | Special::MicroTime
                    )
                {
                    put_bytes_field(buf, f.number, &[]);
                }
                return Ok(());
            }
            put_value(schema, f.number, f.ty, v, buf)
        }
        Card::Repeated => {
            let items = match v {
                Value::Null => return Ok(()),
                Value::Array(items) => items,
                other => {
                    return Err(ProtoError::invalid(format!(
                        "expected an array, got {}",
                        json_type(other)
                    )));
                }
            };
            for (i, item) in items.iter().enumerate() {
                put_value(schema, f.number, f.ty, item, buf).map_err(|e| e.within_index(i))?;
            }
            Ok(())
        }
        Card::Map => {
            let entries = match v {
                Value::Null => return Ok(()),
                Value::Object(entries) => entries,
                other => {
                    return Err(ProtoError::invalid(format!(
                        "expected an object, got {}",
                        json_type(other)
                    )));
                }
            };
            let mut entry = Vec::new();
            for (key, value) in entries {
                entry.clear();
                put_bytes_field(&mut entry, 1, key.as_bytes());
                put_value(schema, 2, f.ty, value, &mut entry).map_err(|e| e.within(key))?;
                put_bytes_field(buf, f.number, &entry);
            }
            Ok(())
        }
    }
}

/// Writes one value of type `ty` as field `number`; `null` writes the zero value (a `null`
/// list element or map value decodes to Go's zero value).
fn put_value(
    schema: &Schema,
    number: u32,
    ty: ValueType,
    v: &Value,
    buf: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    match ty {
        ValueType::Message(m) => {
            let bytes = encode_value(schema, m, v)?;
            put_bytes_field(buf, number, &bytes);
        }
        ValueType::Int32 => {
            let n = int(v)?;
            let n = i32::try_from(n)
                .map_err(|_| ProtoError::invalid(format!("{n} does not fit in int32")))?;
            put_varint_field(buf, number, i64::from(n) as u64);
        }
        ValueType::Int64 => put_varint_field(buf, number, int(v)? as u64),
        ValueType::Bool => match v {
            Value::Bool(b) => put_varint_field(buf, number, u64::from(*b)),
            Value::Null => put_varint_field(buf, number, 0),
            other => return Err(mismatch("a boolean", other)),
        },
        ValueType::Double => put_fixed64_field(buf, number, float(v)?.to_bits()),
        ValueType::Float => put_fixed32_field(buf, number, (float(v)? as f32).to_bits()),
        ValueType::String => put_bytes_field(buf, number, string(v)?.as_bytes()),
        ValueType::Bytes => {
            let s = string(v)?;
            let bytes = decode_base64(s)?;
            put_bytes_field(buf, number, &bytes);
        }
    }
    Ok(())
}

/// The bytes of one embedded message, honouring special JSON forms.
pub(crate) fn encode_value(schema: &Schema, msg: usize, v: &Value) -> Result<Vec<u8>, ProtoError> {
    let plan = schema.message(msg)?;
    let mut buf = Vec::new();
    if v.is_null() {
        return Ok(buf);
    }
    let child = |n: u32| {
        plan.message_of(n)
            .ok_or_else(|| ProtoError::Schema(format!("{}: field {n}", plan.full_name)))
    };
    match plan.special {
        Special::None => match v {
            Value::Object(map) => {
                let entries: Vec<(&str, &Value)> =
                    map.iter().map(|(k, v)| (k.as_str(), v)).collect();
                encode_fields(schema, msg, &entries, &mut buf)?;
            }
            other => return Err(mismatch("an object", other)),
        },
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = timefmt::parse_time(string(v)?).map_err(ProtoError::invalid)?;
            put_varint_field(&mut buf, 1, seconds as u64);
            put_varint_field(&mut buf, 2, i64::from(nanos) as u64);
        }
        Special::Duration => {
            let ns = timefmt::parse_duration(string(v)?).map_err(ProtoError::invalid)?;
            put_varint_field(&mut buf, 1, ns as u64);
        }
        Special::IntOrString => {
            // util/intstr: type 0 = Int, 1 = String; Go writes all three fields.
            let (kind, int_val, str_val) = match v {
                Value::String(s) => (1u64, 0i32, s.as_str()),
                Value::Number(_) => {
                    let n = int(v)?;
                    let n = i32::try_from(n)
                        .map_err(|_| ProtoError::invalid(format!("{n} does not fit in int32")))?;
                    (0, n, "")
                }
                other => return Err(mismatch("an integer or a string", other)),
            };
            put_varint_field(&mut buf, 1, kind);
            put_varint_field(&mut buf, 2, i64::from(int_val) as u64);
            put_bytes_field(&mut buf, 3, str_val.as_bytes());
        }
        Special::Quantity => match v {
            Value::String(s) => put_bytes_field(&mut buf, 1, s.as_bytes()),
            Value::Number(n) => put_bytes_field(&mut buf, 1, n.to_string().as_bytes()),
            other => return Err(mismatch("a quantity string", other)),
        },
        Special::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| ProtoError::invalid(e.to_string()))?;
            put_bytes_field(&mut buf, 1, &raw);
        }
        Special::Slice => {
            let f = plan
                .fields
                .first()
                .ok_or_else(|| ProtoError::Schema(format!("{}: no items", plan.full_name)))?;
            encode_field(schema, f, v, &mut buf)?;
        }
        Special::SchemaOrArray => match v {
            Value::Array(items) => {
                let m = child(2)?;
                for (i, item) in items.iter().enumerate() {
                    let bytes = encode_value(schema, m, item).map_err(|e| e.within_index(i))?;
                    put_bytes_field(&mut buf, 2, &bytes);
                }
            }
            other => put_bytes_field(&mut buf, 1, &encode_value(schema, child(1)?, other)?),
        },
        Special::SchemaOrBool => match v {
            Value::Bool(b) => put_varint_field(&mut buf, 1, u64::from(*b)),
            other => {
                put_varint_field(&mut buf, 1, 1);
                put_bytes_field(&mut buf, 2, &encode_value(schema, child(2)?, other)?);
            }
        },
        Special::SchemaOrStringArray => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    put_bytes_field(
                        &mut buf,
                        2,
                        string(item).map_err(|e| e.within_index(i))?.as_bytes(),
                    );
                }
            }
            other => put_bytes_field(&mut buf, 1, &encode_value(schema, child(1)?, other)?),
        },
    }
    Ok(buf)
}

fn int(v: &Value) -> Result<i64, ProtoError> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| ProtoError::invalid(format!("{n} is not a 64-bit integer"))),
        other => Err(mismatch("an integer", other)),
    }
}

fn float(v: &Value) -> Result<f64, ProtoError> {
    match v {
        Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ProtoError::invalid(format!("{n} is not a number"))),
        other => Err(mismatch("a number", other)),
    }
}

fn string(v: &Value) -> Result<&str, ProtoError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => Ok(""),
        other => Err(mismatch("a string", other)),
    }
}

/// Go's `encoding/json` decodes `[]byte` from standard base64 (with padding); be lenient about
/// missing padding and line breaks.
fn decode_base64(s: &str) -> Result<Vec<u8>, ProtoError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let compact: String;
    let s = if s.contains(['\n', '\r']) {
        compact = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        compact.as_str()
    } else {
        s
    };
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s.trim_end_matches('=')))
        .map_err(|e| ProtoError::invalid(format!("illegal base64 data: {e}")))
}

fn mismatch(expected: &str, got: &Value) -> ProtoError {
    ProtoError::invalid(format!("expected {expected}, got {}", json_type(got)))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
