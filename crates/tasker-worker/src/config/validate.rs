//! STUB: replaced by range validation.
