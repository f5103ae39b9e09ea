//! Protobuf bytes → JSON, walking the message plans.
//!
//! Presence follows upstream's JSON output for objects decoded from protobuf: message fields that
//! are on the wire are emitted (Go writes non-pointer structs even when empty, so `status: {}`
//! and `resources: {}` appear as they do upstream); scalars are emitted unless they hold the zero
//! value and the field is neither required nor a Go pointer (go-to-protobuf writes every
//! non-pointer scalar, and Go's JSON drops the zero ones via `omitempty`); empty lists and maps
//! are absent on the wire and stay absent.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::ProtoError;
use crate::schema::{Card, FieldPlan, MessagePlan, Schema, Special, ValueType};
use crate::timefmt;
use crate::wire::{Reader, WireValue};

/// Decodes the fields of message `msg` from `buf` into `out` (the JSON object of the message, or
/// of its parent for inline members).
pub(crate) fn decode_fields(
    schema: &Schema,
    msg: usize,
    buf: &[u8],
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let plan = schema.message(msg)?;
    let mut reader = Reader::new(buf);
    while let Some((number, value)) = reader
        .next_field()
        .map_err(|e| ProtoError::malformed(&plan.full_name, e))?
    {
        let Some(field) = plan.field_by_number(number) else {
            continue;
        };
        decode_field(schema, plan, field, value, out).map_err(|e| {
            if field.inline {
                e
            } else {
                e.within(&field.json_name)
            }
        })?;
    }
    Ok(())
}

fn decode_field(
    schema: &Schema,
    plan: &MessagePlan,
    field: &FieldPlan,
    value: WireValue<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    match field.card {
        Card::Single => match field.ty {
            ValueType::Message(m) => {
                let bytes = expect_bytes(plan, value)?;
                if field.inline {
                    decode_fields(schema, m, bytes, out)?;
                } else {
                    out.insert(field.json_name.clone(), decode_value(schema, m, bytes)?);
                }
            }
            ty => {
                let v = scalar(plan, ty, value)?;
                if field.keep_zero || !is_zero(&v) {
                    out.insert(field.json_name.clone(), v);
                }
            }
        },
        Card::Repeated => {
            let mut items = Vec::new();
            match (field.ty, value) {
                (ValueType::Message(m), v) => {
                    items.push(decode_value(schema, m, expect_bytes(plan, v)?)?)
                }
                (ValueType::String | ValueType::Bytes, v) => items.push(scalar(plan, field.ty, v)?),
                (ty, WireValue::Bytes(packed)) => unpack(plan, ty, packed, &mut items)?,
                (ty, v) => items.push(scalar(plan, ty, v)?),
            }
            match out.get_mut(&field.json_name) {
                Some(Value::Array(existing)) => existing.extend(items),
                _ => {
                    out.insert(field.json_name.clone(), Value::Array(items));
                }
            }
        }
        Card::Map => {
            let (key, v) = map_entry(schema, plan, field.ty, expect_bytes(plan, value)?)?;
            match out.get_mut(&field.json_name) {
                Some(Value::Object(existing)) => {
                    existing.insert(key, v);
                }
                _ => {
                    let mut m = Map::new();
                    m.insert(key, v);
                    out.insert(field.json_name.clone(), Value::Object(m));
                }
            }
        }
    }
    Ok(())
}

fn map_entry(
    schema: &Schema,
    plan: &MessagePlan,
    ty: ValueType,
    buf: &[u8],
) -> Result<(String, Value), ProtoError> {
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(buf);
    while let Some((number, v)) = reader
        .next_field()
        .map_err(|e| ProtoError::malformed(&plan.full_name, e))?
    {
        match number {
            1 => key = String::from_utf8_lossy(expect_bytes(plan, v)?).into_owned(),
            2 => {
                value = Some(match ty {
                    ValueType::Message(m) => decode_value(schema, m, expect_bytes(plan, v)?)?,
                    ty => scalar(plan, ty, v)?,
                })
            }
            _ => {}
        }
    }
    let value = match (value, ty) {
        (Some(v), _) => v,
        (None, ValueType::Message(m)) => decode_value(schema, m, &[])?,
        (None, ty) => zero(ty),
    };
    Ok((key, value))
}

