//! AWS IAM authentication as EKS does it (aws-iam-authenticator): bearer tokens holding a
//! presigned STS GetCallerIdentity URL, identities mapped to users through the
//! `kube-system/aws-auth` ConfigMap, and the client side that produces such tokens.

pub mod arn;
pub mod authenticator;
pub mod client;
pub mod mapping;
pub mod sts;
pub mod token;

pub use authenticator::{IamAuthenticator, IamConfig};
