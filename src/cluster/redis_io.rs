//! Small helpers over the synchronous `redis` client: a connection with timeouts, and stream
//! replies read from raw values (the same shape under RESP2 and RESP3).
//!
//! Owns: those helpers. Must not: know what the streams carry.

use std::time::Duration;

use redis::Value;

/// How long a connection attempt, or a reply, may take before Redis counts as unreachable.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to `client` with read and write timeouts (a blocked read waits `block` more).
pub fn connect(client: &redis::Client, block: Duration) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT + block))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// One stream entry: its id and its fields, in order.
pub type Entry = (String, Vec<(String, Vec<u8>)>);

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

pub fn string(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().collect(),
        Value::Map(m) => m.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an XRANGE / XREVRANGE reply.
pub fn entries(v: &Value) -> Vec<Entry> {
    items(v)
        .into_iter()
        .filter_map(|e| {
            let parts = items(e);
            let id = string(parts.first()?)?;
            let fields = items(parts.get(1)?);
            let pairs = fields
                .chunks(2)
                .filter_map(|c| Some((string(c.first()?)?, bytes(c.get(1)?)?)))
                .collect();
            Some((id, pairs))
        })
        .collect()
}

/// The entries of an XREAD reply on one stream (none on a timeout).
pub fn read_entries(v: &Value) -> Vec<Entry> {
    match v {
        Value::Nil => Vec::new(),
        Value::Map(m) => m.iter().flat_map(|(_, e)| entries(e)).collect(),
        other => items(other)
            .into_iter()
            .flat_map(|stream| {
                let parts = items(stream);
                parts.get(1).map(|e| entries(e)).unwrap_or_default()
            })
            .collect(),
    }
}