/// The JSON value of one embedded message, honouring special JSON forms.
pub(crate) fn decode_value(schema: &Schema, msg: usize, buf: &[u8]) -> Result<Value, ProtoError> {
    let plan = schema.message(msg)?;
    let mut fields: Vec<(u32, WireValue<'_>)> = Vec::new();
    if plan.special != Special::None {
        let mut reader = Reader::new(buf);
        while let Some(f) = reader
            .next_field()
            .map_err(|e| ProtoError::malformed(&plan.full_name, e))?
        {
            fields.push(f);
        }
    }
    let last = |n: u32| {
        fields
            .iter()
            .rev()
            .find(|(num, _)| *num == n)
            .map(|(_, v)| *v)
    };
    let int = |n: u32| -> Result<i64, ProtoError> {
        match last(n) {
            None => Ok(0),
            Some(WireValue::Varint(v)) => Ok(v as i64),
            Some(other) => Err(wrong_wire(plan, "varint", other)),
        }
    };
    let bytes = |n: u32| -> Result<Option<&[u8]>, ProtoError> {
        last(n).map(|v| expect_bytes(plan, v)).transpose()
    };
    let child = |n: u32| {
        plan.message_of(n)
            .ok_or_else(|| ProtoError::Schema(format!("{}: field {n}", plan.full_name)))
    };
    Ok(match plan.special {
        Special::None => {
            let mut out = Map::new();
            decode_fields(schema, msg, buf, &mut out)?;
            Value::Object(out)
        }
        Special::Time | Special::MicroTime if fields.is_empty() => Value::Null,
        Special::Time => {
            // meta/v1 time_proto.go drops nanos when unmarshalling
            let s = timefmt::format_time(int(1)?)
                .ok_or_else(|| ProtoError::malformed(&plan.full_name, "time out of range"))?;
            Value::String(s)
        }
        Special::MicroTime => {
            let s = timefmt::format_micro_time(int(1)?, int(2)? as i32)
                .ok_or_else(|| ProtoError::malformed(&plan.full_name, "time out of range"))?;
            Value::String(s)
        }
        Special::Duration => Value::String(timefmt::format_duration(int(1)?)),
        Special::IntOrString => {
            if int(1)? == 1 {
                Value::String(String::from_utf8_lossy(bytes(3)?.unwrap_or_default()).into_owned())
            } else {
                Value::from(int(2)? as i32)
            }
        }
        Special::Quantity => match bytes(1)? {
            Some(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
            None => Value::String("0".into()),
        },
        Special::RawJson => match bytes(1)? {
            None | Some([]) => Value::Null,
            Some(raw) => embedded(schema, plan, raw)?,
        },
        Special::Slice => {
            let mut out = Map::new();
            decode_fields(schema, msg, buf, &mut out)?;
            out.into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or_else(|| Value::Array(Vec::new()))
        }
        Special::SchemaOrArray => {
            let schemas: Vec<&[u8]> = fields
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, v)| expect_bytes(plan, *v))
                .collect::<Result<_, _>>()?;
            if !schemas.is_empty() {
                let m = child(2)?;
                Value::Array(
                    schemas
                        .into_iter()
                        .map(|b| decode_value(schema, m, b))
                        .collect::<Result<_, _>>()?,
                )
            } else if let Some(b) = bytes(1)? {
                decode_value(schema, child(1)?, b)?
            } else {
                Value::Null
            }
        }
        Special::SchemaOrBool => match bytes(2)? {
            Some(b) => decode_value(schema, child(2)?, b)?,
            None => Value::Bool(int(1)? != 0),
        },
        Special::SchemaOrStringArray => {
            let props: Vec<Value> = fields
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, v)| scalar(plan, ValueType::String, *v))
                .collect::<Result<_, _>>()?;
            if !props.is_empty() {
                Value::Array(props)
            } else if let Some(b) = bytes(1)? {
                decode_value(schema, child(1)?, b)?
            } else {
                Value::Null
            }
        }
    })
}

/// Raw bytes of a RawExtension-like field: a nested protobuf envelope or JSON.
fn embedded(schema: &Schema, plan: &MessagePlan, raw: &[u8]) -> Result<Value, ProtoError> {
    if raw.starts_with(&crate::MAGIC) {
        return crate::envelope::decode(schema, raw);
    }
    serde_json::from_slice(raw).map_err(|e| {
        ProtoError::malformed(
            &plan.full_name,
            format!("embedded object is neither protobuf nor JSON: {e}"),
        )
    })
}

fn expect_bytes<'a>(plan: &MessagePlan, v: WireValue<'a>) -> Result<&'a [u8], ProtoError> {
    match v {
        WireValue::Bytes(b) => Ok(b),
        other => Err(wrong_wire(plan, "length-delimited", other)),
    }
}

fn wrong_wire(plan: &MessagePlan, expected: &str, got: WireValue<'_>) -> ProtoError {
    ProtoError::malformed(
        &plan.full_name,
        format!("expected {expected} wire type, got {}", got.type_name()),
    )
}

fn scalar(plan: &MessagePlan, ty: ValueType, v: WireValue<'_>) -> Result<Value, ProtoError> {
    Ok(match (ty, v) {
        (ValueType::Int32, WireValue::Varint(x)) => Value::from(x as i64 as i32),
        (ValueType::Int64, WireValue::Varint(x)) => Value::from(x as i64),
        (ValueType::Bool, WireValue::Varint(x)) => Value::Bool(x != 0),
        (ValueType::Double, WireValue::Fixed64(x)) => float(plan, f64::from_bits(x))?,
        (ValueType::Float, WireValue::Fixed32(x)) => float(plan, f64::from(f32::from_bits(x)))?,
        (ValueType::String, WireValue::Bytes(b)) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        (ValueType::Bytes, WireValue::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (ty, v) => {
            return Err(ProtoError::malformed(
                &plan.full_name,
                format!("{ty:?} field has wire type {}", v.type_name()),
            ));
        }
    })
}

fn unpack(
    plan: &MessagePlan,
    ty: ValueType,
    packed: &[u8],
    items: &mut Vec<Value>,
) -> Result<(), ProtoError> {
    let mut r = Reader::new(packed);
    let err = |e: String| ProtoError::malformed(&plan.full_name, e);
    while !r.is_empty() {
        let v = match ty {
            ValueType::Double => {
                WireValue::Fixed64(u64::from_le_bytes(r.take_array::<8>().map_err(err)?))
            }
            ValueType::Float => {
                WireValue::Fixed32(u32::from_le_bytes(r.take_array::<4>().map_err(err)?))
            }
            _ => WireValue::Varint(r.varint().map_err(err)?),
        };
        items.push(scalar(plan, ty, v)?);
    }
    Ok(())
}

fn float(plan: &MessagePlan, f: f64) -> Result<Value, ProtoError> {
    // Go's encoding/json prints integral floats without a fraction (`10`, not `10.0`).
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        ProtoError::malformed(
            &plan.full_name,
            format!("{f} cannot be represented in JSON"),
        )
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn zero(ty: ValueType) -> Value {
    match ty {
        ValueType::Bool => Value::Bool(false),
        ValueType::String | ValueType::Bytes => Value::String(String::new()),
        _ => Value::from(0),
    }
}
