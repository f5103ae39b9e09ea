//! The behaviour battery.
