//! Hook discovery and the extensibility points (placeholder).
