//! What travels on the wire, read without any transport's types: a request body's parameters
//! ([`params`]) and its headers as text ([`headers`]).
//!
//! Owns: parsing and encoding bodies, JSON-pointer locations, header lookup, bearer/Basic/language
//! readers. Must not: import anything above it (no points, proxy or hooks), or decide how a
//! malformed input is answered.

pub mod headers;
pub mod params;
