//! JSON object helpers.
