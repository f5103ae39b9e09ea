//! Resource quantities: shared with admission (LimitRanger, ResourceQuota) in
//! `rkube_apimachinery::quantity`.

pub use rkube_apimachinery::quantity::{milli_value, value};
