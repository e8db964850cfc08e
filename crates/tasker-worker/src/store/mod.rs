//! Task stores.

pub mod postgres;
