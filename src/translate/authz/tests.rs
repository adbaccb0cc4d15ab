//! Tests of the authorization and JWT builders.
