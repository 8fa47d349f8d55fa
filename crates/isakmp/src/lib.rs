//! ISAKMP wire format (in progress).
#![forbid(unsafe_code)]
