//! Parsing file contents (multi-document YAML, `kind: List`, JSON) into typed objects.
