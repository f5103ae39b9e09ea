//! SPDY/3.1 as Kubernetes' streaming protocols use it (remotecommand `v4.channel.k8s.io` … and
//! `portforward.k8s.io` over moby/spdystream): the frame codec with SPDY/3 header compression
//! ([`frame`], [`headers`]) and a client connection that opens streams ([`connection`]).
//!
//! No maintained Rust crate speaks SPDY (browsers and HTTP libraries dropped it for HTTP/2);
//! Kubernetes still negotiates it with kubelets and container runtimes, so rkube keeps this
//! small implementation of the subset spdystream uses.

pub mod connection;
mod dictionary;
pub mod frame;
pub mod headers;

pub use connection::{Connection, Stream, StreamWriter};
pub use frame::Frame;
pub use headers::{Headers, header};

/// A SPDY connection or stream failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
    #[error("SPDY stream reset by the peer (status {0})")]
    Reset(u32),
    #[error("SPDY connection closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
