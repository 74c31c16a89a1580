//! Integration tests live in `tests/`; helpers shared by them live here.
