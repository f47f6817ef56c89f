//! The hook engine (placeholder until the engine lands).
