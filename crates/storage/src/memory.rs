//! In-memory reference backend.
